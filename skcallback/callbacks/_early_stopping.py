"""EarlyStopping."""

from __future__ import annotations

from typing import Any

import torch

from ._base import Callback
from ._monitor import Monitor, monitored_key


class EarlyStopping(Callback):
    """Stop when a metric stops improving, or once it passes a threshold.

    Runs after every ordinary callback (``order = 1000``, as luz gives early
    stopping the largest weight), so it sees every metric of the epoch; only
    :class:`Checkpoint` runs later, to save the epoch's final state.

    Parameters
    ----------
    monitor : str, default="valid_loss"
        The metric to watch. Without validation data, ``valid_*`` falls back
        to ``train_*`` with a warning.
    mode : {"auto", "min", "max"}, default="auto"
        Whether lower or higher is better; "auto" decides from the name.
    patience : int, default=5
        Stop after exactly this many epochs without improvement.
    min_delta : float, default=0.0
        The least change that counts as an improvement.
    threshold : float, optional
        Stop as soon as the metric is better than this value (MXNet's
        ``mx.callback.early.stop``).
    restore_best : bool, default=True
        At the end of the fit, put back the weights of the best epoch. They
        are kept in host memory.

    Attributes
    ----------
    best_score_ : float
        The best value seen.
    best_epoch_ : int
        The epoch that reached it.
    stopped_epoch_ : int or None
        The epoch at which this callback stopped training.
    wait_ : int
        Epochs since the last improvement.
    """

    order = 1000

    def __init__(
        self,
        monitor: str = "valid_loss",
        mode: str = "auto",
        patience: int = 5,
        min_delta: float = 0.0,
        threshold: float | None = None,
        restore_best: bool = True,
    ) -> None:
        self.monitor = monitor
        self.mode = mode
        self.patience = patience
        self.min_delta = min_delta
        self.threshold = threshold
        self.restore_best = restore_best

    def _check_params(self) -> None:
        self._require(
            "patience",
            isinstance(self.patience, int)
            and not isinstance(self.patience, bool)
            and self.patience >= 0,
            "an int >= 0",
        )
        self._require("mode", self.mode in ("auto", "min", "max"), "'auto', 'min' or 'max'")
        self._require(
            "min_delta",
            isinstance(self.min_delta, int | float) and self.min_delta >= 0,
            "a number >= 0",
        )

    def on_fit_begin(self, ctx: Any) -> None:
        self._warned: set[str] = set()
        self._monitor: Monitor | None = None
        if not hasattr(self, "best_score_"):
            self.best_score_: float | None = None
            self.best_epoch_ = 0
            self.wait_ = 0
            self._best_weights: dict[str, torch.Tensor] | None = None
        self.stopped_epoch_: int | None = None

    def on_epoch_end(self, ctx: Any) -> None:
        key = monitored_key("EarlyStopping", self.monitor, ctx.metrics, self._warned)
        if self._monitor is None:  # the key is the same every epoch of a fit
            self._monitor = Monitor(key, self.mode, self.min_delta)
        monitor = self._monitor
        value = monitor.value(ctx.metrics)
        if monitor.is_improvement(value, self.best_score_, ctx.callbacks):
            self.best_score_, self.best_epoch_, self.wait_ = value, ctx.epoch, 0
            if self.restore_best:
                self._best_weights = {
                    name: tensor.detach().to("cpu", copy=True)
                    for name, tensor in ctx.module.state_dict().items()
                }
        else:
            self.wait_ += 1
        if self.threshold is not None and monitor.passes(value, self.threshold, ctx.callbacks):
            self.stopped_epoch_ = ctx.epoch
            ctx.request_stop(f"early_stopping: {key}={value:.6g} passed {self.threshold}")
        elif self.wait_ >= self.patience:
            self.stopped_epoch_ = ctx.epoch
            ctx.request_stop(
                f"early_stopping: no improvement of {key} for {self.wait_} epochs "
                f"(best {self.best_score_} at epoch {self.best_epoch_})"
            )

    def on_fit_end(self, ctx: Any) -> None:
        if (
            self.restore_best
            and getattr(self, "_best_weights", None) is not None
            and ctx.exception is None
            and self.best_epoch_ != ctx.epoch
        ):
            ctx.module.load_state_dict(self._best_weights)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["best_weights"] = getattr(self, "_best_weights", None)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        self._best_weights = state.pop("best_weights", None)
        super().load_state_dict(state)
