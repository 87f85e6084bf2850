"""The plan of a fit: everything decided and checked before training starts.

A fit reads as three steps (see ``NeuralEstimatorBase._fit``): ``prepare``
builds a ``FitPlan`` around a *working copy* of the estimator, touching
nothing the user holds; the loop trains that copy; and only a completed fit
is adopted by the estimator. Every configuration error surfaces here, before
the first batch: parameters, data, the module, criterion and optimizer (by a
dry forward, loss and backward on a few rows), and each callback's
``setup``.
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from torch import nn

from . import _routing, _snapshot
from ._data import Dataset, TensorData
from ._device import resolve_device
from ._dispatch import HookTable
from ._factories import build_objects, loss_function, owns_its_randomness
from ._fingerprint import fingerprint
from ._fitted_state import (
    attach_callbacks,
    load_callback_states,
    start_fresh,
    working_copy,
)
from ._mlp_backprop import ACTIVATION_STEPS, LOSSES, HandwrittenMLPStep
from ._modules import MLP, global_rng_scope, takes_sparse_batches
from ._params import validate_parameters
from ._precision import Precision, autocast, compiled_forward
from ._snapshot import load_objects

_SEED_BOUND = np.iinfo(np.int32).max
#: Rows of the dry run that checks module, criterion and targets fit together.
_DRY_ROWS = 8


#: What ``FitPlan.fit_name`` gives: 16 hexadecimal digits.
_FIT_NAME = re.compile(r"[0-9a-f]{16}")


class FitPlan:
    """What a fit will do, decided and checked before anything changes.

    Callbacks receive it in ``setup``, before the
    first batch, and read it during the fit as ``ctx.plan``.

    Attributes
    ----------
    estimator : NeuralRegressor or NeuralClassifier
        The working copy being trained; the estimator adopts its fitted
        state when the fit completes.
    partial : bool
        Whether this is a ``partial_fit`` call (one epoch).
    continuing : bool
        Whether training continues a fitted state (``warm_start`` or
        ``partial_fit``).
    first_epoch : int
        Epochs already run before this fit.
    max_epochs : int
        The epoch at which this fit ends unless stopped earlier.
    n_train, n_valid : int
        Training and validation samples (``n_valid`` is 0 without validation).
    has_validation : bool
        Whether each epoch validates (``valid_loss`` is recorded).
    batch_size, n_batches : int
        Training batch size and training batches per epoch.
    accumulate : int
        Training batches per optimizer step (gradient accumulation).
    device : torch.device
    outputs : object
        Turns module outputs into predictions: ``predict(output)``,
        ``targets(y)`` and, for classifiers, ``predict_proba(output)`` and
        ``classes_``; ``perfect_output(y)`` is the output that predicts the
        encoded targets ``y`` exactly.
    target_sample : torch.Tensor
        Encoded training targets (up to 1,000 rows, every class included),
        for a callback to try a metric on in ``setup``.
    metrics : dict
        The metrics each epoch will record, mapped to whether lower is better
        (None when no direction is known). Callbacks that add a metric
        declare it with ``declare_metric``.
    resumed_from : str or None
        The checkpoint file this fit continues from (``Checkpoint(resume=True)``).
    mlp_step : object or None
        The hand-derived training step of the built-in MLP when this fit
        trains with it (``fast_path``; see ``choose_fast_path``), else None:
        autograd.
    """

    # Set by ``prepare``; declared for readers and type checkers.
    estimator: Any
    partial: bool
    continuing: bool
    device: torch.device
    metrics: dict[str, bool | None]
    fingerprint_of: tuple[Any, list[Any]]
    resumed_from: Any
    resume: dict[str, Any] | None
    first_epoch: int
    max_epochs: int
    n_train: int
    n_valid: int
    has_validation: bool
    batch_size: int
    accumulate: int
    n_batches: int
    outputs: Any
    train: Any
    valid: Any
    target_sample: torch.Tensor
    custom_seed: int | None
    shuffle: torch.Generator
    dropout: torch.Generator
    forward: Any
    compute_loss: Any
    precision: Any
    hooks: Any
    mlp_step: HandwrittenMLPStep | None

    def __init__(self, **fields: Any) -> None:
        vars(self).update(fields)
        self._warned: set[tuple[str, str]] = set()
        self._fingerprint: str | None = None

    def fingerprint(self) -> str:
        """A digest of the estimator's parameters and the fit's data, the
        same in every process (computed once, when first asked)."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint(*self.fingerprint_of)
        return self._fingerprint

    def fit_name(self) -> str:
        """A short name of this fit for files and folders (the first 16
        characters of ``fingerprint``): the same when a fit is re-run or
        resumed, different for each candidate and fold of a search."""
        return self.fingerprint()[:16]

    def run_name(self, previous: Any = None) -> str:
        """The name a logger gives this fit's file, folder or run: a fit that
        continues training (``warm_start``, ``partial_fit``) keeps the name
        ``previous`` the logger gave the fit it continues, when that is a
        name ``fit_name`` could have given; any other fit is named
        ``fit_name``."""
        if self.continuing and isinstance(previous, str) and _FIT_NAME.fullmatch(previous):
            return previous
        return self.fit_name()

    def join(self, name: str, callback: Any) -> None:
        """Dispatch the hooks of an internal ``callback`` too, in ``order``
        among the fit's callbacks; it is not one of ``callbacks_``."""
        named = [*self.estimator.callbacks_.items(), (name, callback)]
        self.hooks = HookTable(sorted(named, key=lambda item: item[1].order))
        choose_fast_path(self)

    def declare_metric(self, name: str, *, lower_is_better: bool | None = None) -> None:
        """Announce that the fit's callbacks record ``name`` each epoch, and
        whether lower values are better (None: no direction)."""
        self.metrics[name] = lower_is_better

    def monitored(self, owner: str, key: str) -> str:
        """The metric a callback watches: ``key``, or ``train_*`` in place of
        ``valid_*`` when there is no validation data (with a warning).

        Raises
        ------
        ValueError
            If the fit does not record ``key``.
        """
        if key in self.metrics:
            return key
        fallback = "train_" + key[len("valid_") :]
        if key.startswith("valid_") and not self.has_validation and fallback in self.metrics:
            if (owner, key) not in self._warned:
                warnings.warn(
                    f"{owner} monitors {key!r} but the fit has no validation data; it monitors "
                    f"{fallback!r} instead. Set validation_fraction, pass X_val and y_val, or "
                    f"monitor {fallback!r}.",
                    UserWarning,
                    stacklevel=2,
                )
                self._warned.add((owner, key))
            return fallback
        hint = ""
        if key.startswith(("valid_", "train_")) and not key.endswith("_loss"):
            hint = (
                f" A score is recorded by EpochScoring (EpochScoring('accuracy') records "
                f"'valid_accuracy'); a custom callback declares its metric in setup() with "
                f"plan.declare_metric({key!r}, lower_is_better=...)."
            )
        raise ValueError(
            f"{owner} monitors {key!r}, which this fit does not record; it records "
            f"{sorted(self.metrics)}.{hint}"
        )

    def minimizes(self, owner: str, key: str, mode: str = "auto") -> bool:
        """Whether lower values of ``key`` are better: ``mode`` when it is
        "min" or "max", else the direction ``key`` was declared with."""
        if mode != "auto":
            return mode == "min"
        lower = self.metrics.get(key)
        if lower is None:
            raise ValueError(
                f"{owner} cannot tell whether {key!r} should go down or up; pass mode='min' "
                f"or mode='max', or declare the metric with "
                f"plan.declare_metric({key!r}, lower_is_better=...)."
            )
        return lower


