"""The threads parameter and hardware-dependent options: what a fit runs on."""

import os
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch

from skcallback import NeuralRegressor
from skcallback.callbacks import LambdaCallback


@pytest.fixture
def caller_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(before)


@pytest.fixture
def quiet_machine(monkeypatch):
    """A machine with many idle cores, whatever this one is doing."""
    from skcallback import _threads

    monkeypatch.setattr(_threads, "available_cores", lambda: 64)
    monkeypatch.setattr(_threads, "busy_elsewhere", lambda: 0.0)


def _threads_during(X, **params):
    seen = []
    record = LambdaCallback(on_epoch_end=lambda ctx: seen.append(torch.get_num_threads()))
    y = np.linspace(0, 1, X.shape[0])
    NeuralRegressor(max_epochs=1, callbacks=[record], **params).fit(X, y)
    return seen[0]


def test_small_fits_use_one_thread_large_ones_keep_the_callers(caller_threads, quiet_machine):
    X = np.random.RandomState(0).randn(300, 100)
    assert _threads_during(X[:, :20], hidden_layer_sizes=(64, 64)) == 1  # ~4e6 flops a step
    assert _threads_during(X, hidden_layer_sizes=(512, 512), batch_size=256) == caller_threads
    assert _threads_during(X[:, :20], threads=None) == caller_threads
    assert _threads_during(X[:, :20], threads=3) == 3
    assert torch.get_num_threads() == caller_threads


def test_auto_counts_the_rows_a_step_has_and_the_sparse_inputs_it_multiplies(
    caller_threads, quiet_machine
):
    import scipy.sparse as sp

    X = np.random.RandomState(0).randn(300, 100)
    wide = (512, 512)
    assert _threads_during(X, hidden_layer_sizes=wide, batch_size=256) == caller_threads
    # 20 rows (18 to train on) make steps of 18 rows, whatever batch_size says.
    assert _threads_during(X[:20], hidden_layer_sizes=wide, batch_size=256) == 1
    # 10,000 columns at 0.1%: a dense first layer of 640,000 weights, but the
    # sparse batches multiply about 640 of them.
    sparse = sp.random(300, 10_000, density=0.001, format="csr", random_state=0)
    params = {"hidden_layer_sizes": (64,), "batch_size": 256}
    assert _threads_during(sparse.toarray(), **params) == caller_threads
    assert _threads_during(sparse, **params) == 1


@pytest.mark.parametrize(
    ("load", "running", "cores", "expected"),
    [
        (0.3, 0.0, 2, 2),  # quiet: the caller's two
        (11.0, 0.0, 2, 1),  # a busy minute
        (0.3, 2.0, 2, 1),  # a load that started a moment ago
        (0.8, 0.0, 2, 1),  # a core busy most of the time
        (61.7, 0.0, 64, 2),  # two cores left idle
        (0.3, 0.0, 1, 1),  # an affinity of one core
    ],
)
def test_auto_gives_a_large_step_the_cores_the_machine_leaves_idle(
    caller_threads, monkeypatch, load, running, cores, expected
):
    from skcallback import _threads

    monkeypatch.setattr(_threads, "_load_average", lambda: load)
    monkeypatch.setattr(_threads, "_own_cpu_rate", lambda: 0.0)
    monkeypatch.setattr(_threads, "_running_elsewhere", lambda: running)
    monkeypatch.setattr(_threads, "available_cores", lambda: cores)
    X = np.random.RandomState(0).randn(300, 100)
    assert _threads_during(X, hidden_layer_sizes=(512, 512), batch_size=256) == expected
    assert _threads_during(X, hidden_layer_sizes=(512, 512), threads=2) == 2  # as asked
    assert torch.get_num_threads() == caller_threads


def test_a_fits_own_load_is_not_taken_for_another_process(caller_threads, monkeypatch):
    from skcallback import _threads

    # The load average counts this process's two busy threads of the last fits.
    monkeypatch.setattr(_threads, "_load_average", lambda: 2.2)
    monkeypatch.setattr(_threads, "_own_cpu_rate", lambda: 2.0)
    monkeypatch.setattr(_threads, "_running_elsewhere", lambda: 0.0)
    monkeypatch.setattr(_threads, "available_cores", lambda: 2)
    X = np.random.RandomState(0).randn(300, 100)
    assert _threads_during(X, hidden_layer_sizes=(512, 512), batch_size=256) == 2


@pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="Linux's /proc")
def test_processes_running_now_are_seen_at_once():
    from skcallback import _threads

    code = "import time\nend = time.time() + 30\nwhile time.time() < end: pass"
    busy = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]
    try:
        time.sleep(0.2)
        assert _threads._running_elsewhere() >= 2
        assert _threads.busy_elsewhere() >= 2
    finally:
        for process in busy:
            process.kill()
            process.wait()


def test_the_callers_setting_comes_back_after_a_failed_fit(caller_threads):
    X = np.random.RandomState(0).randn(100, 3)

    def fail(ctx):
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        NeuralRegressor(callbacks=[LambdaCallback(on_epoch_end=fail)]).fit(X, X[:, 0])
    assert torch.get_num_threads() == caller_threads


@pytest.mark.parametrize("bad", [0, "many", 1.5, True])
def test_threads_is_checked_before_training(bad):
    X = np.random.RandomState(0).randn(50, 3)
    with pytest.raises(ValueError, match="'threads' parameter"):
        NeuralRegressor(threads=bad).fit(X, X[:, 0])


def test_bf16_on_a_cpu_without_bf16_warns(monkeypatch):
    from skcallback import _precision

    X = np.random.RandomState(0).randn(50, 3)
    monkeypatch.setattr(_precision, "cpu_has_bf16", lambda: False)
    with pytest.warns(RuntimeWarning, match="without bfloat16 instructions"):
        NeuralRegressor(max_epochs=1, precision="bf16-mixed", device="cpu").fit(X, X[:, 0])
    monkeypatch.setattr(_precision, "cpu_has_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NeuralRegressor(max_epochs=1, precision="bf16-mixed", device="cpu").fit(X, X[:, 0])


def test_fits_running_in_threads_restore_the_callers_setting(caller_threads):
    from concurrent.futures import ThreadPoolExecutor

    X = np.random.RandomState(0).randn(2000, 5)

    def fit(seed):
        return NeuralRegressor(max_epochs=3, random_state=seed).fit(X, X[:, 0]).n_iter_

    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(fit, range(6))) == [3] * 6
    assert torch.get_num_threads() == caller_threads
