"""Exact resume: a fit interrupted at any moment and run again with
``Checkpoint(resume=True)`` ends bit for bit as the uninterrupted fit."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV

from skcallback import NeuralClassifier, NeuralRegressor
from skcallback.callbacks import (
    Checkpoint,
    EarlyStopping,
    EpochScoring,
    LambdaCallback,
    LRScheduler,
    checkpoint_files,
)

CRASH_AT = [None]


def crash(ctx):
    """Fails the fit at step CRASH_AT[0]; a module-level switch, so the
    crashing fit has the same parameters (and folder) as its re-run."""
    if ctx.step == CRASH_AT[0]:
        raise RuntimeError("simulated crash")


def make(folder, every_n_steps=None, **params):
    return NeuralClassifier(
        hidden_layer_sizes=(16,),
        dropout=0.3,
        batch_size=32,
        max_epochs=10,
        random_state=0,
        callbacks=[
            Checkpoint(dirname=folder, every_n_steps=every_n_steps, keep_max=3, resume=True),
            EarlyStopping(patience=3),
            EpochScoring("accuracy"),
            LRScheduler("OneCycleLR", max_lr=0.05, step_every="batch"),
            LambdaCallback(name="crash", on_after_step=crash),
        ],
        **params,
    )


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.values(), b.values(), strict=True))


@pytest.mark.parametrize("every_n_steps", [None, 7])
@pytest.mark.parametrize("crash_at", [12, 23, 50])
def test_a_crashed_fit_resumes_bit_for_bit(tmp_path, data, every_n_steps, crash_at):
    X, y = data
    reference = make(tmp_path / "reference", every_n_steps).fit(X, y)
    CRASH_AT[0] = crash_at
    try:
        with pytest.raises(RuntimeError, match="simulated crash") as info:
            make(tmp_path / "run", every_n_steps).fit(X, y)
    finally:
        CRASH_AT[0] = None
    assert any("newest checkpoint" in note for note in info.value.__notes__)
    resumed = make(tmp_path / "run", every_n_steps).fit(X, y)
    assert resumed.callbacks_.checkpoint.resumed_from_ is not None
    assert same_weights(resumed.module_.state_dict(), reference.module_.state_dict())
    assert (resumed.n_iter_, resumed.n_steps_) == (reference.n_iter_, reference.n_steps_)
    assert resumed.stop_reason_ == reference.stop_reason_
    assert resumed.history_.get("train_loss") == reference.history_.get("train_loss")
    np.testing.assert_array_equal(resumed.predict_proba(X), reference.predict_proba(X))


def test_a_finished_fit_is_not_trained_again(tmp_path, data):
    X, y = data
    first = make(tmp_path).fit(X, y)
    steps = []
    again = make(tmp_path)
    again.set_params(callbacks=[*again.callbacks, LambdaCallback(on_after_step=steps.append)])
    # Another callback list is another fit: it trains in its own folder.
    again.fit(X, y)
    assert steps
    rerun = make(tmp_path).fit(X, y)
    assert rerun.callbacks_.checkpoint.resumed_from_.endswith(f"model-{first.n_iter_:04d}.pt")
    assert same_weights(rerun.module_.state_dict(), first.module_.state_dict())


def test_keep_max_holds_across_resumes_and_orphans_are_removed(tmp_path, data):
    X, y = data
    CRASH_AT[0] = 40
    try:
        with pytest.raises(RuntimeError):
            make(tmp_path, every_n_steps=7).fit(X, y)
    finally:
        CRASH_AT[0] = None
    folder = Path(checkpoint_files_folder(tmp_path))
    orphan = folder / ".model-0002-000000014.pt.abc.tmp"  # of a write killed long ago
    orphan.write_bytes(b"half a write")
    os.utime(orphan, (time.time() - 3600, time.time() - 3600))
    est = make(tmp_path, every_n_steps=7).fit(X, y)
    assert len(checkpoint_files(folder, "model")) == 3
    assert not list(folder.glob("*.tmp"))
    assert est.callbacks_.checkpoint.saved_paths_ == [
        str(p) for p in checkpoint_files(folder, "model")
    ]


def checkpoint_files_folder(root):
    (folder,) = [p for p in Path(root).iterdir() if p.is_dir()]
    return folder


def test_a_corrupt_newest_file_is_skipped_with_a_warning(tmp_path, data):
    X, y = data
    reference = make(tmp_path / "reference").fit(X, y)
    CRASH_AT[0] = 50
    try:
        with pytest.raises(RuntimeError):
            make(tmp_path / "run").fit(X, y)
    finally:
        CRASH_AT[0] = None
    newest = checkpoint_files(checkpoint_files_folder(tmp_path / "run"), "model")[-1]
    data_bytes = bytearray(newest.read_bytes())
    data_bytes[-100] ^= 0x01  # one flipped bit
    newest.write_bytes(bytes(data_bytes))
    with pytest.warns(RuntimeWarning, match="skips .* checksum"):
        resumed = make(tmp_path / "run").fit(X, y)
    assert same_weights(resumed.module_.state_dict(), reference.module_.state_dict())


def test_a_crashed_grid_search_resumes_every_fit(tmp_path, data):
    X, y = data
    grid = {"lr": [0.01, 0.02], "batch_size": [32, 64]}

    def search(folder):
        est = make(folder)
        return GridSearchCV(est, grid, cv=2, error_score="raise").fit(X, y)

    reference = search(tmp_path / "reference")
    CRASH_AT[0] = 30  # the first fit that reaches step 30 fails: the search stops
    try:
        with pytest.raises(RuntimeError):
            search(tmp_path / "run")
    finally:
        CRASH_AT[0] = None
    resumed = search(tmp_path / "run")
    np.testing.assert_array_equal(
        resumed.cv_results_["mean_test_score"], reference.cv_results_["mean_test_score"]
    )
    assert same_weights(
        resumed.best_estimator_.module_.state_dict(), reference.best_estimator_.module_.state_dict()
    )


def test_a_checkpoint_of_another_fit_is_not_resumed(tmp_path, data):
    X, y = data
    make(tmp_path).fit(X, y)
    other = make(tmp_path).fit(X[:-10], y[:-10])  # other data: its own folder, a fresh fit
    assert other.callbacks_.checkpoint.resumed_from_ is None


@pytest.mark.parametrize(
    "change",
    [
        {"fast_path": False},
        {"threads": None},
        {"verbose": 1},
        {"device": "cuda" if torch.cuda.is_available() else "cpu"},  # what "auto" resolves to
    ],
)
def test_settings_that_only_change_speed_or_output_resume_the_same_fit(tmp_path, data, change):
    X, y = data
    CRASH_AT[0] = 23
    try:
        with pytest.raises(RuntimeError, match="simulated crash"):
            make(tmp_path).fit(X, y)
    finally:
        CRASH_AT[0] = None
    resumed = make(tmp_path, **change).fit(X, y)
    assert resumed.callbacks_.checkpoint.resumed_from_ is not None
    other = make(tmp_path, precision="64").fit(X, y)  # another model: a fit of its own
    assert other.callbacks_.checkpoint.resumed_from_ is None


def test_warm_start_and_load_checkpoint_continue_for_more_epochs(tmp_path, regression_data):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=3, callbacks=[Checkpoint(dirname=tmp_path)], random_state=0)
    path = est.fit(X, y).callbacks_.checkpoint.saved_paths_[-1]
    loaded = NeuralRegressor(max_epochs=2, warm_start=True, random_state=0).load_checkpoint(path)
    assert loaded.fit(X, y).n_iter_ == 5


# -- kill -9 ------------------------------------------------------------------
CHILD = Path(__file__).with_name("resume_child.py")


def _spawn(child, folder, out):
    """Start the child script on ``folder`` and ``out``, its stdout piped."""
    return subprocess.Popen(
        [sys.executable, str(child), str(folder), str(out)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def run_child(folder, out, kill_after=None, child=CHILD):
    """Run the child fit; with ``kill_after``, SIGKILL it that many seconds
    after it starts training. Returns whether it was killed."""
    process = _spawn(child, folder, out)
    if kill_after is None:
        process.communicate(timeout=120)
        assert process.returncode == 0
        return False
    assert process.stdout.readline().strip() == "ready"
    time.sleep(kill_after)
    killed = process.poll() is None
    if killed:
        process.send_signal(signal.SIGKILL)
    process.communicate(timeout=120)
    return killed


def training_seconds(folder, out, child):
    """Run the child to the end; the seconds from its first fit to its exit."""
    process = _spawn(child, folder, out)
    assert process.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    process.communicate(timeout=120)
    assert process.returncode == 0
    return time.perf_counter() - started


def kill_and_resume(tmp_path, moments):
    # Kill moments are fractions of the measured training, however fast it is.
    seconds = training_seconds(tmp_path / "reference", tmp_path / "reference.pt", CHILD)
    reference = torch.load(tmp_path / "reference.pt", weights_only=True)
    rng = random.Random(0)
    outcomes = []
    for i in range(moments):
        folder, out = tmp_path / f"run{i}", tmp_path / f"run{i}.pt"
        killed = run_child(folder, out, kill_after=rng.uniform(0.03, 1.0) * seconds)
        while killed and rng.random() < 0.3:  # sometimes killed again while resuming
            killed = run_child(folder, out, kill_after=rng.uniform(0.03, 0.7) * seconds)
        run_child(folder, out)
        result = torch.load(out, weights_only=True)
        assert same_weights(result["weights"], reference["weights"]), i
        assert (result["n_iter"], result["n_steps"]) == (reference["n_iter"], reference["n_steps"])
        outcomes.append(result["resumed_from"] is not None)
    print(f"kill -9: {len(outcomes)} runs, {sum(outcomes)} resumed from a checkpoint, all equal")
    return outcomes


def test_a_killed_process_resumes_bit_for_bit(tmp_path):
    kill_and_resume(tmp_path, moments=1)


@pytest.mark.slow
@pytest.mark.timeout(900)  # about 45 child runs of 5-7 s: 293 s alone on 2 quiet cores
def test_twenty_kills_at_random_moments_all_resume_bit_for_bit(tmp_path):
    outcomes = kill_and_resume(tmp_path, moments=20)
    assert sum(outcomes) >= 10  # most kills landed during training


@pytest.mark.slow
def test_a_killed_grid_search_run_again_resumes_every_fit(tmp_path):
    grid_child = CHILD.with_name("grid_child.py")
    seconds = training_seconds(tmp_path / "reference", tmp_path / "reference.pt", grid_child)
    reference = torch.load(tmp_path / "reference.pt", weights_only=True)
    # Killed early, midway and late in the search, however fast this machine;
    # a search that finished before its kill (the machine sped up since the
    # reference) is run afresh with a kill twice as early.
    for i, fraction in enumerate([0.1, 0.45, 0.8]):
        for attempt in range(4):
            folder, out = tmp_path / f"run{i}-{attempt}", tmp_path / f"run{i}-{attempt}.pt"
            if run_child(folder, out, kill_after=fraction * seconds / 2**attempt, child=grid_child):
                break
        else:
            pytest.fail("every search finished before its kill")
        run_child(folder, out, child=grid_child)
        result = torch.load(out, weights_only=True)
        assert torch.equal(result["scores"], reference["scores"])
        assert same_weights(result["weights"], reference["weights"])


class DropNet(torch.nn.Module):
    """A custom module with torch's own dropout (the global RNG)."""

    def __init__(self, n_features_in, n_outputs):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(n_features_in, 16),
            torch.nn.Dropout(0.3),
            torch.nn.Linear(16, n_outputs),
        )

    def forward(self, X):
        return self.layers(X)


