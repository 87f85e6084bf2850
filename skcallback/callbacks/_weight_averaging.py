"""WeightAveraging: an exponential moving average (EMA) or a stochastic
weight average (SWA) of the weights, which the fitted module ends with."""

from __future__ import annotations

import numbers
from typing import Any

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from .._context import Context
from .._data import feed
from ._base import Callback, positive_int, real_number


class WeightAveraging(Callback):
    """Average the weights during training; the fitted ``module_`` holds the
    average.

    - ``kind="ema"``: after every optimizer step from epoch ``start_epoch``
      on, ``average = decay * average + (1 - decay) * weights`` over every
      floating-point tensor of the module's state (parameters, and buffers
      such as batch-norm statistics); the average starts as the weights
      after the first such step.
    - ``kind="swa"``: at the end of every epoch from ``start_epoch`` on, the
      running mean of the parameters (stochastic weight averaging). At the
      end of the fit, batch-norm layers' statistics are recomputed for the
      averaged weights with one pass over the training batches (only those
      layers in training mode: dropout stays off).

    Each call to ``fit`` averages its own epochs (a warm start begins a new
    average from the fitted weights); ``partial_fit`` is refused, as each
    call would put averaged weights into the training. Runs after
    [`EarlyStopping`][skcallback.callbacks.EarlyStopping] (``order =
    1500``): with ``restore_best=True`` as well, the average still ends in
    the module.

    Parameters
    ----------
    kind : {"ema", "swa"}, default="ema"
        Exponential moving average at every step, or mean at every epoch.
    decay : float, default=0.999
        The EMA's weight of the past, in [0, 1); unused by SWA.
    start_epoch : int, default=1
        The first epoch (1-based, counted as ``ctx.epoch``) that is
        averaged.
    use_for_validation : bool, default=False
        Whether validation (``valid_loss``, ``EpochScoring``'s validation
        scores, and so what ``EarlyStopping`` and ``Checkpoint`` watch)
        uses the averaged weights, once there are some. SWA's batch-norm
        statistics are then the trained weights' until the end.

    Attributes
    ----------
    n_averaged_ : int
        Steps (EMA) or epochs (SWA) averaged in this fit so far.

    Notes
    -----
    Memory: one copy of the averaged tensors on the module's device during
    the fit (and a second one during validation with
    ``use_for_validation=True``); none after it, when the average is in
    ``module_``. The average is part of ``state_dict``, so a checkpoint
    holds it and a resumed fit ends bit for bit as the uninterrupted one.

    Examples
    --------
    >>> import numpy as np
    >>> from skcallback import NeuralRegressor
    >>> from skcallback.callbacks import WeightAveraging
    >>> X = np.random.RandomState(0).normal(size=(64, 3)).astype("float32")
    >>> est = NeuralRegressor(max_epochs=3, random_state=0,
    ...                       callbacks=[WeightAveraging(decay=0.9)]).fit(X, X.sum(1))
    >>> est.callbacks_.weight_averaging.n_averaged_ == est.n_steps_
    True
    """

    order = 1500
    parameter_constraints = {
        "kind": (lambda v: v in ("ema", "swa"), "'ema' or 'swa'"),
        "decay": (
            lambda v: real_number(v) and 0 <= float(v) < 1,
            "a number in [0, 1)",
        ),
        "start_epoch": (positive_int, "an int >= 1"),
        "use_for_validation": (lambda v: isinstance(v, bool), "True or False"),
    }

    def __init__(
        self,
        kind: str = "ema",
        decay: float = 0.999,
        start_epoch: int = 1,
        use_for_validation: bool = False,
    ) -> None:
        self.kind = kind
        self.decay = decay
        self.start_epoch = start_epoch
        self.use_for_validation = use_for_validation

    def setup(self, plan: Any) -> None:
        self._require(
            "kind",
            not plan.partial,
            "used with fit, not partial_fit (each call would put averaged weights into "
            "the training)",
        )
        saved = getattr(self, "_average", None)
        if plan.resumed_from is not None and saved is not None:
            own = dict(self._tensors(plan.estimator.module_))
            if set(saved) != set(own) or any(
                saved[k].shape != own[k].shape or saved[k].dtype != own[k].dtype for k in own
            ):
                raise ValueError(
                    f"{plan.resumed_from} is malformed: WeightAveraging's average is not of "
                    "the module's tensors."
                )

    def idle_hooks(self) -> set[str]:
        idle = {"on_epoch_end"} if self.kind == "ema" else {"on_after_step"}
        if not self.use_for_validation:
            idle |= {"on_valid_begin", "on_valid_end"}
        return idle

    def _tensors(self, module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
        """The tensors averaged, by name: EMA's every floating-point entry of
        the state, SWA's parameters (its buffers are recomputed)."""
        if self.kind == "swa":
            return [(name, p.detach()) for name, p in module.named_parameters()]
        return [(k, v) for k, v in module.state_dict().items() if v.is_floating_point()]

    def on_fit_begin(self, ctx: Context) -> None:
        named = self._tensors(ctx.module)
        self._live = [tensor for _, tensor in named]
        self._names = [name for name, _ in named]
        saved = getattr(self, "_average", None)
        if ctx.plan.resumed_from is None or saved is None:
            self._average: dict[str, torch.Tensor] | None = None
            self.n_averaged_ = 0
        else:  # restored from the checkpoint
            device = self._live[0].device
            self._average = {k: v.to(device, copy=True) for k, v in saved.items()}

    def on_after_step(self, ctx: Context) -> None:
        if ctx.epoch >= self.start_epoch:
            self._update(1.0 - float(self.decay))

    def on_epoch_end(self, ctx: Context) -> None:
        if ctx.epoch >= self.start_epoch:
            self._update(1.0 / (self.n_averaged_ + 1))

    @torch.no_grad()
    def _update(self, weight: float) -> None:
        """Move the average towards the weights by ``weight``."""
        self.n_averaged_ += 1
        if self._average is None:
            self._average = {n: t.clone() for n, t in zip(self._names, self._live, strict=True)}
            return
        averages = [self._average[name] for name in self._names]
        torch._foreach_lerp_(averages, self._live, weight)

    @torch.no_grad()
    def on_valid_begin(self, ctx: Context) -> None:
        if self._average is not None:
            self._held: list[torch.Tensor] | None = [t.clone() for t in self._live]
            torch._foreach_copy_(self._live, [self._average[n] for n in self._names])

    @torch.no_grad()
    def on_valid_end(self, ctx: Context) -> None:
        held = getattr(self, "_held", None)
        if held is not None:
            torch._foreach_copy_(self._live, held)
            self._held = None

    def on_exception(self, ctx: Context) -> None:
        # A failure in validation: the trained weights go back (a checkpoint
        # written after it would otherwise hold the average as weights).
        self.on_valid_end(ctx)

    @torch.no_grad()
    def on_fit_end(self, ctx: Context) -> None:
        average, self._average = self._average, None  # no copy stays after the fit
        self._live = []
        if ctx.exception is not None or average is None:
            return
        module = ctx.module
        for name, tensor in self._tensors(module):
            tensor.copy_(average[name])
        if self.kind == "swa":
            _update_batch_norm(module, ctx.plan.train, ctx.plan.batch_size)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        average = getattr(self, "_average", None)
        state["average"] = (
            None
            if average is None
            else {k: v.detach().to("cpu", copy=True) for k, v in average.items()}
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        average = state.pop("average", None)
        n = state.get("n_averaged_", 0)
        if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 0:
            raise ValueError("WeightAveraging state: n_averaged_ must be an int >= 0.")
        if average is not None and not (
            isinstance(average, dict)
            and all(
                isinstance(k, str)
                and isinstance(v, torch.Tensor)
                and v.is_floating_point()
                and bool(torch.isfinite(v).all())
                for k, v in average.items()
            )
        ):
            raise ValueError("WeightAveraging state: the average is not finite tensors by name.")
        super().load_state_dict(state)
        self._average = average


@torch.no_grad()
def _update_batch_norm(module: torch.nn.Module, train: Any, batch_size: int) -> None:
    """Recompute the batch-norm statistics of ``module``'s weights with
    one pass over the training batches: a cumulative mean
    (``momentum=None``), as ``torch.optim.swa_utils.update_bn``."""
    layers = [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not layers:
        return
    modes = {m: m.training for m in module.modules()}
    momenta = {layer: layer.momentum for layer in layers}
    try:
        module.eval()  # dropout off; only the batch-norm layers learn
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None
            layer.train()
        for X_b, _, _ in train.batches(batch_size, None):
            feed(module, X_b)
    finally:
        for layer, momentum in momenta.items():
            layer.momentum = momentum
        for m, training in modes.items():
            m.train(training)