def prepare(
    estimator: Any,
    X: Any,
    y: Any,
    sample_weight: Any,
    *,
    partial: bool,
    classes: Any = None,
    X_val: Any = None,
    y_val: Any = None,
    sample_weight_val: Any = None,
) -> FitPlan:
    """Validate everything and build the plan; ``estimator`` is not changed."""
    validate_parameters(estimator)
    _routing.check_extra_params(estimator)
    device = resolve_device(estimator.device)
    continuing = estimator.__sklearn_is_fitted__() and (partial or estimator.warm_start)
    work = working_copy(estimator, fitted=continuing)

    X, y = work._validate_inputs(X, y, reset=not continuing)
    y, target_state = work._encode_targets(y, continuing=continuing, classes=classes)
    vars(work).update(target_state)
    sample_weight = work._check_weights(sample_weight, X)
    work._check_target_weights(y, sample_weight)
    callbacks = _routing.fitted_callbacks(estimator)
    plan = FitPlan(
        estimator=work,
        partial=partial,
        continuing=continuing,
        device=device,
        metrics={"epoch": None, "train_loss": True, "lr": None, "dur": None},
        fingerprint_of=(estimator, [X, y, sample_weight, X_val, y_val, sample_weight_val]),
        resumed_from=None,
        resume=None,
    )
    if not continuing:
        start_fresh(work, epoch=0, step=0)
        if not partial:  # a partial_fit loop is the user's: it is not resumed
            plan.resume = _resume_point(plan, callbacks, device)
    # A resumed fit draws no seed: its generators' states are restored, and
    # its NumPy generator must stay where the interrupted fit had it.
    seed = 0 if plan.resume is not None else int(work._rng.randint(_SEED_BOUND))

    sparse_batches = takes_sparse_batches(work, device)
    data = Dataset(X, y, device, sparse_batches=sparse_batches)
    train, valid = _validation(
        work, data, y, sample_weight, partial, X_val, y_val, sample_weight_val, device
    )
    if continuing:
        load_callback_states(callbacks, estimator.callbacks_)
    else:
        build_objects(work, device, seed)
    custom_seed = None if owns_its_randomness(estimator) else seed + 1
    weighted = train.w is not None or (valid is not None and valid.w is not None)
    compute_loss = loss_function(work.criterion_, weighted=weighted)
    with global_rng_scope(custom_seed, device):
        _dry_run(work, data, compute_loss, train.w is not None)
    if plan.resume is not None:
        load_objects(work, plan.resume, plan.resumed_from)
        with _snapshot.malformed(plan.resumed_from):
            load_callback_states(callbacks, plan.resume["callbacks"])
        if plan.resume["batches_done"] > train.n_batches(estimator.batch_size):
            raise ValueError(f"{plan.resumed_from} is malformed: more batches than an epoch has.")

    attach_callbacks(work, callbacks)
    vars(plan).update(
        first_epoch=work.n_iter_,
        max_epochs=work.n_iter_ + (1 if partial else estimator.max_epochs),
        n_train=train.n_samples,
        n_valid=0 if valid is None else valid.n_samples,
        has_validation=valid is not None,
        batch_size=estimator.batch_size,
        accumulate=int(estimator.accumulate),
        n_batches=train.n_batches(estimator.batch_size),
        outputs=work._outputs(),
        train=train,
        valid=valid,
        target_sample=_target_sample(y),
        custom_seed=custom_seed,
        shuffle=torch.Generator().manual_seed(seed),
        dropout=torch.Generator(device=device).manual_seed(seed + 1),
        forward=compiled_forward(work.module_, estimator.compile),
        compute_loss=compute_loss,
        precision=Precision(estimator.precision, device, direct_step=bool(estimator.fast_path)),
    )
    if plan.resume is not None:
        with _snapshot.malformed(plan.resumed_from):
            plan.dropout.set_state(plan.resume["dropout_state"])
            if plan.resume["grad_scaler"] and plan.precision.scaler:
                plan.precision.scaler.load_state_dict(plan.resume["grad_scaler"])
    if valid is not None:
        plan.declare_metric("valid_loss", lower_is_better=True)
    for name, cb in callbacks:
        try:
            cb.setup(plan)
        except Exception as exc:
            exc.add_note(f"raised by callback {name!r} in setup, before training started")
            raise
    plan.hooks = HookTable(callbacks)
    choose_fast_path(plan)
    return plan


