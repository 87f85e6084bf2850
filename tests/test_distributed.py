"""strategy="ddp": one model trained across the processes of a
torch.distributed job, tested with two gloo processes on the CPU.

The processes run ``ddp_child.py``; one job runs most scenarios (a
process takes seconds to import torch and scikit-learn) and the tests read
what it saved."""

import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from ddp_child import CASES, DictNet, inputs, regression

import skcallback
from skcallback import NeuralClassifier, NeuralRegressor, SliceDict

CHILD = Path(__file__).with_name("ddp_child.py")
ROOT = Path(__file__).parents[1]


def run_job(folder: Path, scenario: str, world_size: int = 2, timeout: float = 240) -> list:
    """Run ``scenario`` on ``world_size`` ranks; what each rank saved."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    store = folder / f"{scenario}.store"
    ranks = [
        subprocess.Popen(
            [
                sys.executable,
                str(CHILD),
                str(rank),
                str(world_size),
                str(store),
                str(folder),
                scenario,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(world_size)
    ]
    try:
        outputs = [rank.communicate(timeout=timeout)[0] for rank in ranks]
    finally:
        for rank in ranks:
            if rank.poll() is None:
                rank.kill()
    for rank, output in zip(ranks, outputs, strict=True):
        assert rank.returncode == 0, output
    return [
        torch.load(folder / f"{scenario}-{r}.pt", weights_only=False) for r in range(world_size)
    ]


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    return run_job(tmp_path_factory.mktemp("ddp"), "main")


def single(**params):
    """One process with the doubled batch (two ranks of 8 rows each)."""
    base = {"hidden_layer_sizes": (16,), "batch_size": 16, "max_epochs": 3, "random_state": 0}
    return NeuralRegressor(**{**base, **params})


def assert_same_model(weights, est):
    for name, value in est.module_.state_dict().items():
        torch.testing.assert_close(weights[name], value, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_two_ranks_train_as_one_process_with_the_doubled_batch(job, case):
    # 97 rows: 88 for training (77 with validation), the last global batch of 16 is
    # short; "autograd" also records a training score (averaged over the ranks' rows).
    reference = single(**CASES[case]()).fit(*regression())
    expected = {k: v for k, v in reference.history_[-1].items() if k != "dur"}
    for rank in job:
        assert_same_model(rank[case]["weights"], reference)
        assert rank[case]["n_steps"] == reference.n_steps_
        record = {k: v for k, v in rank[case]["history"][-1].items() if k != "dur"}
        assert record == pytest.approx(expected, rel=1e-5)


def test_dict_inputs_train_on_every_rank_as_one_process(job):
    X, y = regression()
    reference = NeuralClassifier(module=DictNet, batch_size=16, max_epochs=2, random_state=0)
    reference.fit(SliceDict(a=X[:, :2], b=X[:, 2:]), (y > 0).astype(int))
    for rank in job:
        assert_same_model(rank["dict"]["weights"], reference)


@pytest.mark.parametrize("kind", ["dataset", "sparse"])
def test_datasets_and_sparse_matrices_train_as_one_process(job, kind):
    X, y, params = inputs(*regression())[kind]
    reference = single(max_epochs=2, **params).fit(X, y)
    for rank in job:
        assert_same_model(rank[kind]["weights"], reference)


def test_every_rank_ends_with_the_same_model_and_sees_the_same_values(job):
    first, second = job
    for case in (*CASES, "dataset", "sparse", "dict", "stopped"):
        for name, value in first[case]["weights"].items():
            assert torch.equal(value, second[case]["weights"][name])
        assert first[case]["history"] == second[case]["history"]
    assert first["seen"] == second["seen"]  # reduced losses, in every hook
    assert [what for what, _ in first["seen"]][:2] == ["train_end", "epoch_end"]


def test_rank_zero_only_callbacks_run_once(job):
    assert [rank["once_calls"] for rank in job] == [3, 0]


def test_a_stop_on_one_rank_stops_every_rank_at_the_same_step(job):
    for rank in job:
        stopped = rank["stopped"]
        assert (stopped["n_iter"], stopped["stop_reason"]) == (2, "asked on rank 1")
        assert stopped["n_steps"] == 6 + 3  # six batches of epoch 1, three of epoch 2


def test_ranks_that_disagree_fail_before_training_with_the_same_error(job):
    first, second = job
    assert first["errors"] == second["errors"]
    errors = first["errors"]
    assert errors["lr"][0] == "ValueError" and "rank 1 has other parameters" in errors["lr"][1]
    assert errors["data"][0] == "ValueError" and "rank 1 has other data" in errors["data"][1]
    assert "'random_state' parameter" in errors["seed"][1]
    assert first["after_errors"]["n_iter"] == 3  # the job goes on


def test_the_fitted_estimator_is_a_plain_model_that_predicts_anywhere(job, tmp_path):
    est = pickle.loads(job[0]["pickled"])
    assert type(est.module_).__module__.startswith("skcallback")  # no DDP wrapper
    assert est.get_params()["strategy"] == "ddp"
    X, _ = regression()
    prediction = est.predict(X)
    skcallback.save(est, tmp_path / "model.skc")
    loaded = skcallback.load(tmp_path / "model.skc")
    np.testing.assert_array_equal(loaded.predict(X), prediction)


def test_an_error_on_one_rank_aborts_every_rank_with_it(tmp_path):
    started = time.monotonic()
    first, second = run_job(tmp_path, "fail")
    assert second["error"] == ("ValueError", "boom on rank 1")
    assert first["error"][0] == "ValueError"
    assert first["error"][1].startswith("Rank 1 of the job failed: ValueError: boom on rank 1")
    assert time.monotonic() - started < 120  # not the group's 30-minute timeout


def test_an_error_after_training_on_one_rank_fails_every_rank_before_it_adopts(job):
    first, second = job
    assert second["fit_end_error"] == (("ValueError", "late boom on rank 1"), False)
    (kind, message), adopted = first["fit_end_error"]
    assert (kind, adopted) == ("ValueError", False)
    assert message.startswith("Rank 1 of the job failed: ValueError: late boom on rank 1")


def test_ddp_outside_a_process_group_is_an_error_before_training():
    X, y = regression()
    with pytest.raises(ValueError, match="'strategy' parameter of NeuralRegressor is 'ddp'"):
        single(strategy="ddp").fit(X, y)


def test_strategy_is_checked():
    with pytest.raises(ValueError, match=r"'strategy' parameter .* must be None \(one process\)"):
        single(strategy="dp").fit(*regression())


# -- The example, launched as a user would: torchrun ---------------------------
EXAMPLE = ROOT / "examples" / "ddp_train.py"


def torchrun(folder: Path, *options: str, **popen: object) -> subprocess.Popen:
    """``python -m torch.distributed.run [options] ddp_train.py folder``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", *options, str(EXAMPLE), str(folder)]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen
    )


