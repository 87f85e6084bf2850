"""Declarative hyperparameter constraints, checked once at fit entry."""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ._modules import ACTIVATIONS
from ._precision import PRECISIONS

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
    "adadelta": torch.optim.Adadelta,
    "adamax": torch.optim.Adamax,
    "nadam": torch.optim.NAdam,
    "radam": torch.optim.RAdam,
}


class InvalidParameterError(ValueError, TypeError):
    """A hyperparameter has a value outside what is allowed.

    It is both a ``ValueError`` and a ``TypeError``, as scikit-learn's error
    of the same name.
    """


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_sizes(value: Any) -> bool:
    if _is_int(value):
        return value > 0
    return isinstance(value, list | tuple) and all(_is_int(v) and v > 0 for v in value)


def _is_module_class(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, nn.Module)


DEVICES = "'auto', 'cpu', 'cuda', 'cuda:<index>', 'mps' or a torch.device"


def is_device(value: Any) -> bool:
    if isinstance(value, torch.device):
        return value.type in ("cpu", "cuda", "mps")
    return isinstance(value, str) and bool(re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value))


#: name -> (check, what is allowed)
CONSTRAINTS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "module": (
        lambda v: v is None or isinstance(v, nn.Module) or callable(v),
        "None, an nn.Module subclass or factory, or an nn.Module instance",
    ),
    "hidden_layer_sizes": (_is_sizes, "a tuple of positive ints (empty for a linear model)"),
    "activation": (
        lambda v: (isinstance(v, str) and v in ACTIVATIONS) or _is_module_class(v),
        f"one of {sorted(ACTIVATIONS)} or an nn.Module class",
    ),
    "dropout": (lambda v: _is_real(v) and 0 <= v < 1, "a float in [0, 1)"),
    "criterion": (
        lambda v: v is None or isinstance(v, nn.Module) or callable(v),
        "None, an nn.Module loss class or instance",
    ),
    "optimizer": (
        lambda v: (
            (isinstance(v, str) and v.lower() in OPTIMIZERS)
            or (isinstance(v, type) and issubclass(v, torch.optim.Optimizer))
        ),
        f"one of {sorted(OPTIMIZERS)} or a torch.optim.Optimizer class",
    ),
    "lr": (lambda v: _is_real(v) and v > 0 and np.isfinite(v), "a float > 0"),
    "batch_size": (lambda v: _is_int(v) and v >= 1, "an int >= 1"),
    "accumulate": (lambda v: _is_int(v) and v >= 1, "an int >= 1 (batches per optimizer step)"),
    "max_epochs": (lambda v: _is_int(v) and v >= 1, "an int >= 1"),
    "validation_fraction": (
        lambda v: v is None or (_is_real(v) and 0 < v < 1),
        "None or a float in (0, 1)",
    ),
    "validate_every": (
        lambda v: _is_int(v) and v >= 1,
        "an int >= 1 (validate every k-th epoch, and the last)",
    ),
    "callbacks": (
        lambda v: v is None or isinstance(v, list | tuple),
        "None or a list of Callback instances or (name, Callback) pairs",
    ),
    "device": (is_device, DEVICES),
    "random_state": (
        lambda v: (
            v is None or (_is_int(v) and 0 <= v < 2**32) or isinstance(v, np.random.RandomState)
        ),
        "None, an int in [0, 2**32 - 1] or a numpy RandomState",
    ),
    "verbose": (lambda v: isinstance(v, numbers.Integral) and int(v) >= 0, "an int >= 0"),
    "warm_start": (lambda v: isinstance(v, bool | np.bool_), "a bool"),
    "compile": (lambda v: isinstance(v, bool | np.bool_), "a bool"),
    "fast_path": (lambda v: isinstance(v, bool | np.bool_), "a bool"),
    "threads": (
        lambda v: v is None or v == "auto" or (_is_int(v) and v >= 1),
        '"auto", None (torch\'s setting) or an int >= 1',
    ),
    "precision": (lambda v: v in PRECISIONS, f"one of {list(PRECISIONS)}"),
    "strategy": (lambda v: v is None or v == "ddp", 'None (one process) or "ddp"'),
}


def validate_parameters(estimator: Any) -> None:
    """Raise ``InvalidParameterError`` naming the first bad parameter: of
    those both estimators have (``CONSTRAINTS``), then of the estimator's
    own (its class's ``_own_constraints``, such as the classifier's
    ``class_weight``)."""
    check_constraints(estimator, CONSTRAINTS)
    check_constraints(estimator, estimator._own_constraints)


# -- The one validator, shared with callbacks' ``parameter_constraints`` -----
Constraints = Mapping[str, tuple[Callable[[Any], bool], str]]


def check_constraints(owner: Any, constraints: Constraints) -> None:
    """Raise ``InvalidParameterError`` for the first parameter of ``owner``
    whose value fails its check, naming the parameter, the value and what
    is allowed; a check that raises ``TypeError`` or ``ValueError`` (``v > 0``
    on a string) fails."""
    for name, (check, allowed) in constraints.items():
        value = getattr(owner, name)
        try:
            ok = bool(check(value))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InvalidParameterError(
                f"The {name!r} parameter of {type(owner).__name__} must be {allowed}; "
                f"got {value!r}."
            )
