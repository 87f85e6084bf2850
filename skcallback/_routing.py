"""Routed parameters: the keyword arguments an estimator stores beyond its
signature, ``cb__<name>[__<param>]``, ``module__*``, ``optimizer__*``,
``criterion__*`` and ``dataloader__*``, each for the object its prefix names.

This module only reads them; the callbacks they configure are composed in
``_fit_callbacks``, the module, criterion and optimizer in ``_factories``.
"""

from __future__ import annotations

from typing import Any

from ._internals import param_names

PREFIXES = ("cb__", "module__", "optimizer__", "criterion__", "dataloader__")


def is_routed(key: str) -> bool:
    return key.startswith(PREFIXES) and len(key) > len(key.split("__", 1)[0]) + 2


def extra_params(estimator: Any) -> dict[str, Any]:
    """Keyword arguments that ``__init__`` (or ``set_params``) stored beyond
    the signature's parameters: the routed ones, and typos to report at fit.

    A name ending in ``_`` is a fitted attribute on a fitted estimator, but a
    keyword argument when routed (``module__size_``) or when the estimator
    is not fitted (``lr_``, a typo): kept, it reaches ``get_params``, clones
    and the check at fit instead of being dropped silently."""
    declared = set(param_names(estimator))
    fitted = estimator.__sklearn_is_fitted__()
    return {
        key: value
        for key, value in vars(estimator).items()
        if key not in declared
        and not key.startswith("_")
        and (not key.endswith("_") or not fitted or is_routed(key))
    }


def routed(estimator: Any, prefix: str) -> dict[str, Any]:
    """The routed parameters under ``prefix`` with the prefix removed."""
    if not any(key.startswith(prefix) for key in vars(estimator)):
        return {}  # none stored (the common case, asked at every fit)
    return {
        key[len(prefix) :]: value
        for key, value in extra_params(estimator).items()
        if key.startswith(prefix)
    }
