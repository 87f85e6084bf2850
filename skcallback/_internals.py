"""The one door to private names of torch, scikit-learn and MLflow.

Every private name of these libraries that skcallback reads or writes is
read or written here, and nowhere else, each with the public path taken
when the name is missing or has changed. Most only make things faster (or
a failure quicker): their fallback is slower, with the same model. Two have
a visible fallback: without oneDNN's bfloat16 query, ``precision=
"bf16-mixed"`` warns that it may be slow; without scikit-learn's documented
``_init_callback_context``, scikit-learn's own callbacks hear of no fit.
``tests/test_internals.py`` and ``tests/test_direct_adam.py`` take each
name away and fit again.

Names are looked up when used, not at import, so a torch, scikit-learn or
MLflow without one still imports skcallback. The tables of attribute names
below are what the tests rename to simulate a library that renamed them.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import sklearn
import sklearn.base
import sklearn.utils.validation
import torch
import torch.nn.modules.module as torch_module
import torch.optim.optimizer as torch_optimizer
from sklearn.utils.validation import check_array, check_non_negative
from torch import Tensor, nn

#: A hook registry that is never empty: where torch keeps its hooks
#: elsewhere, assume some are registered (the public path runs them).
_ASSUME_HOOKS: dict[str, None] = {"hook registry not found": None}

# ----------------------------------------------------------------------
# torch: CPU features
# ----------------------------------------------------------------------


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (oneDNN's view).

    ``torch.ops.mkldnn._is_mkldnn_bf16_supported``; missing, or a build
    without oneDNN: False (assume emulated, and warn that it is slow)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


# ----------------------------------------------------------------------
# torch: the optimizer (the direct Adam step, ``_direct_adam``)
# ----------------------------------------------------------------------

#: torch's fused Adam kernels by ``decoupled_weight_decay``, the kernels
#: ``Adam.step`` and ``AdamW.step`` call with ``fused=True``.
ADAM_KERNELS = {False: "_fused_adam_", True: "_fused_adamw_"}
#: The optimizer's own step hooks (``register_step_pre_hook``, ...).
OPTIMIZER_HOOKS = ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks")
#: Every optimizer's step hooks (``register_optimizer_step_pre_hook``, ...).
GLOBAL_OPTIMIZER_HOOKS = ("_global_optimizer_pre_hooks", "_global_optimizer_post_hooks")
#: The mark of torch's LR scheduler on the ``step`` it wraps, and what the
#: wrapper records when called (the scheduler warns if it was not).
SCHEDULER_WRAPPER, SCHEDULER_RECORD = "_wrapped_by_lr_sched", "_opt_called"


def adam_kernel(decoupled_weight_decay: bool) -> Callable[..., Any] | None:
    """``torch._fused_adam_`` or ``torch._fused_adamw_``; missing: None
    (the caller runs ``optimizer.step()``)."""
    return getattr(torch, ADAM_KERNELS[decoupled_weight_decay], None)


def has_step_hooks(optimizer: torch.optim.Optimizer) -> bool:
    """Whether a step hook would run on ``optimizer.step()``: its own
    registries and torch's global ones; one missing: True (assume hooks: the
    caller runs ``optimizer.step()``, which runs them)."""
    for name in OPTIMIZER_HOOKS:
        if getattr(optimizer, name, _ASSUME_HOOKS):
            return True
    for name in GLOBAL_OPTIMIZER_HOOKS:  # noqa: SIM110 (loops: cheaper at every step)
        if getattr(torch_optimizer, name, _ASSUME_HOOKS):
            return True
    return False


def unwrapped_step(cls: type) -> Any:
    """``cls.step`` without the profiling wrapper torch's ``Optimizer`` puts
    on its class's ``step`` at the first instance (``hooked``,
    ``__wrapped__``); not marked so: ``cls.step`` itself, which the caller
    then compares with what it expects, and finds changed."""
    step = cls.step  # type: ignore[attr-defined]
    return step.__wrapped__ if getattr(step, "hooked", False) else step


def instance_step_is_schedulers(optimizer: torch.optim.Optimizer) -> bool | None:
    """Whether ``optimizer`` has a ``step`` of its own (None when not), and
    whether that is torch's LR scheduler's wrapper (marked
    ``_wrapped_by_lr_sched``); the mark missing: False (a patched step: the
    caller runs ``optimizer.step()``)."""
    own = vars(optimizer).get("step")
    if own is None:
        return None
    return hasattr(own, SCHEDULER_WRAPPER)


def record_step_for_scheduler(optimizer: torch.optim.Optimizer) -> None:
    """Record a step as the LR scheduler's wrapper does (``_opt_called``);
    called only on an optimizer a scheduler has wrapped (where
    ``instance_step_is_schedulers`` found the wrapper, or one a scheduler
    was just built on); missing: the scheduler warns that it stepped first."""
    setattr(optimizer, SCHEDULER_RECORD, True)


# ----------------------------------------------------------------------
# torch: modules (the hand-written MLP step, ``_mlp_backprop``)
# ----------------------------------------------------------------------

#: Where an ``nn.Module`` keeps its children and its parameters.
MODULE_SLOTS = ("_modules", "_parameters")
#: A module's forward and backward hook registries.
MODULE_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
#: Every module's (torch's global) hook registries.
GLOBAL_MODULE_HOOKS = (
    "_global_forward_hooks",
    "_global_forward_pre_hooks",
    "_global_backward_hooks",
    "_global_backward_pre_hooks",
)
#: A tensor's gradient hooks (``register_hook``,
#: ``register_post_accumulate_grad_hook``), None until the first one.
TENSOR_HOOKS = ("_backward_hooks", "_post_accumulate_grad_hooks")


class ModuleWatch:
    """Whether a module is still as a training step that runs neither its
    forward nor autograd found it: checked at every batch, since callbacks
    may change it mid-fit.

    It reads each module's children (``_modules``), parameters
    (``_parameters``) and hook registries, torch's global hook registries and
    the parameters' gradient hooks. Where one of these is missing,
    ``unchanged`` is always False: the batch trains with autograd.

    Parameters
    ----------
    module : nn.Module
        The module; its submodules are watched too.
    parameters : list of (nn.Module, str, Tensor)
        The parameters the step reads: the layer holding one, its name
        there, and the view the step reads (compared by storage, since a
        callback may swap a parameter's ``.data``).
    modules : list of nn.Module, optional
        ``list(module.modules())``, where the caller has it.
    """

    def __init__(
        self,
        module: nn.Module,
        parameters: list[tuple[nn.Module, str, Tensor]],
        modules: list[nn.Module] | None = None,
    ) -> None:
        modules = list(module.modules()) if modules is None else modules
        self.known = all(
            isinstance(vars(layer).get(name), dict)
            for layer in modules
            for name in (*MODULE_SLOTS, *MODULE_HOOKS)
        ) and all(hasattr(p, name) for _, _, p in parameters for name in TENSOR_HOOKS)
        self.registries: list[dict] = [
            getattr(torch_module, name, _ASSUME_HOOKS) for name in GLOBAL_MODULE_HOOKS
        ]
        self.tree: list[tuple[dict, dict]] = []
        self.slots: list[tuple[dict, str, Tensor, Tensor]] = []
        if not self.known:
            return
        children, params = MODULE_SLOTS
        self.registries += [vars(layer)[name] for layer in modules for name in MODULE_HOOKS]
        # Each module's children as found: a callback may swap or add a
        # layer, which the module's forward would then run.
        self.tree = [(vars(layer)[children], dict(vars(layer)[children])) for layer in modules]
        # A callback may put another tensor where a parameter was (a new
        # Parameter, a parametrization, a load_state_dict(assign=True)).
        self.slots = [
            (vars(layer)[params], name, vars(layer)[params][name], view)
            for layer, name, view in parameters
        ]
        self.gradient_hooks, self.accumulate_hooks = TENSOR_HOOKS

    def unchanged(self) -> bool:
        """Whether the module has the children and parameters it had, and no
        hook is registered on it, on its parameters or globally (about 2 us
        on the built-in MLP)."""
        return (
            self.known
            and all(children == found for children, found in self.tree)
            and not any(self.registries)
            and all(
                params.get(name) is p
                and p.data_ptr() == view.data_ptr()
                # A tensor's gradient hooks live in dicts made at the first one.
                and not (getattr(p, self.gradient_hooks) or getattr(p, self.accumulate_hooks))
                for params, name, p, view in self.slots
            )
        )


# ----------------------------------------------------------------------
# scikit-learn
# ----------------------------------------------------------------------


def check_sample_weight(sample_weight: Any, X: Any) -> np.ndarray:
    """``sample_weight`` as a float64 array of one non-negative weight per
    row of ``X``: ``sklearn.utils.validation._check_sample_weight``;
    missing, or without ``ensure_non_negative``: the same checks, with the
    same messages, through the public ``check_array`` and
    ``check_non_negative``."""
    check = getattr(sklearn.utils.validation, "_check_sample_weight", None)
    if check is not None and _takes(check, ("dtype", "ensure_non_negative")):
        return check(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    n_samples = X.shape[0]
    if isinstance(sample_weight, numbers.Number):
        weights = np.full(n_samples, sample_weight, dtype=np.float64)
    else:
        weights = check_array(
            sample_weight, ensure_2d=False, dtype=np.float64, order="C", input_name="sample_weight"
        )
        if weights.ndim != 1:
            raise ValueError(
                f"Sample weights must be 1D array or scalar, got {weights.ndim}D array. Expected "
                f"either a scalar value or a 1D array of length {n_samples}."
            )
        if weights.shape != (n_samples,):
            raise ValueError(f"sample_weight.shape == {weights.shape}, expected {(n_samples,)}!")
    if not weights.any():
        raise ValueError("Sample weights must contain at least one non-zero number.")
    check_non_negative(weights, "`sample_weight`")
    return weights


@functools.lru_cache(maxsize=8)
def _takes(function: Callable[..., Any], names: tuple[str, ...]) -> bool:
    """Whether ``function`` takes each of ``names`` as a keyword."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return all(name in parameters for name in names)


#: scikit-learn's reader of an estimator's constructor parameters.
SKLEARN_PARAM_NAMES = "_get_param_names"


def param_names(estimator: Any) -> list[str]:
    """The names of ``estimator``'s constructor parameters, sorted: what
    its class's ``_get_param_names`` says (scikit-learn's reader, or an
    override of it); missing: ``constructor_params``."""
    get = getattr(type(estimator), SKLEARN_PARAM_NAMES, None)
    if get is not None:
        return list(get())
    return constructor_params(type(estimator))


def constructor_params(cls: type) -> list[str]:
    """The names of the constructor parameters of the estimator class
    ``cls``, sorted: scikit-learn's ``BaseEstimator._get_param_names``
    applied to ``cls`` (for an override of it, which cannot reach it by
    name once scikit-learn renames it); missing: read from the signature of
    ``__init__`` as it reads them (no ``self``, ``*args`` or ``**kwargs``)."""
    get = vars(sklearn.base.BaseEstimator).get(SKLEARN_PARAM_NAMES)
    if isinstance(get, classmethod):
        return list(get.__func__(cls))
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    init = cls.__init__  # type: ignore[misc]
    parameters = inspect.signature(init).parameters.values()
    return sorted(p.name for p in parameters if p.name != "self" and p.kind not in variadic)


#: Where scikit-learn's ``set_callbacks`` (and a meta-estimator's
#: propagation) stores an estimator's callbacks.
SKLEARN_CALLBACKS = "_skl_callbacks"
#: The method scikit-learn documents for an estimator to open its root task
#: and set its callbacks up (``CallbackSupportMixin``).
SKLEARN_ROOT_TASK = "_init_callback_context"


def sklearn_callbacks_set(estimator: Any) -> bool:
    """Whether scikit-learn callbacks are set on ``estimator`` or propagated
    to it: read where ``set_callbacks`` stores them (``_skl_callbacks``);
    where it no longer does (checked once), True: assume some, and the fit
    reports to scikit-learn's machinery, which finds none. False where the
    estimator cannot open its root task (``_init_callback_context`` gone):
    no reports."""
    if not hasattr(estimator, SKLEARN_ROOT_TASK):
        return False
    if not _callbacks_stored_as(SKLEARN_CALLBACKS):
        return True
    return bool(getattr(estimator, SKLEARN_CALLBACKS, None))


def open_root_task(estimator: Any, max_subtasks: int) -> Any:
    """Open the fit's root task, named "fit", setting its callbacks up
    (``_init_callback_context``; called where ``sklearn_callbacks_set``)."""
    return getattr(estimator, SKLEARN_ROOT_TASK)(task_name="fit", max_subtasks=max_subtasks)


@functools.cache
def _callbacks_stored_as(name: str) -> bool:
    """Whether ``set_callbacks`` stores callbacks in the attribute ``name``."""
    from sklearn.callback import CallbackSupportMixin

    class Probe(CallbackSupportMixin):
        pass

    class Callback:
        def setup(self, estimator: Any, context: Any) -> None: ...
        def on_fit_task_begin(self, estimator: Any, context: Any, **kwargs: Any) -> None: ...
        def on_fit_task_end(self, estimator: Any, context: Any, **kwargs: Any) -> None: ...
        def teardown(self, estimator: Any, context: Any) -> None: ...

    probe, callback = Probe(), Callback()
    try:
        probe.set_callbacks(callback)
    except Exception:
        return False
    return getattr(probe, name, None) == [callback]


#: The scikit-learn versions whose ``validate_data`` the predict and fit
#: shortcuts were compared with (``tests/test_validation.py``): from 1.6, which made
#: ``validate_data`` public, up to this one.
SHORTCUT_CHECKED_UP_TO = (1, 9)


def predict_shortcut(estimator: Any, X: Any, dtype: np.dtype) -> np.ndarray | None:
    """``X`` as ``validate_data(estimator, X, reset=False, dtype=dtype)``
    returns it, for plain numeric data of the fitted width (see
    ``plain_array``): width, dtype and finite values checked here, saving
    scikit-learn's generic path on every small predict. Else None, and the
    caller runs ``validate_data``, with its messages and warnings: for
    anything else, any failure, and a scikit-learn newer than
    ``SHORTCUT_CHECKED_UP_TO``, whose checks may have changed."""
    if _sklearn_version() > SHORTCUT_CHECKED_UP_TO:
        return None
    array = plain_array(estimator, X)
    if (
        array is None
        or array.ndim != 2
        or array.dtype.kind not in "fiu"
        or array.shape[0] == 0
        or array.shape[1] != getattr(estimator, "n_features_in_", None)
    ):
        return None
    return _finite_as(array, dtype)


def _finite_as(array: np.ndarray, dtype: np.dtype) -> np.ndarray | None:
    """``array`` as ``dtype`` (itself when of that dtype, as
    ``check_array`` converts it), or None unless every value is finite."""
    if array.dtype == dtype and array.size <= _CHECKED_BY_ELEMENT:
        # A few rows (online predictions): the sum's error state costs more
        # than checking each value.
        return array if np.isfinite(array).all() else None
    # An overflow, or inf - inf, goes to validate_data, which warns once.
    with np.errstate(over="ignore", invalid="ignore"):
        converted = np.asarray(array, dtype=dtype)
        # A finite sum means finite values, as in scikit-learn's own check;
        # summed in the data's dtype (float32: a third of the time), a sum
        # that overflows takes validate_data's path.
        if np.isfinite(converted.sum()):
            return converted
    return None


#: The most values ``_finite_as`` checks one by one rather than by their sum.
_CHECKED_BY_ELEMENT = 1024


#: The dtypes of ``X`` the fit shortcut takes.
_FIT_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def fit_shortcut(
    estimator: Any, X: Any, y: Any, dtype: np.dtype, *, reset: bool, multi_output: bool
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(X, y)`` as ``validate_data(estimator, X, y, reset=reset,
    accept_sparse="csr", dtype=dtype, multi_output=multi_output)`` returns
    them, with ``n_features_in_`` and ``feature_names_in_`` set as it sets
    them, for a C-contiguous 2-D float32 or float64 NumPy ``X`` and a
    numeric NumPy ``y`` of as many rows (1-D, or 2-D with
    ``multi_output``), all finite; this saves scikit-learn's generic path
    on every small fit. Else None, and the caller runs ``validate_data``,
    with its messages and warnings: for any other input (data frames,
    lists, sparse matrices, other ranks, dtypes or layouts), any failure, a
    continued fit whose width or feature names differ, and a scikit-learn
    newer than ``SHORTCUT_CHECKED_UP_TO``."""
    if _sklearn_version() > SHORTCUT_CHECKED_UP_TO or not (
        type(X) is np.ndarray
        and X.ndim == 2
        and X.dtype in _FIT_FLOATS
        and X.flags.c_contiguous
        and X.shape[0] > 0
        and X.shape[1] > 0
        and type(y) is np.ndarray
        and y.dtype.kind in "fiu"
        and y.shape[:1] == X.shape[:1]
        and (y.ndim == 1 or (multi_output and y.ndim == 2 and y.shape[1] > 0))
    ):
        return None
    if not reset and (
        hasattr(estimator, "feature_names_in_")  # validate_data warns
        or getattr(estimator, "n_features_in_", None) != X.shape[1]
    ):
        return None
    array = _finite_as(X, dtype)
    if array is None or (y.dtype.kind == "f" and _finite_as(y, y.dtype) is None):
        return None
    if reset:  # an array has no feature names: a previous fit's go
        if hasattr(estimator, "feature_names_in_"):
            delattr(estimator, "feature_names_in_")
        estimator.n_features_in_ = X.shape[1]
    # column_or_1d returns a 1-D y reshaped; check_array returns it as it is.
    return array, (y if multi_output else y.reshape(-1))


@functools.cache
def _sklearn_version() -> tuple[int, int]:
    major, minor = sklearn.__version__.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def plain_array(estimator: Any, X: Any) -> np.ndarray | None:
    """``X`` as the NumPy array scikit-learn's validation would make of it,
    where that is a plain conversion and no feature-name check can warn: a
    NumPy array or a (nested) list of floats for an estimator fitted without
    feature names; a pandas DataFrame of NumPy numeric columns named exactly
    as in the fit, for one fitted with names. Else None."""
    named = hasattr(estimator, "feature_names_in_")
    if type(X) is np.ndarray:
        return None if named else X
    if type(X) is list:
        if named:
            return None
        try:
            array = np.asarray(X)
        except (ValueError, TypeError):  # ragged: validate_data says so
            return None
        # Python ints past 2**53 round differently through int64 than
        # through validate_data's float64: only float lists are plain.
        return array if array.dtype.kind == "f" else None
    if (
        named
        and type(X).__name__ == "DataFrame"
        and type(X).__module__.startswith("pandas")
        and X.columns.tolist() == estimator.feature_names_in_.tolist()
        and all(isinstance(dtype, np.dtype) and dtype.kind in "fiu" for dtype in X.dtypes)
    ):
        return X.to_numpy()
    return None


# ----------------------------------------------------------------------
# MLflow
# ----------------------------------------------------------------------


def probe_tracking_server(uri: str, experiment: str, timeout: float) -> None:
    """Ask an HTTP tracking server once, without MLflow's retries, so that
    one that does not answer fails in seconds: MLflow's internal
    ``mlflow.utils.rest_utils.http_request`` and
    ``mlflow.utils.credentials.get_default_host_creds``; missing or changed
    (an ImportError, a TypeError from new arguments): no probe, and MLflow's
    client, retrying, finds an unreachable server later."""
    try:
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.rest_utils import http_request
    except ImportError:
        return
    with contextlib.suppress(TypeError):
        http_request(
            get_default_host_creds(uri),
            "/api/2.0/mlflow/experiments/get-by-name",
            "GET",
            max_retries=0,
            backoff_factor=0,
            timeout=timeout,
            raise_on_status=False,
            params={"experiment_name": experiment},
        )
