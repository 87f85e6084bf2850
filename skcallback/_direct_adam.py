"""The direct Adam step: ``optimizer.step()`` of torch's fused ``Adam`` and
``AdamW``, taken by calling their kernel directly.

``Optimizer.step`` spends about 35 us per call in Python (hooks, profiling,
grouping the tensors by device) around a kernel that takes about 18 us on a
small MLP: most of the optimizer's share of a small step. The kernel, its
arguments and the state it updates (``step``, ``exp_avg``, ``exp_avg_sq``)
are those ``step()`` would use, so the parameters and the optimizer's
``state_dict`` are bit for bit the same.

Three guards keep it so. Each parameter group may hold only the options of
``KNOWN_OPTIONS``, with the values ``_kernel`` accepts; an option a newer
torch adds is unknown, and the step goes to ``optimizer.step()``. Once per process
(and device and dtype), before its first use, the direct step is
compared bit for bit with ``optimizer.step()`` on a tiny problem; if they
differ, every step of the process goes to ``optimizer.step()``, and the
``skcallback`` logger says so (level INFO). And the environment variable
``SKCALLBACK_DIRECT_ADAM=0``, read at the first step, turns it off.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from . import _internals

#: The environment variable that turns the direct step off ("0", "false",
#: "no" or "off").
SWITCH = "SKCALLBACK_DIRECT_ADAM"


#: The parameter-group options the direct step knows: Adam's and AdamW's,
#: and those torch's LR schedulers write and read (the step reads none of
#: them). A group holding any other goes to ``optimizer.step()``, and so
#: does one whose values ``_kernel`` does not accept.
KNOWN_OPTIONS = frozenset(
    {
        "params",
        "lr",
        "betas",
        "eps",
        "weight_decay",
        "amsgrad",
        "maximize",
        "foreach",
        "capturable",
        "differentiable",
        "fused",
        "decoupled_weight_decay",
        # torch's LR schedulers
        "initial_lr",
        "max_lr",
        "min_lr",
        "base_momentum",
        "max_momentum",
    }
)

#: The optimizers stepped directly, with their ``step`` as torch defines it
#: (a subclass overriding it, or a patched class, is not one of them).
_STEPS: dict[type, Any] = {
    cls: _internals.unwrapped_step(cls) for cls in (torch.optim.Adam, torch.optim.AdamW)
}
#: Whether the self-check passed, by device index and dtype; and the switch.
_VERDICTS: dict[tuple[int, torch.dtype], bool] = {}
_SWITCHED_ON: list[bool] = []

_log = logging.getLogger("skcallback")

#: One kernel call: the kernel, the group, and its parameters, gradients,
#: first and second moments and step counts.
_Call = tuple[
    Callable[..., Any], dict, list[Tensor], list[Tensor], list[Tensor], list[Tensor], list[Tensor]
]


def direct_adam_step(optimizer: torch.optim.Optimizer) -> bool:
    """Take ``optimizer.step()`` by calling the fused Adam kernel directly,
    and say whether it did. It declines (returns False, and the caller runs
    ``step()``) for another optimizer class or a patched ``step``, step
    hooks, an option not in ``KNOWN_OPTIONS`` or a value ``_kernel`` does
    not take, sparse gradients, parameters of mixed devices or dtypes,
    state of another shape or not yet created on a device other than the
    CPU or CUDA, a failed self-check, and the switch off. A parameter's
    first step creates its state as ``step()`` does (``_new_state``)."""
    if not _switched_on():
        return False
    gathered = _gather(optimizer)
    if gathered is None:
        return False
    calls, like = gathered
    if like is not None and not _verified(like):
        return False
    if "step" in vars(optimizer):  # the LR scheduler's wrapper (_gather checked)
        _internals.record_step_for_scheduler(optimizer)
    _run(calls)
    return True


def _steps_as_torch(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer.step()`` would run torch's own step and nothing
    else: the class's step unchanged, no step of the instance's own but the
    LR scheduler's wrapper, no step hooks."""
    cls = type(optimizer)
    return (
        _STEPS.get(cls) is _internals.unwrapped_step(cls)
        and _internals.instance_step_is_schedulers(optimizer) is not False
        and not _internals.has_step_hooks(optimizer)
    )


def _kernel(cls: type, group: dict[str, Any]) -> Callable[..., Any] | None:
    """The kernel ``step()`` calls for ``group``, where the group holds only
    ``KNOWN_OPTIONS``, with the values the direct step takes (checked one by
    one: this runs at every step); else None."""
    try:
        betas, foreach, decoupled = (
            group["betas"],
            group["foreach"],
            group.get("decoupled_weight_decay", cls is torch.optim.AdamW),
        )
        takes = (
            group.keys() <= KNOWN_OPTIONS
            and group["fused"] is True
            and group["amsgrad"] is False
            and group["maximize"] is False
            and group["capturable"] is False
            and group["differentiable"] is False
            and (foreach is None or foreach is False)
            and type(group["lr"]) is float  # a tensor lr is step()'s
            and type(betas) in (tuple, list)
            and len(betas) == 2
            and type(betas[0]) is float
            and type(betas[1]) is float
            and type(group["eps"]) in (int, float)
            and type(group["weight_decay"]) in (int, float)
            and decoupled is (cls is torch.optim.AdamW)
        )
    except KeyError:  # an option this torch does not have
        return None
    return _internals.adam_kernel(decoupled) if takes else None


