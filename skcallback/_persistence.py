"""Pickling a fitted estimator: its torch objects travel as one
``torch.save`` blob, so a model fitted on a GPU loads on a CPU-only machine."""

from __future__ import annotations

import io
import warnings
from typing import Any

import torch

from ._device import cuda_index_available

#: Fitted attributes holding torch objects.
TORCH_ATTRIBUTES = ("module_", "optimizer_", "criterion_", "callbacks_", "history_")


def pack(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` with its torch attributes serialised into one blob."""
    state = dict(state)
    torch_state = {k: state.pop(k) for k in TORCH_ATTRIBUTES if k in state}
    if torch_state:
        buffer = io.BytesIO()
        torch.save(torch_state, buffer)
        state["_torch_state"] = buffer.getvalue()
    return state


def unpack(state: dict[str, Any]) -> dict[str, Any]:
    """Undo :func:`pack`, on the CPU when the fit's GPU is not here."""
    state = dict(state)
    blob = state.pop("_torch_state", None)
    if blob is None:
        return state
    device = state.get("device_", torch.device("cpu"))
    if device.type == "cuda" and not cuda_index_available(device):
        warnings.warn(
            f"This model was fitted on {device}, which is not available here; it is "
            "loaded on the CPU.",
            RuntimeWarning,
            stacklevel=3,
        )
        device = state["device_"] = torch.device("cpu")
    state.update(torch.load(io.BytesIO(blob), map_location=device, weights_only=False))
    return state
