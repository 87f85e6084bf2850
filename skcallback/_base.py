"""The shared base of ``NeuralRegressor`` and ``NeuralClassifier``:
parameters and routing, input validation, fitting, prediction, persistence."""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data
from torch.utils.data import Dataset as TorchDataset

from . import (
    _distributed,
    _internals,
    _persistence,
    _routing,
    _sklearn_callbacks,
    _snapshot,
    _threads,
)
from ._class_weights import ClassWeights
from ._context import Context
from ._data import (
    EVAL_BATCH_SIZE,
    explained_feed,
    host_float64,
    n_rows,
    predict_batches,
    shared_tensor,
)
from ._device import resolve_device
from ._dispatch import HookTable, fire, predict_table
from ._fit_callbacks import (
    callback_params,
    check_callback_param,
    check_extra_params,
    check_foreign_params,
)
from ._fitted_state import adopt, data_state
from ._inputs import (
    check_columns,
    check_input_spec,
    host,
    input_spec,
    mapping_features,
    numeric,
    numeric_targets,
    targets,
)
from ._loader_options import loader_options
from ._loading import (
    Items,
    Pairs,
    as_items,
    predict_item_batches,
    read_targets,
    unwrap_tensor_dataset,
)
from ._loop import run_fit
from ._modules import set_training, takes_sparse_batches
from ._params import Constraints, validate_parameters
from ._plan import prepare
from ._precision import autocast, float_dtype
from ._rebuild import restore
from ._run import start_run
from ._sklearn_callbacks import CallbackSupportMixin
from ._slicing import SliceDataset


