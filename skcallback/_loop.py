"""The training loop: fit -> epoch -> train/valid phase -> batch.

The estimator prepares the data and the torch objects, the loop runs them,
and callbacks observe and steer it through the :class:`Context`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch

from ._context import Context
from ._data import EVAL_BATCH_SIZE
from ._dispatch import HookTable, fire
from ._precision import Precision

INTERRUPTED = "KeyboardInterrupt"

LossFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def run_fit(
    ctx: Context,
    hooks: HookTable,
    train: Any,
    valid: Any,
    *,
    batch_size: int,
    generator: torch.Generator,
    compute_loss: LossFn,
    precision: Precision,
    forward: Callable[[torch.Tensor], torch.Tensor],
) -> None:
    """Run epochs until ``ctx.max_epochs`` (fewer if a stop is requested).

    ``on_fit_end`` runs after a normal or a stopped fit, and after a failure,
    where ``on_exception`` runs first and the error is re-raised. Ctrl-C stops
    training after the current batch and leaves the estimator usable.
    """
    with _stop_on_sigint(ctx):
        try:
            run = _Step(compute_loss, precision, forward)
            fire(hooks.on_fit_begin, ctx)
            while not ctx.stop_requested and ctx.epoch < ctx.max_epochs:
                _run_epoch(ctx, hooks, train, valid, batch_size, generator, run)
        except KeyboardInterrupt:
            ctx.request_stop(INTERRUPTED)
        except BaseException as exc:
            ctx.exception = exc
            _fire_after_failure(hooks.on_exception, ctx, exc)
            _fire_after_failure(hooks.on_fit_end, ctx, exc)
            raise
    if ctx.stop_reason == INTERRUPTED:
        warnings.warn(
            f"Training was interrupted (KeyboardInterrupt) in epoch {ctx.epoch}; "
            "the estimator keeps the weights of the last completed step.",
            RuntimeWarning,
            stacklevel=3,
        )
    fire(hooks.on_fit_end, ctx)


class _Step:
    """What one batch needs besides the context: the (compiled) forward, the
    loss and the precision policy."""

    __slots__ = ("compute_loss", "forward", "precision")

    def __init__(self, compute_loss: LossFn, precision: Precision, forward: Callable) -> None:
        self.compute_loss, self.precision, self.forward = compute_loss, precision, forward

    def predict_and_score(self, ctx: Context, hooks: HookTable, X_b, y_b, w_b) -> None:
        """Forward pass and loss, with their hooks; the same in both phases."""
        ctx.y_pred = self.forward(X_b)
        if hooks.on_after_forward:
            fire(hooks.on_after_forward, ctx)
        ctx.loss = self.compute_loss(ctx.y_pred, y_b, w_b)
        if hooks.on_after_loss:
            fire(hooks.on_after_loss, ctx)


def _run_epoch(ctx, hooks, train, valid, batch_size, generator, run: _Step) -> None:
    started = time.perf_counter()
    ctx.epoch += 1
    ctx.metrics = {"epoch": ctx.epoch}
    fire(hooks.on_epoch_begin, ctx)
    lr = ctx.optimizer.param_groups[0]["lr"]
    _train_phase(ctx, hooks, train, batch_size, generator, run)
    if valid is not None:
        _valid_phase(ctx, hooks, valid, batch_size, run)
    ctx.metrics["lr"] = lr
    ctx.metrics["dur"] = time.perf_counter() - started
    fire(hooks.on_epoch_end, ctx)


def _train_phase(ctx, hooks, data: Any, batch_size, generator, run: _Step) -> None:
    module, optimizer = ctx.module, ctx.optimizer
    precision = run.precision
    module.train()
    ctx.phase, ctx.batch, ctx.n_batches = "train", 0, data.n_batches(batch_size)
    fire(hooks.on_train_begin, ctx)
    losses: list[torch.Tensor] = []
    weights: list[Any] = []
    for X_b, y_b, w_b in data.batches(batch_size, generator):
        if ctx.stop_requested:
            break
        ctx.batch += 1
        ctx.X_batch, ctx.y_batch, ctx.sample_weight_batch = X_b, y_b, w_b
        ctx.y_pred = ctx.loss = None
        ctx.skip_requested = False
        if hooks.on_train_batch_begin:
            fire(hooks.on_train_batch_begin, ctx)
        if not ctx.skip_requested:
            with precision.autocast:
                run.predict_and_score(ctx, hooks, X_b, y_b, w_b)
            if not ctx.skip_requested:
                optimizer.zero_grad(set_to_none=True)
                if hooks.on_before_backward:
                    fire(hooks.on_before_backward, ctx)
                precision.backward(ctx.loss)
                if hooks.on_after_backward:
                    fire(hooks.on_after_backward, ctx)
                if hooks.on_before_step:
                    fire(hooks.on_before_step, ctx)
                precision.step(optimizer)
                ctx.step += 1
                if hooks.on_after_step:
                    fire(hooks.on_after_step, ctx)
                losses.append(ctx.loss.detach())
                weights.append(_batch_weight(X_b, w_b))
        if hooks.on_train_batch_end:
            fire(hooks.on_train_batch_end, ctx)
    ctx.metrics["train_loss"] = _weighted_mean(losses, weights)
    fire(hooks.on_train_end, ctx)


def _valid_phase(ctx, hooks, data: Any, batch_size, run: _Step) -> None:
    module = ctx.module
    module.eval()
    eval_size = max(batch_size, EVAL_BATCH_SIZE)
    ctx.phase, ctx.batch, ctx.n_batches = "valid", 0, data.n_batches(eval_size)
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
            weights.append(_batch_weight(X_b, w_b))
            if hooks.on_valid_batch_end:
                fire(hooks.on_valid_batch_end, ctx)
    ctx.metrics["valid_loss"] = _weighted_mean(losses, weights)
    fire(hooks.on_valid_end, ctx)


def _batch_weight(X_b: torch.Tensor, w_b: torch.Tensor | None) -> Any:
    return len(X_b) if w_b is None else w_b.sum()


def _weighted_mean(losses: list[torch.Tensor], weights: list[Any]) -> float:
    """The sample-weighted mean of batch losses, synchronised once per epoch."""
    if not losses:
        return float("nan")
    stacked = torch.stack([loss.float() for loss in losses])
    if isinstance(weights[0], torch.Tensor):
        w = torch.stack(weights).to(stacked.dtype)
    else:
        w = torch.tensor(weights, dtype=stacked.dtype, device=stacked.device)
    return float((stacked * w).sum() / w.sum())


def _fire_after_failure(handlers, ctx: Context, error: BaseException) -> None:
    """Run clean-up hooks after a failure without hiding the original error."""
    for handler in handlers:
        try:
            fire((handler,), ctx)
        except Exception as exc:  # the original error stays the one raised
            error.add_note(
                f"while handling it, callback {handler[0]!r} raised in {handler[1]}: "
                f"{type(exc).__name__}: {exc}"
            )


@contextlib.contextmanager
def _stop_on_sigint(ctx: Context) -> Iterator[None]:
    """Turn the first Ctrl-C into a stop request; a second one interrupts."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return

    def request_stop(signum: int, frame: Any) -> None:
        if ctx.stop_reason == INTERRUPTED:
            raise KeyboardInterrupt
        ctx.request_stop(INTERRUPTED)

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
