"""How many torch threads a fit uses (the ``threads`` parameter)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import torch

#: Below this many floating-point operations per training step (forward and
#: backward, about 6 per parameter and row), a second intra-op thread costs
#: more in synchronisation than it saves: the built-in MLP on the S benchmark
#: does about 4e6, its L workload about 5e8.
SMALL_STEP_FLOPS = 5e7

_lock = threading.Lock()
_entered = 0
_callers_threads = 0


def fit_threads(threads: int | str | None, plan: Any) -> int | None:
    """The torch thread count for the fit of ``plan``: ``threads`` (the
    estimator's parameter) when an int, None (torch's setting) when None or
    on a GPU, and for ``"auto"`` one thread when a training step is small,
    else torch's setting."""
    if threads is None or plan.device.type != "cpu":
        return None
    if threads != "auto":
        return int(threads)
    return 1 if step_flops(plan) < SMALL_STEP_FLOPS else None


def step_flops(plan: Any) -> float:
    """About how many floating-point operations a training step of ``plan``
    takes: 6 per parameter and row of a batch (no batch has more rows than
    the training data), counting the first layer's weights by the density
    of the input where its batches stay sparse."""
    module = plan.estimator.module_
    n_params = float(sum(p.numel() for p in module.parameters()))
    source = plan.train.source
    if source.sparse_batches:
        first = next(m for m in module.modules() if isinstance(m, torch.nn.Linear))
        rows, columns = source.X.shape
        density = source.X.nnz / max(1, rows * columns)
        n_params -= first.weight.numel() * (1.0 - density)
    return 6 * min(plan.batch_size, plan.n_train) * n_params


@contextlib.contextmanager
def using(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` torch threads and restore the caller's count
    afterwards. Fits running at once in threads of one process share torch's
    (process-wide) setting: the first sets it, the last restores it."""
    global _entered, _callers_threads
    if threads is None:
        yield
        return
    with _lock:
        if _entered == 0:
            _callers_threads = torch.get_num_threads()
            if threads != _callers_threads:
                torch.set_num_threads(threads)
        _entered += 1
    try:
        yield
    finally:
        with _lock:
            _entered -= 1
            if _entered == 0 and torch.get_num_threads() != _callers_threads:
                torch.set_num_threads(_callers_threads)
