"""Checks of the values a saved file carries, against the estimator that
loads it: files carry data, never authority.

A checksum catches a flipped bit, not a crafted file (whose checksum was
recomputed). So every value a file gives the fitted objects is checked
against what the estimator's own parameters build, before it is used and
before anything is allocated from it: tensors hold no more elements than
their stored bytes, the module the parameters describe is no larger than the
tensors saved for it, the weights are finite and of the module's shapes, and
every optimizer option equals the one the estimator's parameters give.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

#: Param-group keys an LRScheduler adds (OneCycleLR, CyclicLR, any
#: scheduler's ``initial_lr``), and the options it changes.
SCHEDULER_KEYS = frozenset({"initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"})
SCHEDULED_OPTIONS = frozenset({"lr", "momentum", "betas"})
#: Options that choose an implementation (the same steps, by other kernels):
#: the loading machine's choice, whatever the file says.
IMPLEMENTATION_OPTIONS = frozenset({"fused", "foreach", "capturable"})

#: Tensors that alias one storage (tied weights) may hold more bytes than the
#: file does, by this factor; beyond it, a file is refused as a memory bomb.
_ALIASING = 2
_SLACK = 1 << 20


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    """Every tensor in nested lists, tuples and dicts, each container visited
    once (a file may reference one container many times)."""
    seen: set[int] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            yield item
        elif isinstance(item, list | tuple | dict) and id(item) not in seen:
            seen.add(id(item))
            stack.extend(item.values() if isinstance(item, dict) else item)


def check_tensor_sizes(state: Any, path: Any) -> None:
    """Refuse tensors whose elements outnumber their stored bytes (a stride-0
    tensor that a copy would expand), before anything copies them."""
    held, stored = 0, {}
    for tensor in _tensors(state):
        storage = tensor.untyped_storage()
        size = tensor.numel() * tensor.element_size()
        if size + tensor.storage_offset() * tensor.element_size() > storage.nbytes():
            raise ValueError(
                f"{path} is malformed: a tensor of shape {tuple(tensor.shape)} holds more "
                f"elements than its {storage.nbytes()} stored bytes."
            )
        held += size
        stored[storage.data_ptr(), storage.nbytes()] = storage.nbytes()
    if held > _ALIASING * sum(stored.values()) + _SLACK:
        raise ValueError(
            f"{path} is malformed: its tensors would take {held} bytes from "
            f"{sum(stored.values())} stored."
        )


def _finite(tensor: torch.Tensor) -> bool:
    return not tensor.is_floating_point() or bool(torch.isfinite(tensor).all())


def check_module_state(saved: Any, path: Any) -> None:
    """Refuse module weights that are not finite (shapes are torch's check)."""
    for name, tensor in saved.items() if isinstance(saved, dict) else ():
        if isinstance(tensor, torch.Tensor) and not _finite(tensor):
            raise ValueError(f"{path} is malformed: the module's {name!r} is not finite.")


def check_weights(weights: dict[str, Any], module: torch.nn.Module, where: str) -> None:
    """Raise a ValueError unless ``weights`` are finite tensors of the names,
    shapes and dtypes of ``module``'s state (a callback's saved weights)."""
    own = module.state_dict()
    if set(weights) != set(own):
        raise ValueError(f"{where}: saved weights name other tensors than the module's.")
    for name, tensor in weights.items():
        if (
            not isinstance(tensor, torch.Tensor)
            or tensor.shape != own[name].shape
            or tensor.dtype != own[name].dtype
            or not _finite(tensor)
        ):
            raise ValueError(
                f"{where}: the saved weight {name!r} is not a finite tensor of the module's "
                f"shape {tuple(own[name].shape)} ({own[name].dtype})."
            )


#: Optimizer state entries that are one number per parameter (step counters).
SCALAR_STATE = ("step", "mu_product")


def check_optimizer_state(optimizer: Any, saved: Any, path: Any) -> None:
    """Refuse an optimizer state whose tensors are not finite floats of their
    parameter's shape, before torch casts (and so copies) them."""
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict):
        raise ValueError(f"{path} is malformed: the optimizer state is not a dict.")
    groups = saved.get("param_groups")
    if not isinstance(groups, list) or len(groups) != len(optimizer.param_groups):
        raise ValueError(f"{path} is malformed: the optimizer's parameter groups.")
    params: dict[Any, torch.Tensor] = {}
    for own, group in zip(optimizer.param_groups, groups, strict=True):
        ids = group.get("params") if isinstance(group, dict) else None
        if not isinstance(ids, list) or len(ids) != len(own["params"]):
            raise ValueError(f"{path} is malformed: the optimizer's parameter groups.")
        params.update(zip(ids, own["params"], strict=True))
    for key, entries in saved["state"].items():
        if key not in params or not isinstance(entries, dict):
            raise ValueError(f"{path} is malformed: optimizer state of an unknown parameter.")
        for name, value in entries.items():
            if not isinstance(value, torch.Tensor):
                continue
            expected = () if name in SCALAR_STATE else tuple(params[key].shape)
            if tuple(value.shape) != expected or not value.is_floating_point():
                raise ValueError(
                    f"{path} is malformed: optimizer state {name!r} has shape "
                    f"{tuple(value.shape)} ({value.dtype}); expected {expected} floats for "
                    f"a parameter of shape {tuple(params[key].shape)}."
                )
            if not _finite(value):
                raise ValueError(f"{path} is malformed: optimizer state {name!r} is not finite.")


