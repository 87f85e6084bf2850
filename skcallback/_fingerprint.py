"""A fingerprint of a fit: its parameters and its data, the same in every
process, so a re-run script finds the checkpoints of the fit it repeats."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from ._device import resolve_device

#: Parameters that change how fast a fit runs or what it prints, not the
#: model it trains: a fit re-run with other values is the same fit (and
#: ``Checkpoint(resume=True)`` finds its files). ``compile`` runs the same
#: module's forward through a compiler; ``fast_path`` computes what autograd
#: would, within float rounding; ``threads`` splits the same operations.
#: ``precision`` and the device type stay: they change the numbers trained.
SPEED_ONLY = (
    "verbose",
    "fast_path",
    "threads",
    "compile",
    # how items load, not which (see _loading: every batch is seeded alike)
    "dataloader__num_workers",
    "dataloader__pin_memory",
    "dataloader__persistent_workers",
    "dataloader__prefetch_factor",
)


def fingerprint(estimator: Any, arrays: list[Any]) -> str:
    """A hex digest of ``estimator``'s parameters (those in ``SPEED_ONLY``
    aside; ``device`` as the type it resolves to, so ``"auto"`` on a machine
    without CUDA is ``"cpu"``) and of ``arrays`` (the fit's data, None where
    absent)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{type(estimator).__module__}.{type(estimator).__qualname__}".encode())
    params = estimator.get_params(deep=False)
    params["device"] = resolve_device(params["device"]).type
    for key in sorted(params):
        if key not in SPEED_ONLY:
            digest.update(f"\n{key}={describe(params[key])}".encode())
    for array in arrays:
        _update_with_array(digest, array)
    return digest.hexdigest()


def describe(value: Any) -> str:
    """A text that is equal for equal values in any process (no memory
    addresses), used to fingerprint parameters."""
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return repr(value)
    if isinstance(value, np.generic):
        return repr(value.item())
    if isinstance(value, os.PathLike):
        return repr(os.fspath(value))
    if isinstance(value, list | tuple):
        return "[" + ",".join(describe(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ",".join(f"{describe(k)}:{describe(v)}" for k, v in sorted(value.items())) + "}"
        )
    if isinstance(value, torch.nn.Module):
        tensors = b"".join(t.detach().cpu().numpy().tobytes() for t in value.state_dict().values())
        return f"{_path(value)}({value!r}):{_hash_bytes(tensors)}"
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        return f"{getattr(value, '__module__', '?')}.{value.__qualname__}"
    if isinstance(value, np.random.RandomState):
        # legacy=False: the bit generator's state as a dict, for every kind
        # of generator (MT19937's legacy tuple exists for that one only).
        return "RandomState:" + _hash_bytes(describe(value.get_state(legacy=False)).encode())
    if isinstance(value, torch.Tensor | np.ndarray):
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        return (
            f"array{array.shape}{array.dtype}:{_hash_bytes(np.ascontiguousarray(array).tobytes())}"
        )
    if hasattr(value, "get_params"):  # callbacks and estimators
        ignored = getattr(value, "_fingerprint_ignores", ())
        params = {k: v for k, v in value.get_params(deep=False).items() if k not in ignored}
        return f"{_path(value)}{describe(params)}"
    text = repr(value)
    return _path(value) + ("" if " at 0x" in text else f"({text})")


def _path(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


def _hash_bytes(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _update_with_array(digest: Any, array: Any) -> None:
    if array is None:
        digest.update(b"\nNone")
        return
    if hasattr(array, "describe") and callable(array.describe):  # items (a Dataset's)
        digest.update(f"\nitems {array.describe()}".encode())
        return
    if isinstance(array, dict):
        for key in sorted(array):
            digest.update(f"\nkey {key!r}".encode())
            _update_with_array(digest, array[key])
        return
    if sp.issparse(array):
        digest.update(f"\nsparse{array.shape}".encode())
        for part in (array.data, array.indices, array.indptr):
            _update_with_array(digest, np.asarray(part))
        return
    array = np.ascontiguousarray(array)
    if array.dtype == object:
        digest.update(f"\nobject{array.shape}:{describe(array.tolist())}".encode())
        return
    digest.update(f"\narray{array.shape}{array.dtype}".encode())
    digest.update(memoryview(array).cast("B"))
