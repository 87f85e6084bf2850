"""Where a fit runs."""

from __future__ import annotations

import torch

from ._params import InvalidParameterError


def cuda_index_available(device: torch.device) -> bool:
    return torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()


def resolve_device(device: str | torch.device) -> torch.device:
    """The torch device of the ``device`` parameter (``"auto"``: CUDA when
    available, else the CPU); an unavailable device is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not cuda_index_available(resolved):
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        raise InvalidParameterError(
            f"device={device!r} was requested but {available} CUDA device(s) are available; "
            "use device='cpu' or device='auto'."
        )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidParameterError(
            "device='mps' was requested but MPS is not available; use 'cpu' or 'auto'."
        )
    return resolved