#: Hooks that could read or change the forward pass or the loss's graph.
_GRAPH_HOOKS = ("on_after_forward", "on_after_loss", "on_before_backward")


def choose_fast_path(plan: FitPlan) -> None:
    """Train with the hand-derived step of the built-in MLP (``plan.mlp_step``)
    where it gives the model autograd would, else with autograd (None); the
    working estimator records the choice as ``fast_path_``.

    That is: ``fast_path=True``, the built-in MLP with a built-in activation,
    the default criterion (no ``criterion__`` parameters), float32 without
    autocast, no ``compile``, the CPU or CUDA, and no callback that
    overrides a hook which could read or change the forward pass or the
    loss's graph.
    """
    work = plan.estimator
    loss = LOSSES.get(type(work.criterion_))
    eligible = (
        bool(work.fast_path)
        and work.module is None
        and isinstance(work.module_, MLP)
        and isinstance(work.activation, str)
        and work.activation in ACTIVATION_STEPS
        and work.criterion is None
        and not _routing.routed(work, "criterion__")
        and work.precision == "32"
        and not work.compile
        and plan.device.type in ("cpu", "cuda")  # where its every op is implemented
        and not any(getattr(plan.hooks, hook) for hook in _GRAPH_HOOKS)
    )
    plan.mlp_step = None
    if eligible and loss is not None:
        plan.mlp_step = HandwrittenMLPStep(
            work.module_,
            activation=work.activation,
            dropout=float(work.dropout),
            loss=loss,
            batch_size=min(plan.batch_size, plan.n_train),  # no batch has more rows
            generator=plan.dropout,
        )
    work.fast_path_ = plan.mlp_step is not None


