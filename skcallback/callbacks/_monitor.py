"""One helper for every callback that watches a metric: EarlyStopping,
Checkpoint's best-only mode and plateau scheduling share it."""

from __future__ import annotations

import math
import warnings
from typing import Any

_LOWER_MARKERS = ("loss", "error", "mse", "mae", "rmse", "dur", "time")


def lower_is_better(key: str, callbacks: Any = None) -> bool:
    """Whether smaller values of ``key`` are better.

    A callback that produces ``key`` (``EpochScoring``) decides; otherwise
    losses, errors and durations are minimised and anything else maximised.
    """
    for cb in (callbacks or {}).values():
        decide = getattr(cb, "_lower_is_better_for", None)
        if decide is not None:
            answer = decide(key)
            if answer is not None:
                return answer
    key = key.lower()
    if key.startswith(("neg_", "valid_neg_", "train_neg_")):
        return False
    return any(marker in key for marker in _LOWER_MARKERS)


def monitored_key(owner: str, key: str, metrics: dict[str, Any], warned: set[str]) -> str:
    """``key``, or ``train_*`` in its place when there is no validation data
    (with a warning, once); an unknown key is an error naming the known ones."""
    if key in metrics:
        return key
    fallback = "train_" + key[len("valid_") :]
    if key.startswith("valid_") and fallback in metrics:
        if key not in warned:
            warnings.warn(
                f"{owner} monitors {key!r} but the fit has no validation data; it monitors "
                f"{fallback!r} instead. Set validation_fraction or monitor={fallback!r}.",
                UserWarning,
                stacklevel=2,
            )
            warned.add(key)
        return fallback
    raise ValueError(
        f"{owner} monitors {key!r}, which this epoch did not record; recorded metrics are "
        f"{sorted(metrics)}."
    )


class Monitor:
    """Track the best value of a metric.

    Parameters
    ----------
    key : str
        The metric in ``ctx.metrics``.
    mode : {"auto", "min", "max"}
        Whether smaller or larger is better; ``"auto"`` asks
        :func:`lower_is_better`.
    min_delta : float
        The least change that counts as an improvement.
    """

    def __init__(self, key: str, mode: str = "auto", min_delta: float = 0.0) -> None:
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max'; got {mode!r}.")
        if not (isinstance(min_delta, int | float) and min_delta >= 0):
            raise ValueError(f"min_delta must be a number >= 0; got {min_delta!r}.")
        self.key, self.mode, self.min_delta = key, mode, float(min_delta)
        self._minimize: bool | None = None if mode == "auto" else mode == "min"

    def minimize(self, callbacks: Any = None) -> bool:
        if self._minimize is None:
            self._minimize = lower_is_better(self.key, callbacks)
        return self._minimize

    def value(self, metrics: dict[str, Any]) -> float | None:
        """The metric's value this epoch, or None when it was not recorded."""
        value = metrics.get(self.key)
        return None if value is None else float(value)

    def is_improvement(self, value: float, best: float | None, callbacks: Any = None) -> bool:
        """Whether ``value`` beats ``best`` by more than ``min_delta``."""
        if value is None or math.isnan(value):
            return False
        if best is None or math.isnan(best):
            return True
        if self.minimize(callbacks):
            return value < best - self.min_delta
        return value > best + self.min_delta

    def passes(self, value: float, threshold: float, callbacks: Any = None) -> bool:
        """Whether ``value`` is better than ``threshold`` (MXNet's early stop)."""
        if value is None or math.isnan(value):
            return False
        return value < threshold if self.minimize(callbacks) else value > threshold
