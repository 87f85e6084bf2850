"""Numeric precision of a fit: autocast and, for float16, a gradient scaler."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ._direct_adam import DirectAdam
from ._internals import cpu_has_bf16

PRECISIONS = ("32", "64", "bf16-mixed", "16-mixed")


def float_dtype(precision: str) -> np.dtype:
    """The dtype of the data, targets and weights: float64 for ``"64"``,
    float32 otherwise (mixed precision casts inside autocast)."""
    return np.dtype(np.float64 if precision == "64" else np.float32)


def autocast(precision: str, device: torch.device) -> Any:
    """The autocast context of ``precision`` (a no-op for ``"32"`` and
    ``"64"``)."""
    if precision in ("32", "64"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16-mixed" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


class Precision:
    """How the loop runs forward, backward and the optimizer step.

    ``"32"`` is plain float32 and ``"64"`` plain float64 (data, module and
    loss). ``"bf16-mixed"`` and ``"16-mixed"`` run the
    forward pass and the loss under ``torch.autocast``; float16 also scales
    the loss with a ``GradScaler`` so small gradients do not underflow.
    """

    def __init__(self, precision: str, device: torch.device, direct_step: bool = False) -> None:
        if precision == "bf16-mixed" and device.type == "cpu" and not cpu_has_bf16():
            warnings.warn(
                "precision='bf16-mixed' on a CPU without bfloat16 instructions (AVX512-BF16 "
                "or AMX): bfloat16 is emulated there, and training is slower than in "
                "float32 (2.6x on small networks, up to 50x on large ones, as measured). "
                "Use precision='32' on this machine.",
                RuntimeWarning,
                stacklevel=5,
            )
        self.autocast = autocast(precision, device)
        self.scaler = torch.amp.GradScaler(device.type) if precision == "16-mixed" else None
        #: The fused Adam step taken directly (``_direct_adam``), where ``step``
        #: may take it.
        self.direct = DirectAdam() if direct_step and self.scaler is None else None

    def backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.direct is not None and self.direct.step(optimizer):
            return
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()

    def forget(self) -> None:
        """Let the next ``step`` gather what the direct step reads anew."""
        if self.direct is not None:
            self.direct.forget()

    def doubt(self) -> None:
        """Let the next ``step`` check that what the direct step gathered
        still holds (a callback's hook ran since the last)."""
        if self.direct is not None:
            self.direct.doubt()


def compiled_forward(module: torch.nn.Module, enabled: bool) -> Callable[..., Any]:
    """``module`` itself, or a ``torch.compile`` of it that falls back to
    eager execution, with a warning, if compiling fails at the first call."""
    if not enabled:
        return module
    try:
        compiled = torch.compile(module)
    except Exception as exc:  # e.g. no compiler backend on this platform
        _warn(exc)
        return module
    state: dict[str, Any] = {"forward": compiled, "checked": False}

    def forward(X: torch.Tensor) -> torch.Tensor:
        if state["checked"]:
            return state["forward"](X)
        try:
            out = compiled(X)
        except Exception as exc:
            _warn(exc)
            state["forward"] = module
            out = module(X)
        state["checked"] = True
        return out

    return forward


def _warn(exc: Exception) -> None:
    warnings.warn(
        f"torch.compile is not available here ({type(exc).__name__}: {exc}); training "
        "runs the module eagerly.",
        RuntimeWarning,
        stacklevel=4,
    )
