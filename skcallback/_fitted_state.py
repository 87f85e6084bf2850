"""The fitted state of an estimator: the fit's transaction, and the one
schema every saved format stores.

A fit trains a *working copy* of the estimator (``working_copy``) and the
estimator takes the copy's fitted state only when the fit completes
(``adopt``).

A fitted estimator is made of its parameters and of the state the schema
below describes: module and optimizer state, callback states, the NumPy
generator and split seed, what the fit learned about its data, the counts
``n_iter_`` and ``n_steps_``, ``stop_reason_`` and ``fast_path_``. Everything
else fitted (``criterion_``, ``device_``, ``history_``, the objects
themselves) is rebuilt from the parameters. Checkpoints, pickles and
``skcallback.save`` encode it with ``encode``, check it with ``check_state``
and restore it with ``restore``; each format adds only its own framing
(checkpoints: the position within an epoch).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from sklearn.base import is_classifier
from sklearn.utils import check_random_state

from . import _continuation, _routing, _untrusted
from ._dispatch import CallbackMap
from ._factories import build_objects

_SEED_BOUND = np.iinfo(np.int32).max


def working_copy(estimator: Any, *, fitted: bool) -> Any:
    """A new estimator with the same parameters (the same objects) and, when
    ``fitted``, a private copy of the fitted state that training may change."""
    cls: type[object] = type(estimator)  # on type(<Any>), mypy finds type.__new__
    work: Any = cls.__new__(cls)
    state = vars(estimator)
    params = {key: value for key, value in state.items() if not is_fitted_key(key)}
    vars(work).update(params)
    if fitted:
        for key, value in state.items():
            if is_fitted_key(key) and key not in _REBUILT:
                vars(work)[key] = copy.deepcopy(value)
        # One deepcopy keeps the optimizer bound to the copied parameters.
        work.module_, work.optimizer_ = copy.deepcopy((estimator.module_, estimator.optimizer_))
    return work


#: Fitted attributes a continuing fit copies together (module and optimizer)
#: or rebuilds from state (callbacks and history) instead of deep-copying.
_REBUILT = ("module_", "optimizer_", "callbacks_", "history_")


#: Private attributes a fit sets besides the public fitted ones.
#: ``_fit_name`` (the name loggers give the fit, ``FitIdentity.run_name``)
#: is kept in memory only: no file says which log a loaded model continues.
_PRIVATE_FIT_STATE = (
    "_rng",
    "_split_seed",
    "_y_ndim",
    "_input_spec",
    "_built_with",
    "_fit_name",
)


def is_fitted_key(key: str) -> bool:
    """Fitted attributes end with ``_`` (scikit-learn's convention), plus the
    fit's private state; other private attributes (scikit-learn's own, such
    as a callback context) and routed parameters (``module__size_``) are
    left alone."""
    return (
        key.endswith("_") and not key.startswith("__") and not _routing.is_routed(key)
    ) or key in _PRIVATE_FIT_STATE


def adopt(estimator: Any, work: Any) -> None:
    """Replace the estimator's fitted state with the working copy's."""
    for key in [key for key in vars(estimator) if is_fitted_key(key)]:
        del vars(estimator)[key]
    vars(estimator).update({k: v for k, v in vars(work).items() if is_fitted_key(k)})


def start_fresh(work: Any, *, epoch: int, step: int) -> None:
    """The random state and counters of a new fitted state."""
    work._rng = check_random_state(work.random_state)
    work._split_seed = int(work._rng.randint(_SEED_BOUND))
    work.n_iter_, work.n_steps_ = epoch, step


def attach_callbacks(work: Any, callbacks: list[tuple[str, Any]]) -> None:
    """Make ``callbacks`` (in dispatch order) the fitted callbacks."""
    work.callbacks_ = CallbackMap(callbacks)
    vars(work).update(_routing.exposed_callbacks(work.callbacks_))
    work.stop_reason_ = None


def rebuild_fitted(work: Any, state: dict[str, Any], device: Any, path: Any) -> None:
    """Rebuild the torch objects of a saved fit on ``work`` (whose parameters
    and data attributes are set): module, criterion and optimizer from the
    parameters, their states and the callbacks' from ``state`` (the last
    step of ``restore``)."""
    check_module_size(work, state["module"], path)
    build_objects(work, device, seed=0)
    _continuation.record(work)  # the parameters that saved it built its module
    callbacks = _routing.fitted_callbacks(work)
    load_objects(work, state, path, scheduled=_untrusted.scheduled(callbacks))
    stop_reason = getattr(work, "stop_reason_", None)
    with malformed(path):
        load_callback_states(callbacks, state["callbacks"])
        attach_callbacks(work, callbacks)
    work.stop_reason_ = stop_reason
    work.module_.eval()


def check_module_size(work: Any, saved: dict[str, Any], path: Any) -> None:
    """Refuse parameters (``module__``, ``hidden_layer_sizes``, the data's
    widths) that build a module with more elements than the file saved for
    it: the module is built on the ``meta`` device first, which allocates
    nothing."""
    held = sum(v.numel() for v in saved.values() if isinstance(v, torch.Tensor))
    probe = working_copy(work, fitted=False)
    vars(probe).update(data_state(work))
    try:
        with torch.device("meta"):
            build_objects(probe, torch.device("meta"), seed=0)
        needed = sum(v.numel() for v in probe.module_.state_dict().values())
    except Exception:  # building it for real says what is wrong
        return
    if needed > held:
        raise ValueError(
            f"{path} is malformed: its parameters build a module of {needed} elements, but it "
            f"holds {held} for it; build the estimator with the parameters that saved it."
        )


def load_callback_states(callbacks: list[tuple[str, Any]], states: Any) -> None:
    """Give each new callback the state of the same-named callback: a saved
    state (plain data, of any type its ``state_dict`` returns), or a previous
    fit's callback of the same class (a replaced callback starts afresh)."""
    from .callbacks._base import Callback

    for name, cb in callbacks:
        previous = states.get(name) if hasattr(states, "get") else None
        if previous is None:
            continue
        if isinstance(previous, Callback) and type(previous) is not type(cb):
            continue
        try:
            cb.load_state_dict(
                previous.state_dict() if isinstance(previous, Callback) else previous
            )
        except Exception as exc:
            raise ValueError(
                f"The saved state of callback {name!r} does not load into it: "
                f"{type(exc).__name__}: {exc}"
            ) from exc


