"""The plan of a fit: everything decided and checked before training starts.

A fit reads as three steps (see ``NeuralEstimatorBase._fit``): ``prepare``
builds a ``FitPlan`` around a *working copy* of the estimator, touching
nothing the user holds; the loop runs it (``_run.start_run`` builds the
live objects); and only a completed fit is adopted by the estimator.

``prepare`` goes through named phases, each a function of the values it
needs, and every configuration error surfaces in one of them, before the
first batch:

1. ``read_settings``: the parameters, checked (``Settings``);
2. ``read_inputs``: the data, validated, targets encoded;
3. ``find_resume_point``: the checkpoint a ``Checkpoint(resume=True)``
   continues from (``ResumePoint``);
4. ``split``: training and validation rows;
5. ``build_fit_objects``: module, criterion and optimizer (new, continued or
   restored), tried by a dry forward, loss and backward on a few rows;
6. ``set_up_callbacks``: every callback declares its metrics, then checks
   its parameters against the plan.
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from . import _continuation, _distributed, _routing, _snapshot, _untrusted
from ._data import ArrayData, TensorData
from ._device import resolve_device
from ._dry_run import dry_run
from ._factories import (
    build_objects,
    loss_function,
    module_and_loss_are_ours,
    owns_its_randomness,
)
from ._fingerprint import fingerprint
from ._fit_callbacks import attach_callbacks, check_extra_params, fitted_callbacks
from ._fitted_state import malformed, restore_rng, start_fresh, working_copy
from ._loader_options import loader_options
from ._loading import ItemData, ItemRows, Items
from ._modules import global_rng_scope, takes_sparse_batches
from ._params import validate_parameters
from ._rebuild import load_callback_states, load_objects
from ._slicing import SliceDataset

_SEED_BOUND = np.iinfo(np.int32).max

Callbacks = list[tuple[str, Any]]


@dataclass(frozen=True, slots=True)
class Settings:
    """What the estimator's parameters decide for one fit (phase 1).

    Attributes
    ----------
    partial : bool
        Whether this is a ``partial_fit`` call (one epoch).
    continuing : bool
        Whether training continues the fitted state (``warm_start`` or
        ``partial_fit`` on a fitted estimator).
    device : torch.device
        Where the fit trains.
    sparse_batches : bool
        Whether the batches of a sparse ``X`` reach the module as torch
        sparse tensors (see ``takes_sparse_batches``).
    loader : dict
        The ``dataloader__*`` options (for a Dataset's items), checked.
    """

    partial: bool
    continuing: bool
    device: torch.device
    sparse_batches: bool
    loader: dict[str, Any]


def read_settings(estimator: Any, *, partial: bool) -> Settings:
    """Phase 1: check every parameter (declared constraints, routed
    parameters; a continued fit's module parameters are those that built
    the fitted module) and resolve the device."""
    validate_parameters(estimator)
    check_extra_params(estimator)
    continuing = estimator.__sklearn_is_fitted__() and (partial or estimator.warm_start)
    if continuing:
        _continuation.check_architecture(estimator, partial=partial)
    device = resolve_device(estimator.device)
    fitted = estimator.module_ if continuing else None
    sparse = takes_sparse_batches(
        estimator.module, fitted, estimator.precision, estimator.compile, device
    )
    loader = loader_options(_routing.routed(estimator, "dataloader__"))
    return Settings(partial, continuing, device, sparse_batches=sparse, loader=loader)


class FitIdentity:
    """Which fit this is: a digest of the estimator's parameters and the
    fit's data, the same in every process. Callbacks get it in
    [`resume_from`][skcallback.Callback.resume_from]; a ``FitPlan`` has the
    same methods.

    Attributes
    ----------
    estimator : NeuralRegressor or NeuralClassifier
        The working copy being trained.
    partial, continuing : bool
        As in ``Settings``.
    """

    def __init__(self, estimator: Any, settings: Settings, fingerprint_of: tuple) -> None:
        self.estimator = estimator
        self.partial, self.continuing = settings.partial, settings.continuing
        self._fingerprint_of = fingerprint_of
        self._fingerprint: str | None = None

    def fingerprint(self) -> str:
        """A digest of the estimator's parameters and the fit's data, the
        same in every process (computed once, when first asked)."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint(*self._fingerprint_of)
        return self._fingerprint

    def fit_name(self) -> str:
        """A short name of this fit for files and folders (the first 16
        characters of ``fingerprint``): the same when a fit is re-run or
        resumed, different for each candidate and fold of a search."""
        return self.fingerprint()[:16]

    def run_name(self, previous: Any = None) -> str:
        """The name a logger gives this fit's file, folder or run: a fit that
        continues training (``warm_start``, ``partial_fit``) keeps the name
        of the fit it continues, which the estimator recorded in this
        process; any other fit, and one that continues a fitted state loaded
        from a file (which names no fit: a file does not choose which log a
        fit writes to), is named ``fit_name``. ``previous``, the name a
        logger recorded, is not used (callers written for earlier versions
        pass it)."""
        work = self.estimator
        name = vars(work).get("_fit_name") if self.continuing else None
        if name is None:
            name = work._fit_name = self.fit_name()
        return name


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """The checkpoint a new fit continues from (phase 3)."""

    path: str
    state: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Split:
    """The fit's training and validation data (phase 4)."""

    train: TensorData | ItemRows
    valid: TensorData | ItemRows | None

    @property
    def weighted(self) -> bool:
        """Whether either part carries sample weights."""
        return self.train.w is not None or (self.valid is not None and self.valid.w is not None)


class FitPlan(FitIdentity):
    """What a fit will do, decided and checked before anything changes.

    Callbacks receive it in ``setup``, before the first batch, and read it
    during the fit as ``ctx.plan``. Its attributes do not change once it is
    built; during ``setup``, callbacks declare the metrics they record
    (``declare_metric``).

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
    device : torch.device
    first_epoch : int
        Epochs already run before this fit.
    max_epochs : int
        The epoch at which this fit ends unless stopped earlier.
    n_train, n_valid : int
        Training and validation samples (``n_valid`` is 0 without validation).
    has_validation : bool
        Whether the fit validates (``valid_loss`` is recorded in the epochs
        that validate: see ``validate_every``).
    validate_every : int
        The estimator's ``validate_every``: epochs validate when their
        number is a multiple of it, and the last one always.
    batch_size, n_batches : int
        Training batch size and training batches per epoch.
    accumulate : int
        Training batches per optimizer step (gradient accumulation).
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
    resume : dict or None
        That checkpoint's contents, checked.
    group : Group or None
        The process group of a ``strategy="ddp"`` fit (its ``rank`` and
        ``world_size``); ``n_train`` and ``n_batches`` are then those of
        every rank together.
    """

    def __init__(
        self,
        identity: FitIdentity,
        settings: Settings,
        split: Split,
        resume: ResumePoint | None,
        *,
        seeds: tuple[int, int | None],
        target_sample: torch.Tensor,
    ) -> None:
        super().__init__(identity.estimator, settings, identity._fingerprint_of)
        self._fingerprint = identity._fingerprint
        work = identity.estimator
        self.device = settings.device
        self.resume = None if resume is None else resume.state
        self.resumed_from = None if resume is None else resume.path
        self.first_epoch = work.n_iter_
        self.max_epochs = work.n_iter_ + (1 if settings.partial else work.max_epochs)
        self.train, self.valid = split.train, split.valid
        self.weighted = split.weighted
        self.n_train = split.train.n_samples
        self.n_valid = 0 if split.valid is None else split.valid.n_samples
        self.has_validation = split.valid is not None
        self.validate_every = int(work.validate_every)
        self.batch_size = work.batch_size
        self.accumulate = int(work.accumulate)
        self.n_batches = split.train.n_batches(work.batch_size)
        self.outputs = work._outputs()
        self.target_sample = target_sample
        #: Seeds the run's generators (a resumed fit restores their states).
        #: Seeds torch's global generator around training when the module may
        #: draw from it (None: the built-in MLP draws from the fit's own).
        self.seed, self.custom_seed = seeds
        self.metrics: dict[str, bool | None] = {
            "epoch": None,
            "train_loss": True,
            "lr": None,
            "dur": None,
        }
        #: The metrics that must stay finite (``declare_metric(finite=True)``).
        self.finite_metrics: set[str] = set()
        if self.has_validation:
            self.declare_metric("valid_loss", lower_is_better=True, finite=True)
        self._warned: set[tuple[str, str]] = set()
        #: The process group of a ``strategy="ddp"`` fit (``_distributed.Group``).
        self.group: _distributed.Group | None = None

    def close(self) -> None:
        """Release what loading the data holds (a Dataset's workers)."""
        self.train.close()
        if self.valid is not None:
            self.valid.close()

    def declare_metric(
        self, name: str, *, lower_is_better: bool | None = None, finite: bool = False
    ) -> None:
        """Announce that the fit's callbacks record ``name`` each epoch, and
        whether lower values are better (None: no direction).

        With ``finite=True`` a non-finite value of it (NaN, infinity) ends
        the fit as diverged, as a non-finite loss does (or stops it, where a
        callback such as ``TerminateOnNaN`` asks to): for a score of the
        model, which a diverged model makes NaN. Other metrics may be NaN,
        a value that is never best."""
        self.metrics[name] = lower_is_better
        if finite:
            self.finite_metrics.add(name)

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
    settings = read_settings(estimator, partial=partial)
    work = working_copy(estimator, fitted=settings.continuing)
    validation = (X_val, y_val, sample_weight_val)
    inputs = read_inputs(work, settings, (X, y, sample_weight), validation, classes)
    group = _distributed.join(estimator, settings.device)
    identity = FitIdentity(
        work, settings, (estimator, [*inputs.arrays(), *_distributed.job_arrays(group)])
    )
    if group is not None:
        group.check_agreement(type(estimator).__name__, _distributed.facts(estimator, identity))
    callbacks = fitted_callbacks(estimator)
    resume = None
    if not settings.continuing:
        start_fresh(work, epoch=0, step=0)
        if not partial:  # a partial_fit loop is the user's: it is not resumed
            resume = find_resume_point(identity, callbacks, settings.device)
    # A resumed fit draws no seed: its generators' states are restored, and
    # its NumPy generator must stay where the interrupted fit had it.
    seed = 0 if resume is not None else int(work._rng.randint(_SEED_BOUND))
    data = hold(inputs.X, inputs.y, settings, work.precision)
    parts = split(work, settings, data, inputs)
    parts = Split(_distributed.shard(parts.train, group), parts.valid)
    previous = estimator.callbacks_ if settings.continuing else None
    # Torch's global generator is seeded around the fit only where the module
    # may draw from it (None: the built-in MLP draws from the fit's own).
    custom_seed = None if owns_its_randomness(work) else seed + 1
    build_fit_objects(work, settings, data, parts, (seed, custom_seed), callbacks, previous, resume)
    target_sample = _target_sample(inputs.y)
    plan = FitPlan(
        identity, settings, parts, resume, seeds=(seed, custom_seed), target_sample=target_sample
    )
    plan.group = group
    set_up_callbacks(plan, callbacks)
    return plan


@dataclass(frozen=True, slots=True)
class Inputs:
    """The fit's data, validated (phase 2): ``X``, the encoded targets
    ``y``, the checked ``sample_weight`` (None without), and the explicit
    validation set ``(X_val, y_val, sample_weight_val)`` likewise, or None."""

    X: Any
    y: np.ndarray
    sample_weight: np.ndarray | None
    validation: tuple[Any, np.ndarray, np.ndarray | None] | None

    def arrays(self) -> list[Any]:
        """Every array of the fit, for its fingerprint (None where absent)."""
        X_val, y_val, w_val = self.validation or (None, None, None)
        return [self.X, self.y, self.sample_weight, X_val, y_val, w_val]


def read_inputs(
    work: Any,
    settings: Settings,
    data: tuple[Any, Any, Any],
    validation: tuple[Any, Any, Any],
    classes: Any,
) -> Inputs:
    """Phase 2: the training ``data`` ``(X, y, sample_weight)`` and the
    explicit ``validation`` set validated, the targets encoded, the weights
    checked; what the fit learns of its data (``n_features_in_``,
    ``classes_``, ...) is set on the working copy ``work``."""
    X, y, sample_weight = data
    X, y = work._validate_inputs(X, y, reset=not settings.continuing)
    y, target_state = work._encode_targets(y, continuing=settings.continuing, classes=classes)
    vars(work).update(target_state)
    sample_weight = work._check_weights(sample_weight, X)
    # Class weights (computed from these rows) weigh the validation rows too.
    class_weights = work._class_weights(y, partial=settings.partial)
    if class_weights is not None:
        sample_weight = class_weights.apply(y, sample_weight, "the training samples")
    work._check_target_weights(y, sample_weight)
    return Inputs(X, y, sample_weight, _validation_set(work, *validation, class_weights))


def _validation_set(
    work: Any, X_val: Any, y_val: Any, sample_weight_val: Any, class_weights: Any
) -> tuple[Any, np.ndarray, np.ndarray | None] | None:
    """The validation set given to ``fit``, validated as the training data
    (after it, whose width and classes it must share), or None; its weights
    times the training data's ``class_weights`` (when not None)."""
    if X_val is None and y_val is None:
        if sample_weight_val is not None:
            raise ValueError("sample_weight_val was given without X_val and y_val.")
        return None
    if X_val is None or (y_val is None and not _carries_targets(X_val)):
        raise ValueError("Pass both X_val and y_val (or neither) for validation.")
    try:
        X_val, y_val = work._validate_inputs(X_val, y_val, reset=False)
        y_val, _ = work._encode_targets(y_val, continuing=True, classes=None)
        w_val = work._check_weights(sample_weight_val, X_val)
        if class_weights is not None:
            w_val = class_weights.apply(y_val, w_val, "the validation samples")
    except ValueError as exc:
        raise ValueError(
            f"The validation set (X_val, y_val, sample_weight_val) is invalid: {exc}"
        ) from exc
    return X_val, y_val, w_val


def _carries_targets(X: Any) -> bool:
    """Whether ``X`` holds its targets: a Dataset of ``(x, y)`` items."""
    return isinstance(X, TorchDataset) and not isinstance(X, SliceDataset)


def find_resume_point(
    identity: FitIdentity, callbacks: Callbacks, device: torch.device
) -> ResumePoint | None:
    """Phase 3: the checkpoint a new fit continues from, when a callback (a
    ``Checkpoint(resume=True)``) names one; its random state is restored on
    the working estimator, so the validation split is the one it had."""
    work = identity.estimator
    for name, cb in callbacks:
        path = cb.resume_from(identity)
        if path is None:
            continue
        state = _snapshot.read(path, device)
        _snapshot.check_matches(state, work, path)
        if state["fingerprint"] != identity.fingerprint():
            raise ValueError(
                f"{path} is a checkpoint of another fit (other parameters or data); callback "
                f"{name!r} cannot resume from it."
            )
        if state["epoch"] > work.max_epochs:
            raise ValueError(f"{path} is malformed: epoch {state['epoch']} is past max_epochs.")
        with malformed(path):  # the generator states were checked by read
            restore_rng(work, state)
        return ResumePoint(str(path), state)
    return None


def build_fit_objects(
    work: Any,
    settings: Settings,
    data: ArrayData | ItemData,
    parts: Split,
    seeds: tuple[int, int | None],
    callbacks: Callbacks,
    previous: Any,
    resume: ResumePoint | None,
) -> None:
    """Phase 5: module, criterion and optimizer on ``work``: new (from the
    fit's seed; ``seeds`` are it and torch's global one, as ``FitPlan``
    has them), continued (a fitted state with its ``previous`` callbacks,
    its changed optimizer and criterion settings applied) or restored from
    ``resume``; tried by a dry run on the first rows; then the callbacks,
    with their states, become the fitted callbacks."""
    scheduled = _untrusted.scheduled(callbacks)
    if previous is not None:
        load_callback_states(callbacks, previous)
        _continuation.continue_objects(work, scheduled=scheduled)
    else:
        build_objects(work, settings.device, seeds[0])
        _continuation.record(work)
    compute_loss = loss_function(work.criterion_, weighted=parts.weighted)
    ours = module_and_loss_are_ours(work)
    # Items have no recorded shape: a validation set of its own is tried too.
    valid = parts.valid
    tried: list[tuple[Any, Any]] = [(data, parts.train)]
    if valid is not None and isinstance(data, ItemData) and valid.source is not data:
        tried.append((valid.source, valid))
    with global_rng_scope(seeds[1], settings.device):
        for held, rows in tried:
            dry_run(work, held, compute_loss, rows.w is not None, ours=ours)
    if resume is not None:
        load_objects(work, resume.state, resume.path, scheduled=scheduled)
        with malformed(resume.path):
            load_callback_states(callbacks, resume.state["callbacks"])
        if resume.state["batches_done"] > parts.train.n_batches(work.batch_size):
            raise ValueError(f"{resume.path} is malformed: more batches than an epoch has.")
    attach_callbacks(work, callbacks)


def set_up_callbacks(plan: FitPlan, callbacks: Callbacks) -> None:
    """Phase 6: every callback declares the metrics it records, then each
    checks itself against the plan (``setup``), in dispatch order: the
    order of the list never decides whether a watched metric is known. An
    error gets a note naming the callback."""
    for method in ("declare", "setup"):
        for name, cb in callbacks:
            try:
                getattr(cb, method)(plan)
            except Exception as exc:
                exc.add_note(f"raised by callback {name!r} in {method}, before training started")
                raise


def split(work: Any, settings: Settings, data: ArrayData | ItemData, inputs: Inputs) -> Split:
    """Phase 4: the training and validation data: the explicit validation
    set, a held-out share of the samples (stratified for classifiers), or
    none."""
    weights = inputs.sample_weight
    every_row = np.arange(len(inputs.y))
    if inputs.validation is not None:
        X_val, y_val, w_val = inputs.validation
        held = hold(X_val, y_val, settings, work.precision)
        valid = held.subset(np.arange(len(y_val)), w_val)
        return Split(data.subset(every_row, weights), valid)
    if settings.partial or work.validation_fraction is None:
        return Split(data.subset(every_row, weights), None)
    train_rows, valid_rows = _held_out_rows(work, inputs.y, weights)
    return Split(data.subset(train_rows, weights), data.subset(valid_rows, weights))


def hold(X: Any, y: np.ndarray, settings: Settings, precision: str) -> ArrayData | ItemData:
    """The fit's data held for batching: arrays as tensors (``ArrayData``),
    items (a Dataset's) behind a loader (``ItemData``)."""
    if isinstance(X, Items):
        dtype = torch.float64 if precision == "64" else torch.float32
        return ItemData(X, y, settings.device, settings.loader, dtype)
    return ArrayData(X, y, settings.device, sparse_batches=settings.sparse_batches)


def _held_out_rows(
    work: Any, y: np.ndarray, sample_weight: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation rows (sorted) of a ``validation_fraction``
    split, drawn from the fit's split seed (stratified for classifiers)."""
    fraction, n_samples = work.validation_fraction, len(y)
    n_valid = math.ceil(fraction * n_samples)
    if n_samples - n_valid < 1:
        raise ValueError(
            f"Cannot hold out validation_fraction={fraction} of n_samples={n_samples} "
            "samples: no training sample would remain. Pass more samples, pass X_val and "
            "y_val, or set validation_fraction=None."
        )
    # Imported here: sklearn.model_selection imports sklearn.metrics, which
    # a process that only loads and predicts never uses (0.1-0.2 s).
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

    rng = _seeded(work._split_seed)
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
    return train_rows, valid_rows


_local = threading.local()


def _seeded(seed: int) -> np.random.RandomState:
    """This thread's NumPy generator reseeded with ``seed``: the stream of
    ``RandomState(seed)``, without building one (that costs about 150 us, a
    tenth of a small fit). Only for draws made at once, never kept."""
    rng = getattr(_local, "rng", None)
    if rng is None:
        rng = _local.rng = np.random.RandomState()
    rng.seed(seed)
    return rng


def _target_sample(y: np.ndarray, n_rows: int = 1000) -> torch.Tensor:
    """Some encoded training targets, with every class among them, for
    callbacks to try their metrics on before training (``plan.target_sample``)."""
    rows = np.arange(min(n_rows, len(y)))
    if y.dtype.kind == "i":  # class indices: one row of each class too
        rows = np.union1d(rows, np.unique(y, return_index=True)[1])
    return torch.from_numpy(np.ascontiguousarray(y[rows]))
