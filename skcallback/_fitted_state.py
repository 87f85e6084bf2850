"""The fitted state of an estimator and the fit's transaction.

A fit trains a *working copy* of the estimator (``working_copy``) and the
estimator takes the copy's fitted state only when the fit completes
(``adopt``). Checkpoints, pickles and ``skcallback.load`` rebuild a fitted
state on a working copy the same way (``rebuild_fitted``).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from . import _routing, _snapshot
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
_PRIVATE_FIT_STATE = ("_rng", "_split_seed", "_y_ndim")


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
    work.history_ = work.callbacks_["history"]
    work.stop_reason_ = None


def rebuild_fitted(work: Any, state: dict[str, Any], device: Any, path: Any) -> None:
    """Rebuild the torch objects of a saved fit on ``work`` (whose parameters
    and data attributes are set): module, criterion and optimizer from the
    parameters, their states and the callbacks' from ``state``. Shared by
    ``load_checkpoint``, ``skcallback.load`` and unpickling."""
    build_objects(work, device, seed=0)
    _snapshot.load_objects(work, state, path)
    callbacks = _routing.fitted_callbacks(work)
    stop_reason = getattr(work, "stop_reason_", None)
    with _snapshot.malformed(path):
        load_callback_states(callbacks, state["callbacks"])
        attach_callbacks(work, callbacks)
    work.stop_reason_ = stop_reason
    work.module_.eval()


def load_callback_states(callbacks: list[tuple[str, Any]], states: Any) -> None:
    """Give each new callback the state of the same-named callback of the
    same class (a replaced callback starts afresh)."""
    for name, cb in callbacks:
        previous = states.get(name) if hasattr(states, "get") else None
        if previous is None:
            continue
        if isinstance(previous, dict):
            cb.load_state_dict(previous)
        elif type(previous) is type(cb):
            cb.load_state_dict(previous.state_dict())