def load_objects(work: Any, state: dict[str, Any], path: Any, *, scheduled: bool) -> None:
    """Load module and optimizer states into ``work``'s freshly built
    objects, checked first against them (``_untrusted``): finite tensors of
    the parameters' shapes, and the options the estimator's parameters give
    (an LRScheduler, when ``scheduled``, may have changed the rates)."""
    _untrusted.check_module_state(state["module"], path)
    _untrusted.check_optimizer_state(work.optimizer_, state["optimizer"], path)
    expected = _untrusted.option_groups(work.optimizer_)
    try:
        work.module_.load_state_dict(state["module"])
        work.optimizer_.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path} does not match this estimator's module or optimizer; build the "
            f"estimator with the parameters that saved it. ({exc})"
        ) from exc
    _untrusted.check_options(work.optimizer_, expected, scheduled, path)


@contextlib.contextmanager
def malformed(path: Any) -> Iterator[None]:
    """Report any failure to restore a file's contents as a ValueError."""
    try:
        yield
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(
            f"{path} is malformed: restoring it failed ({type(exc).__name__}: {exc})."
        ) from exc


# ----------------------------------------------------------------------
# The schema: what a fitted estimator is made of, as plain data
# ----------------------------------------------------------------------
#: What the fit learned about its data.
DATA_KEYS = (
    "n_features_in_",
    "feature_names_in_",
    "n_outputs_",
    "classes_",
    "_y_ndim",
    "_input_spec",
)