def option_groups(optimizer: Any) -> list[dict[str, Any]]:
    """The options of each parameter group (everything but the parameters)."""
    return [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]


def check_options(optimizer: Any, expected: list[dict[str, Any]], scheduled: bool, path: Any):
    """Refuse loaded optimizer options that differ from ``expected`` (those
    the estimator's parameters built). With a callback that schedules them
    (``schedules_optimizer``, as LRScheduler), the rates may differ (finite
    and not negative) and the keys it adds may be present; an option the
    file lacks (an older torch) is the built one, and one this torch does
    not know (a newer torch's, such as ``decoupled_weight_decay``) is
    dropped: the estimator's parameters cannot have set it here, so it is
    not adopted."""
    for group, own in zip(optimizer.param_groups, expected, strict=True):
        extra = set(group) - set(own) - {"params"} - (SCHEDULER_KEYS if scheduled else set())
        if extra & SCHEDULER_KEYS:
            raise ValueError(
                f"{path} is malformed: unknown optimizer options "
                f"{sorted(map(str, extra & SCHEDULER_KEYS))} (a scheduler's, and no callback "
                "of this estimator schedules the rates)."
            )
        for key in extra:
            del group[key]
        for key in set(group) - set(own) - {"params"}:
            _check_rate(key, group[key], path)
        for key, value in own.items():
            loaded = group.setdefault(key, value)
            if key in IMPLEMENTATION_OPTIONS:
                group[key] = value
            elif scheduled and key in SCHEDULED_OPTIONS:
                _check_rate(key, loaded, path, like=value)
            elif not _same(loaded, value):
                hint = (
                    " A callback of yours that changes it during a fit declares so with "
                    "schedules_optimizer = True (as LRScheduler does)."
                    if key in SCHEDULED_OPTIONS
                    else ""
                )
                raise ValueError(
                    f"{path} holds the optimizer option {key}={loaded!r}, but this estimator's "
                    f"parameters give {key}={value!r}; a file does not set options.{hint}"
                )


def _check_rate(key: str, value: Any, path: Any, like: Any = 0.0) -> None:
    """A scheduled number (or tuple of them, as ``like``): finite, >= 0
    (and < 1 for Adam's ``betas``)."""
    values = value if isinstance(value, tuple) else (value,)
    numbers = [float(v) for v in values if _is_number(v)]
    if (
        isinstance(like, tuple) != isinstance(value, tuple)
        or len(values) != (len(like) if isinstance(like, tuple) else 1)
        or len(numbers) != len(values)
        or not all(math.isfinite(v) and v >= 0 for v in numbers)
        or (key == "betas" and not all(v < 1 for v in numbers))
    ):
        raise ValueError(
            f"{path} is malformed: the optimizer option {key}={value!r} is not a finite rate."
        )


def _is_number(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.ndim == 0 and value.is_floating_point()
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.shape == b.shape
            and bool(torch.equal(a.cpu(), b.cpu()))
        )
    if isinstance(a, tuple | list) or isinstance(b, tuple | list):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return type(a) is type(b) and a == b


