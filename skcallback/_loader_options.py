"""The ``dataloader__*`` options of a fit on item-wise data (see
``_loading``), checked before training."""

from __future__ import annotations

import numbers
from typing import Any

from ._params import InvalidParameterError

#: The ``dataloader__*`` options and what each accepts (checked at fit).
OPTIONS = ("num_workers", "collate_fn", "pin_memory", "persistent_workers", "prefetch_factor")


def loader_options(params: dict[str, Any]) -> dict[str, Any]:
    """The ``dataloader__*`` parameters (prefix removed), checked: each
    error names the parameter, its value and what is allowed."""
    unknown = sorted(set(params) - set(OPTIONS))
    if unknown:
        raise InvalidParameterError(
            f"Unknown DataLoader option(s) {['dataloader__' + k for k in unknown]}; the "
            f"options are {['dataloader__' + k for k in OPTIONS]}."
        )
    options = dict(params)
    workers = options.get("num_workers", 0)
    if not isinstance(workers, numbers.Integral) or isinstance(workers, bool) or workers < 0:
        raise InvalidParameterError(
            f"dataloader__num_workers must be an int >= 0 (0 loads in the fitting "
            f"process); got {workers!r}."
        )
    collate = options.get("collate_fn")
    if collate is not None and not callable(collate):
        raise InvalidParameterError(
            f"dataloader__collate_fn must be a callable (a list of items -> (X, y)) or "
            f"None; got {collate!r}."
        )
    for name in ("pin_memory", "persistent_workers"):
        if not isinstance(options.get(name, False), bool):
            raise InvalidParameterError(
                f"dataloader__{name} must be a bool; got {options[name]!r}."
            )
    prefetch = options.get("prefetch_factor")
    if prefetch is not None and (
        not isinstance(prefetch, numbers.Integral) or isinstance(prefetch, bool) or prefetch < 1
    ):
        raise InvalidParameterError(
            f"dataloader__prefetch_factor must be an int >= 1 or None; got {prefetch!r}."
        )
    for name in ("persistent_workers", "prefetch_factor"):
        if options.get(name) not in (None, False) and not workers:
            raise InvalidParameterError(
                f"dataloader__{name}={options[name]!r} needs worker processes; set "
                "dataloader__num_workers to 1 or more."
            )
    return options
