"""One helper for every callback that watches a metric, and the one rule
for "best so far": EarlyStopping, Checkpoint's best-only mode, PrintLog's
``*`` marker and the best epoch ``History.plot`` marks all use it.

Which metric is watched and in which direction is decided once, in the
callback's ``setup``, from the fit plan: ``plan.monitored`` resolves the key
(an error if the fit does not record it) and ``plan.minimizes`` the direction
(the one the metric was declared with, or the callback's ``mode``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any


class Monitor:
    """Decide whether a metric improved, in one direction, for the callbacks
    that watch one (EarlyStopping, Checkpoint's best-only mode, PrintLog's
    marker, History's best epoch); the callback keeps the best value itself.

    The rule for "best so far": a value is an improvement when it beats the
    best so far by more than ``min_delta``, strictly. So the first epoch
    that reaches the best value stays best when a later one only ties it
    (or beats it by ``min_delta`` or less), and a value that is not a finite
    number (NaN, an infinity) or is missing (None) never becomes best.
    ``LRScheduler`` with ``"ReduceLROnPlateau"`` keeps torch's own rule (see
    its notes).

    Parameters
    ----------
    key : str
        The metric in ``ctx.metrics``.
    mode : {"min", "max"}
        Whether smaller or larger is better.
    min_delta : float, default=0.0
        The least change that counts as an improvement.

    Raises
    ------
    ValueError
        If ``mode`` is not "min" or "max", or ``min_delta`` is negative.

    Examples
    --------
    >>> from skcallback.callbacks import Monitor
    >>> monitor = Monitor("valid_loss", "min", min_delta=0.01)
    >>> monitor.is_improvement(0.5, best=0.505), monitor.is_improvement(0.4, best=0.5)
    (False, True)
    >>> monitor.best_index([0.5, float("nan"), 0.495, 0.3, 0.3])
    3
    """

    def __init__(self, key: str, mode: str, min_delta: float = 0.0) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max'; got {mode!r}.")
        if not (isinstance(min_delta, int | float) and min_delta >= 0):
            raise ValueError(f"min_delta must be a number >= 0; got {min_delta!r}.")
        self.key, self.mode, self.min_delta = key, mode, float(min_delta)
        self.minimize = mode == "min"

    @classmethod
    def for_plan(cls, plan: Any, owner: str, key: str, mode: str, min_delta: float) -> Monitor:
        """The monitor of ``key`` in this fit, built in a callback's ``setup``.

        Parameters
        ----------
        plan : FitPlan
            The fit's plan.
        owner : str
            The callback's name, for warnings and errors.
        key : str
            The metric; ``valid_*`` becomes ``train_*`` (with a warning)
            when the fit has no validation data.
        mode : {"auto", "min", "max"}
            "auto" takes the direction the metric was declared with.
        min_delta : float
            The least change that counts as an improvement.

        Returns
        -------
        Monitor

        Raises
        ------
        ValueError
            If the fit does not record ``key``, or ``mode="auto"`` and the
            metric has no declared direction.
        """
        key = plan.monitored(owner, key)
        return cls(key, "min" if plan.minimizes(owner, key, mode) else "max", min_delta)

    def value(self, metrics: dict[str, Any]) -> float | None:
        """The metric's value this epoch.

        Parameters
        ----------
        metrics : dict
            The epoch's values, ``ctx.metrics``.

        Returns
        -------
        float or None
            None when the epoch did not record the metric.
        """
        value = metrics.get(self.key)
        return None if value is None else float(value)

    def is_improvement(self, value: float | None, best: float | None) -> bool:
        """Whether ``value`` beats ``best`` by more than ``min_delta``.

        Parameters
        ----------
        value : float or None
            This epoch's value; None, NaN or an infinity never improves.
        best : float or None
            The best so far; None or NaN is beaten by any finite value.

        Returns
        -------
        bool
        """
        if value is None or not math.isfinite(value):
            return False
        if best is None or math.isnan(best):
            return True
        if self.minimize:
            return value < best - self.min_delta
        return value > best + self.min_delta

    def best_index(self, values: Sequence[Any]) -> int | None:
        """The position of the best of ``values`` (one per epoch), by the
        same rule as [`is_improvement`][skcallback.callbacks.Monitor.is_improvement]
        applied epoch after epoch.

        Parameters
        ----------
        values : sequence
            The metric per epoch, oldest first; entries that are not real
            numbers (None, a string) are skipped.

        Returns
        -------
        int or None
            None when no value is a finite number.
        """
        best: float | None = None
        index = None
        for i, value in enumerate(values):
            if not isinstance(value, numbers.Real) or isinstance(value, bool):
                continue
            if self.is_improvement(float(value), best):
                best, index = float(value), i
        return index

    def passes(self, value: float | None, threshold: float) -> bool:
        """Whether ``value`` is better than ``threshold`` (MXNet's early stop).

        Parameters
        ----------
        value : float or None
            This epoch's value; None or NaN never passes.
        threshold : float
            The value to beat, strictly.

        Returns
        -------
        bool
        """
        if value is None or math.isnan(value):
            return False
        return value < threshold if self.minimize else value > threshold
