"""The training loop: fit -> epoch -> train/valid phase -> batch.

The estimator prepares the data and the torch objects, the loop runs them,
and callbacks observe and steer it through the ``Context``.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch

from ._context import Context
from ._data import explained_feed
from ._dispatch import HookTable, fire
from ._factories import LossFn
from ._mlp_backprop import HandwrittenMLPStep
from ._modules import dropout_generator, global_rng_scope, set_training
from ._precision import Precision
from ._stack import user_stacklevel
from .callbacks._base import HOOKS

INTERRUPTED = "KeyboardInterrupt"


def run_fit(ctx: Context) -> None:
    """Run the plan's epochs until ``ctx.max_epochs`` (fewer if a stop is
    requested).

    ``on_fit_end`` runs for every callback after a normal or a stopped fit;
    their errors are collected and raised together after all have run. When
    the fit fails (in a hook, in training, or in ``on_fit_end``), every
    ``on_exception`` runs and then every ``on_fit_end``, with
    ``ctx.exception`` set, and the error is re-raised. Cleanup hooks run for
    every callback whatever another raised, ``KeyboardInterrupt`` and
    ``SystemExit`` included; a ``KeyboardInterrupt`` raised by a cleanup
    hook fails the fit (after the others ran) as any error would. Ctrl-C
    stops training after the current batch; a second Ctrl-C raises
    ``KeyboardInterrupt``.
    """
    plan, live = ctx.plan, ctx.run
    hooks = live.hooks
    run = _Step(live.compute_loss, live.precision, live.forward, live.mlp_step)
    run.steady = not any(getattr(hooks, hook) for hook in _BATCH_HOOKS)
    saved = plan.resume
    resume = _resume(ctx)
    with (
        _interrupts(ctx) as interrupted,
        dropout_generator(live.dropout),
        global_rng_scope(plan.custom_seed, plan.device, saved and saved["global_rng_state"]),
    ):
        try:
            fire(hooks.on_fit_begin, ctx)
            _agree_to_stop(ctx)
            while (not ctx.stop_requested and ctx.epoch < ctx.max_epochs) or resume:
                _run_epoch(ctx, hooks, plan, run, resume)
                resume = None
        except BaseException as exc:
            _clean_up_after(ctx, hooks, exc, fit_end=True)
            raise
        failures = _fire_each(hooks.on_fit_end, ctx)
        if failures:
            error = _one_error(failures)
            _clean_up_after(ctx, hooks, error, fit_end=False)
            raise error
    if interrupted():
        warnings.warn(
            f"Training was interrupted (Ctrl-C) in epoch {ctx.epoch}: the fit ended after "
            "the current batch, as if stopped. Press Ctrl-C twice to abort instead.",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )


#: The hooks that may run between two optimizer steps of a training phase.
_BATCH_HOOKS = HOOKS[HOOKS.index("on_train_batch_begin") : HOOKS.index("on_train_batch_end") + 1]


class _Step:
    """What one batch needs besides the context: the (compiled) forward, the
    loss, the precision policy and, where the plan chose it, the built-in
    MLP's hand-derived training step (``mlp_step``).

    What a step checks and gathers (whether the hand-derived step takes the
    batch, the direct Adam step's arguments) holds until a callback's hook
    may have changed it: ``forget`` runs at each training phase's start and,
    where callbacks have per-batch hooks (not ``steady``), ``doubt`` at each
    batch's: the hand-derived step checks anew, the direct Adam step checks
    that what it gathered still holds.
    """

    __slots__ = ("compute_loss", "forward", "mlp_step", "precision", "steady", "takes")

    def __init__(
        self,
        compute_loss: LossFn,
        precision: Precision,
        forward: Callable,
        mlp_step: HandwrittenMLPStep | None = None,
    ) -> None:
        self.compute_loss, self.precision, self.forward = compute_loss, precision, forward
        self.mlp_step = mlp_step
        self.steady = False
        self.takes: bool | None = None  # the hand-derived step's verdict, where known

    def forget(self) -> None:
        """Check and gather anew at the next step."""
        self.takes = None
        self.precision.forget()

    def doubt(self) -> None:
        """Check anew, or that what was gathered holds, at the next step (a
        hook may have run)."""
        self.takes = None
        self.precision.doubt()

    def _takes(self, X_b, y_b, w_b, batch: tuple) -> bool:
        """Whether the hand-derived step takes the batch: checked once a
        phase where no per-batch hook runs (nothing it checks can change
        then), else at every batch."""
        if self.takes is not None:
            return self.takes
        assert self.mlp_step is not None
        replaced = X_b is not batch[0] or y_b is not batch[1] or w_b is not batch[2]
        takes = self.mlp_step.takes(X_b, y_b, w_b, replaced=replaced)
        if self.steady:
            self.takes = takes
        return takes

    def predict_and_score(self, ctx: Context, hooks: HookTable, X_b, y_b, w_b) -> None:
        """Forward pass and loss, with their hooks; the same in both phases."""
        ctx.y_pred = explained_feed(self.forward, X_b)
        if hooks.on_after_forward:
            fire(hooks.on_after_forward, ctx)
        ctx.loss = self.compute_loss(ctx.y_pred, y_b, w_b)
        if hooks.on_after_loss:
            fire(hooks.on_after_loss, ctx)

    def learn(
        self, ctx: Context, hooks: HookTable, share: float, *, fresh: bool, batch: tuple
    ) -> bool:
        """Forward, loss and backward of the training batch in ``ctx``, its
        gradient scaled by ``share`` and replacing the gradients when
        ``fresh`` (else added); False when a hook skipped the batch.
        ``batch`` is the loop's own ``(X, y, sample_weight)``, which a
        callback may have replaced in ``ctx``.

        The hand-derived step runs only where no callback has a hook between
        forward and backward (the plan checked) and for batches it computes
        as autograd would (``HandwrittenMLPStep.takes``); it sets ``ctx.y_pred`` and
        ``ctx.loss`` as autograd's path does."""
        X_b, y_b, w_b = ctx.X_batch, ctx.y_batch, ctx.sample_weight_batch
        if self.mlp_step is not None and self._takes(X_b, y_b, w_b, batch):
            ctx.y_pred, ctx.loss = self.mlp_step.step(X_b, y_b, w_b, share, fresh=fresh)
            return True
        with self.precision.autocast:
            self.predict_and_score(ctx, hooks, X_b, y_b, w_b)
        if ctx.skip_requested:
            return False
        if fresh:
            ctx.optimizer.zero_grad(set_to_none=True)
        if hooks.on_before_backward:
            fire(hooks.on_before_backward, ctx)
        self.precision.backward(ctx.loss if share == 1.0 else ctx.loss * share)
        return True


class Progress:
    """The loop's position in the current epoch (see ``Context.progress``)."""

    __slots__ = ("between_batches", "complete", "losses", "lr", "shuffle_state", "sizes")

    def __init__(self, lr: float, shuffle_state: torch.Tensor, losses=(), sizes=()) -> None:
        self.lr, self.shuffle_state = lr, shuffle_state
        self.losses: list[torch.Tensor] = list(losses)
        self.sizes: list[int] = list(sizes)
        # Whether a checkpoint can record the position exactly: after a
        # training batch's step (or skip), or once the epoch is complete.
        self.between_batches = False
        self.complete = False


def _resume(ctx: Context) -> dict | None:
    """Put the fit where its checkpoint left it; the position within an
    unfinished epoch is returned for the first epoch to continue from."""
    state = ctx.plan.resume
    if state is None:
        return None
    ctx.epoch, ctx.step = state["epoch"], state["step"]
    if state["stop_reason"] not in (None, INTERRUPTED):  # a Ctrl-C'd fit goes on
        ctx.request_stop(state["stop_reason"])
    ctx.run.dropout.set_state(state["dropout_state"])
    ctx.run.shuffle.set_state(state["shuffle_state"])
    if not state["batches_done"]:
        return None
    ctx.progress = Progress(
        state["epoch_lr"], state["shuffle_state"], state["epoch_losses"], state["epoch_sizes"]
    )
    ctx.progress.between_batches = True
    return state


def _run_epoch(ctx, hooks, plan, run: _Step, resume: dict | None) -> None:
    started = time.perf_counter()
    ctx.epoch += 1
    if resume is None:
        ctx.metrics = {"epoch": ctx.epoch}
        ctx.progress = Progress(ctx.optimizer.param_groups[0]["lr"], ctx.run.shuffle.get_state())
        fire(hooks.on_epoch_begin, ctx)
        done = 0
    else:  # the epoch began before the checkpoint: its record is the last one
        ctx.metrics = ctx.history[-1]
        done = resume["batches_done"]
    _train_phase(ctx, hooks, plan.train, plan.batch_size, ctx.run.shuffle, run, done)
    if plan.valid is not None and _validates(ctx, plan.validate_every):
        _valid_phase(ctx, hooks, plan.valid, plan.batch_size, run)
    _check_finite_metrics(ctx)
    ctx.metrics["lr"] = ctx.progress.lr
    ctx.metrics["dur"] = time.perf_counter() - started
    ctx.progress.complete = True
    fire(hooks.on_epoch_end, ctx)
    _agree_to_stop(ctx)


def _validates(ctx: Context, every: int) -> bool:
    """Whether this epoch validates: every ``every``-th, and the last one
    (the fit's final epoch, or one in which a stop was requested, so that
    a stopped fit ends on a validated epoch too)."""
    return ctx.epoch % every == 0 or ctx.epoch >= ctx.max_epochs or ctx.stop_requested


def _train_phase(ctx, hooks, data: Any, batch_size, generator, run: _Step, done: int) -> None:
    module, precision = ctx.module, run.precision
    accumulate = ctx.plan.accumulate
    set_training(module, True)
    ctx.phase, ctx.batch, ctx.n_batches = "train", done, data.n_batches(batch_size)
    fire(hooks.on_train_begin, ctx)
    losses, sizes = ctx.progress.losses, ctx.progress.sizes
    pending = False  # gradients accumulated since the last optimizer step
    # Batch losses are copied into one buffer: a thousand small loss tensors
    # kept alive among each step's temporaries would fragment the heap (about
    # 26 KiB of resident memory each, measured).
    slots: tuple[torch.Tensor, ...] | None = None
    run.forget()
    group = ctx.run.group
    whole = accumulate == 1 and group is None  # each batch's loss counts whole
    for X_b, y_b, w_b in data.batches(batch_size, generator, skip=done):
        if group is not None:
            group.agree_to_stop(ctx)
        if ctx.stop_requested:
            break
        if not run.steady:
            run.doubt()
        ctx.batch += 1
        ctx.progress.between_batches = False
        ctx.X_batch, ctx.y_batch, ctx.sample_weight_batch = X_b, y_b, w_b
        ctx.y_pred = ctx.loss = None
        ctx.skip_requested = False
        if hooks.on_train_batch_begin:
            fire(hooks.on_train_batch_begin, ctx)
        if not ctx.skip_requested and len(y_b):  # a rank's part of a short batch may be empty
            share = 1.0 if whole else _share(ctx, len(y_b), batch_size, data)
            if run.learn(ctx, hooks, share, fresh=not pending, batch=(X_b, y_b, w_b)):
                pending = True
                if hooks.on_after_backward:
                    fire(hooks.on_after_backward, ctx)
                if slots is None:
                    slots = torch.empty(
                        ctx.n_batches, dtype=torch.float64, device=ctx.loss.device
                    ).unbind()
                slot = slots[len(losses)]
                slot.copy_(ctx.loss.detach())
                losses.append(slot)
                sizes.append(len(y_b))
        if accumulate == 1 or ctx.batch % accumulate == 0 or ctx.batch == ctx.n_batches:
            _step_if_learned(ctx, hooks, precision, pending=pending)
            pending = False
        if not pending:
            ctx.progress.between_batches = True
        if hooks.on_train_batch_end:
            fire(hooks.on_train_batch_end, ctx)
    # A stop came within an accumulation window: step on what it gathered.
    _step_if_learned(ctx, hooks, precision, pending=pending)
    ctx.metrics["train_loss"] = _weighted_mean(losses, sizes)
    learned = len(losses)
    if group is not None:  # the mean over every rank's rows (a rank may have had none)
        learned = group.mean_over_rows(ctx.metrics, ["train_loss"], sum(sizes))
    if learned:
        _check_finite(ctx)
    fire(hooks.on_train_end, ctx)
    if group is not None:  # what callbacks recorded from the rank's rows, as means
        group.mean_over_rows(ctx.metrics, _train_metrics(ctx.plan), sum(sizes))
        group.agree_to_stop(ctx)


def _train_metrics(plan: Any) -> list[str]:
    """The metrics callbacks record in the training phase: those declared
    but the loop's own and those of the validation phase."""
    own = ("epoch", "train_loss", "lr", "dur")
    return [key for key in plan.metrics if key not in own and not key.startswith("valid_")]


def _share(ctx: Context, rows: int, batch_size: int, data: Any) -> float:
    """The factor of a training batch's loss: its share of the rows of its
    accumulation window, over every rank's part of the window in a
    ``strategy="ddp"`` fit (whose gradients are summed over the ranks)."""
    group, accumulate = ctx.run.group, ctx.plan.accumulate
    world = 1 if group is None else group.world_size
    return rows / _window_rows(ctx.batch, accumulate, batch_size * world, data)


def _step_if_learned(
    ctx: Context, hooks: HookTable, precision: Precision, *, pending: bool
) -> None:
    """Step where gradients are pending: this process's, or in a
    ``strategy="ddp"`` fit any rank's, summed over the ranks first (every
    rank takes part, learned or not)."""
    group = ctx.run.group
    if group is not None:
        parameters = [p for p in ctx.module.parameters() if p.requires_grad]
        pending = group.sum_gradients(parameters, pending)
    if pending:
        _optimizer_step(ctx, hooks, precision, ctx.optimizer)


def _agree_to_stop(ctx: Context) -> None:
    """In a ``strategy="ddp"`` fit, a stop requested on one rank stops every
    rank here (a collective: every rank reaches the same points)."""
    if ctx.run.group is not None:
        ctx.run.group.agree_to_stop(ctx)


def _optimizer_step(ctx: Context, hooks: HookTable, precision: Precision, optimizer: Any) -> None:
    if hooks.on_before_step:
        fire(hooks.on_before_step, ctx)
    precision.step(optimizer)
    ctx.step += 1
    ctx.progress.between_batches = True
    if hooks.on_after_step:
        fire(hooks.on_after_step, ctx)


def _window_rows(batch: int, accumulate: int, batch_size: int, data: Any) -> int:
    """The rows of the accumulation window holding training batch ``batch``
    (1-based): its loss counts by its share of them."""
    first_row = (batch - 1) // accumulate * accumulate * batch_size
    return min(data.n_samples, first_row + accumulate * batch_size) - first_row


def _valid_phase(ctx, hooks, data: Any, batch_size, run: _Step) -> None:
    module = ctx.module
    set_training(module, False)
    eval_size = data.eval_batch_size(batch_size)
    ctx.phase, ctx.batch, ctx.n_batches = "valid", 0, data.n_batches(eval_size)
    ctx.progress.between_batches = False
    fire(hooks.on_valid_begin, ctx)
    losses: list[torch.Tensor] = []
    weights: list[Any] = []
    with torch.inference_mode(), run.precision.autocast:
        for X_b, y_b, w_b in data.batches(eval_size, None):
            ctx.batch += 1
            ctx.X_batch, ctx.y_batch, ctx.sample_weight_batch = X_b, y_b, w_b
            if hooks.on_valid_batch_begin:
                fire(hooks.on_valid_batch_begin, ctx)
            run.predict_and_score(ctx, hooks, X_b, y_b, w_b)
            losses.append(ctx.loss)
            weights.append(len(y_b))
            if hooks.on_valid_batch_end:
                fire(hooks.on_valid_batch_end, ctx)
    ctx.metrics["valid_loss"] = _weighted_mean(losses, weights)
    fire(hooks.on_valid_end, ctx)


def _weighted_mean(losses: list[torch.Tensor], sizes: list[int]) -> float:
    """The mean of batch losses weighted by batch size, synchronised once
    per epoch. Batch losses already carry the normalised sample weights, so
    this is the sample-weighted mean loss of the phase."""
    if not losses:
        return float("nan")
    if len(losses) == 1:  # the same IEEE operations in Python, without the tensors
        count = float(sizes[0])
        return float(losses[0].double()) * count / count + 0.0  # torch's sum gives +0.0
    stacked = torch.stack([loss.double() for loss in losses])
    counts = torch.tensor(sizes, dtype=stacked.dtype, device=stacked.device)
    return float((stacked * counts).sum() / counts.sum())


def _check_finite(ctx: Context) -> None:
    """Refuse to go on from a diverged epoch: a non-finite training loss or
    weight ends the fit with an error (the estimator keeps its state)."""
    loss = ctx.metrics["train_loss"]
    parameters = [p.detach() for p in ctx.module.parameters()]
    # A finite sum of real weights has finite terms (a cheaper test); one
    # that is not may have overflowed: each weight is then tested.
    finite_weights = (
        not any(p.is_complex() for p in parameters)
        and math.isfinite(sum(float(p.sum()) for p in parameters))
    ) or bool(torch.stack([torch.isfinite(p).all() for p in parameters]).all())
    if not math.isfinite(loss):
        _diverged(ctx, f"the training loss is {loss}")
    if not finite_weights:
        _diverged(ctx, "a weight is not finite")


def _check_finite_metrics(ctx: Context) -> None:
    """After both phases: a non-finite validation loss or score (weights that
    overflow on the validation data, a score of NaN; the metrics declared
    ``finite``) is divergence too, unless a callback asked to stop this fit
    (``TerminateOnNaN`` does). The training loss was checked after its
    phase; it is NaN, not diverged, when callbacks skipped every batch."""
    if ctx.stop_requested:
        return
    for key in ctx.plan.finite_metrics:
        value = ctx.metrics.get(key)
        if isinstance(value, numbers.Real) and not math.isfinite(value):
            _diverged(ctx, f"{key} is {value}")


def _diverged(ctx: Context, what: str) -> None:
    lr = ctx.optimizer.param_groups[0]["lr"]
    raise ValueError(
        f"Training diverged in epoch {ctx.epoch}: {what}. Scale the inputs and targets "
        f"(e.g. StandardScaler), lower lr (now {lr:g}) or add GradientClipping. "
        "TerminateOnNaN() stops at the first non-finite loss or metric instead of failing, "
        "but cannot undo a step that made the weights non-finite."
    )


def _clean_up_after(ctx: Context, hooks: HookTable, error: BaseException, *, fit_end: bool) -> None:
    """Run every ``on_exception`` (and ``on_fit_end``) after a failure; their
    own errors become notes on the original one, which stays the one raised."""
    ctx.exception = error
    for handlers in (hooks.on_exception, hooks.on_fit_end) if fit_end else (hooks.on_exception,):
        for (name, hook, _), exc in _fire_each(handlers, ctx):
            error.add_note(
                f"while handling it, callback {name!r} raised in {hook}: "
                f"{type(exc).__name__}: {exc}"
            )


def _fire_each(handlers: tuple, ctx: Context) -> list[tuple[Any, BaseException]]:
    """Call every handler even when some raise, ``KeyboardInterrupt`` and
    ``SystemExit`` included (cleanup must reach every callback: an open
    file, a writer thread); return ``(handler, error)`` pairs."""
    errors = []
    for handler in handlers:
        try:
            fire((handler,), ctx)
        except BaseException as exc:
            errors.append((handler, exc))
    return errors


def _one_error(failures: list[tuple[Any, BaseException]]) -> BaseException:
    """The error to raise for failed ``on_fit_end`` hooks: the only one; else
    the first ``KeyboardInterrupt`` or ``SystemExit``, so that it still
    aborts as itself, with notes naming the others; else an
    ``ExceptionGroup`` of them all."""
    errors = [exc for _, exc in failures]
    ordinary = [exc for exc in errors if isinstance(exc, Exception)]
    if len(errors) == 1:
        return errors[0]
    if len(ordinary) == len(errors):
        return ExceptionGroup(f"on_fit_end failed in {len(errors)} callbacks", ordinary)
    first = next(exc for exc in errors if not isinstance(exc, Exception))
    for (name, hook, _), exc in failures:
        if exc is not first:
            first.add_note(f"callback {name!r} also raised in {hook}: {type(exc).__name__}: {exc}")
    return first


#: A Ctrl-C this soon after one that stopped a fit aborts (seconds), so a
#: grid search whose current fit was stopped can still be interrupted.
_ABORT_WINDOW = 5.0
_last_interrupt = [-math.inf]


@contextlib.contextmanager
def _interrupts(ctx: Context) -> Iterator[Callable[[], bool]]:
    """Turn the first Ctrl-C into a stop request; a second one, in this fit
    or within a few seconds in the next, raises ``KeyboardInterrupt``.
    Yields a function telling whether this fit was interrupted."""
    state = {"interrupted": False}
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield lambda: state["interrupted"]
        return

    def request_stop(signum: int, frame: Any) -> None:
        now = time.monotonic()
        if state["interrupted"] or now - _last_interrupt[0] < _ABORT_WINDOW:
            raise KeyboardInterrupt
        state["interrupted"] = True
        _last_interrupt[0] = now
        ctx.request_stop(INTERRUPTED)

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield lambda: state["interrupted"]
    finally:
        signal.signal(signal.SIGINT, previous)