def _target_sample(y: np.ndarray, n_rows: int = 1000) -> torch.Tensor:
    """Some encoded training targets, with every class among them, for
    callbacks to try their metrics on before training (``plan.target_sample``)."""
    rows = np.arange(min(n_rows, len(y)))
    if y.dtype.kind == "i":  # class indices: one row of each class too
        rows = np.union1d(rows, np.unique(y, return_index=True)[1])
    return torch.from_numpy(np.ascontiguousarray(y[rows]))


def _resume_point(plan: FitPlan, callbacks: list[tuple[str, Any]], device: Any) -> Any:
    """The checkpoint state a new fit continues from, when a callback (a
    ``Checkpoint(resume=True)``) names one; its random state is restored on
    the working estimator, so the validation split is the one it had."""
    for name, cb in callbacks:
        path = cb.resume_from(plan)
        if path is None:
            continue
        state = _snapshot.read(path, device)
        _snapshot.check_matches(state, plan.estimator, path)
        if state["fingerprint"] != plan.fingerprint():
            raise ValueError(
                f"{path} is a checkpoint of another fit (other parameters or data); callback "
                f"{name!r} cannot resume from it."
            )
        if state["epoch"] > plan.estimator.max_epochs:
            raise ValueError(f"{path} is malformed: epoch {state['epoch']} is past max_epochs.")
        with _snapshot.malformed(path):
            _snapshot.restore_rng(plan.estimator, state)
            torch.Generator().set_state(state["shuffle_state"])
        plan.resumed_from = str(path)
        return state
    return None


def _validation(
    work, data, y, sample_weight, partial, X_val, y_val, sample_weight_val, device
) -> tuple[TensorData, TensorData | None]:
    """The training and validation data: an explicit validation set, a
    held-out share of the samples (stratified for classifiers), or none."""
    n_samples = len(y)
    if X_val is not None or y_val is not None:
        if X_val is None or y_val is None:
            raise ValueError("Pass both X_val and y_val (or neither) for validation.")
        try:
            X_val, y_val = work._validate_inputs(X_val, y_val, reset=False)
            y_val, _ = work._encode_targets(y_val, continuing=True, classes=None)
            w_val = work._check_weights(sample_weight_val, X_val)
        except ValueError as exc:
            raise ValueError(
                f"The validation set (X_val, y_val, sample_weight_val) is invalid: {exc}"
            ) from exc
        held = Dataset(X_val, y_val, device, sparse_batches=takes_sparse_batches(work, device))
        valid = held.subset(np.arange(len(y_val)), w_val)
        return data.subset(np.arange(n_samples), sample_weight), valid
    if sample_weight_val is not None:
        raise ValueError("sample_weight_val was given without X_val and y_val.")
    fraction = work.validation_fraction
    if partial or fraction is None:
        return data.subset(np.arange(n_samples), sample_weight), None
    n_valid = math.ceil(fraction * n_samples)
    if n_samples - n_valid < 1:
        raise ValueError(
            f"Cannot hold out validation_fraction={fraction} of n_samples={n_samples} "
            "samples: no training sample would remain. Pass more samples, pass X_val and "
            "y_val, or set validation_fraction=None."
        )
    rng = np.random.RandomState(work._split_seed)
    splitter: Any = ShuffleSplit(n_splits=1, test_size=n_valid, random_state=rng)
    labels = work._stratify_labels(y)
    if labels is not None:
        counts = np.unique(labels, return_counts=True)[1]
        if counts.min() >= 2 and len(counts) <= n_valid <= n_samples - len(counts):
            splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_valid, random_state=rng)
    # The splitters read only the number of rows from X: a zero-width array
    # costs no memory (an arange of the rows cost 8 bytes a row, and np.sort
    # copies as much again); the rows are sorted in place.
    train_rows, valid_rows = next(splitter.split(np.empty((n_samples, 0)), labels))
    train_rows.sort()
    valid_rows.sort()
    if sample_weight is not None and not sample_weight[train_rows].any():
        raise ValueError(
            "Every sample left for training has zero weight (the non-zero ones were held out "
            "for validation); pass X_val and y_val, or set validation_fraction=None."
        )
    if sample_weight is not None and not sample_weight[valid_rows].any():
        raise ValueError(
            "Every sample held out for validation has zero weight, so valid_loss is "
            "undefined; pass X_val, y_val and sample_weight_val, or set "
            "validation_fraction=None."
        )
    return data.subset(train_rows, sample_weight), data.subset(valid_rows, sample_weight)


