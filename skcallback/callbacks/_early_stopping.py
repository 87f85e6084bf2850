"""EarlyStopping."""

from __future__ import annotations

import numbers
from typing import Any

import torch

from .._context import Context
from .._untrusted import check_weights
from ._base import Callback, non_negative_int, real_number
from ._monitor import Monitor


class EarlyStopping(Callback):
    """Stop when a metric stops improving, or once it passes a threshold.

    Runs after every ordinary callback (``order = 1000``, as luz gives early
    stopping the largest weight), so it sees every metric of the epoch; only
    [`Checkpoint`][skcallback.callbacks.Checkpoint] runs later, to save the epoch's final state.

    Parameters
    ----------
    monitor : str, default="valid_loss"
        The metric to watch; it must be recorded by the fit (checked before
        training). Without validation data, ``valid_*`` falls back to
        ``train_*`` with a warning.
    mode : {"auto", "min", "max"}, default="auto"
        Whether lower or higher is better; "auto" takes the direction the
        metric was declared with (losses: lower; ``EpochScoring`` scores:
        higher unless ``lower_is_better=True``).
    patience : int, default=5
        Stop after exactly this many epochs without improvement. Epochs
        that do not record the metric (the estimator's ``validate_every``,
        ``EpochScoring(every=k)``) do not count: neither improvement nor
        wait.
    min_delta : float, default=0.0
        The least change that counts as an improvement.
    threshold : float, optional
        Stop as soon as the metric is better than this value (MXNet's
        ``mx.callback.early.stop``).
    restore_best : bool, default=True
        At the end of the fit, put back the weights of the best epoch.

        Memory: during the fit, a copy of the best epoch's weights (the size
        of the module's ``state_dict``) is kept in host memory, and is in
        every checkpoint, so a resumed fit restores them too. Once the fit
        ends the module holds them, and the copy is dropped: the fitted
        estimator, its pickle and its file hold one set of weights. Between
        ``partial_fit`` calls (training goes on, and the module is the last
        epoch's) and after a failed fit, the copy is kept; a warm start
        copies the module it starts from, its best so far.

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

    Notes
    -----
    Across calls to ``fit`` with ``warm_start=True`` the best score and
    weights are kept (the validation split is kept too, so scores compare),
    and each call gets ``patience`` epochs to improve on them. Across
    ``partial_fit`` calls, each one epoch, the count of epochs without
    improvement carries on; the call in which it reaches ``patience`` sets
    ``stop_reason_`` and restores the best weights, and a later call trains
    on from them.

    Examples
    --------
    >>> import numpy as np
    >>> from skcallback import NeuralRegressor
    >>> from skcallback.callbacks import EarlyStopping
    >>> X = np.random.RandomState(0).normal(size=(200, 3))
    >>> y = X.sum(axis=1)
    >>> est = NeuralRegressor(lr=1e-2, max_epochs=200, random_state=0,
    ...                       callbacks=[EarlyStopping(patience=3)]).fit(X, y)
    >>> est.n_iter_ < 200, est.stop_reason_.startswith("early_stopping")
    (True, True)
    >>> stopper = est.callbacks_.early_stopping
    >>> stopper.stopped_epoch_ == est.n_iter_ == stopper.best_epoch_ + 3
    True
    """

    order = 1000
    parameter_constraints = {
        "patience": (non_negative_int, "an int >= 0"),
        "mode": (lambda v: v in ("auto", "min", "max"), "'auto', 'min' or 'max'"),
        "min_delta": (lambda v: real_number(v) and v >= 0, "a number >= 0"),
        "threshold": (lambda v: v is None or real_number(v), "None or a number"),
    }

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

    def setup(self, plan: Any) -> None:
        self._monitor = Monitor.for_plan(
            plan, "EarlyStopping", self.monitor, self.mode, self.min_delta
        )
        if hasattr(self, "best_score_") and getattr(self, "best_key_", None) not in (
            None,
            self._monitor.key,
        ):
            # The metric changed (a partial_fit without validation after a fit
            # with it): a best score of another metric means nothing here.
            del self.best_score_
        self.best_key_ = self._monitor.key
        weights = getattr(self, "_best_weights", None)
        if weights is not None:  # restored: to be put into this module at the end
            check_weights(weights, plan.estimator.module_, "EarlyStopping's best weights")
        self._partial = plan.partial
        # A new call to fit on a fitted estimator (warm start) gets `patience`
        # epochs anew; a resumed fit carries on counting where it stopped.
        self._new_patience = plan.continuing and not plan.partial

    def on_fit_begin(self, ctx: Context) -> None:
        if not hasattr(self, "best_score_"):
            self.best_score_: float | None = None
            self.best_epoch_ = 0
            self.wait_ = 0
            self._best_weights: dict[str, torch.Tensor] | None = None
        if self._new_patience:
            self.wait_ = 0
        if getattr(self, "_best_in_module", False) and self.restore_best:
            # The previous fit ended on its best weights and dropped the copy.
            self._best_weights = _host_copy(ctx.module)
        self._best_in_module = False
        if ctx.plan.resumed_from is None:
            self.stopped_epoch_: int | None = None

    def on_epoch_end(self, ctx: Context) -> None:
        monitor = self._monitor
        value = monitor.value(ctx.metrics)
        if value is None:  # not recorded this epoch (validate_every): no wait either
            return
        if monitor.is_improvement(value, self.best_score_):
            self.best_score_, self.best_epoch_, self.wait_ = value, ctx.epoch, 0
            if self.restore_best:
                self._best_weights = _host_copy(ctx.module)
        else:
            self.wait_ += 1
        key = monitor.key
        if self.threshold is not None and monitor.passes(value, self.threshold):
            self.stopped_epoch_ = ctx.epoch
            ctx.request_stop(f"early_stopping: {key}={value:.6g} passed {self.threshold}")
        elif self.wait_ > 0 and self.wait_ >= self.patience:
            self.stopped_epoch_ = ctx.epoch
            best = (
                "no finite value yet"
                if self.best_score_ is None
                else f"best {self.best_score_:.6g} at epoch {self.best_epoch_}"
            )
            ctx.request_stop(
                f"early_stopping: no improvement of {key} for {self.wait_} "
                f"epoch{'s' if self.wait_ != 1 else ''} ({best})"
            )

    def on_fit_end(self, ctx: Context) -> None:
        if ctx.exception is not None:
            return
        if self._partial:
            # A partial_fit call is one epoch of a longer training: restoring
            # after every call would freeze the weights. They are restored in
            # the call where this callback stops, and a later call trains on.
            if self.stopped_epoch_ is None:
                return
            self.wait_ = 0
        weights = getattr(self, "_best_weights", None)
        if self.restore_best and weights is not None:
            if self.best_epoch_ != ctx.epoch:
                ctx.module.load_state_dict(weights)
            # The module holds the best weights now: a second copy in the
            # fitted estimator would only double its size.
            self._best_weights = None
            self._best_in_module = True

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["best_weights"] = getattr(self, "_best_weights", None)
        state["best_in_module"] = getattr(self, "_best_in_module", False)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        weights = state.pop("best_weights", None)
        in_module = state.pop("best_in_module", False)
        if not isinstance(in_module, bool):
            raise ValueError("EarlyStopping state: best_in_module must be True or False.")
        self._best_in_module = in_module
        numbers_ok = all(
            state.get(key) is None or isinstance(state.get(key), numbers.Real)
            for key in ("best_score_", "best_epoch_", "wait_", "stopped_epoch_")
        )
        if not numbers_ok:
            raise ValueError("EarlyStopping state: malformed best score or epochs.")
        if weights is not None and not (
            isinstance(weights, dict)
            and all(
                isinstance(v, torch.Tensor) and (not v.is_floating_point() or v.isfinite().all())
                for v in weights.values()
            )
        ):
            raise ValueError("EarlyStopping state: the best weights are not finite tensors.")
        self._best_weights = weights
        super().load_state_dict(state)


def _host_copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The module's weights, copied to host memory."""
    return {
        name: tensor.detach().to("cpu", copy=True) for name, tensor in module.state_dict().items()
    }
