"""The dry run: one forward, loss and backward on a few rows before
training, so that a module, criterion and targets that do not fit together
fail before the first batch, in our words."""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import torch
from torch import nn

from ._data import ArrayData, describe_batch, explained_feed
from ._loading import ItemData
from ._precision import autocast
from ._stack import user_stacklevel

#: Rows of the dry run that checks module, criterion and targets fit together.
_DRY_ROWS = 8


def dry_run(
    work: Any, data: ArrayData | ItemData, compute_loss: Any, weighted: bool, *, ours: bool
) -> None:
    """Forward, loss and backward on the first rows, so that a module,
    criterion and targets that do not fit together fail now, in our words.
    The module is in eval mode and its gradients are cleared afterwards, so
    neither its weights, buffers nor any random generator change.

    With ``ours`` (the built-in MLP and loss, whose shapes fit the validated
    targets by construction) only the untrained loss's finiteness is
    checked, without a backward pass: the part of the check a user's data
    can fail."""
    module = work.module_
    n_rows = min(_DRY_ROWS, len(data.y))
    if n_rows == work.n_outputs_ and n_rows > 1:
        n_rows -= 1  # so that targets cannot broadcast against the outputs by chance
    X_b, y_b = data.take(torch.arange(n_rows, device=data.storage))
    w_b = torch.ones(n_rows, device=data.device) if weighted else None
    was_training = module.training
    # The built-in MLP without dropout computes the same in either mode.
    switch = not ours or bool(work.dropout)
    if switch:
        module.eval()
    try:
        with torch.no_grad() if ours else contextlib.nullcontext():
            with autocast(work.precision, data.device):
                output = explained_feed(work.module_, X_b)
                if not ours:
                    _check_output(work, output, n_rows)
                    _warn_if_normalized_twice(work, output)
                    _check_elementwise_targets(work, output, y_b)
                loss = _loss(work, compute_loss, output, (X_b, y_b, w_b))
            _check_loss(work, loss, n_rows)
            if not ours:
                _backward(work, loss)
    finally:
        if not ours:
            for parameter in module.parameters():
                parameter.grad = None
        if switch:
            module.train(was_training)


def _loss(work: Any, compute_loss: Any, output: Any, batch: tuple) -> Any:
    X_b, y_b, w_b = batch
    try:
        return compute_loss(output, y_b, w_b)
    except Exception as exc:
        raise ValueError(
            f"The criterion {type(work.criterion_).__name__} could not compute a loss from "
            f"the module's output of shape {tuple(output.shape)} and a batch X of "
            f"{describe_batch(X_b)} and targets y of shape {tuple(y_b.shape)} ({y_b.dtype}): "
            f"{type(exc).__name__}: {exc}. {work._criterion_hint}"
        ) from exc


def _check_loss(work: Any, loss: Any, n_rows: int) -> None:
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(
            f"The criterion {type(work.criterion_).__name__} must return a scalar loss "
            f"tensor; it returned {shape}. Keep its reduction at 'mean' (sample_weight "
            "weighs samples)."
        )
    if not bool(torch.isfinite(loss)):
        raise ValueError(
            f"The untrained model's loss on the first {n_rows} samples is {loss.item()}: "
            "the inputs or targets are too large for float32 arithmetic. Scale them "
            "(e.g. StandardScaler, or TransformedTargetRegressor for y)."
        )


def _backward(work: Any, loss: torch.Tensor) -> None:
    try:
        loss.backward()
    except Exception as exc:
        raise ValueError(
            f"Backpropagating the loss of {type(work.criterion_).__name__} failed: "
            f"{type(exc).__name__}: {exc}. The loss must depend on the module's "
            "trainable parameters."
        ) from exc


#: Losses that compare output and target element by element: torch warns and
#: broadcasts when their shapes differ, which trains on the wrong pairs.
_ELEMENTWISE = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss, nn.BCELoss)


