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

A fit's ``DirectAdam`` gathers the kernel's arguments at its first step and
takes them again at the next, reading only the gradients anew, until the
loop ``forget``s them: wherever a callback's hook ran since (a hook may
change the groups, their options, the state or the step hooks). Each
group's step counts are the elements of one tensor (each parameter's
``state["step"]`` a 0-d view of it), counted by one ``add_``: torch's
``_foreach_add_`` over one tensor per parameter took 14-30 us a step on
the CPU, a third of the kernel's own time or more.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from typing import Any, NamedTuple

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


class _Call(NamedTuple):
    """One kernel call: the kernel and the group, the parameters with a
    gradient (``data``: detached, which the kernel updates outside
    autograd), their gradients, first and second moments and step counts,
    the 1-d tensor whose elements the step counts are (``_counter``), and
    ones like it (adding a tensor costs a third of adding the number 1)."""

    kernel: Callable[..., Any]
    group: dict[str, Any]
    params: list[Tensor]
    data: list[Tensor]
    grads: list[Tensor]
    avgs: list[Tensor]
    squares: list[Tensor]
    steps: list[Tensor]
    counts: Tensor
    ones: Tensor
    states: list[dict[str, Tensor]]


class DirectAdam:
    """``optimizer.step()`` of one fit, taken by calling the fused Adam
    kernel directly where it can be (``step`` says whether it was).

    The kernel's arguments are gathered at a step and taken again at the
    next ones, with the gradients read anew, until ``forget`` (the loop
    forgets them at each training phase's start). After a callback's hook
    ran (``doubt``), the next step first checks that what they were
    gathered from still holds: the same optimizer, step and groups, each
    group's options ones the kernel takes, the same parameters and the same
    state tensors; else it gathers anew. A parameter whose gradient is
    missing (or sparse) where it had one, or present where it had none,
    makes the step gather anew.
    """

    __slots__ = ("_calls", "_doubt", "_groups", "_optimizer", "_scheduled", "_without")

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        """Gather the kernel's arguments again at the next step."""
        self._optimizer: torch.optim.Optimizer | None = None
        self._calls: list[_Call] = []
        self._without: list[Tensor] = []
        self._groups: list[tuple[dict[str, Any], list[Tensor]]] = []
        self._scheduled = False
        self._doubt = False

    def doubt(self) -> None:
        """Check at the next step that the gathered arguments still hold (a
        callback's hook ran since the last step): a few microseconds, where
        gathering anew costs some fifty."""
        self._doubt = True

    def _still_holds(self, optimizer: torch.optim.Optimizer) -> bool:
        """Whether the gathered calls are still ``optimizer.step()``'s."""
        groups, cls = optimizer.param_groups, type(optimizer)
        if (
            optimizer is not self._optimizer
            or len(groups) != len(self._groups)
            or ("step" in vars(optimizer)) is not self._scheduled
            or not _steps_as_torch(optimizer)
        ):
            return False
        for group, (kept, params) in zip(groups, self._groups):
            members = group["params"]
            if (
                group is not kept
                or len(members) != len(params)
                or any(p is not q for p, q in zip(members, params))
                or _kernel(cls, group) is None
            ):
                return False
        get = optimizer.state.get
        for call in self._calls:
            for p, p_state, avg, square, step in zip(
                call.params, call.states, call.avgs, call.squares, call.steps
            ):
                if (
                    get(p) is not p_state
                    or p_state["exp_avg"] is not avg
                    or p_state["exp_avg_sq"] is not square
                    or p_state["step"] is not step
                ):
                    return False
        return True

    def step(self, optimizer: torch.optim.Optimizer) -> bool:
        """Take ``optimizer.step()`` by calling the fused Adam kernel, and
        say whether it did. It declines (returns False, and the caller runs
        ``step()``) for another optimizer class or a patched ``step``, step
        hooks, an option not in ``KNOWN_OPTIONS`` or a value ``_kernel``
        does not take, sparse gradients, parameters of mixed devices or
        dtypes, state of another shape or not yet created on a device other
        than the CPU or CUDA, a failed self-check, and the switch off. A
        parameter's first step creates its state as ``step()`` does
        (``_new_state``)."""
        if self._doubt:
            self._doubt = False
            if not self._still_holds(optimizer):
                self.forget()
        if optimizer is not self._optimizer or not self._read_gradients():
            self.forget()
            gathered = _gather(optimizer) if _switched_on() else None
            if gathered is None:
                return False
            calls, like = gathered
            if like is not None and not _verified(like):
                return False
            self._optimizer, self._calls = optimizer, calls
            self._without = _without_gradients(optimizer)
            self._groups = [(group, list(group["params"])) for group in optimizer.param_groups]
            # The LR scheduler's wrapper (_gather checked).
            self._scheduled = "step" in vars(optimizer)
        if self._scheduled:
            _internals.record_step_for_scheduler(optimizer)
        _run(self._calls)
        return True

    def _read_gradients(self) -> bool:
        """Put the parameters' current gradients in the gathered calls;
        False where a parameter gained or lost one, or has a sparse one."""
        for call in self._calls:
            grads = call.grads
            for i, p in enumerate(call.params):
                grad = p.grad
                if grad is None or grad.is_sparse:
                    return False
                grads[i] = grad
        return all(p.grad is None for p in self._without)


