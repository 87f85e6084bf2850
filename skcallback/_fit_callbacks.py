"""The callbacks of a fit: the defaults, the ``callbacks`` parameter and the
routed ``cb__`` parameters composed into the callbacks a fit uses.

They follow scikit-learn's composition pattern: the ``callbacks`` list is
replaced whole, then ``cb__<name>`` replaces (or, with None, disables) one
callback, then ``cb__<name>__<param>`` sets a parameter on it.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Mapping
from typing import Any

from sklearn.base import clone

from . import _porting
from ._dispatch import CallbackMap
from ._internals import param_names
from ._routing import PREFIXES, extra_params, is_routed, routed
from .callbacks._base import Callback, check_hook_names, check_parameters
from .callbacks._defaults import ALWAYS_PRESENT, default_callbacks


def check_extra_params(estimator: Any) -> None:
    """Reject stored keyword arguments that route nowhere: skorch's names
    with their equivalent (see ``check_foreign_params``), others with the
    names allowed."""
    unknown = sorted(key for key in extra_params(estimator) if not is_routed(key))
    check_foreign_params(estimator, {key: getattr(estimator, key) for key in unknown})
    if unknown:
        raise TypeError(
            f"{type(estimator).__name__} got unexpected parameter(s) {unknown}; besides "
            f"{sorted(param_names(estimator))}, parameters must start with one of "
            f"{list(PREFIXES)} followed by a name."
        )


def check_foreign_params(estimator: Any, params: Mapping[str, Any]) -> None:
    """Reject skorch's parameter names among ``params``, naming for each
    what to use here; the one check for the constructor's keyword arguments
    (at fit) and ``set_params`` (as a search sets its grid).

    Raises
    ------
    ValueError
        Listing each of skorch's names with its equivalent.
    """
    declared = set(param_names(estimator))
    foreign = [key for key in params if key not in declared and not is_routed(key)]
    if not foreign:
        return
    try:
        callbacks = callback_entries(estimator)
    except (TypeError, ValueError):
        callbacks = []  # reported at fit, with the list itself
    lines = []
    for key in sorted(foreign):
        equivalent = _porting.equivalent(key, params[key], callbacks)
        if equivalent is not None:
            lines.append(f"- {key}={params[key]!r}: {equivalent}")
    if lines:
        raise ValueError(
            f"{type(estimator).__name__} got parameters of skorch, which skcallback names "
            "otherwise or does without:\n" + "\n".join(lines)
        )


def callback_entries(estimator: Any) -> list[tuple[str, Callback | None]]:
    """``(name, callback)`` pairs: the defaults plus ``callbacks``, with the
    ``cb__<name>`` replacements applied; a disabled callback is None."""
    entries: list[tuple[str, Callback | None]] = []
    given = estimator.callbacks
    if given is not None and not isinstance(given, list | tuple):
        raise TypeError(
            "The 'callbacks' parameter must be None or a list of Callback instances "
            f"or (name, Callback) pairs; got {given!r}."
        )
    for entry in given or ():
        if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str):
            name, cb = entry
        elif isinstance(entry, Callback):
            name, cb = entry._default_name(), entry
        else:
            name, cb = None, entry
        if not isinstance(cb, Callback) or not name:
            raise TypeError(
                "Each entry of 'callbacks' must be a Callback instance or a (name, Callback) "
                f"pair with a non-empty name; got {entry!r}."
            )
        entries.append((name, cb))
    names = [name for name, _ in entries]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(
            f"Callback names must be unique; {duplicates} appear more than once. Give "
            "them distinct names with (name, callback) pairs."
        )
    verbose = int(estimator.verbose) if isinstance(estimator.verbose, numbers.Integral) else 0
    first, last = default_callbacks(verbose, set(names))
    entries = [*first, *entries, *last]

    replacements = {
        key: value for key, value in routed(estimator, "cb__").items() if "__" not in key
    }
    _check_names(replacements, [name for name, _ in entries])
    for key, value in replacements.items():
        if value is not None and not isinstance(value, Callback):
            raise TypeError(
                f"cb__{key} must be a Callback instance (to replace the callback) or None "
                f"(to disable it); got {value!r}."
            )
        if key in ALWAYS_PRESENT and value is None:
            raise ValueError(f"The {key} callback cannot be disabled (cb__{key}=None).")
    entries = [(name, replacements.get(name, cb)) for name, cb in entries]
    found = dict(entries)
    for name, (cls, attribute) in ALWAYS_PRESENT.items():
        if not isinstance(found[name], cls):
            raise ValueError(
                f"The callback name {name!r} is reserved for a {cls.__name__} ({attribute} reads "
                f"it); got {type(found[name]).__name__}. Give this callback another name."
            )
    return entries


def exposed_callbacks(callbacks: Mapping[str, Callback]) -> dict[str, Callback]:
    """The estimator attributes that expose fitted callbacks (those the
    callbacks package declares always present), mapped to them."""
    return {attribute: callbacks[name] for name, (_, attribute) in ALWAYS_PRESENT.items()}


def attach_callbacks(work: Any, callbacks: list[tuple[str, Any]]) -> None:
    """Make ``callbacks`` (in dispatch order) the fitted callbacks."""
    work.callbacks_ = CallbackMap(callbacks)
    vars(work).update(exposed_callbacks(work.callbacks_))
    work.stop_reason_ = None


def callback_params(estimator: Any) -> dict[str, Any]:
    """``cb__<name>`` and ``cb__<name>__<param>`` for ``get_params(deep=True)``;
    empty while the ``callbacks`` parameter is invalid (checked at fit)."""
    try:
        entries = callback_entries(estimator)
    except (TypeError, ValueError):
        return {}
    params: dict[str, Any] = {}
    for name, cb in entries:
        params[f"cb__{name}"] = cb
        if cb is not None:
            params.update({f"cb__{name}__{k}": v for k, v in cb.get_params(deep=False).items()})
    return params


def check_callback_param(estimator: Any, key: str) -> None:
    """Reject ``cb__<name>__<param>`` whose name or param is unknown."""
    try:
        entries = dict(callback_entries(estimator))
    except (TypeError, ValueError):
        return  # reported at fit, with the list itself
    name, _, param = key[len("cb__") :].partition("__")
    _check_names({name: None}, list(entries))
    cb = entries[name]
    if param and cb is not None:
        # The callback's own set_params decides which names it takes (an
        # LRScheduler takes its policy's arguments); try every parameter set
        # for this callback on a copy, so a policy and its arguments can be
        # set together.
        prefix = f"cb__{name}__"
        given = {
            k[len(prefix) :]: v for k, v in extra_params(estimator).items() if k.startswith(prefix)
        }
        set_callback_params(copy.copy(cb), name, given)


def set_callback_params(cb: Callback, name: str, params: dict[str, Any]) -> None:
    """Set the routed ``cb__<name>__*`` parameters ``params`` on ``cb``;
    an unknown one is reported alike when ``set_params`` stores it (as a
    search sets it) and when a fit reads it (passed to the constructor).

    Raises
    ------
    ValueError
        Naming the callback and the parameters it takes.
    """
    try:
        cb.set_params(**params)
    except ValueError as exc:
        raise ValueError(f"Callback {name!r} (cb__{name}__...): {exc}") from None


def fitted_callbacks(estimator: Any) -> list[tuple[str, Callback]]:
    """Clones of the enabled callbacks with their routed parameters set and
    checked (``parameter_constraints``, hook names), in dispatch order
    (``order``, then list position)."""
    entries = callback_entries(estimator)
    names = [name for name, _ in entries]
    params: dict[str, dict[str, Any]] = {}
    for key, value in routed(estimator, "cb__").items():
        name, _, param = key.partition("__")
        if param:
            _check_names({name: None}, names)
            params.setdefault(name, {})[param] = value
    clones = []
    for position, (name, cb) in enumerate(entries):
        if cb is None:
            continue
        try:
            cb = clone(cb)
        except Exception as exc:
            raise TypeError(
                f"Callback {name!r} ({type(cb).__name__}) cannot be cloned for the fit: "
                f"{type(exc).__name__}: {exc}. Every fit works on a copy of each callback, "
                "parameters included: give parameters that copy.deepcopy can copy."
            ) from exc
        set_callback_params(cb, name, params.get(name, {}))
        check_parameters(cb, name)
        check_hook_names(cb, name)
        clones.append((cb.order, position, name, cb))
    clones.sort(key=lambda item: (item[0], item[1]))
    return [(name, cb) for _, _, name, cb in clones]


def _check_names(requested: dict[str, Any], names: list[str]) -> None:
    unknown = sorted(set(requested) - set(names))
    if unknown:
        raise ValueError(
            f"No callback named {unknown[0]!r} (from cb__{unknown[0]}...); the callbacks "
            f"are {names}."
        )
