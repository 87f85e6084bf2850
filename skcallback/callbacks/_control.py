"""Callbacks that guard training: TerminateOnNaN, GradientClipping, TimeLimit."""

from __future__ import annotations

import math
import numbers
import time

import torch

from .._context import Context
from ._base import Callback, positive_number, real_number


class TerminateOnNaN(Callback):
    """Stop when a training loss, or a metric of the epoch, is NaN or infinite.

    The loss is checked before backward, so the bad batch never reaches the
    weights: its step is skipped and training stops. This reads the loss on
    every batch (one host synchronisation per batch). At the end of each
    phase, the metrics that must stay finite (``valid_loss``, EpochScoring's
    scores: those declared ``finite``) are checked too: a non-finite one
    stops training after the epoch, where
    without this callback the fit fails as diverged. It runs after the
    ordinary callbacks (``order = 800``), so it sees the scores they record.

    Attributes
    ----------
    stopped_step_ : int or None
        The optimizer step count when the bad loss appeared.

    Notes
    -----
    Memory: the step at which it stopped; nothing else.
    """

    name = "terminate_on_nan"
    order = 800

    def on_fit_begin(self, ctx: Context) -> None:
        if ctx.plan.resumed_from is None:
            self.stopped_step_: int | None = None

    def on_after_loss(self, ctx: Context) -> None:
        if ctx.phase == "train" and not bool(torch.isfinite(ctx.loss).all()):
            ctx.skip_batch()
            self.stopped_step_ = ctx.step
            ctx.request_stop(
                f"terminate_on_nan: loss is {ctx.loss.item()} at epoch {ctx.epoch}, "
                f"batch {ctx.batch}"
            )

    def _check_metrics(self, ctx: Context) -> None:
        # The training loss was watched batch by batch; it is NaN, not
        # diverged, when every batch of the epoch was skipped.
        for key in ctx.plan.finite_metrics:
            value = ctx.metrics.get(key)
            if isinstance(value, numbers.Real) and not math.isfinite(value):
                self.stopped_step_ = ctx.step
                ctx.request_stop(f"terminate_on_nan: {key} is {value} at epoch {ctx.epoch}")
                return

    on_train_end = on_valid_end = _check_metrics


class GradientClipping(Callback):
    """Clip the gradient norm before each optimizer step.

    Parameters
    ----------
    max_norm : float
        The largest allowed norm of all gradients together.
    norm_type : float, default=2.0
        The p of the p-norm (``inf`` for the max norm).

    Notes
    -----
    Memory: nothing.
    """

    parameter_constraints = {
        "max_norm": (positive_number, "a number > 0"),
        "norm_type": (real_number, "a number (float('inf') for the max norm)"),
    }

    def __init__(self, max_norm: float, norm_type: float = 2.0) -> None:
        self.max_norm = max_norm
        self.norm_type = norm_type

    def on_before_step(self, ctx: Context) -> None:
        if ctx.grad_scaler is not None:  # clip the true gradients, not the scaled ones
            ctx.grad_scaler.unscale_(ctx.optimizer)
        torch.nn.utils.clip_grad_norm_(
            ctx.module.parameters(), self.max_norm, norm_type=self.norm_type
        )


class TimeLimit(Callback):
    """Stop training once a time budget is spent (MindSpore's
    ``StopTimeMonitor``), checked after every training batch.

    Parameters
    ----------
    seconds : float
        The budget, counted from the start of the fit.

    Attributes
    ----------
    stopped_epoch_ : int or None
        The epoch in which the budget ran out.

    Notes
    -----
    Memory: the fit's start time and the epoch at which it stopped.
    """

    parameter_constraints = {"seconds": (positive_number, "a number > 0")}

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_fit_begin(self, ctx: Context) -> None:
        self._started = time.monotonic()
        if ctx.plan.resumed_from is None:
            self.stopped_epoch_: int | None = None

    def on_train_batch_end(self, ctx: Context) -> None:
        if time.monotonic() - self._started > self.seconds:
            self.stopped_epoch_ = ctx.epoch
            ctx.request_stop(f"time_limit: {self.seconds} s spent")
