"""LRScheduler: any torch.optim.lr_scheduler, per epoch or per batch."""

from __future__ import annotations

import inspect
from typing import Any

import torch

from ._base import Callback
from ._monitor import lower_is_better, monitored_key


class LRScheduler(Callback):
    """Schedule the learning rate with a ``torch.optim.lr_scheduler`` class.

    The scheduler's keyword arguments are parameters of this callback, so
    they are tunable as ``cb__lr_scheduler__<kwarg>``. The learning rate of
    each epoch lands in the history under ``lr``.

    Parameters
    ----------
    policy : str or type
        A class of ``torch.optim.lr_scheduler`` or its name, e.g.
        ``"StepLR"``, ``"CosineAnnealingLR"``, ``"OneCycleLR"``,
        ``"ReduceLROnPlateau"``.
    step_every : {"epoch", "batch"}, default="epoch"
        Step after each epoch or after each optimizer step.
    monitor : str, default="valid_loss"
        The metric ``ReduceLROnPlateau`` reads (``train_*`` without
        validation data). Its ``mode`` defaults to "min" for losses and
        errors and "max" for scores, as for EarlyStopping.
    **policy_kwargs
        Arguments of the scheduler. ``OneCycleLR`` gets its number of steps
        filled in from the fit when not given.

    Examples
    --------
    >>> from skcallback.callbacks import LRScheduler
    >>> LRScheduler("StepLR", step_size=10, gamma=0.5).get_params()["gamma"]
    0.5
    """

    def __init__(
        self,
        policy: str | type = "StepLR",
        step_every: str = "epoch",
        monitor: str = "valid_loss",
        **policy_kwargs: Any,
    ) -> None:
        self.policy = policy
        self.step_every = step_every
        self.monitor = monitor
        for key, value in policy_kwargs.items():
            setattr(self, key, value)

    def _policy_kwarg_names(self) -> list[str]:
        own = set(inspect.signature(LRScheduler.__init__).parameters)
        return sorted(
            k for k in vars(self) if k not in own and not k.startswith("_") and not k.endswith("_")
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = {"policy": self.policy, "step_every": self.step_every, "monitor": self.monitor}
        params.update({k: getattr(self, k) for k in self._policy_kwarg_names()})
        return params

    def set_params(self, **params: Any) -> LRScheduler:
        # Scheduler arguments are open-ended; the scheduler checks them at fit.
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def _policy_class(self) -> type:
        policy = self.policy
        if isinstance(policy, str):
            found = getattr(torch.optim.lr_scheduler, policy, None)
            if not isinstance(found, type):
                names = sorted(
                    n
                    for n, v in vars(torch.optim.lr_scheduler).items()
                    if isinstance(v, type)
                    and n.endswith(("LR", "Plateau"))
                    and not n.startswith("_")
                )
                raise ValueError(f"Unknown LR scheduler {policy!r}; choose one of {names}.")
            return found
        return policy

    def _check_params(self) -> None:
        self._require("step_every", self.step_every in ("epoch", "batch"), "'epoch' or 'batch'")
        plateau = self._policy_class() is torch.optim.lr_scheduler.ReduceLROnPlateau
        self._require(
            "step_every",
            not (plateau and self.step_every == "batch"),
            "'epoch' for ReduceLROnPlateau, which reads an epoch metric",
        )

    def _inactive_hooks(self) -> set[str]:
        return {"on_epoch_end"} if self.step_every == "batch" else {"on_after_step"}

    def on_fit_begin(self, ctx: Any) -> None:
        self._cls = self._policy_class()
        self._scheduler = None
        self._warned: set[str] = set()

    def _build(self, ctx: Any) -> None:
        kwargs = {k: getattr(self, k) for k in self._policy_kwarg_names()}
        if self._cls is torch.optim.lr_scheduler.OneCycleLR and not (
            {"total_steps", "epochs"} & set(kwargs)
        ):
            remaining = ctx.max_epochs - ctx.epoch + 1
            per_epoch = ctx.n_batches if self.step_every == "batch" else 1
            kwargs["total_steps"] = max(remaining * per_epoch, 1)
        if self._cls is torch.optim.lr_scheduler.ReduceLROnPlateau and "mode" not in kwargs:
            # Same rule as EarlyStopping: accuracies are maximised, losses minimised.
            kwargs["mode"] = "min" if lower_is_better(self.monitor, ctx.callbacks) else "max"
        try:
            self._scheduler = self._cls(ctx.optimizer, **kwargs)
        except TypeError as exc:
            raise ValueError(
                f"Could not build {self._cls.__name__} with {kwargs}: {exc}. Set its "
                "arguments as LRScheduler keyword arguments (cb__lr_scheduler__<name>)."
            ) from exc
        pending = getattr(self, "_pending_state", None)
        if pending:
            self._scheduler.load_state_dict(pending)
            self._pending_state = None

    def on_train_begin(self, ctx: Any) -> None:
        if self._scheduler is None:
            self._build(ctx)

    def on_after_step(self, ctx: Any) -> None:
        self._scheduler.step()

    def on_epoch_end(self, ctx: Any) -> None:
        if isinstance(self._scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            key = monitored_key("LRScheduler", self.monitor, ctx.metrics, self._warned)
            self._scheduler.step(float(ctx.metrics[key]))
        else:
            self._scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        scheduler = getattr(self, "_scheduler", None)
        return {"scheduler": None if scheduler is None else scheduler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pending_state = state.get("scheduler")
