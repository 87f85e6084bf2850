"""Numeric precision of a fit: autocast and, for float16, a gradient scaler."""

from __future__ import annotations

import contextlib
import importlib
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

PRECISIONS = ("32", "64", "bf16-mixed", "16-mixed")


def float_dtype(precision: str) -> np.dtype:
    """The dtype of the data, targets and weights: float64 for ``"64"``,
    float32 otherwise (mixed precision casts inside autocast)."""
    return np.dtype(np.float64 if precision == "64" else np.float32)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (oneDNN's view)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN: assume not
        return False


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
        #: Whether ``step`` may call torch's fused Adam kernels itself.
        self.direct_step = direct_step and self.scaler is None

    def backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.direct_step and fused_adam_step(optimizer):
            return
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()


#: torch's fused Adam kernels, by optimizer class and ``decoupled_weight_decay``.
_KERNELS = {
    (torch.optim.Adam, False): getattr(torch, "_fused_adam_", None),
    (torch.optim.AdamW, True): getattr(torch, "_fused_adamw_", None),
}


def _unwrapped_step(cls: type) -> Any:
    """``cls.step`` without the profiling wrapper torch's ``Optimizer``
    puts on its class's ``step`` at the first instance."""
    step = cls.step  # type: ignore[attr-defined]
    return step.__wrapped__ if getattr(step, "hooked", False) else step


_STEPS = {cls: _unwrapped_step(cls) for cls, _ in _KERNELS}
_GLOBAL_HOOKS = [
    getattr(importlib.import_module("torch.optim.optimizer"), name, {"unknown": None})
    for name in ("_global_optimizer_pre_hooks", "_global_optimizer_post_hooks")
]


def fused_adam_step(optimizer: torch.optim.Optimizer) -> bool:
    """Take ``optimizer.step()`` of torch's ``Adam`` or ``AdamW`` built with
    ``fused=True`` by calling its kernel directly, and say whether it did.

    ``Optimizer.step`` spends about 35 us per call in Python (hooks,
    profiling, grouping the tensors by device) around a kernel that takes
    about 18 us on a small MLP: most of the optimizer's share of a small
    step. The kernel, its arguments and the state it updates (``step``,
    ``exp_avg``, ``exp_avg_sq``) are those ``step()`` would use, so the
    parameters and the optimizer's ``state_dict`` are bit for bit the same.
    It declines (returns False, and the caller runs ``step()``) for anything
    else: another optimizer class or a patched ``step``, step hooks (the
    optimizer's or global ones), ``amsgrad``, ``maximize``, ``capturable``,
    ``differentiable``, tensor hyperparameters, state not yet created (the
    first step creates it), sparse gradients, and parameters of mixed
    devices or dtypes.
    """
    cls = type(optimizer)
    own_step = vars(optimizer).get("step")
    if (
        _STEPS.get(cls) is not _unwrapped_step(cls)
        or (own_step is not None and not hasattr(own_step, "_wrapped_by_lr_sched"))
        or optimizer._optimizer_step_pre_hooks
        or optimizer._optimizer_step_post_hooks
        or any(_GLOBAL_HOOKS)
    ):
        return False
    state = optimizer.state
    calls = []
    like: Tensor | None = None  # every tensor must share its dtype and device
    for group in optimizer.param_groups:
        decoupled = group.get("decoupled_weight_decay", cls is torch.optim.AdamW)
        kernel = _KERNELS.get((cls, decoupled))
        beta1, beta2 = group["betas"]
        if (
            kernel is None
            or not group["fused"]
            or group["amsgrad"]
            or group["maximize"]
            or group["capturable"]
            or group["differentiable"]
            or not all(type(v) is float for v in (group["lr"], beta1, beta2))
        ):
            return False
        tensors: tuple[list[Tensor], ...] = ([], [], [], [], [])
        params, grads, avgs, squares, steps = tensors
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            if like is None:
                like = p
                if not p.dtype.is_floating_point:
                    return False
            p_state = state.get(p)
            if (
                not p_state
                or grad.is_sparse
                or grad.dtype is not like.dtype
                or p.dtype is not like.dtype
                or grad.device != like.device
                or p.device != like.device
                or "exp_avg" not in p_state
                or not isinstance(p_state.get("step"), Tensor)
            ):
                return False
            # torch makes the moments like their parameter (also on loading).
            params.append(p)
            grads.append(grad)
            avgs.append(p_state["exp_avg"])
            squares.append(p_state["exp_avg_sq"])
            steps.append(p_state["step"])
        calls.append((kernel, group, beta1, beta2, tensors))
    if own_step is not None:
        optimizer._opt_called = True  # type: ignore[attr-defined]  # what the LR scheduler's wrapper records
    with torch.no_grad():
        for kernel, group, beta1, beta2, (params, grads, avgs, squares, steps) in calls:
            if not params:
                continue
            torch._foreach_add_(steps, 1)
            kernel(
                params,
                grads,
                avgs,
                squares,
                [],
                steps,
                amsgrad=False,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=False,
            )
    return True


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