def finished(job: subprocess.Popen, timeout: float = 300) -> str:
    output = job.communicate(timeout=timeout)[0]
    assert job.returncode == 0, output
    return output


STANDALONE = ("--nproc_per_node=2", "--standalone")


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("example")
    return folder, finished(torchrun(folder, *STANDALONE))


def example_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("ddp_train", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_trains_under_torchrun_as_one_process_with_the_doubled_batch(
    example_run, tmp_path
):
    folder, output = example_run
    # Each rank prints one line; the two may interleave in the shared pipe.
    lines = sorted(re.findall(r"rank \d: .*?best valid_loss [0-9.]+", output))
    assert len(lines) == 2 and lines[0][len("rank 0") :] == lines[1][len("rank 1") :], output
    assert "stopped because 'early_stopping" in lines[0]
    assert len(list(folder.glob("model-*"))) == 1  # one set of checkpoints, rank 0's
    trained = skcallback.load(folder / "model.skc")
    example = example_module()
    reference = example.make_model(tmp_path, batch_size=64).fit(*example.load_data())
    assert trained.n_iter_ == reference.n_iter_
    assert_same_model(trained.module_.state_dict(), reference)


@pytest.mark.slow
def test_the_example_killed_with_sigkill_resumes_bit_for_bit(example_run, tmp_path):
    folder, _ = example_run
    job = torchrun(tmp_path, *STANDALONE, start_new_session=True)
    deadline = time.monotonic() + 240
    while not list(tmp_path.glob("model-*/model-*-*.pt")):  # a mid-epoch checkpoint
        assert job.poll() is None and time.monotonic() < deadline, job.communicate()[0]
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGKILL)  # the launcher and both ranks
    job.wait()
    assert not (tmp_path / "model.skc").exists()
    finished(torchrun(tmp_path, *STANDALONE))
    resumed, uninterrupted = (skcallback.load(f / "model.skc") for f in (tmp_path, folder))
    assert resumed.n_iter_ == uninterrupted.n_iter_
    for name, value in uninterrupted.module_.state_dict().items():
        assert torch.equal(resumed.module_.state_dict()[name], value)


@pytest.mark.slow
def test_two_nodes_on_localhost_train_the_example(example_run, tmp_path):
    folder, _ = example_run
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    common = (
        "--nnodes=2",
        "--nproc_per_node=1",
        "--master_addr=127.0.0.1",
        f"--master_port={port}",
    )
    nodes = [torchrun(tmp_path, *common, f"--node_rank={rank}") for rank in (0, 1)]
    for node in nodes:
        finished(node)
    two_nodes, one_machine = (skcallback.load(f / "model.skc") for f in (tmp_path, folder))
    for name, value in one_machine.module_.state_dict().items():
        assert torch.equal(two_nodes.module_.state_dict()[name], value)
