"""LRScheduler: any torch.optim.lr_scheduler, per epoch or per batch."""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch

from .. import _internals
from .._context import Context
from ._base import Callback


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
        validation data). Its ``mode`` defaults to the metric's declared
        direction, as for EarlyStopping; it does not step in epochs that
        do not record the metric (``validate_every``), so its patience
        counts the epochs that do.
    **policy_kwargs
        Arguments of the scheduler, checked against its signature before
        training. Any argument of the policy can be tuned as
        ``cb__lr_scheduler__<name>`` even when not passed here.
        ``OneCycleLR`` gets its number of steps filled in from the fit when
        not given.

    Notes
    -----
    Memory: the torch scheduler, a few numbers that refer to the estimator's
    optimizer (never a copy of it or of the weights).

    ``ReduceLROnPlateau`` decides what an improvement is by torch's own rule,
    not by [`Monitor`][skcallback.callbacks.Monitor]'s, which
    EarlyStopping and Checkpoint follow. They agree on ties (a value equal
    to the best, or to the best moved by the threshold, is no improvement)
    and on NaN (never an improvement). They differ in:

    - the margin: torch's default ``threshold_mode="rel"`` asks for
      ``value < best * (1 - threshold)`` (``> best * (1 + threshold)`` in
      ``"max"`` mode, which a negative score makes looser, not stricter)
      with ``threshold=1e-4``, where ``min_delta`` is absolute.
      ``threshold_mode="abs", threshold=d`` is EarlyStopping's
      ``min_delta=d``. (EarlyStopping's own ``threshold`` is another thing:
      a value to pass.)
    - infinities: torch takes ``-inf`` (``+inf`` in ``"max"`` mode) as a
      best nothing beats; Monitor never takes an infinity as best.
    - patience: torch lowers the rate after ``patience + 1`` epochs without
      improvement, EarlyStopping stops after ``patience``.

    Examples
    --------
    >>> from skcallback.callbacks import LRScheduler
    >>> LRScheduler("StepLR", step_size=10, gamma=0.5).get_params()["gamma"]
    0.5
    """

    schedules_optimizer = True
    parameter_constraints = {
        "step_every": (lambda v: v in ("epoch", "batch"), "'epoch' or 'batch'"),
    }

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

    _OWN = ("policy", "step_every", "monitor")

    def _policy_kwarg_names(self) -> list[str]:
        return sorted(
            k
            for k in vars(self)
            if k not in (*self._OWN, "name", "order")
            and not k.startswith("_")
            and not k.endswith("_")
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = {"policy": self.policy, "step_every": self.step_every, "monitor": self.monitor}
        params.update({k: getattr(self, k) for k in self._policy_kwarg_names()})
        return params

    def set_params(self, **params: Any) -> LRScheduler:
        """Set parameters: ``policy``, ``step_every``, ``monitor`` or any
        argument of the policy (tunable without being passed first).

        Parameters
        ----------
        **params
            Parameters by name, e.g. ``gamma=0.5`` for ``"StepLR"``.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For a name that is neither (when the policy is known).
        """
        if "policy" in params:
            self.policy = params["policy"]
        allowed = self._policy_arguments()
        unknown = [] if allowed is None else sorted(set(params) - set(self._OWN) - allowed)
        if unknown:
            raise ValueError(
                f"Invalid parameter(s) {unknown} for LRScheduler with policy "
                f"{self._policy_name()}; valid parameters are ['monitor', 'policy', "
                f"'step_every'] and the policy's arguments {sorted(allowed or ())}."
            )
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def _policy_name(self) -> str:
        return (
            self.policy if isinstance(self.policy, str) else getattr(self.policy, "__name__", "?")
        )

    def _policy_arguments(self) -> set[str] | None:
        """The keyword arguments the policy takes (None: any, or unknown)."""
        try:
            signature = inspect.signature(self._policy_class())
        except (ValueError, TypeError):
            return None
        params = signature.parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return None
        return {p.name for p in params if p.name != "optimizer"}

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
                raise ValueError(
                    f"The 'policy' parameter of LRScheduler must be a torch.optim.lr_scheduler "
                    f"class or one of {names}; got {policy!r}."
                )
            return found
        if not isinstance(policy, type):
            raise ValueError(
                f"The 'policy' parameter of LRScheduler must be a scheduler class or name; "
                f"got {policy!r}."
            )
        return policy

    def setup(self, plan: Any) -> None:
        cls = self._policy_class()
        plateau = cls is torch.optim.lr_scheduler.ReduceLROnPlateau
        self._require(
            "step_every",
            not (plateau and self.step_every == "batch"),
            "'epoch' for ReduceLROnPlateau, which reads an epoch metric",
        )
        kwargs = {k: getattr(self, k) for k in self._policy_kwarg_names()}
        allowed = self._policy_arguments()
        unknown = sorted(set(kwargs) - allowed) if allowed is not None else []
        if unknown:
            raise ValueError(
                f"{unknown} are not arguments of {cls.__name__}; it takes {sorted(allowed or ())}."
            )
        if cls is torch.optim.lr_scheduler.OneCycleLR and not {"total_steps", "epochs"} & set(
            kwargs
        ):
            per_epoch = plan.n_batches if self.step_every == "batch" else 1
            kwargs["total_steps"] = max((plan.max_epochs - plan.first_epoch) * per_epoch, 1)
        self._key = None
        if plateau:
            self._key = plan.monitored("LRScheduler", self.monitor)
            if "mode" not in kwargs:
                kwargs["mode"] = "min" if plan.minimizes("LRScheduler", self._key) else "max"
        optimizer = plan.estimator.optimizer_
        groups = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
        self._try_first_step(cls, optimizer, groups, kwargs)
        try:
            self._scheduler = cls(optimizer, **kwargs)
        except Exception as exc:
            raise ValueError(
                f"Could not build {cls.__name__} with {kwargs}: {type(exc).__name__}: {exc}. "
                "Set its arguments as LRScheduler keyword arguments "
                "(cb__lr_scheduler__<name>)."
            ) from exc
        pending = getattr(self, "_pending_state", None)
        if pending:  # a warm start or a resume: the schedule carries on
            fresh = self._scheduler.state_dict()
            self._scheduler.load_state_dict(_progress(fresh, pending, cls.__name__))
            self._pending_state: dict[str, Any] | None = None
            # Building the scheduler reset the learning rates (and momenta,
            # for OneCycleLR) to their start; the optimizer already held where
            # the schedule was.
            for group, saved in zip(optimizer.param_groups, groups, strict=True):
                group.update(saved)
            if plan.continuing:
                self._check_cycle_left(plan)

    def _try_first_step(
        self, cls: type, optimizer: Any, groups: list[dict[str, Any]], kwargs: dict[str, Any]
    ) -> None:
        """Build the policy on a throwaway optimizer with the fit's settings
        and step it once, so that arguments it only divides by at its first
        step (``StepLR(step_size=0)``, ``CosineAnnealingLR(T_max=0)``) fail
        now, in our words, rather than after the first epoch."""
        device = next((p.device for g in optimizer.param_groups for p in g["params"]), None)
        try:
            throwaway = type(optimizer)(
                [{**group, "params": [torch.zeros(1, device=device)]} for group in groups]
            )
            scheduler = cls(throwaway, **kwargs)
        except Exception:  # building the real one says what is wrong
            return
        given = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
        # Torch's mark of an optimizer that has stepped: without it, the
        # scheduler warns that it steps first (catch_warnings is not
        # thread-safe, and stepping the throwaway would reach step hooks).
        _internals.record_step_for_scheduler(throwaway)
        try:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(0.0)
            else:
                scheduler.step()
        except Exception as exc:
            raise ValueError(
                f"LRScheduler({self._policy_name()!r}, {given}) fails at its first step: "
                f"{type(exc).__name__}: {exc}. Check the policy's arguments (a step_size "
                "or T_max must be > 0)."
            ) from exc

    def _check_cycle_left(self, plan: Any) -> None:
        """OneCycleLR cannot step past its cycle: say so before training."""
        scheduler = self._scheduler
        if not isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR):
            return
        per_epoch = plan.n_batches if self.step_every == "batch" else 1
        needed = scheduler.last_epoch + (plan.max_epochs - plan.first_epoch) * per_epoch
        if needed > scheduler.total_steps:
            raise ValueError(
                f"OneCycleLR's cycle of {scheduler.total_steps} steps would be exceeded by this "
                f"fit ({needed} steps); its cycle covered the first fit. Refit with "
                "warm_start=False, or pass total_steps covering every fit."
            )

    def idle_hooks(self) -> set[str]:
        return {"on_epoch_end"} if self.step_every == "batch" else {"on_after_step"}

    def on_after_step(self, ctx: Context) -> None:
        self._scheduler.step()

    def on_epoch_end(self, ctx: Context) -> None:
        if self._key is not None:
            # An epoch that did not record the metric (validate_every,
            # EpochScoring's every) neither improves nor counts to patience.
            if self._key in ctx.metrics:
                self._scheduler.step(float(ctx.metrics[self._key]))
        else:
            self._scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        scheduler = getattr(self, "_scheduler", None)
        if scheduler is None:  # restored but not yet built: keep what was loaded
            return {"scheduler": getattr(self, "_pending_state", None)}
        return {"scheduler": scheduler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Keep the scheduler's saved state until ``setup`` builds the
        scheduler, which checks it against a fresh one's.

        Parameters
        ----------
        state : dict
            ``{"scheduler": <the scheduler's state_dict, or None>}``.

        Raises
        ------
        ValueError
            If ``state`` is not of that form.
        """
        saved = state.get("scheduler") if isinstance(state, dict) else None
        if set(state if isinstance(state, dict) else ()) != {"scheduler"} or not (
            saved is None or (isinstance(saved, dict) and all(isinstance(k, str) for k in saved))
        ):
            raise ValueError("LRScheduler state: expected {'scheduler': the scheduler's state}.")
        self._pending_state = saved