def scheduled(callbacks: Any) -> bool:
    """Whether a callback among ``callbacks`` (``(name, callback)``) changes
    the optimizer's rates during a fit (declares ``schedules_optimizer``, as
    ``LRScheduler`` does)."""
    return any(getattr(cb, "schedules_optimizer", False) for _, cb in callbacks)


#: The dtypes a file may give an array of labels or names.
_TEXT_KINDS = "OUS"


def text_array(values: Any, dtype: Any, where: Any) -> np.ndarray:
    """``values`` as an array of ``dtype``, a dtype of numbers, strings or
    objects no wider than the longest value (a declared width is never
    allocated for its own sake)."""
    try:
        dtype = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"{where} is malformed: the array dtype {dtype!r}.") from exc
    if dtype.kind not in "biufOUS" or not isinstance(values, list):
        raise ValueError(f"{where} is malformed: an array of dtype {dtype}.")
    array = np.asarray(values, dtype=object if dtype.kind in _TEXT_KINDS else None)
    if dtype.kind in "US":
        width = max((len(str(v)) for v in array.ravel()), default=1)
        if dtype.itemsize > width * (4 if dtype.kind == "U" else 1):
            raise ValueError(
                f"{where} is malformed: the array dtype {dtype} is wider than its values."
            )
    with np.errstate(all="raise"):
        try:
            return np.asarray(array, dtype=dtype)
        except (ValueError, TypeError, OverflowError, FloatingPointError) as exc:
            raise ValueError(f"{where} is malformed: values not of dtype {dtype}.") from exc


def check_classes(data: dict[str, Any], path: Any) -> None:
    """Refuse ``classes_`` that are not unique, finite labels, one per
    output; of a multi-label fit (``_y_ndim`` 2), other than the label
    indices of at least two labels."""
    if "classes_" not in data:
        return
    classes = data["classes_"]
    if data.get("_y_ndim", 1) == 2 and not (
        classes.dtype.kind in "iu"
        and len(classes) >= 2
        and np.array_equal(classes, np.arange(len(classes)))
    ):
        raise ValueError(
            f"{path} is malformed: the 'classes_' of a multi-label fit must be the label "
            "indices 0, 1, ... of at least two labels."
        )
    numeric = classes.dtype.kind in "biuf"
    if (
        classes.ndim != 1
        or len(classes) < 1
        or (numeric and not np.isfinite(classes.astype(np.float64)).all())
        or len(set(classes.tolist())) != len(classes)
        or data.get("n_outputs_") != len(classes)
    ):
        raise ValueError(
            f"{path} is malformed: 'classes_' must be unique finite labels, one per output "
            f"({data.get('n_outputs_')!r})."
        )


#: The kinds of inputs a fitted state may describe (``_input_spec``), and
#: the kinds of a dict input's arrays.
INPUT_KINDS = ("array", "dict", "dataset")
_VALUE_KINDS = ("float", "int", "bool")
#: The most dimensions an input's shape may have in a file.
_MAX_DIMS = 32


def check_input_spec(spec: Any, path: Any) -> None:
    """Refuse an input description that is not one ``fit`` records: a kind,
    shapes of a few non-negative ints, names that are str."""

    def shape_ok(shape: Any) -> bool:
        return (
            isinstance(shape, list)
            and len(shape) <= _MAX_DIMS
            and all(type(d) is int and d >= 0 for d in shape)
        )

    ok = isinstance(spec, dict) and spec.get("kind") in INPUT_KINDS
    if ok and spec["kind"] == "array":
        ok = set(spec) == {"kind", "shape"} and shape_ok(spec["shape"]) and len(spec["shape"]) != 1
    elif ok and spec["kind"] == "dict":
        fields = spec.get("fields")
        ok = (
            set(spec) == {"kind", "fields"}
            and isinstance(fields, dict)
            and len(fields) > 0
            and all(
                isinstance(name, str)
                and isinstance(field, dict)
                and set(field) == {"shape", "kind"}
                and shape_ok(field["shape"])
                and field["kind"] in _VALUE_KINDS
                for name, field in fields.items()
            )
        )
    elif ok:
        ok = set(spec) == {"kind"}
    if not ok:
        raise ValueError(f"{path} is malformed: '_input_spec' does not describe an input.")
