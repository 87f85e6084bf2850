"""Pickling a fitted estimator.

The torch objects of a fit do not travel as objects: their state (the
module's and the optimizer's state dicts, the callbacks' states) travels as
one ``torch.save`` blob of plain data, read back with
``torch.load(weights_only=True)``, and the objects are rebuilt from the
estimator's own parameters, as ``load_checkpoint`` rebuilds them. So
unpickling an estimator never runs torch's full unpickler on an embedded
blob (an allow-list unpickler such as skops' means what it says), and a model
fitted on a GPU loads on a CPU-only machine.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import torch

from ._device import cuda_index_available
from ._snapshot import _plain

#: Fitted attributes that are rebuilt rather than pickled.
REBUILT = ("module_", "optimizer_", "criterion_", "callbacks_", "history_")


def pack(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` with the fit's torch objects replaced by a plain-data blob.

    A callback whose state is not plain data (tensors, numbers, strings,
    lists, dicts) keeps it in the pickle itself, under ``_callback_states``.
    """
    state = dict(state)
    if "module_" not in state:
        return state
    objects = {key: state.pop(key) for key in REBUILT if key in state}
    plain: dict[str, Any] = {}
    other: dict[str, Any] = {}
    for name, cb in objects["callbacks_"].items():
        cb_state = _plain(cb.state_dict())
        (plain if _is_plain(cb_state) else other)[name] = cb_state
    buffer = io.BytesIO()
    torch.save(
        {
            "module": objects["module_"].state_dict(),
            "optimizer": objects["optimizer_"].state_dict(),
            "callbacks": plain,
        },
        buffer,
    )
    state["_torch_state"] = buffer.getvalue()
    if other:
        state["_callback_states"] = other
    return state


def rebuild(estimator: Any, blob: bytes, other: dict[str, Any]) -> None:
    """Rebuild an unpickled estimator's torch objects from ``pack``'s blob
    (and the non-plain callback states ``other``)."""
    from ._fitted_state import rebuild_fitted

    device = getattr(estimator, "device_", torch.device("cpu"))
    if device.type == "cuda" and not cuda_index_available(device):
        warnings.warn(
            f"This model was fitted on {device}, which is not available here; it is "
            "loaded on the CPU.",
            RuntimeWarning,
            stacklevel=3,
        )
        device = torch.device("cpu")
    try:
        saved = torch.load(io.BytesIO(blob), map_location=device, weights_only=True)
    except Exception as exc:
        raise ValueError(
            "The pickled estimator's torch state is not plain data (was the file tampered "
            f"with?); it is not loaded: {type(exc).__name__}: {exc}"
        ) from exc
    saved["callbacks"] = {**saved["callbacks"], **other}
    rebuild_fitted(estimator, saved, device, "the pickled estimator")


_PLAIN = (type(None), bool, int, float, str, bytes, torch.Tensor, torch.Size)


def _is_plain(value: Any) -> bool:
    """Whether ``torch.load(weights_only=True)`` reads ``value`` back."""
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, list | tuple):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str | int) and _is_plain(v) for k, v in value.items())
    return False
