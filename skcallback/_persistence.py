"""Pickling an estimator.

The parameters travel as ordinary pickled objects. A fitted estimator's
fitted state (``_fitted_state.encode``) travels as one ``torch.save`` blob of
plain data, read back with ``torch.load(weights_only=True)``, and the torch
objects are rebuilt from the estimator's own parameters, as
``load_checkpoint`` rebuilds them. So unpickling an estimator never runs
torch's full unpickler on an embedded blob (an allow-list unpickler such as
skops' means what it says), and a model fitted on a GPU loads on a CPU-only
machine.

A checksum over the blob and a description of everything else in the pickled
dict (``_fingerprint.describe``) is verified before anything is restored: a
flipped bit is a ValueError, never a silently different model.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import torch

from ._device import cuda_index_available
from ._files import checksum
from ._fingerprint import describe
from ._fitted_state import adopt, check_state, encode, is_fitted_key, is_plain
from ._rebuild import restore

_WHERE = "The pickled estimator"
#: The devices a model is fitted on (not ``meta``, which holds no values).
_DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")
_BLOB, _OTHER, _CHECKSUM = "_torch_state", "_callback_states", "_checksum"


def pack(estimator: Any, state: dict[str, Any]) -> dict[str, Any]:
    """The pickled form of ``estimator``, whose ``__dict__`` (and
    scikit-learn's additions) is ``state``: the parameters, the fitted state
    as a plain-data blob, and the checksum.

    A callback whose state is not plain data (tensors, numbers, strings,
    lists, dicts) keeps it in the pickle itself, under ``_callback_states``.
    """
    packed = {key: value for key, value in state.items() if not is_fitted_key(key)}
    if estimator.__sklearn_is_fitted__():
        fitted = encode(estimator)
        other = {k: v for k, v in fitted["callbacks"].items() if not is_plain(v)}
        fitted["callbacks"] = {k: v for k, v in fitted["callbacks"].items() if k not in other}
        fitted["device"] = str(estimator.device_)
        buffer = io.BytesIO()
        torch.save(fitted, buffer)
        packed[_BLOB] = buffer.getvalue()
        if other:
            packed[_OTHER] = other
    packed[_CHECKSUM] = _checksum(packed)
    return packed


def unpack(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The parameters and the checked fitted state (None when unfitted) of a
    pickled estimator.

    Raises
    ------
    ValueError
        If the checksum does not match, the pickle predates checksums, or the
        fitted state is not plain data or is malformed.
    """
    state = dict(state)
    if _CHECKSUM not in state:
        raise ValueError(
            "This pickled skcallback estimator was made by an earlier version, without a "
            "checksum, and is not loaded. With the version that made it, save the estimator "
            "with skcallback.save(estimator, path); this version loads that file with "
            "skcallback.load(path) and can pickle it again."
        )
    saved = state.pop(_CHECKSUM)
    try:
        matches = saved == _checksum(state)
    except Exception:  # a describe() of objects a flipped bit broke
        matches = False
    if not matches:
        raise ValueError(f"{_WHERE} is corrupt: its checksum does not match its contents.")
    blob = state.pop(_BLOB, None)
    other = state.pop(_OTHER, {})
    if blob is None:
        return state, None
    try:
        fitted = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"{_WHERE}'s torch state is not plain data (was the file tampered with?); it is "
            f"not loaded: {type(exc).__name__}: {exc}"
        ) from exc
    check_state(fitted, _WHERE)
    try:
        device = torch.device(fitted["device"]) if isinstance(fitted.get("device"), str) else None
    except RuntimeError:
        device = None
    if device is None or device.type not in _DEVICE_TYPES:
        raise ValueError(f"{_WHERE} is malformed: it names no device a model is fitted on.")
    fitted["callbacks"] = {**fitted["callbacks"], **other}
    return state, fitted


def restore_pickled(estimator: Any, fitted: dict[str, Any]) -> None:
    """Give an unpickled ``estimator`` (its parameters set) the fitted state
    ``unpack`` returned, on the device it was fitted on, or the CPU with a
    warning when that device is not here."""
    device = torch.device(fitted["device"])
    if device.type == "cuda" and not cuda_index_available(device):
        warnings.warn(
            f"This model was fitted on {device}, which is not available here; it is "
            "loaded on the CPU.",
            RuntimeWarning,
            stacklevel=3,
        )
        device = torch.device("cpu")
    adopt(estimator, restore(estimator, fitted, device, _WHERE))


def _checksum(state: dict[str, Any]) -> bytes:
    """The checksum of a pickled dict (without its checksum): the blob's
    bytes and a description of everything else that is equal for equal
    values in any process."""
    rest = {key: value for key, value in state.items() if key != _BLOB}
    return checksum(state.get(_BLOB, b""), describe(rest).encode())
