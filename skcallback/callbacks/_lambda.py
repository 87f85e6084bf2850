"""Callbacks made from plain functions."""

from __future__ import annotations

import inspect
import pickle
from collections.abc import Callable
from typing import Any

try:  # joblib >= 1.6 depends on cloudpickle; earlier versions ship it inside
    import cloudpickle
except ImportError:  # pragma: no cover - joblib < 1.6
    from joblib.externals import cloudpickle

from ._base import HOOKS, Callback

_FUNCTIONS = ("declare", "setup", *HOOKS)


class LambdaCallback(Callback):
    """A callback built from functions, one per hook (luz's ``luz_callback``
    and MXNet's callback functions in one).

    Each function takes the [`Context`][skcallback.Context]; returning ``False``
    requests a stop. A function taking two arguments, ``f(ctx, state)``,
    also gets this fit's ``state``: a dict that starts empty at each fit,
    is kept by a ``warm_start`` or ``partial_fit`` continuation, and is saved
    in checkpoints (plain data only), so a resumed fit continues with it.
    Keep per-fit state there, not in a closure: the functions themselves are
    shared by every fit, like any Python object the callback holds, so a
    closure's variables (a list collecting results, say) are the same in
    every fit.

    The callback pickles with its functions, lambdas and closures included
    (by value, with cloudpickle, which joblib ships), so a fitted estimator
    goes through ``joblib.dump`` and ``GridSearchCV(n_jobs=2)``.

    Parameters
    ----------
    name : str, optional
        The callback's name (default ``"lambda_callback"``); give one to use
        several LambdaCallbacks in one estimator.
    **hooks : callable
        Functions keyed by hook name, e.g. ``on_epoch_end=f``; ``declare=d``
        and ``setup=g`` are called with the fit plan before training, as
        [`Callback.declare`][skcallback.Callback.declare] (to declare a
        metric with ``plan.declare_metric``) and
        [`Callback.setup`][skcallback.Callback.setup] (to check).

    Attributes
    ----------
    state_ : dict
        The state two-argument functions share during the fit.

    Notes
    -----
    Memory: what its functions keep in ``state``; the functions are shared,
    not copied.

    Examples
    --------
    >>> from skcallback.callbacks import LambdaCallback
    >>> stop_at_3 = LambdaCallback(name="stop_at_3", on_epoch_end=lambda ctx: ctx.epoch < 3)
    >>> stop_at_3.name
    'stop_at_3'

    MXNet's early stop as a function with per-fit state:

    >>> def early_stop(ctx, state, patience=3):
    ...     loss = ctx.metrics["valid_loss"]
    ...     if loss < state.get("best", float("inf")):
    ...         state["best"], state["wait"] = loss, 0
    ...     else:
    ...         state["wait"] = state.get("wait", 0) + 1
    ...     return state["wait"] < patience
    >>> stopper = LambdaCallback(name="early_stop", on_epoch_end=early_stop)
    """

    def __init__(self, name: str | None = None, **hooks: Callable[[Any], Any]) -> None:
        unknown = sorted(set(hooks) - set(_FUNCTIONS))
        if unknown:
            raise TypeError(
                f"LambdaCallback got unknown hook(s) {unknown}; the hooks are {list(HOOKS)}, "
                "and 'declare' and 'setup' take a function of the fit plan."
            )
        self.name = name
        for hook, function in hooks.items():
            setattr(self, hook, function)

    def _given_hooks(self) -> list[str]:
        return [hook for hook in _FUNCTIONS if hook in vars(self)]

    def _handler(self, hook: str) -> Callable[[Any], Any]:
        function = vars(self)[hook]
        return self._with_state(function) if _takes_state(function) else function

    def _with_state(self, function: Callable[[Any, Any], Any]) -> Callable[[Any], Any]:
        def handler(ctx: Any) -> Any:
            return function(ctx, vars(self).setdefault("state_", {}))

        return handler

    def declare(self, plan: Any) -> None:
        function = vars(self).get("declare")
        if function:
            function(plan)

    def setup(self, plan: Any) -> None:
        if not (plan.continuing or plan.resume is not None) or not isinstance(
            getattr(self, "state_", None), dict
        ):
            self.state_: dict[str, Any] = {}
        function = vars(self).get("setup")
        if function:
            function(plan)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(vars(self))
        for hook in self._given_hooks():
            if callable(state[hook]):
                state[hook] = _ByValue(cloudpickle.dumps(state[hook]))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(
            {k: pickle.loads(v.data) if isinstance(v, _ByValue) else v for k, v in state.items()}
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"name": self.name, **{hook: vars(self)[hook] for hook in self._given_hooks()}}

    def set_params(self, **params: Any) -> LambdaCallback:
        unknown = sorted(set(params) - {"name", *_FUNCTIONS})
        if unknown:
            raise ValueError(
                f"Invalid parameter(s) {unknown} for LambdaCallback; valid parameters are "
                f"'name' and the hooks {list(HOOKS)}."
            )
        for key, value in params.items():
            setattr(self, key, value)
        return self


class _ByValue:
    """A function pickled by value (cloudpickle) inside a LambdaCallback."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __getstate__(self) -> bytes:
        return self.data

    def __setstate__(self, data: bytes) -> None:
        self.data = data


def _takes_state(function: Callable[..., Any]) -> bool:
    """Whether ``function`` needs two arguments, ``(ctx, state)``."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin without a signature: one argument
        return False
    try:
        signature.bind(None)
    except TypeError:
        try:
            signature.bind(None, None)
        except TypeError:
            return False
        return True
    return False
