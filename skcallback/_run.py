"""The run of a fit: the live objects that execute a plan.

``prepare`` (``_plan.py``) decides and checks everything before training;
``start_run`` then builds what the loop works with: the random generators,
the per-hook dispatch table, the compiled forward, the loss function, the
precision policy and, where it gives autograd's model, the built-in MLP's
hand-derived step. Nothing here can fail on the user's configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ._dispatch import HookTable
from ._distributed import Group
from ._factories import LossFn, loss_function, module_and_loss_are_ours
from ._mlp_backprop import ACTIVATION_STEPS, LOSSES, HandwrittenMLPStep
from ._modules import MLP
from ._plan import FitPlan
from ._precision import Precision, compiled_forward


@dataclass(slots=True)
class FitRun:
    """The live objects of one fit, built from its plan.

    Attributes
    ----------
    hooks : HookTable
        Per hook, the callbacks that override it, in dispatch order.
    shuffle, dropout : torch.Generator
        The generators of the epochs' permutations and of dropout.
    forward : callable
        The module's forward (compiled when ``compile=True``).
    compute_loss : callable
        ``(output, y, sample_weight) -> loss``.
    precision : Precision
        Autocast, backward and optimizer step of the fit's precision.
    mlp_step : HandwrittenMLPStep or None
        The built-in MLP's hand-derived training step, where the fit trains
        with it; None: autograd.
    group : Group or None
        The process group of a ``strategy="ddp"`` fit (``_distributed``).
    """

    hooks: HookTable
    shuffle: torch.Generator
    dropout: torch.Generator
    forward: Callable[[Any], Any]
    compute_loss: LossFn
    precision: Precision
    mlp_step: HandwrittenMLPStep | None
    group: Group | None = None


def start_run(plan: FitPlan, internal: tuple[tuple[str, Any], ...] = ()) -> FitRun:
    """The run of ``plan``: its callbacks' hooks (with ``internal`` ones,
    which are not among ``callbacks_``, dispatched by ``order`` among them),
    generators seeded from the plan, and the training step it takes."""
    work = plan.estimator
    named = sorted([*work.callbacks_.items(), *internal], key=lambda item: item[1].order)
    if plan.group is not None and plan.group.rank != 0:  # their side effects happen once
        named = [(name, cb) for name, cb in named if not getattr(cb, "rank_zero_only", False)]
    run = FitRun(
        hooks=HookTable(named),
        shuffle=torch.Generator().manual_seed(plan.seed),
        dropout=torch.Generator(device=plan.device).manual_seed(plan.seed + 1),
        forward=compiled_forward(work.module_, work.compile),
        compute_loss=loss_function(work.criterion_, weighted=plan.weighted),
        precision=Precision(work.precision, plan.device, direct_step=bool(work.fast_path)),
        mlp_step=None,
        group=plan.group,
    )
    # A resumed fit's generators are restored where the loop resumes it
    # (``_loop._resume``), with its position in the epoch.
    if plan.resume is not None:
        state = plan.resume
        if state["grad_scaler"] and run.precision.scaler:
            run.precision.scaler.load_state_dict(state["grad_scaler"])
    run.mlp_step = choose_fast_path(plan, run)
    work.fast_path_ = run.mlp_step is not None
    if run.mlp_step is not None:  # not compiled: its forward is the module's
        run.forward = run.mlp_step.forward
    return run


#: Hooks that could read or change the forward pass or the loss's graph.
_GRAPH_HOOKS = ("on_after_forward", "on_after_loss", "on_before_backward")


def choose_fast_path(plan: FitPlan, run: FitRun) -> HandwrittenMLPStep | None:
    """The hand-derived step of the built-in MLP where it gives the model
    autograd would, else None (autograd).

    That is: ``fast_path=True``, the built-in MLP with a built-in activation,
    the default criterion (no ``criterion__`` parameters), float32 without
    autocast, no ``compile``, the CPU or CUDA, and no callback that
    overrides a hook which could read or change the forward pass or the
    loss's graph.
    """
    work = plan.estimator
    loss = LOSSES.get(type(work.criterion_))
    eligible = (
        bool(work.fast_path)
        and loss is not None
        and module_and_loss_are_ours(work)
        and isinstance(work.module_, MLP)
        and work.activation in ACTIVATION_STEPS
        and work.precision == "32"
        and not work.compile
        and plan.device.type in ("cpu", "cuda")  # where its every op is implemented
        and not any(getattr(run.hooks, hook) for hook in _GRAPH_HOOKS)
    )
    if not eligible or loss is None:  # loss tested again for type checkers
        return None
    return HandwrittenMLPStep(
        work.module_,
        activation=work.activation,
        dropout=float(work.dropout),
        loss=loss,
        batch_size=min(plan.batch_size, plan.n_train),  # no batch has more rows
        generator=run.dropout,
    )