def _without_gradients(optimizer: torch.optim.Optimizer) -> list[Tensor]:
    """The parameters without a gradient (a frozen one, or one the batch did
    not use), which the step leaves as they are."""
    return [p for group in optimizer.param_groups for p in group["params"] if p.grad is None]


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
    cls, calls = type(optimizer), []
    created: dict[Tensor, dict[str, Tensor]] = {}
    groups = optimizer.param_groups
    like = next((p for g in groups for p in g["params"] if p.grad is not None), None)
    if like is not None and not like.dtype.is_floating_point:
        return None
    for group in groups:
        kernel = _kernel(cls, group)
        members = None if kernel is None else _members(group, optimizer.state, created, like)
        if kernel is None or members is None:
            return None
        if members:
            calls.append(_call(kernel, group, members))
    optimizer.state.update(created)  # in the order step() creates them: the parameters'
    return calls, like


#: A parameter with a gradient, its gradient and its state.
_Member = tuple[Tensor, Tensor, dict[str, Tensor]]


def _members(
    group: dict[str, Any], state: Any, created: dict[Tensor, dict[str, Tensor]], like: Any
) -> list[_Member] | None:
    """The parameters of ``group`` that have a gradient, with it and their
    state (a first state is made in ``created``); None where one is not
    what the kernel takes: a sparse gradient, or one that requires a
    gradient itself (the kernel runs outside ``no_grad``), another dtype or
    device than ``like``'s, a state of another shape or step count."""
    members = []
    for p in group["params"]:
        grad = p.grad
        if grad is None:
            continue
        p_state = state.get(p)
        if not p_state and p.device.type in _NEW_STATE_DEVICES:
            p_state = created[p] = _new_state(p)
        if (
            not p_state
            or grad.is_sparse
            or grad.requires_grad
            or grad.dtype is not like.dtype
            or p.dtype is not like.dtype
            or grad.device != like.device
            or p.device != like.device
            or "exp_avg" not in p_state
            or not _countable(p_state.get("step"), p)
        ):
            return None
        members.append((p, grad, p_state))
    return members


def _countable(step: Any, p: Tensor) -> bool:
    """Whether ``step`` is a step count as ``step()`` keeps it for the fused
    kernel (a 0-d float32 tensor on the parameter's device), which
    ``_counter`` may stack with the others."""
    return (
        isinstance(step, Tensor)
        and step.dim() == 0
        and step.dtype is torch.float32
        and step.device == p.device
    )


def _call(kernel: Callable[..., Any], group: dict[str, Any], members: list[_Member]) -> _Call:
    """The kernel call of a group's ``members``."""
    params = [p for p, _, _ in members]
    states = [p_state for _, _, p_state in members]
    steps = [p_state["step"] for p_state in states]
    counts = _counter(steps, states)
    # torch makes the moments like their parameter (also on loading).
    return _Call(
        kernel,
        group,
        params,
        [p.detach() for p in params],
        [grad for _, grad, _ in members],
        [p_state["exp_avg"] for p_state in states],
        [p_state["exp_avg_sq"] for p_state in states],
        steps,
        counts,
        torch.ones_like(counts),
        states,
    )


def _counter(steps: list[Tensor], states: list[dict[str, Tensor]]) -> Tensor:
    """A 1-d tensor whose elements are the parameters' step counts
    ``steps``: where they are not yet (a state just created or loaded, a
    parameter that joined the call), their values are copied into a new
    one, and each parameter's ``"step"`` in ``states`` becomes a 0-d view of it
    (the same values, dtype and device: ``step()`` counts such views with
    the same results)."""
    first = steps[0]
    offset, storage = first.storage_offset(), first.untyped_storage().data_ptr()
    if all(
        step.dim() == 0
        and step.dtype is first.dtype
        and step.untyped_storage().data_ptr() == storage
        and step.storage_offset() == offset + i
        for i, step in enumerate(steps)
    ):
        return first.as_strided((len(steps),), (1,), offset)
    counts = torch.stack(steps)
    for i, p_state in enumerate(states):
        steps[i] = p_state["step"] = counts[i]
    return counts


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
    """Make the kernel calls, as ``Adam.step`` does with ``fused=True``
    (under ``no_grad``, which the detached parameters and gradients that
    require none make needless)."""
    for call in calls:
        group = call.group
        beta1, beta2 = group["betas"]
        call.counts.add_(call.ones)
        call.kernel(
            call.data,
            call.grads,
            call.avgs,
            call.squares,
            [],
            call.steps,
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
