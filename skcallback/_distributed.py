"""Data-parallel training across the processes of a ``torch.distributed``
job (``strategy="ddp"``).

Every rank runs the one loop over its shard of each epoch. The epoch's
permutation is the same on every rank (the fit's shuffle generator is
seeded from ``random_state``); each global batch of ``world_size *
batch_size`` rows is cut into contiguous per-rank parts. A rank's loss is
scaled by its share of the global batch's rows and the gradients are
summed across ranks before the optimizer step, so every rank takes the
step one process would take on the global batch. The gradients are
all-reduced by hand (not by ``DistributedDataParallel``'s backward hooks):
the built-in MLP's hand-derived step writes ``.grad`` without autograd,
gradient accumulation reduces once per window, and a rank whose part of a
short last batch is empty takes part with zero gradients.

A failure on one rank must not leave the others waiting in a collective:
every collective is waited on in short slices, between which the rank
looks in the process group's store for a failure another rank posted,
and raises it.
"""

from __future__ import annotations

import builtins
import contextlib
import contextvars
import datetime
import functools
import itertools
import json
import math
import numbers
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from ._data import slice_rows
from ._fingerprint import fingerprint

#: How long a rank waits in a collective before it looks for a failure
#: posted by another rank (and then waits again).
POLL = datetime.timedelta(milliseconds=50)

#: The environment torchrun gives each worker, from which a fit joins the
#: job when the script did not call ``init_process_group`` itself.
_LAUNCHER_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")

_fit_numbers = itertools.count()
_fit_key: contextvars.ContextVar[str | None] = contextvars.ContextVar("_fit_key", default=None)


def _initialised() -> bool:
    return dist.is_available() and dist.is_initialized()


class PeerFailed(RuntimeError):
    """Another rank of a ``strategy="ddp"`` fit failed; this one aborts."""


@contextlib.contextmanager
def failing_together(estimator: Any) -> Iterator[None]:
    """The scope of one fit: with a ``strategy``, in a process group, an
    error raised here is posted to the group's store, where the other
    ranks' waits find it (``Group.wait``). Every rank numbers its fits
    alike (every rank calls ``fit`` with the same arguments)."""
    if getattr(estimator, "strategy", None) is None:
        yield
        return
    _initialise_from_launcher()
    if not _initialised():
        yield
        return
    token = _fit_key.set(f"skcallback/fit{next(_fit_numbers)}")
    try:
        yield
    except BaseException as exc:
        if not isinstance(exc, PeerFailed):
            _post_failure(exc)
        raise
    finally:
        _fit_key.reset(token)


def _initialise_from_launcher() -> None:
    """Join the job torchrun launched, when the script has not: gloo for
    CPU tensors, and NCCL for CUDA ones where CUDA is available."""
    if not dist.is_available() or _initialised():
        return
    if all(name in os.environ for name in _LAUNCHER_ENV):
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)


def _store() -> Any:
    try:
        return dist.distributed_c10d._get_default_store()
    except (AttributeError, RuntimeError, ValueError):  # a private helper of torch's
        return None


def _post_failure(exc: BaseException) -> None:
    store, key = _store(), _fit_key.get()
    if store is None or key is None:
        return
    with contextlib.suppress(Exception):  # the store may be gone with rank 0
        if not store.check([f"{key}/failed"]):
            failure = {"rank": dist.get_rank(), "type": type(exc).__name__, "text": str(exc)}
            store.set(f"{key}/failed", json.dumps(failure))


def _raise_posted_failure(store: Any, key: str) -> None:
    """Raise the failure another rank posted, as an error of its type where
    that is a built-in exception (so ``except ValueError`` works on every
    rank), else as ``PeerFailed``."""
    if not store.check([f"{key}/failed"]):
        return
    failure = json.loads(store.get(f"{key}/failed"))
    text = f"Rank {failure['rank']} of the job failed: {failure['type']}: {failure['text']}"
    raise _peer_error(failure["type"])(text)


@functools.cache
def _peer_error(name: str) -> type[Exception]:
    """``PeerFailed`` that is also the built-in exception ``name``, where
    there is one that can be combined with it."""
    kind = getattr(builtins, name, None)
    if isinstance(kind, type) and issubclass(kind, Exception) and kind is not PeerFailed:
        with contextlib.suppress(TypeError):  # a layout that cannot be combined
            return type(name, (kind, PeerFailed), {"__module__": __name__})
    return PeerFailed