def _dry_run(work: Any, data: Dataset, compute_loss: Any, weighted: bool) -> None:
    """Forward, loss and backward on the first rows, so that a module,
    criterion and targets that do not fit together fail now, in our words.
    The module is in eval mode and its gradients are cleared afterwards, so
    neither its weights, buffers nor any random generator change."""
    module, criterion = work.module_, work.criterion_
    n_rows = min(_DRY_ROWS, len(data.y))
    if n_rows == work.n_outputs_ and n_rows > 1:
        n_rows -= 1  # so that targets cannot broadcast against the outputs by chance
    X_b, y_b = data.take(torch.arange(n_rows, device=data.storage))
    w_b = torch.ones(n_rows, device=X_b.device) if weighted else None
    shapes = (
        f"a batch X of shape {tuple(X_b.shape)} and targets y of shape {tuple(y_b.shape)} "
        f"({y_b.dtype})"
    )
    was_training = module.training
    module.eval()
    try:
        with autocast(work.precision, data.device):
            try:
                output = module(X_b)
            except Exception as exc:
                raise ValueError(
                    f"The module {type(module).__name__} failed on a batch of shape "
                    f"{tuple(X_b.shape)} (n_features_in_={work.n_features_in_}): "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            _check_output(work, output, n_rows)
            _check_elementwise_targets(work, output, y_b)
            try:
                loss = compute_loss(output, y_b, w_b)
            except Exception as exc:
                raise ValueError(
                    f"The criterion {type(criterion).__name__} could not compute a loss from "
                    f"the module's output of shape {tuple(output.shape)} and {shapes}: "
                    f"{type(exc).__name__}: {exc}. {work._criterion_hint}"
                ) from exc
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ValueError(
                f"The criterion {type(criterion).__name__} must return a scalar loss tensor; "
                f"it returned {shape}. Keep its reduction at 'mean' (sample_weight weighs "
                "samples)."
            )
        if not bool(torch.isfinite(loss)):
            raise ValueError(
                f"The untrained model's loss on the first {n_rows} samples is {loss.item()}: "
                "the inputs or targets are too large for float32 arithmetic. Scale them "
                "(e.g. StandardScaler, or TransformedTargetRegressor for y)."
            )
        try:
            loss.backward()
        except Exception as exc:
            raise ValueError(
                f"Backpropagating the loss of {type(criterion).__name__} failed: "
                f"{type(exc).__name__}: {exc}. The loss must depend on the module's "
                "trainable parameters."
            ) from exc
    finally:
        for parameter in module.parameters():
            parameter.grad = None
        module.train(was_training)


#: Losses that compare output and target element by element: torch warns and
#: broadcasts when their shapes differ, which trains on the wrong pairs.
_ELEMENTWISE = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss, nn.BCELoss)


def _check_elementwise_targets(work: Any, output: torch.Tensor, y: torch.Tensor) -> None:
    criterion = work.criterion_
    if isinstance(criterion, _ELEMENTWISE) and tuple(output.shape) != tuple(y.shape):
        raise ValueError(
            f"The criterion {type(criterion).__name__} compares output and targets element "
            f"by element, but the output has shape {tuple(output.shape)} and the targets "
            f"{tuple(y.shape)} ({y.dtype}); it would broadcast them. {work._criterion_hint}"
        )


def _check_output(work: Any, output: Any, n_rows: int) -> None:
    expected = (n_rows, work.n_outputs_)
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != expected:
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(
            f"The module {type(work.module_).__name__} must return a tensor of shape "
            f"(n_samples, {work.n_outputs_}) ({work._output_meaning}); for {n_rows} samples "
            f"it returned {got}."
        )
