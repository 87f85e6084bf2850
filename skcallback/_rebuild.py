"""A saved fitted state rebuilt into live objects: the module, criterion and
optimizer built from the estimator's parameters, their states and the
callbacks' loaded from the state, each checked first (``_untrusted``).

The state itself (its schema, encoder and validator) is ``_fitted_state``'s;
this step is kept apart because it builds the fit's callbacks, a layer above
the schema that the checkpoint callback itself uses.
"""

from __future__ import annotations

from typing import Any

import torch
from sklearn.base import is_classifier

from . import _continuation, _untrusted
from ._factories import build_objects
from ._fit_callbacks import attach_callbacks, fitted_callbacks
from ._fitted_state import data_state, malformed, restore_rng, working_copy
from .callbacks._base import Callback


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


def rebuild_fitted(work: Any, state: dict[str, Any], device: Any, path: Any) -> None:
    """Rebuild the torch objects of a saved fit on ``work`` (whose parameters
    and data attributes are set): module, criterion and optimizer from the
    parameters, their states and the callbacks' from ``state`` (the last
    step of ``restore``)."""
    check_module_size(work, state["module"], path)
    build_objects(work, device, seed=0)
    _continuation.record(work)  # the parameters that saved it built its module
    callbacks = fitted_callbacks(work)
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
