"""How many torch threads a fit uses (the ``threads`` parameter)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
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
    else ``auto_threads``."""
    if threads is None or plan.device.type != "cpu":
        return None
    if threads != "auto":
        return int(threads)
    if step_flops(plan) < SMALL_STEP_FLOPS:
        return 1
    return auto_threads(torch.get_num_threads())


def auto_threads(setting: int) -> int | None:
    """The threads a large step gets: torch's ``setting``, no more than the
    cores this process may run on (its affinity) and the cores the rest of
    the machine leaves idle (``busy_elsewhere``, rounded), and at least one;
    None when that is ``setting``.

    On a busy machine each parallel region of a step waits for its slowest
    thread, and a thread that shares a core with another process is the
    slowest: two threads on a 2-core machine under a load of 11 trained a
    256-256 network 12 times slower than one."""
    cores = available_cores()
    idle = cores - busy_elsewhere()
    threads = max(1, min(setting, cores, int(idle + 0.5)))
    return None if threads == setting else threads


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the
    platform tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def busy_elsewhere() -> float:
    """About how many cores other processes keep busy now: the larger of
    the 1-minute load average less this process's own use since the last
    look (the load it has caused), and the tasks running right now less this
    process's running threads (the least of three looks a millisecond
    apart, so that a task running for an instant does not count; the load
    average takes a minute to see a new load). 0 where neither can be read."""
    recent = _load_average() - _own_cpu_rate()
    now = _running_elsewhere()
    for _ in range(2):
        if now <= recent:  # another look cannot change the answer
            break
        time.sleep(0.001)
        now = min(now, _running_elsewhere())
    return max(0.0, recent, now)


def _load_average() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        return 0.0


def _own_cpu_rate() -> float:
    """The cores this process kept busy (its CPU time over the wall time)
    since the previous call, or since this module was imported; a span
    under 0.1 s keeps the previous rate."""
    global _own_sample, _own_rate
    wall, cpu = time.monotonic(), time.process_time()
    if wall - _own_sample[0] >= 0.1:
        _own_rate = (cpu - _own_sample[1]) / (wall - _own_sample[0])
        _own_sample = (wall, cpu)
    return _own_rate


_own_sample = (time.monotonic(), time.process_time())
_own_rate = 0.0


def _running_elsewhere() -> float:
    """Tasks running now (Linux's ``/proc/loadavg``) that are not threads of
    this process; 0 elsewhere."""
    try:
        with open("/proc/loadavg") as file:
            running = int(file.read().split()[3].split("/")[0])
        own = 0
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/stat") as file:
                # The state follows the command name, which may hold spaces.
                own += file.read().rpartition(")")[2].split()[0] == "R"
    except (OSError, ValueError, IndexError):
        return 0.0
    return float(max(0, running - own))


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