def crash_at_epoch_end(ctx):
    if ctx.epoch == CRASH_AT[0]:
        raise RuntimeError("simulated crash")


@pytest.mark.parametrize("module", [None, DropNet])
def test_resume_from_epoch_files_then_warm_start_equals_one_run(tmp_path, data, module):
    X, y = data

    def make(folder):
        return NeuralClassifier(
            module=module,
            max_epochs=4,
            random_state=0,
            callbacks=[
                Checkpoint(dirname=folder, resume=True),
                LambdaCallback(name="crash", on_epoch_end=crash_at_epoch_end),
            ],
        )

    reference = make(tmp_path / "reference").fit(X, y)
    CRASH_AT[0] = 3
    try:
        with pytest.raises(RuntimeError):
            make(tmp_path / "run").fit(X, y)
    finally:
        CRASH_AT[0] = None
    resumed = make(tmp_path / "run").fit(X, y)
    assert same_weights(resumed.module_.state_dict(), reference.module_.state_dict())
    for est in (reference, resumed):  # the NumPy generator is where it should be too
        est.set_params(warm_start=True, max_epochs=2).fit(X, y)
    assert same_weights(resumed.module_.state_dict(), reference.module_.state_dict())


def test_a_run_stopped_by_ctrl_c_trains_on_when_run_again(tmp_path, data, monkeypatch):
    from skcallback import _loop

    X, y = data
    monkeypatch.setattr(_loop, "_last_interrupt", [-float("inf")])

    def press(ctx):
        if ctx.step == 4 and CRASH_AT[0] == "ctrl-c":
            os.kill(os.getpid(), signal.SIGINT)

    def make():
        return NeuralClassifier(
            max_epochs=4,
            random_state=0,
            callbacks=[
                Checkpoint(dirname=tmp_path, resume=True),
                LambdaCallback(on_after_step=press),
            ],
        )

    CRASH_AT[0] = "ctrl-c"
    try:
        with pytest.warns(RuntimeWarning, match="interrupted"):
            stopped = make().fit(X, y)
    finally:
        CRASH_AT[0] = None
    assert stopped.stop_reason_ == "KeyboardInterrupt" and stopped.n_iter_ < 4
    again = make().fit(X, y)
    assert again.n_iter_ == 4 and again.stop_reason_ is None


