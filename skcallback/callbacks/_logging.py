"""Callbacks that report progress: PrintLog, ProgressBar."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

from ._base import Callback
from ._monitor import lower_is_better


def _format(value: Any) -> str:
    if isinstance(value, numbers.Integral):
        return str(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-4) and math.isfinite(value):
            return f"{value:.3e}"
        return f"{value:.4f}"
    return str(value)


class PrintLog(Callback):
    """Print a table line per epoch, marking each value that is the best so
    far with ``*`` (used by ``verbose=1``).

    Parameters
    ----------
    keys : sequence of str, optional
        The columns, in order; default: every key of the epoch's record.
    sink : callable, default=print
        Called with each line of text.
    """

    order = 900

    def __init__(
        self, keys: Sequence[str] | None = None, sink: Callable[[str], Any] = print
    ) -> None:
        self.keys = keys
        self.sink = sink

    def on_fit_begin(self, ctx: Any) -> None:
        self._columns: list[str] | None = None
        if not hasattr(self, "best_"):
            self.best_: dict[str, float] = {}

    def on_epoch_end(self, ctx: Any) -> None:
        record = ctx.metrics
        if self._columns is None:
            self._columns = list(self.keys) if self.keys is not None else list(record)
            self._widths = [max(len(c), 10) for c in self._columns]
            self.sink(
                "  ".join(c.rjust(w) for c, w in zip(self._columns, self._widths, strict=True))
            )
            self.sink("  ".join("-" * w for w in self._widths))
        cells = []
        for column, width in zip(self._columns, self._widths, strict=True):
            value = record.get(column, "")
            text = _format(value)
            if (
                column not in ("epoch", "lr", "dur")
                and isinstance(value, numbers.Real)
                and self._is_best(column, float(value), ctx.callbacks)
            ):
                text += "*"
            cells.append(text.rjust(width))
        self.sink("  ".join(cells))

    def _is_best(self, key: str, value: float, callbacks: Any) -> bool:
        if math.isnan(value):
            return False
        best = self.best_.get(key)
        lower = lower_is_better(key, callbacks)
        if best is None or (value < best if lower else value > best):
            self.best_[key] = value
            return True
        return False


class ProgressBar(Callback):
    """A tqdm progress bar over each epoch's training batches (``verbose=2``).

    It adapts to notebooks and stays quiet when output is not a terminal.
    Requires tqdm (``pip install skcallback[progress]``).

    Parameters
    ----------
    leave : bool, default=False
        Keep each epoch's finished bar on screen.
    """

    def __init__(self, leave: bool = False) -> None:
        self.leave = leave

    def on_train_begin(self, ctx: Any) -> None:
        try:
            from tqdm.auto import tqdm
        except ImportError as exc:
            raise ImportError(
                "ProgressBar needs tqdm: pip install 'skcallback[progress]'."
            ) from exc
        self._bar = tqdm(
            total=ctx.n_batches, desc=f"epoch {ctx.epoch}", leave=self.leave, disable=None
        )

    def on_train_batch_end(self, ctx: Any) -> None:
        self._bar.update(1)

    def on_train_end(self, ctx: Any) -> None:
        self._bar.set_postfix(train_loss=f"{ctx.metrics['train_loss']:.4f}")
        self._bar.close()

    def on_fit_end(self, ctx: Any) -> None:
        bar = getattr(self, "_bar", None)
        if bar is not None:
            bar.close()
            del self._bar
