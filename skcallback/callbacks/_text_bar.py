"""A plain-text progress line: ProgressBar's stand-in for tqdm when the
``progress`` extra is not installed, so that ``verbose=2`` works in a plain
install."""

from __future__ import annotations

import sys
import time

#: Seconds between redraws: a fast epoch must not spend its time writing.
_REDRAW = 0.1


class TextBar:
    """The part of ``tqdm.tqdm``'s interface ProgressBar uses, drawn as one
    line on stderr (``epoch 3: 12/40 [train_loss=0.4210]``), redrawn in
    place at most ten times a second; like tqdm with ``disable=None``, it
    draws only when stderr is a terminal.

    Parameters
    ----------
    total : int or None
        The number of steps, when known.
    desc : str
        The text before the count.
    leave : bool, default=False
        End the finished line (keep it on screen) rather than erase it.
    disable : bool or None, default=None
        True draws nothing; None draws on a terminal only.
    """

    def __init__(
        self, total: int | None, desc: str, leave: bool = False, disable: bool | None = None
    ) -> None:
        self.total, self.desc, self.leave = total, desc, leave
        self.n = 0
        self._postfix = ""
        self._shown = sys.stderr.isatty() if disable is None else not disable
        self._width = 0  # of the text on the line now, to overwrite it whole
        self._drawn_at = -_REDRAW
        self._closed = False
        self._draw()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.n == self.total or time.monotonic() - self._drawn_at >= _REDRAW:
            self._draw()

    def set_postfix(self, **values: object) -> None:
        self._postfix = ", ".join(f"{key}={value}" for key, value in values.items())
        self._draw()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._shown:
            self._write("\n" if self.leave else "\r" + " " * self._width + "\r")

    def _draw(self) -> None:
        if not self._shown or self._closed:
            return
        text = f"{self.desc}: {self.n}" + (f"/{self.total}" if self.total is not None else "")
        if self._postfix:
            text += f" [{self._postfix}]"
        self._write("\r" + text.ljust(self._width))
        self._width = len(text)
        self._drawn_at = time.monotonic()

    @staticmethod
    def _write(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()
