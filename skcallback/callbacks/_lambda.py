"""Callbacks made from plain functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._base import HOOKS, Callback

_FUNCTIONS = ("setup", *HOOKS)


class LambdaCallback(Callback):
    """A callback built from functions, one per hook (luz's ``luz_callback``
    and MXNet's callback functions in one).

    Each function takes the :class:`~skcallback.Context`; returning ``False``
    requests a stop.

    Parameters
    ----------
    name : str, optional
        The callback's name (default ``"lambda_callback"``); give one to use
        several LambdaCallbacks in one estimator.
    **hooks : callable
        Functions keyed by hook name, e.g. ``on_epoch_end=f``; ``setup=g``
        is called with the fit plan before training (e.g. to declare a
        metric with ``plan.declare_metric``).

    Examples
    --------
    >>> from skcallback.callbacks import LambdaCallback
    >>> stop_at_3 = LambdaCallback(name="stop_at_3", on_epoch_end=lambda ctx: ctx.epoch < 3)
    >>> stop_at_3.name
    'stop_at_3'
    """

    def __init__(self, name: str | None = None, **hooks: Callable[[Any], Any]) -> None:
        unknown = sorted(set(hooks) - set(_FUNCTIONS))
        if unknown:
            raise TypeError(
                f"LambdaCallback got unknown hook(s) {unknown}; the hooks are {list(HOOKS)}, "
                "and 'setup' takes a function of the fit plan."
            )
        self.name = name
        for hook, function in hooks.items():
            setattr(self, hook, function)

    def _given_hooks(self) -> list[str]:
        return [hook for hook in _FUNCTIONS if hook in vars(self)]

    def _hook_handlers(self) -> dict[str, Callable[[Any], Any]]:
        return {hook: vars(self)[hook] for hook in HOOKS if vars(self).get(hook)}

    def setup(self, plan: Any) -> None:
        function = vars(self).get("setup")
        if function:
            function(plan)

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