def join(estimator: Any, device: torch.device) -> Group | None:
    """The process group a ``strategy="ddp"`` fit trains in (None without a
    strategy), checked: initialised, a backend that can use ``device``, a
    ``random_state`` that every rank shares."""
    if estimator.strategy is None:
        return None
    owner = type(estimator).__name__
    if not _initialised():
        raise ValueError(
            f"The 'strategy' parameter of {owner} is 'ddp', which trains across the "
            "processes of a torch.distributed job, but this process is in none. Launch the "
            "script with torchrun (python -m torch.distributed.run --nproc_per_node=2 "
            "train.py), or call torch.distributed.init_process_group first; or set "
            "strategy=None."
        )
    if estimator.random_state is None:
        raise ValueError(
            f"The 'random_state' parameter of {owner} is None, but strategy='ddp' needs an "
            "int (or a RandomState seeded alike on every rank): every rank must hold out "
            "and shuffle the same rows."
        )
    backend = str(dist.get_backend())
    if device.type not in ("cpu", "cuda") or (device.type == "cpu" and backend == "nccl"):
        raise ValueError(
            f"The 'device' parameter of {owner} resolves to {device.type!r}, which the "
            f"process group's backend {backend!r} cannot use with strategy='ddp': use gloo "
            "on the CPU and NCCL (or gloo) on CUDA."
        )
    on_device = backend == "nccl"
    return Group(device if on_device else torch.device("cpu"), _store(), _fit_key.get())


class Group:
    """One fit's view of the process group: its rank and size, and the
    collectives the loop uses, each waited on so that a failure posted by
    another rank ends the wait (see the module's docstring).

    Attributes
    ----------
    rank, world_size : int
    device : torch.device
        Where the flags and counts it reduces live (the CPU for gloo).
    """

    def __init__(self, device: torch.device, store: Any, key: str | None) -> None:
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.device, self.store, self.key = device, store, key
        self._posted_stop = False

    def wait(self, work: Any, *, polled: bool = True) -> None:
        """Wait for a collective, looking for a posted failure every
        ``POLL`` where ``polled`` (not for CUDA tensors: NCCL's wait with a
        timeout would abort its communicator); the collective's own errors
        (a peer that died, the group's timeout) are raised as they are."""
        if not polled or self.store is None or self.key is None:
            work.wait()
            return
        while True:
            try:
                work.wait(timeout=POLL)
                return
            except RuntimeError as exc:
                if not str(exc).startswith("Operation timed out"):
                    raise
            _raise_posted_failure(self.store, self.key)

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over the ranks (in place)."""
        work = dist.all_reduce(tensor, async_op=True)
        self.wait(work, polled=tensor.device.type == "cpu")
        return tensor

    def settle(self) -> None:
        """Wait until every rank has finished its fit, so that a rank that
        failed after the last collective (in ``on_fit_end``) fails the
        others' fits too, before they adopt their state."""
        self.wait(dist.barrier(async_op=True), polled=self.device.type == "cpu")

    def all_gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's ``tensor``, by rank."""
        gathered = [torch.empty_like(tensor) for _ in range(self.world_size)]
        work = dist.all_gather(gathered, tensor, async_op=True)
        self.wait(work, polled=tensor.device.type == "cpu")
        return gathered

    def agree_to_stop(self, ctx: Any) -> None:
        """Stop every rank when one asked to, with the reason of the lowest
        such rank (read from the store), so all stop at the same step."""
        flags = torch.zeros(self.world_size, device=self.device)
        if ctx.stop_requested:
            flags[self.rank] = 1
            if not self._posted_stop and self.store is not None and self.key is not None:
                self.store.set(f"{self.key}/stop{self.rank}", str(ctx.stop_reason))
                self._posted_stop = True
        stopping = self.all_reduce(flags).nonzero()
        if len(stopping) and not ctx.stop_requested:
            first = int(stopping[0, 0])
            reason = f"stop requested on rank {first}"
            if self.store is not None and self.key is not None:
                reason = self.store.get(f"{self.key}/stop{first}").decode()
            ctx.request_stop(reason)

    def sum_gradients(self, parameters: list[torch.Tensor], pending: bool) -> bool:
        """Sum the gradients of ``parameters`` over the ranks, in one
        buffer, where ``pending`` says this rank learned since the last
        step (else it adds zeros). A parameter no rank has a gradient for
        keeps none, as the optimizer then skips it; False (and nothing
        changed) when no rank has any gradient."""
        if not parameters:
            return pending
        present = [pending and p.grad is not None for p in parameters]
        grads = [
            p.grad if here and p.grad is not None else torch.zeros_like(p)
            for p, here in zip(parameters, present, strict=True)
        ]
        flags = grads[0].new_tensor(present)
        flat = self.all_reduce(torch.cat([*(g.reshape(-1) for g in grads), flags]))
        counts = flat[-len(parameters) :].tolist()
        parts = flat[: -len(parameters)].split([g.numel() for g in grads])
        for parameter, part, count in zip(parameters, parts, counts, strict=True):
            if not count:
                parameter.grad = None
            elif parameter.grad is None:
                parameter.grad = part.view_as(parameter).clone()
            else:
                parameter.grad.copy_(part.view_as(parameter))
        return any(counts)

    def mean_over_rows(self, metrics: dict[str, Any], keys: list[str], rows: int) -> int:
        """Replace each of ``keys`` in ``metrics``, this rank's mean over its
        ``rows`` rows, by the mean over every rank's rows (in one
        all-reduce; a rank without rows or without the key does not
        count); return every rank's rows."""
        sums = torch.zeros(2 * len(keys) + 1, dtype=torch.float64, device=self.device)
        for i, key in enumerate(keys):
            value = metrics.get(key)
            if rows and isinstance(value, numbers.Real):  # NaN (diverged) included
                sums[2 * i], sums[2 * i + 1] = float(value) * rows, rows
        sums[-1] = rows
        totals = self.all_reduce(sums).tolist()
        for i, key in enumerate(keys):
            if totals[2 * i + 1]:
                metrics[key] = totals[2 * i] / totals[2 * i + 1]
            elif key in metrics:  # no rank has a value: NaN, as one process has
                metrics[key] = math.nan
        return int(totals[-1])

    def check_agreement(self, owner: str, facts: dict[str, int]) -> None:
        """Raise the same ``ValueError`` on every rank when the ranks'
        ``facts`` (a digest of the parameters, of the data, its row count)
        differ: every rank must call ``fit`` with the same arguments."""
        mine = torch.tensor(list(facts.values()), dtype=torch.int64, device=self.device)
        first, *others = (t.tolist() for t in self.all_gather(mine))
        for rank, theirs in enumerate(others, start=1):
            differs = [name for name, a, b in zip(facts, first, theirs, strict=True) if a != b]
            if differs:
                what = differs[0]  # the data's digest covers the parameters too
                raise ValueError(
                    f"The ranks of this strategy='ddp' fit of {owner} disagree: rank {rank} "
                    f"has other {what} than rank 0. Every rank must call fit with the same "
                    "parameters (random_state included) and the same data."
                )


