"""What a continued fit (``warm_start``, ``partial_fit`` on a fitted
estimator) may change in the objects it continues.

The fitted module, criterion and optimizer were built from some parameters,
recorded on the estimator as ``_built_with`` when they are built (a new fit,
or a saved fit rebuilt from the parameters that saved it). A continued fit
compares the parameters now with that record:

- the module's parameters (``module``, ``module__*``, ``hidden_layer_sizes``,
  ``activation``, ``dropout``, ``precision``) cannot change: the fitted
  weights belong to the module they built, so a change is refused, as
  scikit-learn's MLP refuses a new architecture;
- the optimizer's (``optimizer``, ``lr``, ``optimizer__*``) apply: a changed
  ``lr`` or option is set in every parameter group and the optimizer's state
  (Adam's moments, step counts) is kept; another optimizer class is built
  anew, its state starting afresh;
- the criterion's (``criterion``, ``criterion__*``) apply: the criterion is
  rebuilt (it holds no learned state; the dry run checks it fits the module).
"""

from __future__ import annotations

from typing import Any

from . import _routing, _untrusted
from ._factories import build_criterion, build_optimizer
from ._fingerprint import describe
from ._params import OPTIMIZERS

#: The parameters that decide the fitted module (with ``module__*``).
ARCHITECTURE = ("module", "hidden_layer_sizes", "activation", "dropout", "precision")

#: The parameters that decide the optimizer (with ``optimizer__*``).
_OPTIMIZER = ("optimizer", "lr")

#: The routed parameters of the objects a fit builds.
_ROUTED = ("module__", "optimizer__", "criterion__")

_NOT_SET = "(not set)"


def built_with(estimator: Any) -> dict[str, str]:
    """The parameters that build the fit's module, criterion and optimizer,
    each described (``_fingerprint.describe``) so that equal values compare
    equal in any process: ``0`` and ``0.0``, ``"adam"`` and ``"Adam"``."""
    record = {name: describe(getattr(estimator, name)) for name in ARCHITECTURE}
    record["dropout"] = _number(estimator.dropout)
    record["lr"] = _number(estimator.lr)
    name = estimator.optimizer
    record["optimizer"] = describe(
        OPTIMIZERS.get(name.lower(), name) if isinstance(name, str) else name
    )
    record["criterion"] = describe(estimator.criterion)
    for key, value in _routing.extra_params(estimator).items():
        if key.startswith(_ROUTED):
            record[key] = describe(value)
    return record


def _number(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(float(value))
    return describe(value)


def record(work: Any) -> None:
    """Record on ``work`` the parameters its objects were just built from."""
    work._built_with = built_with(work)


def _is_architecture(key: str) -> bool:
    return key in ARCHITECTURE or key.startswith("module__")


def _is_optimizer(key: str) -> bool:
    return key in _OPTIMIZER or key.startswith("optimizer__")


def _changes(estimator: Any) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """The record of the fitted objects, the parameters now, and the names
    that differ between them (sorted)."""
    built = getattr(estimator, "_built_with", None)
    now = built_with(estimator)
    if built is None:  # nothing recorded: nothing to compare with
        return now, now, []
    return (
        built,
        now,
        sorted(key for key in built.keys() | now.keys() if built.get(key) != now.get(key)),
    )


def check_architecture(estimator: Any, *, partial: bool) -> None:
    """Refuse a continued fit whose module parameters differ from those
    that built the fitted module.

    Raises
    ------
    ValueError
        Naming the parameter, the value that built the module, the value now
        and how to train a new module instead.
    """
    built, now, changed = _changes(estimator)
    for key in changed:
        if not _is_architecture(key):
            continue
        how = "partial_fit" if partial else "fit with warm_start=True"
        way_out = (
            "partial_fit a new estimator (sklearn.base.clone(estimator)) or fit with "
            "warm_start=False"
            if partial
            else "set warm_start=False"
        )
        raise ValueError(
            f"{how} continues training the fitted module, which was built with "
            f"{key}={built.get(key, _NOT_SET)}; {key} is now {now.get(key, _NOT_SET)}, which "
            f"needs a new module. To train a new module, {way_out}; to continue, set {key} "
            f"back to {built.get(key, _NOT_SET)}."
        )


def continue_objects(work: Any, scheduled: bool) -> None:
    """Give the continued fit ``work`` the criterion and optimizer its
    parameters now ask for: a changed criterion is rebuilt, another
    optimizer class built new (its state starts afresh), and the same
    class keeps its state with the options the parameters give now
    (``set_params(lr=...)`` before a warm start takes effect, as in
    scikit-learn's MLP), except the rates a callback schedules
    (``schedules_optimizer``) where their parameters did not change: a
    fitted estimator's options are then always those a file of it must
    hold."""
    _, now, changed = _changes(work)
    if any(key == "criterion" or key.startswith("criterion__") for key in changed):
        work.criterion_ = build_criterion(work, work.device_)
    fresh = build_optimizer(work, work.module_)  # checks the values too
    optimizer = work.optimizer_
    if type(fresh) is not type(optimizer):
        work.optimizer_ = fresh
    elif not _same_grouping(fresh, optimizer):
        work.optimizer_ = _regrouped(fresh, optimizer)
    else:
        moved = {k for k, v in fresh.defaults.items() if _differs(v, optimizer.defaults.get(k))}
        kept = _untrusted.SCHEDULED_OPTIONS - moved if scheduled else frozenset()
        optimizer.defaults.update({key: fresh.defaults[key] for key in moved})
        own_groups = _untrusted.option_groups(fresh)
        for group, own in zip(optimizer.param_groups, own_groups, strict=True):
            group.update({key: value for key, value in own.items() if key not in kept})
    work._built_with = now


def _differs(a: Any, b: Any) -> bool:
    try:
        return bool(a != b)
    except (RuntimeError, TypeError, ValueError):  # tensors of several values
        return a is not b


def _same_grouping(a: Any, b: Any) -> bool:
    """Whether two optimizers group the same parameters alike."""
    return [[id(p) for p in g["params"]] for g in a.param_groups] == [
        [id(p) for p in g["params"]] for g in b.param_groups
    ]


def _regrouped(fresh: Any, optimizer: Any) -> Any:
    """``fresh`` (the groups ``optimizer__param_groups`` makes now) with the
    per-parameter state of ``optimizer`` (Adam's moments, step counts):
    a warm start with other groups keeps what each parameter learned and
    takes every option from the parameters now."""
    state = optimizer.state_dict()["state"]
    index = {id(p): i for i, p in enumerate(p for g in optimizer.param_groups for p in g["params"])}
    order = [p for g in fresh.param_groups for p in g["params"]]
    saved = fresh.state_dict()
    saved["state"] = {i: state[index[id(p)]] for i, p in enumerate(order) if index[id(p)] in state}
    fresh.load_state_dict(saved)
    return fresh