#: The fields of a fitted state and their types. ``epoch`` and ``step`` are
#: the counts ``n_iter_`` and ``n_steps_``; ``rng`` is the NumPy generator's
#: state (``rng_state``); ``data`` holds the ``DATA_KEYS`` the fit set.
FIELDS: dict[str, Any] = {
    "epoch": int,
    "step": int,
    "rng": list,
    "split_seed": int,
    "module": dict,
    "optimizer": dict,
    "callbacks": dict,
    "data": dict,
}

#: Fields that must be present and may be None.
NULLABLE: dict[str, Any] = {"stop_reason": str}


def data_state(estimator: Any) -> dict[str, Any]:
    """The ``DATA_KEYS`` attributes ``estimator`` has."""
    return {key: vars(estimator)[key] for key in DATA_KEYS if key in vars(estimator)}


def encode(estimator: Any) -> dict[str, Any]:
    """The fitted state of ``estimator`` (fitted, or training) as plain data:
    tensors, numbers, strings, lists and dicts, which
    ``torch.load(weights_only=True)`` reads back; a callback state that is
    not plain data is left as it is, for each format to store or refuse."""
    return {
        "epoch": estimator.n_iter_,
        "step": estimator.n_steps_,
        "stop_reason": estimator.stop_reason_,
        "fast_path": bool(getattr(estimator, "fast_path_", False)),
        "rng": rng_state(estimator._rng),
        "split_seed": estimator._split_seed,
        "module": estimator.module_.state_dict(),
        "optimizer": estimator.optimizer_.state_dict(),
        "callbacks": {name: plain(cb.state_dict()) for name, cb in estimator.callbacks_.items()},
        "data": {key: _plain_data(value) for key, value in data_state(estimator).items()},
    }


def plain(value: Any) -> Any:
    """NumPy values as types ``torch.load(weights_only=True)`` accepts."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(plain(v) for v in value)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy()) if value.dtype.kind in "biuf" else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


_PLAIN = (type(None), bool, int, float, str, bytes, torch.Tensor, torch.Size)


def is_plain(value: Any) -> bool:
    """Whether ``torch.load(weights_only=True)`` reads ``value`` back."""
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, list | tuple):
        return all(is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str | int) and is_plain(v) for k, v in value.items())
    return False


#: The dtype kinds of arrays of strings (objects, unicode, bytes).
_TEXT_KINDS = "OUS"


def _plain_data(value: Any) -> Any:
    """A data attribute as plain data; an array of strings keeps its dtype."""
    if isinstance(value, np.ndarray) and value.dtype.kind in _TEXT_KINDS:
        return {"values": value.tolist(), "dtype": value.dtype.str}
    return plain(value)


def _data_arrays(data: dict[str, Any], path: Any) -> dict[str, Any]:
    """Undo ``_plain_data``: the estimator's array attributes as arrays
    (checkpoints of format 2 stored arrays of strings as lists)."""
    data = dict(data)
    for key in ("classes_", "feature_names_in_"):
        value = data.get(key)
        if isinstance(value, dict):
            value = _untrusted.text_array(value.get("values"), value.get("dtype"), path)
            if value.dtype.kind not in _TEXT_KINDS:
                raise ValueError(f"{path} is malformed: {key!r} has the dtype {value.dtype}.")
        elif isinstance(value, torch.Tensor):
            value = value.numpy()
        if key in data:
            data[key] = np.asarray(value, dtype=object if key == "feature_names_in_" else None)
    return data


def rng_state(rng: np.random.RandomState) -> list[Any]:
    """A NumPy generator's state as plain data."""
    key, keys, pos, has_gauss, cached = rng.get_state()
    return [key, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, cached]