#: The entries of a scheduler's state that record its progress; the others
#: are its settings, which the callback's parameters give.
_PROGRESS = frozenset(
    {
        "last_epoch",
        "_step_count",
        "_last_lr",
        "_is_initial",
        "_get_lr_called_within_step",
        "base_lrs",
        "best",
        "num_bad_epochs",
        "cooldown_counter",
        "T_cur",
        "T_i",
        "total_steps",
        "_schedule_phases",
    }
)


def _progress(fresh: dict[str, Any], saved: dict[str, Any], policy: str) -> dict[str, Any]:
    """The state to load into a freshly built scheduler: its own settings
    (from this callback's parameters) and the saved progress, which must
    have the fresh state's entries and types.

    Raises
    ------
    ValueError
        If the saved state has other entries, or progress of another type,
        NaN, or infinite where the fresh one is finite.
    """
    if set(saved) != set(fresh):
        raise ValueError(
            f"The saved {policy} state has the entries {sorted(saved)}; a {policy} built from "
            f"this callback's parameters has {sorted(fresh)}."
        )
    for key in _PROGRESS & set(fresh):
        if not _like(fresh[key], saved[key]):
            raise ValueError(
                f"The saved {policy} state has {key}={saved[key]!r}, which is not {policy} "
                f"progress like {fresh[key]!r}."
            )
    return fresh | {key: saved[key] for key in _PROGRESS & set(fresh)}


def _like(fresh: Any, saved: Any) -> bool:
    """Progress of the fresh value's type: numbers not NaN, and finite
    unless the fresh one is not (ReduceLROnPlateau's first best)."""
    if isinstance(fresh, bool | str) or fresh is None:
        return type(saved) is type(fresh) and (not isinstance(fresh, str) or saved == fresh)
    if isinstance(fresh, int | float):
        if isinstance(saved, bool) or not isinstance(
            saved, type(fresh) if isinstance(fresh, int) else int | float
        ):
            return False
        return not math.isnan(saved) and (math.isfinite(saved) or not math.isfinite(fresh))
    if isinstance(fresh, list | dict):
        if type(saved) is not type(fresh) or len(saved) != len(fresh):
            return False
        if isinstance(fresh, dict):
            return set(saved) == set(fresh) and all(_like(fresh[k], saved[k]) for k in fresh)
        return all(map(_like, fresh, saved))
    return False