def _check_elementwise_targets(work: Any, output: torch.Tensor, y: torch.Tensor) -> None:
    criterion = work.criterion_
    if isinstance(criterion, _ELEMENTWISE) and tuple(output.shape) != tuple(y.shape):
        raise ValueError(
            f"The criterion {type(criterion).__name__} compares output and targets element "
            f"by element, but the output has shape {tuple(output.shape)} and the targets "
            f"{tuple(y.shape)} ({y.dtype}); it would broadcast them. {work._criterion_hint}"
        )


def _check_output(work: Any, output: Any, n_rows: int) -> None:
    expected = (n_rows, work.n_outputs_)
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != expected:
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(
            f"The module {type(work.module_).__name__} must return a tensor of shape "
            f"(n_samples, {work.n_outputs_}) ({work._output_meaning}); for {n_rows} samples "
            f"it returned {got}."
        )


def _normalized(output: torch.Tensor) -> str | None:
    """``"probabilities"`` when every row of ``output`` is non-negative and
    sums to 1, ``"log-probabilities"`` when every entry is non-positive and
    each row's exponentials sum to 1, else None. At least two columns and a
    tolerance of a few roundings: logits of a single output, or binary
    logits that happen to be negative, never sum to 1 that closely."""
    if output.ndim != 2 or output.shape[1] < 2 or not output.is_floating_point():
        return None
    rows = output.detach().to(torch.float64)
    tolerance = min(1e-2, 8 * rows.shape[1] * torch.finfo(output.dtype).eps)
    if bool((rows >= 0).all()) and bool(((rows.sum(dim=1) - 1).abs() <= tolerance).all()):
        return "probabilities"
    if bool((rows <= 0).all()) and bool((torch.logsumexp(rows, dim=1).abs() <= tolerance).all()):
        return "log-probabilities"
    return None


def _warn_if_normalized_twice(work: Any, output: Any) -> None:
    """Warn, before training, when a module that ends in a softmax or
    log-softmax meets a loss that does not expect it: cross-entropy applies
    its own log-softmax (after a softmax, the gradients nearly vanish and
    training crawls), and NLLLoss on probabilities is minus the
    probability, not the log-loss."""
    criterion = work.criterion_
    if not isinstance(output, torch.Tensor) or not isinstance(
        criterion, nn.CrossEntropyLoss | nn.NLLLoss
    ):
        return
    kind = _normalized(output)
    module, loss = type(work.module_).__name__, type(criterion).__name__
    if isinstance(criterion, nn.CrossEntropyLoss) and kind == "probabilities":
        message = (
            f"The module {module} returns probabilities (every row of its output on the "
            f"first rows is non-negative and sums to 1): it ends in a softmax, and {loss} "
            "applies a log-softmax of its own, which makes the gradients nearly vanish: "
            "training will be slow or stall. Remove the final nn.Softmax so that the module "
            "returns logits (predict_proba applies the softmax)."
        )
    elif isinstance(criterion, nn.CrossEntropyLoss) and kind == "log-probabilities":
        message = (
            f"The module {module} returns log-probabilities (each row of its output on the "
            f"first rows is non-positive and its exponentials sum to 1): it ends in a "
            f"log-softmax, and {loss} applies one of its own (the loss is the same, the "
            "work is done twice). Remove the final nn.LogSoftmax, or keep it and pass "
            "criterion=nn.NLLLoss."
        )
    elif isinstance(criterion, nn.NLLLoss) and kind == "probabilities":
        message = (
            f"The module {module} returns probabilities (every row of its output on the "
            f"first rows is non-negative and sums to 1), but {loss} expects "
            "log-probabilities: on probabilities its loss is minus the true class's "
            "probability, negative and not the log-loss, and confident mistakes barely "
            "train (skorch's classifier takes the log for NLLLoss; skcallback passes the "
            "output as it is). End the module in nn.LogSoftmax instead of nn.Softmax, or "
            "remove the nn.Softmax and leave criterion=None (cross-entropy on logits)."
        )
    else:
        return
    warnings.warn(message, UserWarning, stacklevel=user_stacklevel())
