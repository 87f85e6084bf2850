"""``lr_find``: a learning-rate range test on a clone of an estimator.

The sweep trains a clone through the estimator's own ``fit`` (so every
input kind, device and precision it takes works), with one internal
callback that sets the learning rate before each optimizer step, records
the loss of the step's batches, and stops when the sweep is done or the
loss diverges (Leslie Smith's range test, as fastai's ``lr_find``,
Lightning's ``LearningRateFinder`` and luz's ``lr_finder`` run it).
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from ._base import NeuralEstimatorBase
from ._context import Context
from ._params import InvalidParameterError
from ._stack import user_stacklevel
from .callbacks._base import Callback, import_extra, positive_int

#: The smoothing of the loss curve: an exponential moving average with this
#: factor, debiased (fastai's and Lightning's choice).
SMOOTHING = 0.98
#: The sweep stops once the smoothed loss exceeds this multiple of its best.
DIVERGENCE = 4.0


class LRFinderResult:
    """What [`lr_find`][skcallback.lr_find] measured: one point per
    optimizer step of the sweep.

    Parameters
    ----------
    lrs, losses : sequence of float
        The rate and the loss of each step (become ``lrs`` and ``losses``;
        the smoothed losses and the suggestion are computed from them).
    stop_reason : str
        Why the sweep ended.

    Attributes
    ----------
    lrs : numpy.ndarray
        The learning rate of each step (the estimator's ``lr``; parameter
        groups with their own rate kept their ratio to it).
    losses : numpy.ndarray
        The training loss of each step's batches, before the step.
    smoothed_losses : numpy.ndarray
        ``losses`` smoothed (a debiased exponential moving average, factor
        0.98): what the suggestion and the divergence test read.
    suggestion : float or None
        The learning rate where the smoothed loss was lowest, divided by
        10 (the first tenth of the sweep left out, where the average holds
        few losses); None when the loss never went below its value there.
    stop_reason : str
        Why the sweep ended: ``"num_steps reached"``, the smoothed loss
        diverging, or a non-finite loss.
    """

    def __init__(self, lrs: list[float], losses: list[float], stop_reason: str) -> None:
        self.lrs = np.asarray(lrs, dtype=np.float64)
        self.losses = np.asarray(losses, dtype=np.float64)
        self.smoothed_losses = _smoothed(self.losses)
        self.stop_reason = stop_reason
        self.suggestion = _suggestion(self.lrs, self.smoothed_losses)

    def plot(self, ax: Any = None) -> Any:
        """Plot the loss against the learning rate (log scale), the raw
        losses faint and the smoothed ones solid, with the suggestion marked;
        the y axis ends a little above the smoothed curve's values up to
        its minimum (the divergence past it leaves the plot).

        Requires matplotlib (``pip install matplotlib``, or ``pip install '.[plot]'``
        in a clone of skcallback).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Where to draw; a new figure by default.

        Returns
        -------
        matplotlib.axes.Axes

        Raises
        ------
        ImportError
            If matplotlib is not installed.
        """
        plt = import_extra("matplotlib.pyplot", "plot", "LRFinderResult.plot()")
        if ax is None:
            _, ax = plt.subplots()
        (line,) = ax.plot(self.lrs, self.smoothed_losses, label="smoothed loss")
        ax.plot(self.lrs, self.losses, alpha=0.3, color=line.get_color(), label="loss")
        if self.suggestion is not None:
            ax.axvline(
                self.suggestion,
                linestyle="--",
                color="gray",
                label=f"suggestion {self.suggestion:.2g}",
            )
        # The loss shoots up where the rate is too large: the y axis shows the
        # curve up to its minimum (and a margin), where the choice is made.
        best = int(np.argmin(self.smoothed_losses))
        low, high = float(self.losses.min()), float(self.smoothed_losses[: best + 1].max())
        margin = 0.25 * max(high - low, abs(high) * 1e-3, 1e-12)
        ax.set_ylim(low - margin, high + margin)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.legend()
        return ax

    def __repr__(self) -> str:
        suggestion = "None" if self.suggestion is None else f"{self.suggestion:.3g}"
        return (
            f"LRFinderResult(steps={len(self.lrs)}, suggestion={suggestion}, "
            f"stop_reason={self.stop_reason!r})"
        )


def _smoothed(losses: np.ndarray) -> np.ndarray:
    average, out = 0.0, np.empty_like(losses)
    for i, loss in enumerate(losses):
        average = SMOOTHING * average + (1 - SMOOTHING) * loss
        out[i] = average / (1 - SMOOTHING ** (i + 1))
    return out


def _suggestion(lrs: np.ndarray, smoothed: np.ndarray) -> float | None:
    """A tenth of the rate at the lowest smoothed loss: an order of
    magnitude below where training stops improving. One argmin of a
    smoothed curve moves little between runs, where the point of steepest
    descent (a derivative of a noisy curve) jumps. The first tenth of the
    sweep is left out: there the average holds a few batches' losses, and a
    lucky first batch would look like the minimum."""
    skip = len(smoothed) // 10
    if len(smoothed) - skip < 2:
        return None
    best = skip + int(np.argmin(smoothed[skip:]))
    return None if best == skip else float(lrs[best] / 10)


class _Record:
    """The points of the sweep, shared by the callback's clones (every fit
    works on a clone of each callback), so they survive the fit."""

    def __init__(self, start_lr: float, end_lr: float, num_steps: int) -> None:
        self.start_lr, self.end_lr, self.num_steps = start_lr, end_lr, num_steps
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.stop_reason: str | None = None
        self.non_finite = False
        self._average, self._best = 0.0, math.inf

    def rate(self, step: int) -> float:
        """The sweep's rate at optimizer step ``step`` (0-based): from
        ``start_lr`` to ``end_lr`` evenly on a log scale."""
        fraction = min(step, self.num_steps - 1) / (self.num_steps - 1)
        return self.start_lr * (self.end_lr / self.start_lr) ** fraction

    def add(self, lr: float, loss: float) -> str | None:
        """Record a step; the reason to stop after it, if any."""
        self.lrs.append(lr)
        self.losses.append(loss)
        n = len(self.losses)
        self._average = SMOOTHING * self._average + (1 - SMOOTHING) * loss
        smoothed = self._average / (1 - SMOOTHING**n)
        self._best = min(self._best, smoothed)
        if n >= self.num_steps:
            return "num_steps reached"
        if n > 1 and smoothed > DIVERGENCE * self._best:
            return f"the smoothed loss exceeded {DIVERGENCE:g} times its minimum"
        return None


class _Sweep(Callback):
    """Sets each optimizer step's learning rate and records its loss."""

    name = "lr_find"
    shared_params = ("record",)
    schedules_optimizer = True

    def __init__(self, record: _Record) -> None:
        self.record = record

    def on_fit_begin(self, ctx: Context) -> None:
        # Groups with their own rate (optimizer__param_groups) keep their
        # ratio to the estimator's lr.
        self._ratios = [group["lr"] / ctx.estimator.lr for group in ctx.optimizer.param_groups]
        self._loss, self._rows = 0.0, 0

    def on_train_batch_begin(self, ctx: Context) -> None:
        lr = self.record.rate(ctx.step)
        for group, ratio in zip(ctx.optimizer.param_groups, self._ratios, strict=True):
            group["lr"] = lr * ratio

    def on_after_loss(self, ctx: Context) -> None:
        # One host synchronisation a batch: the sweep needs every loss.
        loss = float(ctx.loss.detach())
        if not math.isfinite(loss):  # never step on it; the sweep is over
            ctx.skip_batch()
            self.record.non_finite = True
            self._stop(ctx, f"the loss was {loss}")
            return
        rows = len(ctx.y_batch)
        self._loss, self._rows = self._loss + loss * rows, self._rows + rows

    def on_after_step(self, ctx: Context) -> None:
        reason = self.record.add(self.record.rate(ctx.step - 1), self._loss / self._rows)
        self._loss, self._rows = 0.0, 0
        if reason is not None:
            self._stop(ctx, reason)

    def _stop(self, ctx: Context, reason: str) -> None:
        if self.record.stop_reason is None:
            self.record.stop_reason = reason
        ctx.request_stop(f"lr_find: {reason}")