class NeuralEstimatorBase(CallbackSupportMixin, BaseEstimator):
    """Parameters, routing and the fit/predict machinery shared by the
    regressor and the classifier; subclasses only handle targets."""

    #: Constraints of the parameters a subclass adds to the shared ones
    #: (``_params.CONSTRAINTS``), checked with them at fit.
    _own_constraints: Constraints = {}

    def __init__(
        self,
        *,
        module: Any = None,
        hidden_layer_sizes: tuple[int, ...] = (100,),
        activation: str = "relu",
        dropout: float = 0.0,
        criterion: Any = None,
        optimizer: str | type[torch.optim.Optimizer] = "adam",
        lr: float = 1e-3,
        batch_size: int = 128,
        accumulate: int = 1,
        max_epochs: int = 100,
        validation_fraction: float | None = 0.1,
        validate_every: int = 1,
        callbacks: list | None = None,
        device: str | torch.device = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
        warm_start: bool = False,
        compile: bool = False,
        precision: str = "32",
        fast_path: bool = True,
        threads: int | str | None = "auto",
        strategy: str | None = None,
        **routed_params: Any,
    ) -> None:
        self.module = module
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.criterion = criterion
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.accumulate = accumulate
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.validate_every = validate_every
        self.callbacks = callbacks
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.compile = compile
        self.precision = precision
        self.fast_path = fast_path
        self.threads = threads
        self.strategy = strategy
        # Routed parameters (cb__*, module__*, ...) are stored as given and
        # checked at fit, as scikit-learn validates every parameter there.
        for key, value in routed_params.items():
            setattr(self, key, value)

    # ------------------------------------------------------------------
    # Parameters
    # ------------------------------------------------------------------
    @classmethod
    def _get_param_names(cls) -> list[str]:
        # scikit-learn inspects the signature at every call (about 30 us; a
        # fit asks a dozen times): a class's signature is read once.
        names = _PARAM_NAMES.get(cls)
        if names is None:
            names = _PARAM_NAMES[cls] = tuple(_internals.constructor_params(cls))
        return list(names)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters of this estimator, routed ones included.

        Parameters
        ----------
        deep : bool, default=True
            Also return each callback as ``cb__<name>`` and its parameters as
            ``cb__<name>__<param>``.

        Returns
        -------
        dict
            Parameter names mapped to their values: the constructor's, then
            the routed ones that were set (``module__*``, ``optimizer__*``,
            ``criterion__*``, ``cb__*``).
        """
        params = super().get_params(deep=False)
        extras = _routing.extra_params(self)
        if deep:
            params.update(callback_params(self))
        params.update(extras)
        return params

    def set_params(self, **params: Any) -> NeuralEstimatorBase:
        """Set parameters, routed ones included.

        The ``callbacks`` list is applied first, then ``cb__<name>``
        replacements, then ``cb__<name>__<param>`` values.

        Parameters
        ----------
        **params
            Constructor parameters (``lr=1e-2``), routed parameters
            (``module__<param>``, ``optimizer__<param>``,
            ``criterion__<param>``), a callback replaced by name
            (``cb__<name>=callback``) or a callback's parameter
            (``cb__<name>__<param>=value``).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For an unknown parameter, callback name or callback parameter;
            for one of skorch's names, naming its equivalent here.
        """
        check_foreign_params(self, params)
        stored = set(_routing.extra_params(self))
        plain = {k: v for k, v in params.items() if not _routing.is_routed(k) and k not in stored}
        if plain:
            super().set_params(**plain)
        rest = {k: v for k, v in params.items() if k not in plain}
        for key in sorted(rest, key=lambda k: k.count("__")):
            if key.startswith("cb__"):
                setattr(self, key, rest[key])
                try:
                    check_callback_param(self, key)
                except ValueError:
                    delattr(self, key)
                    raise
            else:
                setattr(self, key, rest[key])
        return self

    def set_callbacks(self, *callbacks: Any) -> NeuralEstimatorBase:
        """Set scikit-learn's own callbacks (``sklearn.callback``, scikit-learn >= 1.9).

        These are scikit-learn's ``FitCallback`` objects (``ProgressBar``,
        ``ScoringMonitor``, ...), apart from the ``callbacks`` parameter. A
        fit is their root task, named ``"fit"``, and each epoch a sub-task
        named ``"epoch"``; one whose ``on_fit_task_end`` returns True stops
        training after that epoch. ``GridSearchCV`` and ``Pipeline``
        propagate theirs to this estimator.

        Parameters
        ----------
        *callbacks : sklearn.callback.FitCallback
            The callbacks; none at all removes those set before.

        Returns
        -------
        self

        Raises
        ------
        TypeError
            If an argument is not a ``FitCallback`` instance.
        RuntimeError
            With scikit-learn < 1.9, which has no ``sklearn.callback``.
        """
        super().set_callbacks(*callbacks)
        return self

    # ------------------------------------------------------------------
    # Fitting
    # ------------------------------------------------------------------
    def fit(
        self,
        X: Any,
        y: Any = None,
        sample_weight: Any = None,
        *,
        X_val: Any = None,
        y_val: Any = None,
        sample_weight_val: Any = None,
    ) -> NeuralEstimatorBase:
        """Train the module for ``max_epochs`` epochs (fewer if stopped).

        A fit is a transaction: it completes (a stop requested by a callback,
        EarlyStopping, TimeLimit or Ctrl-C counts as completion), or it raises
        and leaves the estimator exactly as it was. With ``warm_start=True`` a
        fitted estimator continues: module, optimizer, callback state,
        history and the validation split carry on; changed ``lr``,
        ``optimizer``, ``optimizer__*``, ``criterion`` and ``criterion__*``
        apply (the optimizer keeps its state unless its class changed), and
        a changed module parameter (``module``, ``module__*``,
        ``hidden_layer_sizes``, ``activation``, ``dropout``, ``precision``)
        is a ValueError.

        Parameters
        ----------
        X : array-like, sparse matrix, dict of arrays, Dataset or list
            An array ``(n_samples, ...)`` of any rank, passed to the module
            with its shape (the built-in MLP takes 2-D ones); a sparse
            matrix; a dict (or ``SliceDict``) of arrays with one first
            dimension, passed as ``module(**batch)``; a map-style
            ``torch.utils.data.Dataset`` of ``(x, y)`` items (or a
            ``SliceDataset`` of one), loaded by a ``DataLoader`` with the
            ``dataloader__*`` options; or, with a ``dataloader__collate_fn``,
            a list of samples of any shapes (such as variable-length
            sequences with ``pad_sequences``).
        y : array-like of shape (n_samples,) or (n_samples, n_targets), optional
            The targets; None when ``X`` is a Dataset, whose items carry
            them.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights; each sample's loss is scaled by its weight
            (relative to the mean weight).
        X_val, y_val : array-like, optional
            A validation set; when given, ``validation_fraction`` is not used
            and every training sample trains.
        sample_weight_val : array-like of shape (n_val_samples,), optional
            Weights of the validation samples.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For invalid parameters, data, or a module, criterion and targets
            that do not fit together (all before the first batch), and when
            training diverges (a non-finite loss or weight).
        """
        return self._fit(
            X,
            y,
            sample_weight,
            partial=False,
            X_val=X_val,
            y_val=y_val,
            sample_weight_val=sample_weight_val,
        )

    def _fit(self, X, y, sample_weight, *, partial: bool, **options: Any):
        """Plan the fit (the estimator is not touched), train the plan's
        working copy, and adopt its state only when the fit completes."""
        X, y, sample_weight = host(X), host(y), host(sample_weight)
        options = {key: host(value) for key, value in options.items()}
        with (
            _one_fit_at_a_time(self),
            _sklearn_callbacks.fit_scope(self),
            _distributed.failing_together(self),
        ):
            plan = prepare(self, X, y, sample_weight, partial=partial, **options)
            tasks = _sklearn_callbacks.epoch_tasks(self, plan, X, y, sample_weight)
            run = start_run(plan, () if tasks is None else (("sklearn.callback", tasks),))
            try:
                with _threads.using(_threads.fit_threads(self.threads, plan)):
                    _train(plan, run)
            finally:
                plan.close()
            if plan.group is not None:
                plan.group.settle()
            adopt(self, plan.estimator)
        return self

    def _data_state(self) -> dict[str, Any]:
        """What the fit learned about its data (saved in checkpoints)."""
        return data_state(self)

    def load_checkpoint(self, path: str | os.PathLike) -> NeuralEstimatorBase:
        """Restore module, optimizer, callback states and history from a
        [`Checkpoint`][skcallback.callbacks.Checkpoint] file.

        The estimator must be built with the same parameters as the one that
        saved it (module, layer sizes, activation, optimizer, criterion and
        precision are compared); it may be fitted or not. Nothing changes if
        the file does not match. The estimator continues from the checkpoint's
        last completed epoch with ``warm_start=True``; to continue a fit
        exactly where it stopped (mid-epoch included), re-run it with
        ``Checkpoint(resume=True)`` instead.

        Parameters
        ----------
        path : str or path-like
            A checkpoint file, e.g. the newest of a fit:
            ``checkpoint_files(run_dir, "model")[-1]``.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            If the file is corrupt (its checksum), not a checkpoint, malformed,
            from another estimator class, or saved with other parameters.
        """
        validate_parameters(self)
        check_extra_params(self)
        device = resolve_device(self.device)
        state = _snapshot.read(path, device)
        _snapshot.check_matches(state, self, path)
        work = restore(self, state, device, path)
        work.stop_reason_ = None
        work.fast_path_ = False  # restored, not trained
        # A mid-epoch file: the unfinished epoch is not one of the fit's epochs.
        # A file may hold no history state (then the history is empty).
        del getattr(work.history_, "records_", [])[state["epoch"] :]
        adopt(self, work)
        return self

    def _validate_inputs(self, X, y, *, reset: bool):
        """``X`` and ``y`` validated: an array of any rank, a sparse matrix
        or a dict of arrays. What the fit learns of ``X`` (``n_features_in_``
        for a 2-D ``X``, else its shape) is set when ``reset``, and
        compared with what it learned otherwise."""
        X, y = unwrap_tensor_dataset(X, y)
        items = as_items(X, self._loader_options().get("collate_fn"))
        if items is not None:
            y = self._item_targets(X, items, y)
            self._learn_input_spec(items, reset=reset)
            return items, y
        plain = _internals.fit_shortcut(
            self,
            X,
            y,
            float_dtype(self.precision),
            reset=reset,
            multi_output=self._target_validation.get("multi_output", False),
        )
        if plain is not None:  # a plain 2-D array: validate_data's result, sooner
            self._learn_input_spec(plain[0], reset=reset)
            return plain
        check_columns(X)
        if self._target_validation.get("y_numeric"):
            y = numeric_targets(y)
        dtype = float_dtype(self.precision)
        if isinstance(X, Mapping) and not sp.issparse(X):  # a DOK matrix is a dict
            X = mapping_features(X, dtype)
            y = targets(y, n_rows(X), **self._target_validation)
        else:
            with numeric("X"):
                X, y = validate_data(
                    self,
                    X,
                    y,
                    reset=reset,
                    accept_sparse="csr",
                    allow_nd=True,
                    dtype=dtype,
                    **self._target_validation,
                )
        self._learn_input_spec(X, reset=reset)
        return X, y

    def _loader_options(self) -> dict[str, Any]:
        """The ``dataloader__*`` options, checked."""
        return loader_options(_routing.routed(self, "dataloader__"))

    def _item_targets(self, X: Any, items: Items, y: Any) -> Any:
        """The targets of item-wise data: read from the items of a Dataset
        (``y=None``) or of the ``SliceDataset`` given as ``y``, else ``y``
        (a list of samples, a ``SliceDataset`` X), validated."""
        if not len(items):
            raise ValueError(f"X ({type(X).__name__}) has no samples; a fit needs at least one.")
        if isinstance(X, TorchDataset) and not isinstance(X, SliceDataset):
            if y is not None:
                raise ValueError(
                    "X is a Dataset, whose items carry their targets as (x, y); pass y=None. "
                    "(To give targets apart from the items, pass SliceDataset(dataset) as X.)"
                )
            y = read_targets(items, self._loader_options())
        elif isinstance(y, SliceDataset):  # read as the items are: seeded, by the workers
            y = read_targets(Items(y.dataset, y.indices), self._loader_options(), field=y.idx)
        elif isinstance(items.dataset, Pairs):
            if y is None:
                raise ValueError("y must be given with a list of samples (one target per sample).")
            items.dataset.targets = y
        if self._target_validation.get("y_numeric"):
            y = numeric_targets(y)
        return targets(y, len(items), **self._target_validation)

    def _learn_input_spec(self, X: Any, *, reset: bool) -> None:
        """Record (``reset``) or check the kind and shape of ``X``: its
        ``n_features_in_`` where it is 2-D, as scikit-learn's validation
        sets it, else ``_input_spec``. A model fitted on a Dataset takes any
        input its module takes (items are not checked against a shape)."""
        fitted = vars(self).get("_input_spec")
        if not reset and fitted is not None and fitted["kind"] == "dataset":
            return
        spec = input_spec(X)
        if reset:
            if spec is not None:
                self.__dict__.pop("n_features_in_", None)
                self.__dict__.pop("feature_names_in_", None)
                self._input_spec = spec
            return
        if spec != fitted:
            check_input_spec(X, fitted, getattr(self, "n_features_in_", None), type(self).__name__)

    def _class_weights(self, y: np.ndarray, *, partial: bool) -> ClassWeights | None:
        """The weights of the classes of the encoded targets ``y``, which
        multiply ``sample_weight`` (None: no class weights)."""
        return None

    def _check_weights(self, sample_weight, X) -> np.ndarray | None:
        if sample_weight is None:
            return None
        if isinstance(X, dict | Items):  # count rows, not a dict's keys or an item's fields
            X = np.empty((len(X) if isinstance(X, Items) else n_rows(X), 0))
        with numeric("sample_weight"):
            sample_weight = _internals.check_sample_weight(sample_weight, X)
        if not np.isfinite(sample_weight).all():
            raise ValueError("sample_weight must be finite; it contains NaN or infinity.")
        with np.errstate(over="ignore"):
            total = sample_weight.sum()
        if not np.isfinite(total):
            raise ValueError(
                "The sum of sample_weight overflows float64 (the weights reach "
                f"{sample_weight.max():g}); scale them down, only their ratios matter."
            )
        if not sample_weight.any():
            raise ValueError(
                "Sample weights must contain at least one non-zero number; all are zero."
            )
        return sample_weight

    # ------------------------------------------------------------------
    # Prediction
    # ------------------------------------------------------------------
    def _forward(self, X: Any) -> np.ndarray:
        """The module's output for ``X``, in large batches (in eval mode; a
        module in training mode, as mid-fit, returns to it), checked to be
        finite, as a float64 NumPy array, which the output adapters take as
        they take tensors."""
        if not self.__sklearn_is_fitted__():
            check_is_fitted(self)  # raises scikit-learn's NotFittedError
        X = self._predict_input(X)
        module = self.module_
        hooks = predict_table(getattr(self, "callbacks_", None))
        was_training = module.training
        if was_training:  # a fitted module is kept in eval mode: nothing to switch
            module.eval()
        try:
            with torch.inference_mode(), autocast(self.precision, self.device_):
                if hooks is None:
                    output = self._plain_forward(X)
                else:
                    size = self.batch_size
                    if not isinstance(X, Items):
                        size = max(size, EVAL_BATCH_SIZE)
                    batches = self._predict_batches(X)
                    output = self._forward_with_hooks(hooks, batches, -(-n_rows(X) // size))
        finally:
            if was_training:
                module.train()
        values = host_float64(output)
        if not np.isfinite(values).all():  # NumPy: cheaper than torch on one row
            raise ValueError(
                "The model's output is not finite for some rows"
                + (
                    f" (precision={self.precision!r} overflows there; predict with precision='32')"
                    if self.precision != "32"
                    else " (the inputs may be far larger than those it was trained on)"
                )
                + "."
            )
        return values

    def _plain_forward(self, X: Any) -> torch.Tensor:
        """The module's output for validated ``X`` (no prediction hooks), on
        the CPU, in the module's dtype: converting each batch costs 5-15% of
        a large predict (1M x 20), converting once 1%."""
        module = self.module_
        if type(X) is np.ndarray and self.device_.type == "cpu":
            # Sliced as it is: the batch generator, its copies to the device
            # and back cost as much as the module on one row.
            tensor = shared_tensor(np.ascontiguousarray(X))
            size = max(self.batch_size, EVAL_BATCH_SIZE)
            if X.shape[0] <= size:
                return explained_feed(module, tensor)
            outputs = [
                explained_feed(module, tensor[start : start + size])
                for start in range(0, X.shape[0], size)
            ]
        else:
            outputs = [explained_feed(module, X_b).cpu() for X_b in self._predict_batches(X)]
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)

    def _predict_batches(self, X: Any) -> Iterator[Any]:
        """Validated ``X`` in batches on the fitted device: arrays in large
        ones, items (a Dataset's) in batches of ``batch_size``."""
        device = self.device_
        if isinstance(X, Items):
            dtype = torch.float64 if _module_dtype(self.module_) == np.float64 else torch.float32
            options = self._loader_options()
            return predict_item_batches(X, self.batch_size, device, options, dtype)
        sparse = takes_sparse_batches(
            self.module, self.module_, self.precision, self.compile, device
        )
        return predict_batches(X, max(self.batch_size, EVAL_BATCH_SIZE), device, sparse=sparse)

    def _predict_input(self, X: Any) -> Any:
        """``X`` validated for prediction: plain numeric data of the fitted
        width by a shorter path with the same results (see
        ``_internals.predict_shortcut``), anything else, and any failure,
        by ``validate_data`` and its messages. The data takes the fitted
        module's dtype (float64 when it was trained with ``precision="64"``),
        whatever ``precision`` says now."""
        dtype = _module_dtype(self.module_)
        if type(X) is not np.ndarray:  # an array is neither a Dataset nor a list of samples
            X, _ = unwrap_tensor_dataset(X, None)
            items = as_items(X, self._loader_options().get("collate_fn"))
            if items is not None:
                self._learn_input_spec(items, reset=False)
                return items
        array = _internals.predict_shortcut(self, X, dtype)
        if array is not None:
            return array
        X = host(X)
        check_columns(X)
        if isinstance(X, Mapping) and not sp.issparse(X):
            X = mapping_features(X, dtype)
        else:
            with numeric("X"):
                X = validate_data(
                    self, X, reset=False, accept_sparse="csr", allow_nd=True, dtype=dtype
                )
        self._learn_input_spec(X, reset=False)
        return X

    def _forward_with_hooks(self, hooks: HookTable, batches: Any, n_batches: int) -> torch.Tensor:
        """The prediction loop when fitted callbacks have prediction hooks."""
        ctx = _context(self, None, None, self.device_, epoch=self.n_iter_, max_epochs=self.n_iter_)
        ctx.phase = "predict"
        ctx.n_batches = n_batches
        fire(hooks.on_predict_begin, ctx)
        outputs = []
        for X_b in batches:
            ctx.batch += 1
            ctx.X_batch, ctx.y_pred = X_b, None
            fire(hooks.on_predict_batch_begin, ctx)
            ctx.y_pred = explained_feed(self.module_, ctx.X_batch)
            fire(hooks.on_predict_batch_end, ctx)
            outputs.append(torch.as_tensor(ctx.y_pred).to(torch.float64).cpu())
        ctx.X_batch, ctx.y_pred = None, torch.cat(outputs)
        fire(hooks.on_predict_end, ctx)
        return torch.as_tensor(ctx.y_pred).to(torch.float64).cpu()

    def _outputs(self) -> Any:
        """The adapter turning module outputs into predictions."""
        # The attributes hold the data state's keys: no copy of them on every predict.
        return self._output_adapter(vars(self))

    # ------------------------------------------------------------------
    # scikit-learn protocol and persistence
    # ------------------------------------------------------------------
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "module_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def __getstate__(self) -> dict[str, Any]:
        return _persistence.pack(self, super().__getstate__())

    def __setstate__(self, state: dict[str, Any]) -> None:
        params, fitted = _persistence.unpack(state)
        super().__setstate__(params)
        if fitted is not None:
            _persistence.restore_pickled(self, fitted)


#: The ids of the estimators being fitted now, in any thread.
_FITTING: set[int] = set()
_FITTING_LOCK = threading.Lock()


@contextlib.contextmanager
def _one_fit_at_a_time(estimator: Any) -> Iterator[None]:
    """Refuse a second fit of an estimator object that is fitting (in
    another thread, or from one of its own callbacks): the two would adopt
    their states over each other."""
    with _FITTING_LOCK:
        if id(estimator) in _FITTING:
            raise RuntimeError(
                f"This {type(estimator).__name__} is already fitting (in another thread or "
                "from a callback of its own fit); fit a clone instead "
                "(sklearn.base.clone(estimator))."
            )
        _FITTING.add(id(estimator))
    try:
        yield
    finally:
        with _FITTING_LOCK:
            _FITTING.discard(id(estimator))


#: The constructor's parameter names, per estimator class.
_PARAM_NAMES: dict[type, tuple[str, ...]] = {}


def _module_dtype(module: torch.nn.Module) -> np.dtype:
    """The NumPy dtype of a fitted module's floating-point parameters."""
    try:
        parameter = _FIRST_FLOAT[module]
    except (KeyError, TypeError):  # not seen yet, or a module that cannot be a key
        parameter = next((p for p in module.parameters() if p.is_floating_point()), None)
        with contextlib.suppress(TypeError):
            _FIRST_FLOAT[module] = parameter
    if parameter is not None and parameter.dtype == torch.float64:
        return np.dtype(np.float64)
    return np.dtype(np.float32)


#: The first floating-point parameter of each module predicted with, whose
#: dtype is read at each call (``module.double()`` changes it in place);
#: walking the parameters took a tenth of a one-row prediction. A module's
#: entry goes with it (the parameter does not refer back to its module).
_FIRST_FLOAT: weakref.WeakKeyDictionary[torch.nn.Module, torch.nn.Parameter | None] = (
    weakref.WeakKeyDictionary()
)


def _context(
    estimator: Any, plan: Any, run: Any, device: Any, *, epoch: int, max_epochs: int
) -> Context:
    """The context of a fit (``plan`` and its ``run``) or a prediction
    (both None) over ``estimator``'s fitted torch objects and callbacks."""
    return Context(
        estimator=estimator,
        plan=plan,
        run=run,
        module=estimator.module_,
        optimizer=estimator.optimizer_,
        criterion=estimator.criterion_,
        device=device,
        epoch=epoch,
        max_epochs=max_epochs,
        step=estimator.n_steps_,
        history=estimator.history_,
        callbacks=estimator.callbacks_,
    )


def _train(plan: Any, run: Any) -> None:
    """Run the loop on the plan's working estimator and record the counts."""
    work = plan.estimator
    ctx = _context(work, plan, run, plan.device, epoch=plan.first_epoch, max_epochs=plan.max_epochs)
    ctx.grad_scaler = run.precision.scaler
    try:
        run_fit(ctx)
    finally:
        set_training(work.module_, False)
    work.n_iter_, work.n_steps_, work.stop_reason_ = ctx.epoch, ctx.step, ctx.stop_reason


__all__ = ["NeuralEstimatorBase"]