def rng_from(state: Any, rng: np.random.RandomState | None = None) -> np.random.RandomState:
    """A NumPy generator (``rng``, or a new one) set to ``state``."""
    rng = np.random.RandomState() if rng is None else rng
    key, keys, pos, has_gauss, cached = state
    rng.set_state((key, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    return rng


def restore_rng(work: Any, state: dict[str, Any]) -> None:
    """The estimator's NumPy generator and split seed as saved (its own
    generator, when it has one, is set in place)."""
    work._rng = rng_from(state["rng"], getattr(work, "_rng", None))
    work._split_seed = state["split_seed"]


def check_types(state: dict[str, Any], path: Any, fields: dict, nullable: dict) -> None:
    """Raise a ValueError unless each of ``fields`` is of its type (a bool is
    no int) and each of ``nullable`` is present, of its type or None."""
    for key, kind in fields.items():
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            raise ValueError(f"{path} is malformed: {key!r} is not a {kind.__name__}.")
    for key, kind in nullable.items():
        if key not in state or not (state[key] is None or isinstance(state[key], kind)):
            raise ValueError(f"{path} is malformed: {key!r} is missing or of the wrong type.")


def check_state(state: Any, path: Any) -> None:
    """Raise a ValueError unless ``state`` is a fitted state of the schema;
    complete it (``fast_path`` defaults to False, as files that predate it
    had) and turn its data attributes back into arrays."""
    if not isinstance(state, dict):
        raise ValueError(f"{path} is malformed: its fitted state is not a dict.")
    _untrusted.check_tensor_sizes(state, path)
    check_types(state, path, FIELDS, NULLABLE)
    if not isinstance(state.setdefault("fast_path", False), bool):
        raise ValueError(f"{path} is malformed: 'fast_path' is not a bool.")
    rng = state["rng"]
    if not (
        len(rng) == 5
        and isinstance(rng[0], str)
        and isinstance(rng[1], torch.Tensor)
        and rng[1].shape == (624,)
        and all(isinstance(v, int | float) for v in rng[2:])
    ):
        raise ValueError(f"{path} is malformed: 'rng' is not a NumPy generator state.")
    data = state["data"]
    if (
        set(data) - set(DATA_KEYS)
        or "n_outputs_" not in data
        or ("n_features_in_" in data) == ("_input_spec" in data)
    ):
        raise ValueError(f"{path} is malformed: unknown or missing data attributes.")
    if "_input_spec" in data:
        _untrusted.check_input_spec(data["_input_spec"], path)
    for key in ("n_features_in_", "n_outputs_", "_y_ndim"):
        count = state["data"].get(key, 0)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError(f"{path} is malformed: {key!r} is not a count.")
    # The targets' dimensions (a regressor's y; a classifier's labels or
    # multi-label indicator matrix) decide the loss and the predictions.
    if state["data"].get("_y_ndim", 1) not in (1, 2):
        raise ValueError(f"{path} is malformed: '_y_ndim' is not 1 or 2.")
    if min(state["epoch"], state["step"]) < 0:
        raise ValueError(f"{path} is malformed: negative epoch, step or batch count.")
    with malformed(path):
        state["data"] = _data_arrays(state["data"], path)
    _untrusted.check_classes(state["data"], path)


def restore(estimator: Any, state: dict[str, Any], device: Any, path: Any) -> Any:
    """A working copy of ``estimator`` holding the checked fitted state
    ``state`` (on ``device``), for the caller to adopt. Shared by
    ``load_checkpoint``, ``skcallback.load`` and unpickling."""
    work = working_copy(estimator, fitted=False)
    if is_classifier(estimator) and "classes_" not in state["data"]:
        raise ValueError(f"{path} is malformed: a classifier's state without 'classes_'.")
    vars(work).update(state["data"])
    with malformed(path):
        restore_rng(work, state)
    work.n_iter_, work.n_steps_ = state["epoch"], state["step"]
    work.stop_reason_, work.fast_path_ = state["stop_reason"], state["fast_path"]
    rebuild_fitted(work, state, device, path)
    return work