def lr_find(
    estimator: Any,
    X: Any,
    y: Any = None,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    sample_weight: Any = None,
) -> LRFinderResult:
    """Find a learning rate by a range test: train a clone of ``estimator``
    while the learning rate grows exponentially from ``start_lr`` to
    ``end_lr``, one rate per optimizer step, and record the training loss.

    The clone trains through the estimator's own ``fit``, so every input it
    accepts works (arrays, dicts, Datasets, sparse matrices), on its device
    and precision, from its ``random_state`` (the same seed gives the same
    curve). It trains on every row of ``X`` (no validation split) and
    without the estimator's callbacks, which would checkpoint, log, stop
    early or schedule the rate the sweep sets. ``estimator`` itself is not
    changed, fitted or not.

    The sweep stops after ``num_steps`` steps (epochs follow one another as
    needed), when the smoothed loss exceeds 4 times its lowest value, or at
    the first non-finite loss (that batch is not stepped on).

    Parameters
    ----------
    estimator : NeuralRegressor, NeuralClassifier or Pipeline
        The estimator to find a rate for; a ``Pipeline`` ending in one has
        its earlier steps fitted (on clones) to transform ``X`` first.
    X : array-like, dict, Dataset or sparse matrix
        The training data, as ``fit`` takes it.
    y : array-like, optional
        The targets (None when ``X`` is a Dataset of ``(x, y)`` items).
    start_lr, end_lr : float, default=1e-7, 10.0
        The first and the last rate of the sweep, ``0 < start_lr < end_lr``.
    num_steps : int, default=100
        The optimizer steps of the sweep, at least 2.
    sample_weight : array-like, optional
        As ``fit`` takes it.

    Returns
    -------
    LRFinderResult
        ``lrs``, ``losses``, ``smoothed_losses``, ``suggestion`` (a tenth of
        the rate at the lowest smoothed loss), ``stop_reason`` and
        ``plot(ax=None)``: see [LRFinderResult][skcallback.LRFinderResult].

    Raises
    ------
    TypeError
        If ``estimator`` is not a skcallback estimator or a Pipeline ending
        in one.
    ValueError
        For ``start_lr``, ``end_lr`` or ``num_steps`` out of range (before
        any training), and for what ``fit`` refuses.

    Examples
    --------
    >>> import numpy as np
    >>> from skcallback import NeuralRegressor, lr_find
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(256, 4)).astype(np.float32)
    >>> y = X @ np.array([1.0, -2.0, 0.5, 0.0])
    >>> est = NeuralRegressor(batch_size=32, random_state=0)
    >>> result = lr_find(est, X, y, num_steps=50)
    >>> len(result.lrs) == len(result.losses) <= 50
    True
    >>> est.set_params(lr=result.suggestion, max_epochs=5).fit(X, y).n_iter_
    5
    """
    final = _check_arguments(estimator, start_lr, end_lr, num_steps)
    if final is not estimator and len(estimator.steps) > 1:  # earlier steps transform X
        X = clone(Pipeline(estimator.steps[:-1])).fit_transform(X, y)
    record = _Record(float(start_lr), float(end_lr), int(num_steps))
    work = _sweep_clone(final, record, int(num_steps))
    try:
        work.fit(X, y, sample_weight)
    except ValueError:
        # A step on a finite loss may leave weights non-finite: the next
        # loss was not, the sweep stopped, and the fit then refused the
        # weights. The sweep measured what it could.
        if not (record.non_finite and record.lrs):
            raise
    if not record.lrs:
        raise ValueError(
            f"lr_find took no optimizer step: the first loss, at lr={start_lr:g}, was not "
            "finite. Lower start_lr, or scale the inputs and targets (e.g. StandardScaler)."
        )
    result = LRFinderResult(record.lrs, record.losses, record.stop_reason or "num_steps reached")
    if result.suggestion is None and len(result.lrs) > 1:
        warnings.warn(
            "lr_find: the smoothed loss never went below its early value, so there is no "
            f"suggestion ({result.stop_reason} after {len(result.lrs)} steps). Lower "
            "start_lr, or check the data and the model.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    return result


def _check_arguments(estimator: Any, start_lr: Any, end_lr: Any, num_steps: Any) -> Any:
    """The skcallback estimator to sweep (``estimator``, or a Pipeline's
    last step); every argument error in our words, before any training."""
    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    if not isinstance(final, NeuralEstimatorBase):
        raise TypeError(
            "lr_find takes a NeuralRegressor, a NeuralClassifier or a Pipeline ending in one; "
            f"got {type(estimator).__name__}"
            + (f" ending in {type(final).__name__}" if final is not estimator else "")
            + "."
        )

    def real(value: Any) -> bool:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)

    checks = (
        ("start_lr", start_lr, real(start_lr) and 0 < start_lr < math.inf, "a float > 0"),
        (
            "end_lr",
            end_lr,
            real(end_lr) and real(start_lr) and start_lr < end_lr < math.inf,
            f"a finite float > start_lr ({start_lr!r})",
        ),
        (
            "num_steps",
            num_steps,
            positive_int(num_steps) and int(num_steps) >= 2,
            "an int >= 2",
        ),
    )
    for name, value, ok, allowed in checks:
        if not ok:
            raise InvalidParameterError(
                f"The {name!r} argument of lr_find must be {allowed}; got {value!r}."
            )
    return final


def _sweep_clone(estimator: NeuralEstimatorBase, record: _Record, num_steps: int) -> Any:
    """A clone of ``estimator`` that trains the sweep: the sweep's callback
    only (the ``cb__*`` parameters named the estimator's), every row for
    training, silent, and enough epochs for ``num_steps`` steps (an epoch
    steps at least once)."""
    params = {
        key: value
        for key, value in clone(estimator).get_params(deep=False).items()
        if not key.startswith("cb__")
    }
    params |= {
        "callbacks": [_Sweep(record)],
        "validation_fraction": None,
        "max_epochs": num_steps,
        "verbose": 0,
        "warm_start": False,
    }
    return type(estimator)(**params)