def _gather(optimizer: torch.optim.Optimizer) -> tuple[list[_Call], Tensor | None] | None:
    """The kernel calls of ``optimizer.step()``, and a parameter all others
    share their dtype and device with (None when no parameter has a
    gradient); None where the direct step declines."""
    if not _steps_as_torch(optimizer):
        return None
    cls, state = type(optimizer), optimizer.state
    calls: list[_Call] = []
    like: Tensor | None = None
    created: dict[Tensor, dict[str, Tensor]] = {}
    for group in optimizer.param_groups:
        kernel = _kernel(cls, group)
        if kernel is None:
            return None
        call: _Call = (kernel, group, [], [], [], [], [])
        _, _, params, grads, avgs, squares, steps = call
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            if like is None:
                like = p
                if not p.dtype.is_floating_point:
                    return None
            p_state = state.get(p)
            if not p_state and p.device.type in _NEW_STATE_DEVICES:
                p_state = created[p] = _new_state(p)
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
                return None
            # torch makes the moments like their parameter (also on loading).
            params.append(p)
            grads.append(grad)
            avgs.append(p_state["exp_avg"])
            squares.append(p_state["exp_avg_sq"])
            steps.append(p_state["step"])
        calls.append(call)
    state.update(created)  # in the order step() creates them: the parameters'
    return calls, like


#: The devices where the direct step creates a parameter's first state
#: (``step()`` checks others for the fused kernel first, and creates it there).
_NEW_STATE_DEVICES = ("cpu", "cuda")


def _new_state(p: Tensor) -> dict[str, Tensor]:
    """The state ``Adam.step`` creates at a parameter's first step with
    ``fused=True``: a float32 step count on the parameter's device, and the
    moments as zeros like it (the self-check compares them, dtypes and key
    order included, with those ``step()`` creates)."""
    return {
        "step": torch.zeros((), dtype=torch.float32, device=p.device),
        "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
        "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
    }


def _run(calls: list[_Call]) -> None:
    """Make the kernel calls, as ``Adam.step`` does with ``fused=True``."""
    with torch.no_grad():
        for kernel, group, params, grads, avgs, squares, steps in calls:
            if not params:
                continue
            beta1, beta2 = group["betas"]
            _internals.add_one(steps)
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


def _switched_on() -> bool:
    """Whether ``SKCALLBACK_DIRECT_ADAM`` leaves the direct step on (read
    once per process)."""
    if not _SWITCHED_ON:
        value = os.environ.get(SWITCH, "1").strip().lower()
        _SWITCHED_ON.append(value not in ("0", "false", "no", "off"))
    return _SWITCHED_ON[0]


def _verified(like: Tensor) -> bool:
    """Whether the self-check passed on ``like``'s device and dtype (run
    there once per process)."""
    key = (like.get_device(), like.dtype)  # -1 on the CPU, else the index
    verdict = _VERDICTS.get(key)
    if verdict is None:
        verdict = _VERDICTS[key] = _self_check(like.device, like.dtype)
        if not verdict:
            _log.info(
                "The direct Adam step differs from optimizer.step() on %s %s: "
                "skcallback runs optimizer.step() for the rest of the process.",
                like.device,
                like.dtype,
            )
    return verdict


def _self_check(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether the direct step gives, bit for bit, the parameters and state
    ``optimizer.step()`` gives over a few steps of Adam, Adam with weight
    decay and AdamW, with two parameter groups, from the first step (which
    creates the state). The reference runs torch's step without its
    profiling wrapper, which a profiled fit would count."""
    for cls, decay in ((torch.optim.Adam, 0.0), (torch.optim.Adam, 0.1), (torch.optim.AdamW, 0.1)):
        direct, reference = (_probe(cls, decay, device, dtype) for _ in range(2))
        step = _internals.unwrapped_step(cls)
        for k in range(4):
            for optimizer in (direct, reference):
                for i, p in enumerate(_parameters(optimizer)):
                    p.grad = torch.cos(
                        torch.arange(p.numel(), dtype=dtype, device=device) * (k + i + 1)
                    ).view_as(p)
            step(reference)
            gathered = _gather(direct)
            if gathered is None:
                return False
            _run(gathered[0])
        if not _same(direct, reference):
            return False
    return True


def _probe(cls: type, weight_decay: float, device: torch.device, dtype: torch.dtype) -> Any:
    """A fused ``cls`` over three small parameters in two groups."""

    def parameter(*shape: int) -> torch.nn.Parameter:
        values = torch.linspace(-1.0, 1.0, math.prod(shape), dtype=dtype, device=device)
        return torch.nn.Parameter(values.view(shape))

    groups = [
        {"params": [parameter(3, 4), parameter(4)], "lr": 0.01},
        {"params": [parameter(5)], "lr": 0.003},
    ]
    return cls(groups, fused=True, weight_decay=weight_decay)


def _parameters(optimizer: torch.optim.Optimizer) -> list[Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def _same(a: torch.optim.Optimizer, b: torch.optim.Optimizer) -> bool:
    """Whether two optimizers' parameters and state are bit for bit equal,
    their state's keys in the same order and of the same dtypes."""
    pairs = zip(_parameters(a), _parameters(b), strict=True)
    return _state_order(a) == _state_order(b) and all(
        torch.equal(p, q)
        and list(a.state[p]) == list(b.state[q])
        and all(
            a.state[p][key].dtype == b.state[q][key].dtype
            and torch.equal(a.state[p][key], b.state[q][key])
            for key in a.state[p]
        )
        for p, q in pairs
    )


def _state_order(optimizer: torch.optim.Optimizer) -> list[int]:
    """The positions of the parameters in the order of their state (the
    order of ``state_dict()["state"]``)."""
    index = {id(p): i for i, p in enumerate(_parameters(optimizer))}
    return [index[id(p)] for p in optimizer.state]