def test_partial_fit_is_never_resumed(tmp_path, data):
    X, y = data
    est = NeuralClassifier(random_state=0, callbacks=[Checkpoint(dirname=tmp_path, resume=True)])
    for _ in range(2):
        est.partial_fit(X, y, classes=[0, 1])
    fresh = NeuralClassifier(random_state=0, callbacks=[Checkpoint(dirname=tmp_path, resume=True)])
    assert fresh.partial_fit(X, y, classes=[0, 1]).n_iter_ == 1


def test_save_checkpoint_refuses_a_position_it_cannot_record(tmp_path, data):
    from skcallback.callbacks import save_checkpoint

    X, y = data
    for hook in ("on_epoch_begin", "on_train_batch_begin", "on_valid_end"):
        est = NeuralClassifier(
            max_epochs=1,
            callbacks=[
                LambdaCallback(**{hook: lambda ctx: save_checkpoint(ctx, tmp_path / "x.pt")})
            ],
        )
        with pytest.raises(ValueError, match="records the fit's position exactly only"):
            est.fit(X, y)


def test_keep_max_never_removes_the_newest_best(tmp_path, regression_data, scripted):
    X, y = regression_data
    est = NeuralRegressor(
        max_epochs=4,
        callbacks=[
            scripted([4.0, 3.0, 2.0, 1.0]),
            Checkpoint(dirname=tmp_path, monitor="valid_loss", keep_max=1),
        ],
    ).fit(X, y)
    checkpoint = est.callbacks_.checkpoint
    assert Path(checkpoint.best_path_).name == "model-0004.pt"
    assert Path(checkpoint.best_path_).exists()