def facts(estimator: Any, identity: Any) -> dict[str, int]:
    """What every rank of a fit must share: digests of the parameters and
    of the parameters with the data (see ``_fingerprint``)."""
    return {
        "parameters": int(fingerprint(estimator, [])[:15], 16),
        "data": int(identity.fingerprint()[:15], 16),
    }


def job_arrays(group: Group | None) -> list[Any]:
    """What a fit's fingerprint adds for the job: its world size (a
    checkpoint of two ranks' batches is not one of three ranks')."""
    return [] if group is None else [np.array([group.world_size])]


class ShardedRows:
    """A rank's part of training rows: each global batch of ``world_size
    * batch_size`` rows of the shared epoch order, cut into contiguous
    per-rank parts (``floor(r * m / k)`` to ``floor((r + 1) * m / k)`` of
    a batch of ``m`` rows: the short last batch is split as evenly as it
    can be). Batch counts and ``n_samples`` are the global ones."""

    def __init__(self, rows: Any, group: Group) -> None:
        self.rows, self.group = rows, group
        self.n_samples, self.w = rows.n_samples, rows.w
        self.source = rows.source

    def close(self) -> None:
        self.rows.close()

    def n_batches(self, batch_size: int) -> int:
        return self.rows.n_batches(batch_size * self.group.world_size)

    def eval_batch_size(self, batch_size: int) -> int:
        return self.rows.eval_batch_size(batch_size)

    def batches(
        self, batch_size: int, generator: torch.Generator | None, skip: int = 0
    ) -> Iterator[tuple[Any, torch.Tensor, torch.Tensor | None]]:
        """This rank's part of each global batch (see the class docstring)."""
        k, r = self.group.world_size, self.group.rank
        for X_b, y_b, w_b in self.rows.batches(batch_size * k, generator, skip):
            m = len(y_b)
            part = slice(r * m // k, (r + 1) * m // k)
            yield _rows_of(X_b, part), y_b[part], None if w_b is None else w_b[part]


def _rows_of(X: Any, part: slice) -> Any:
    """The rows ``part`` of a batch's features, whatever their container
    (a tuple of a padded batch and its lengths included) or layout."""
    if isinstance(X, tuple | list):
        return type(X)(_rows_of(x, part) for x in X)
    if isinstance(X, torch.Tensor) and X.is_sparse:  # a sparse tensor has no slices
        return X.index_select(0, torch.arange(part.start, part.stop, device=X.device))
    return slice_rows(X, part)


def shard(rows: Any, group: Group | None) -> Any:
    """The rows this rank trains on (``rows`` itself without a group)."""
    return rows if group is None else ShardedRows(rows, group)
