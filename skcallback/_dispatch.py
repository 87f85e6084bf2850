"""Per-hook dispatch tables: only the callbacks that override a hook are called."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch

from .callbacks._base import HOOKS, PREDICT_HOOKS, overridden_hooks

Handler = tuple[str, str, Callable[[Any], Any]]


class CallbackMap(Mapping):
    """Fitted callbacks by name, in dispatch order.

    Both ``est.callbacks_["early_stopping"]`` and
    ``est.callbacks_.early_stopping`` work.
    """

    def __init__(self, items: list[tuple[str, Any]]) -> None:
        self._items = dict(items)
        # The prediction hook table, once read (see ``predict_table``).
        self._predict_table: tuple[HookTable | None] | None = None

    def __getitem__(self, name: str) -> Any:
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(
                f"No callback named {name!r}; the callbacks are {list(self._items)}."
            ) from None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._items[name]
        except KeyError:
            raise AttributeError(
                f"No callback named {name!r}; the callbacks are {list(self._items)}."
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self._items]

    def __repr__(self) -> str:
        return f"CallbackMap({list(self._items)})"


class HookTable:
    """For each hook, a tuple of ``(callback name, hook, handler)``.

    Built once per fit; a hook that no callback overrides holds an empty
    tuple, so the loop's ``if table.hook:`` check is all it costs.
    """

    __slots__ = HOOKS
    # One declaration per hook, for type checkers (an annotation without a
    # value leaves __slots__ alone); the assert below keeps them equal to HOOKS.
    on_fit_begin: tuple[Handler, ...]
    on_epoch_begin: tuple[Handler, ...]
    on_train_begin: tuple[Handler, ...]
    on_train_batch_begin: tuple[Handler, ...]
    on_after_forward: tuple[Handler, ...]
    on_after_loss: tuple[Handler, ...]
    on_before_backward: tuple[Handler, ...]
    on_after_backward: tuple[Handler, ...]
    on_before_step: tuple[Handler, ...]
    on_after_step: tuple[Handler, ...]
    on_train_batch_end: tuple[Handler, ...]
    on_train_end: tuple[Handler, ...]
    on_valid_begin: tuple[Handler, ...]
    on_valid_batch_begin: tuple[Handler, ...]
    on_valid_batch_end: tuple[Handler, ...]
    on_valid_end: tuple[Handler, ...]
    on_epoch_end: tuple[Handler, ...]
    on_fit_end: tuple[Handler, ...]
    on_exception: tuple[Handler, ...]
    on_predict_begin: tuple[Handler, ...]
    on_predict_batch_begin: tuple[Handler, ...]
    on_predict_batch_end: tuple[Handler, ...]
    on_predict_end: tuple[Handler, ...]

    def __init__(self, named_callbacks: list[tuple[str, Any]]) -> None:
        handlers = [(name, cb._hook_handlers()) for name, cb in named_callbacks]
        for hook in HOOKS:
            setattr(
                self,
                hook,
                tuple((name, hook, found[hook]) for name, found in handlers if hook in found),
            )


assert tuple(HookTable.__annotations__) == HOOKS, "HookTable must declare exactly HOOKS"


def predict_table(callbacks: Any) -> HookTable | None:
    """The hook table of a prediction over the fitted ``callbacks`` (a
    ``CallbackMap``), or None when none of them has a prediction hook.

    A ``CallbackMap`` keeps the table it gave first: the callbacks of a
    fitted state are read once, at its first prediction (a new fit, a
    loaded or unpickled model read them again). Scanning them took about a
    tenth of a one-row prediction."""
    if type(callbacks) is CallbackMap:
        if callbacks._predict_table is None:
            callbacks._predict_table = (_predict_table(callbacks),)
        return callbacks._predict_table[0]
    return _predict_table(callbacks)


def _predict_table(callbacks: Any) -> HookTable | None:
    named = [
        (name, cb)
        for name, cb in (callbacks.items() if callbacks is not None else ())
        if overridden_hooks(cb, PREDICT_HOOKS)
    ]
    return HookTable(named) if named else None


def fire(handlers: tuple[Handler, ...], ctx: Any) -> None:
    """Call each handler with ``ctx``; ``False`` requests a stop, and an error
    gets a note naming the callback and the hook."""
    for name, hook, handler in handlers:
        try:
            result = handler(ctx)
        except BaseException as exc:
            _note(exc, name, hook)
            raise
        if result is not None and requests_stop(result):
            ctx.request_stop(f"{name}.{hook} returned False")


def requests_stop(result: Any) -> bool:
    """Whether a hook's return value asks to stop: ``False``,
    ``numpy.False_`` or a false 0-d boolean tensor."""
    if result is False or result is np.False_:
        return True
    return (
        isinstance(result, torch.Tensor)
        and result.dtype == torch.bool
        and result.ndim == 0
        and not bool(result)
    )


def _note(exc: BaseException, name: str, hook: str) -> None:
    note = f"raised by callback {name!r} in {hook}"
    if note not in getattr(exc, "__notes__", ()):
        exc.add_note(note)
