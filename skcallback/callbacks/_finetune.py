"""Fine-tuning by parameter name: Freezer and Initializer (and the pattern
matching LoadWeights shares)."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from typing import Any

import torch

from .._context import Context
from .._modules import global_rng_scope
from ._base import Callback, positive_int


def _patterns_ok(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list | tuple)
        and len(value) > 0
        and all(isinstance(v, str) for v in value)
    )


#: The constraint of a ``patterns`` parameter.
PATTERNS = (_patterns_ok, "a str or a non-empty list of str (fnmatch patterns of names)")


def as_patterns(patterns: str | Iterable[str]) -> list[str]:
    return [patterns] if isinstance(patterns, str) else list(patterns)


def matching(names: Iterable[str], patterns: list[str]) -> list[str]:
    """The names that match one of ``patterns`` (``fnmatch``, case-sensitive)."""
    return [name for name in names if any(fnmatch.fnmatchcase(name, p) for p in patterns)]


def check_every_pattern_matches(
    cb: Callback, names: list[str], patterns: list[str], what: str
) -> None:
    """Raise a ValueError naming each pattern that matches none of
    ``names`` (a typo would otherwise freeze or load nothing, silently)."""
    idle = [p for p in patterns if not matching(names, [p])]
    if idle:
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        raise ValueError(
            f"{type(cb).__name__}: the pattern(s) {idle} match no {what}; the {what}s are "
            f"[{shown}] ({len(names)})."
        )


class Freezer(Callback):
    """Freeze the parameters whose names match ``patterns``, from the start
    of the fit, and unfreeze them at epoch ``unfreeze_at``.

    A frozen parameter has ``requires_grad=False``: it gets no gradient, and
    the optimizer, which holds it still, leaves it unchanged (torch's
    optimizers skip a parameter whose gradient is None, weight decay and
    Adam's moments included). Once unfrozen it trains with its group's
    options (see ``optimizer__param_groups``, e.g. a lower learning rate for
    a pre-trained backbone); Adam's moments for it start at its first
    gradient. At the end of the fit every parameter gets back the
    ``requires_grad`` it had, so the fitted module is the one built.

    Parameter names are those of ``module_.named_parameters()``; the
    built-in MLP's are ``layers.0.weight``, ``layers.0.bias``, ... (its
    ``Linear`` layers at even indices, ``layers.<2k>`` for the k-th).

    Parameters
    ----------
    patterns : str or list of str
        ``fnmatch`` patterns of parameter names (``"backbone.*"``). Each
        must match a parameter (checked before training).
    unfreeze_at : int, optional
        The epoch (1-based, counted as ``ctx.epoch``, across warm starts)
        from which the parameters train. None: frozen for the whole fit.

    Notes
    -----
    Holds no tensors: only the names it freezes. The frozen state follows
    from the epoch, so a fit resumed from a checkpoint freezes exactly as
    the interrupted one did.

    Examples
    --------
    >>> import numpy as np
    >>> from skcallback import NeuralRegressor
    >>> from skcallback.callbacks import Freezer
    >>> X = np.random.RandomState(0).normal(size=(64, 3)).astype("float32")
    >>> y = X.sum(1)
    >>> est = NeuralRegressor(hidden_layer_sizes=(8,), max_epochs=3, random_state=0,
    ...                       callbacks=[Freezer("layers.0.*", unfreeze_at=3)]).fit(X, y)
    >>> [p.requires_grad for p in est.module_.parameters()]  # given back at the end
    [True, True, True, True]
    """

    parameter_constraints = {
        "patterns": PATTERNS,
        "unfreeze_at": (lambda v: positive_int(v, allow_none=True), "None or an int >= 1"),
    }

    def __init__(self, patterns: str | list[str], unfreeze_at: int | None = None) -> None:
        self.patterns = patterns
        self.unfreeze_at = unfreeze_at

    def setup(self, plan: Any) -> None:
        parameters = dict(plan.estimator.module_.named_parameters())
        patterns = as_patterns(self.patterns)
        check_every_pattern_matches(self, list(parameters), patterns, "parameter")
        # The flags as built, to give back at the end.
        self._flags = {
            name: parameters[name].requires_grad for name in matching(parameters, patterns)
        }

    def idle_hooks(self) -> set[str]:
        return {"on_epoch_begin"} if self.unfreeze_at is None else set()

    def on_fit_begin(self, ctx: Context) -> None:
        # ctx.epoch is the last epoch done (a resumed fit's too): the next
        # one is ctx.epoch + 1.
        frozen = self.unfreeze_at is None or ctx.epoch + 1 < self.unfreeze_at
        self._set(ctx.module, frozen)

    def on_epoch_begin(self, ctx: Context) -> None:
        if ctx.epoch == self.unfreeze_at:
            self._set(ctx.module, False)

    def on_fit_end(self, ctx: Context) -> None:
        self._set(ctx.module, False)

    def _set(self, module: torch.nn.Module, frozen: bool) -> None:
        parameters = dict(module.named_parameters())
        for name, flag in self._flags.items():
            parameters[name].requires_grad_(flag and not frozen)


class Initializer(Callback):
    """Initialise the parameters whose names match ``patterns`` with
    ``fn(parameter)`` before a new fit trains them.

    ``fn`` changes the tensor in place, as ``torch.nn.init``'s functions do
    (``torch.nn.init.xavier_uniform_``); a function returning another
    tensor of the same shape has it copied in. It draws from torch's global
    generator, seeded for the call from the fit's seed (``random_state``)
    and restored afterwards: the same seed gives the same model, and the
    caller's random state is left alone. A warm start, a ``partial_fit`` on
    a fitted estimator and a fit resumed from a checkpoint keep their
    weights: nothing is initialised.

    Parameters
    ----------
    patterns : str or list of str
        ``fnmatch`` patterns of parameter names (``"*.weight"``); each must
        match a parameter (checked before training). The built-in MLP's
        are ``layers.0.weight``, ``layers.0.bias``, ...
    fn : callable
        ``fn(tensor)``, called under ``torch.no_grad()`` for each matching
        parameter, in the module's order.

    Notes
    -----
    Holds no tensors. Runs before ordinary callbacks (``order = -10``), so
    they see the initialised module.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skcallback import NeuralRegressor
    >>> from skcallback.callbacks import Initializer
    >>> X = np.random.RandomState(0).normal(size=(64, 3)).astype("float32")
    >>> est = NeuralRegressor(max_epochs=1, random_state=0, callbacks=[
    ...     Initializer("*.bias", torch.nn.init.zeros_)]).fit(X, X.sum(1))
    """

    order = -10
    parameter_constraints = {"patterns": PATTERNS, "fn": (callable, "a callable fn(tensor)")}

    def __init__(self, patterns: str | list[str], fn: Callable[[torch.Tensor], Any]) -> None:
        self.patterns = patterns
        self.fn = fn

    def setup(self, plan: Any) -> None:
        names = [name for name, _ in plan.estimator.module_.named_parameters()]
        patterns = as_patterns(self.patterns)
        check_every_pattern_matches(self, names, patterns, "parameter")
        self._names = matching(names, patterns) if is_fresh(plan) else []

    def on_fit_begin(self, ctx: Context) -> None:
        if not self._names:
            return
        parameters = dict(ctx.module.named_parameters())
        # A generator of its own (seeded from the fit's seed): the fit's
        # other draws do not depend on whether this callback is there.
        with global_rng_scope(ctx.plan.seed + 2, ctx.plan.device), torch.no_grad():
            for name in self._names:
                parameter = parameters[name]
                try:
                    result = self.fn(parameter)
                except Exception as exc:
                    exc.add_note(f"Initializer: fn failed on parameter {name!r}")
                    raise
                if isinstance(result, torch.Tensor) and result is not parameter:
                    parameter.copy_(result)


def is_fresh(plan: Any) -> bool:
    """Whether the fit trains a newly built module (not a warm start, a
    continued ``partial_fit`` or a resumed checkpoint)."""
    return not plan.continuing and plan.resumed_from is None