def test_a_resumed_fit_keeps_its_stop_and_the_csv_has_no_duplicate_rows(tmp_path, data):
    import csv as csv_module

    from skcallback.callbacks import CSVLogger

    X, y = data
    log = tmp_path / "log.csv"

    def make():
        return NeuralClassifier(
            max_epochs=10,
            random_state=0,
            callbacks=[
                EarlyStopping(patience=1, min_delta=10.0),  # stops after epoch 2
                CSVLogger(log),
                Checkpoint(dirname=tmp_path / "ck", resume=True),
                LambdaCallback(name="crash", on_epoch_end=crash_at_epoch_end),
            ],
        )

    CRASH_AT[0] = 2  # dies after CSVLogger wrote epoch 2, before its checkpoint
    try:
        with pytest.raises(RuntimeError):
            make().fit(X, y)
    finally:
        CRASH_AT[0] = None
    resumed = make().fit(X, y)
    with log.open() as file:
        epochs = [int(row["epoch"]) for row in csv_module.DictReader(file)]
    assert epochs == [1, 2]
    assert resumed.callbacks_.early_stopping.stopped_epoch_ == 2
    again = make().fit(X, y)  # a finished fit: nothing trained, the stop kept
    assert again.callbacks_.early_stopping.stopped_epoch_ == 2


@pytest.mark.parametrize("layout", ["coo", "dok", "empty"])
def test_a_resumable_fit_validates_its_validation_set_first(layout, tmp_path, regression_data):
    # The fit's fingerprint reads the validation set: before it was
    # validated, a COO/DOK matrix or 0 rows failed there with a raw error.
    import scipy.sparse as sp

    X, y = regression_data
    X_val, y_val = (X[:0], y[:0]) if layout == "empty" else (X[:20], y[:20])
    if layout != "empty":
        X_val = sp.coo_matrix(X_val) if layout == "coo" else sp.dok_matrix(X_val)
    est = NeuralRegressor(
        max_epochs=2, callbacks=[Checkpoint(dirname=tmp_path, resume=True)], random_state=0
    )
    if layout == "empty":
        with pytest.raises(ValueError, match=r"The validation set .* is invalid: Found array"):
            est.fit(X, y, X_val=X_val, y_val=y_val)
        return
    first = est.fit(X, y, X_val=X_val, y_val=y_val).predict(X)
    # Run again: it finds its own checkpoint (same fingerprint) and resumes.
    again = NeuralRegressor(
        max_epochs=2, callbacks=[Checkpoint(dirname=tmp_path, resume=True)], random_state=0
    ).fit(X, y, X_val=X_val, y_val=y_val)
    assert again.callbacks_["checkpoint"].resumed_from_ is not None
    np.testing.assert_array_equal(again.predict(X), first)


RESUME_FROM = [None]


class _ResumeFrom(Checkpoint):
    """A checkpoint callback that resumes from the file in RESUME_FROM,
    wherever it comes from (a user's own ``resume_from``); a module-level
    switch, so that the fit that wrote it has the same parameters."""

    def resume_from(self, plan):
        return RESUME_FROM[0] or super().resume_from(plan)


@pytest.mark.parametrize(
    "other",
    [{"lr": 0.01}, {"max_epochs": 3}, {"random_state": 1}, {"data": "other"}],
)
def test_a_checkpoint_of_another_fit_is_refused(tmp_path, data, other):
    def make(**params):
        return NeuralClassifier(
            **{"max_epochs": 2, "random_state": 0, **params},
            callbacks=[("ckpt", _ResumeFrom(dirname=tmp_path, resume=True))],
        )

    X, y = data
    first = make().fit(X, y)
    path = checkpoint_files(first.callbacks_["ckpt"].run_dir_, "model")[-1]
    RESUME_FROM[0] = path
    try:
        X_other = X + 1 if other.pop("data", None) else X
        with pytest.raises(ValueError, match="is a checkpoint of another fit"):
            make(**other).fit(X_other, y)
        # the same fit resumes from it (finished: it trains no further)
        same = make().fit(X, y)
    finally:
        RESUME_FROM[0] = None
    assert same.callbacks_["ckpt"].resumed_from_ == str(path)
    np.testing.assert_array_equal(same.predict_proba(X), first.predict_proba(X))
