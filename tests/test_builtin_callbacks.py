"""The other built-ins: scoring, scheduling, guards and loggers."""

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skcallback import NeuralClassifier, NeuralRegressor, _snapshot
from skcallback.callbacks import (
    Checkpoint,
    CSVLogger,
    EarlyStopping,
    EpochScoring,
    GradientClipping,
    LossMonitor,
    LRScheduler,
    MetricLogger,
    PrintLog,
    ProgressBar,
    TerminateOnNaN,
    TimeLimit,
    TimeMonitor,
    read_checkpoint,
)

ALL = [
    EarlyStopping(patience=2),
    Checkpoint(every=2),
    LRScheduler("StepLR", step_size=2),
    EpochScoring("accuracy"),
    PrintLog(),
    LossMonitor(every=3),
    MetricLogger(every=2),
    TimeMonitor(),
    ProgressBar(),
    TimeLimit(60),
    TerminateOnNaN(),
    GradientClipping(1.0),
    CSVLogger("log.csv"),
]


@pytest.mark.parametrize("callback", ALL, ids=lambda cb: type(cb).__name__)
def test_every_builtin_clones_and_pickles(callback):
    cloned = clone(callback)
    assert type(cloned) is type(callback)
    assert cloned.get_params() == callback.get_params()
    assert pickle.loads(pickle.dumps(callback)).get_params().keys() == callback.get_params().keys()


def test_every_builtin_works_inside_a_parallel_grid_search(classification_data, tmp_path):
    X, y = classification_data
    callbacks = [clone(cb) for cb in ALL if not isinstance(cb, ProgressBar | PrintLog)]
    base = NeuralClassifier(
        callbacks=callbacks,
        cb__checkpoint__dirname=tmp_path / "ckpt",
        cb__csv_logger__path=tmp_path / "log.csv",
        cb__time_monitor__sink=None,
        max_epochs=3,
        random_state=0,
    )
    search = GridSearchCV(base, {"cb__early_stopping__patience": [1, 2]}, cv=2, n_jobs=2)
    search.fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    run_dirs = list((tmp_path / "ckpt").iterdir())
    assert len(run_dirs) == 5  # 4 candidate fits and the refit, one folder each


def test_every_builtin_works_in_cross_val_score(regression_data, tmp_path):
    from sklearn.model_selection import cross_val_score

    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[
            EarlyStopping(patience=2),
            Checkpoint(dirname=tmp_path, every=2),
            LRScheduler("CosineAnnealingLR", T_max=4),
            EpochScoring("r2"),
            TerminateOnNaN(),
            GradientClipping(5.0),
        ],
        max_epochs=4,
        random_state=0,
    )
    scores = cross_val_score(est, X, y, cv=3)
    assert scores.shape == (3,) and np.isfinite(scores).all()
    folders = list(tmp_path.iterdir())
    assert len(folders) == 3
    assert all(sorted(p.name for p in f.iterdir())[:1] == ["model-0002.pt"] for f in folders)


@pytest.mark.parametrize(
    ("callback", "message"),
    [
        (EarlyStopping(patience=-1), r"'patience' parameter of EarlyStopping must be an int >= 0"),
        (Checkpoint(every=0), r"'every' parameter of Checkpoint must be None or an int >= 1"),
        (Checkpoint(save_best_only=True), r"'monitor' parameter of Checkpoint"),
        (LossMonitor(every=0), r"'every' parameter of LossMonitor"),
        (GradientClipping(max_norm=0), r"'max_norm' parameter of GradientClipping"),
        (TimeLimit(seconds=-1), r"'seconds' parameter of TimeLimit"),
        (
            LRScheduler("ReduceLROnPlateau", step_every="batch"),
            r"'step_every' .* ReduceLROnPlateau",
        ),
    ],
    ids=lambda value: type(value).__name__ if not isinstance(value, str) else "",
)
def test_bad_callback_params_fail_before_the_fitted_model_changes(
    regression_data, callback, message
):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=2, random_state=0).fit(X, y)
    before = est.predict(X)
    est.set_params(callbacks=[callback])
    with pytest.raises(ValueError, match=message):
        est.fit(X, y)
    np.testing.assert_array_equal(est.predict(X), before)
    assert list(est.callbacks_) == ["history"]


@pytest.mark.parametrize(
    ("callback", "idle", "active"),
    [
        (LRScheduler("StepLR", step_size=1), "on_after_step", "on_epoch_end"),
        (LRScheduler("StepLR", step_size=1, step_every="batch"), "on_epoch_end", "on_after_step"),
        (Checkpoint(), "on_after_step", "on_epoch_end"),
        (MetricLogger(), "on_train_batch_end", "on_epoch_end"),
        (EpochScoring("r2"), "on_train_batch_end", "on_valid_batch_end"),
        (EpochScoring("r2", on_train=True), "on_valid_batch_end", "on_train_batch_end"),
    ],
)
def test_hooks_idle_for_the_parameters_are_never_dispatched(callback, idle, active):
    from skcallback._dispatch import HookTable

    table = HookTable([("cb", callback)])
    assert getattr(table, idle) == ()
    assert len(getattr(table, active)) == 1


# -- Checkpoint parameters and fitted state (API.md) -----------------------------
def _names(paths):
    return [Path(p).name for p in paths]


def test_checkpoint_defaults_save_every_epoch_under_checkpoints(
    regression_data, tmp_path, monkeypatch
):
    X, y = regression_data
    assert Checkpoint().get_params() == {
        "dirname": "checkpoints",
        "prefix": "model",
        "every": 1,
        "every_n_steps": None,
        "keep_max": None,
        "monitor": None,
        "save_best_only": False,
        "save_last": True,
        "resume": False,
        "every_seconds": None,
    }
    monkeypatch.chdir(tmp_path)
    est = NeuralRegressor(callbacks=[Checkpoint()], max_epochs=2).fit(X, y)
    checkpoint = est.callbacks_["checkpoint"]
    assert _names(checkpoint.saved_paths_) == ["model-0001.pt", "model-0002.pt"]
    folder = (tmp_path / "checkpoints").resolve()
    assert all(folder in Path(p).resolve().parents for p in checkpoint.saved_paths_)
    assert checkpoint.best_path_ is None  # nothing monitored


def test_checkpoint_every_n_epochs(regression_data, tmp_path):
    X, y = regression_data
    est = NeuralRegressor(callbacks=[Checkpoint(dirname=tmp_path, every=2)], max_epochs=5)
    saved = est.fit(X, y).callbacks_["checkpoint"].saved_paths_
    assert _names(saved) == ["model-0002.pt", "model-0004.pt", "model-0005.pt"]  # and the end


def test_checkpoint_monitor_tracks_the_best_file_while_saving_every_epoch(
    regression_data, scripted, tmp_path
):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[scripted([3.0, 1.0, 2.0]), Checkpoint(dirname=tmp_path, monitor="valid_loss")],
        max_epochs=3,
        random_state=0,
    ).fit(X, y)
    checkpoint = est.callbacks_["checkpoint"]
    assert _names(checkpoint.saved_paths_) == ["model-0001.pt", "model-0002.pt", "model-0003.pt"]
    assert Path(checkpoint.best_path_).name == "model-0002.pt"
    best = NeuralRegressor(max_epochs=3, random_state=0).load_checkpoint(checkpoint.best_path_)
    assert best.n_iter_ == 2


def test_saved_paths_list_only_files_that_still_exist_oldest_first(regression_data, tmp_path):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[Checkpoint(dirname=tmp_path)], max_epochs=2, warm_start=True
    ).fit(X, y)
    first = est.callbacks_["checkpoint"].saved_paths_
    Path(first[0]).unlink()  # removed by hand between fits
    est.fit(X, y)
    saved = est.callbacks_["checkpoint"].saved_paths_
    assert _names(saved) == ["model-0002.pt", "model-0003.pt", "model-0004.pt"]
    assert all(Path(p).exists() for p in saved)


def test_checkpoint_files_hold_only_weights_only_safe_data(regression_data, tmp_path):
    X, y = regression_data
    est = NeuralClassifier(
        callbacks=[
            Checkpoint(dirname=tmp_path),
            EarlyStopping(patience=5),
            EpochScoring("f1_macro"),
        ],
        max_epochs=2,
    ).fit(X, np.where(y > 0, "up", "down"))
    for path in est.callbacks_["checkpoint"].saved_paths_:
        payload = _snapshot.verify(path)  # the checksum holds
        state = torch.load(io.BytesIO(payload), weights_only=True)  # raises on pickled objects
        assert {"module", "optimizer", "callbacks"} <= set(state)
        assert read_checkpoint(path)["epoch"] == state["epoch"]
    assert not list(tmp_path.rglob("*.tmp"))  # written atomically: no leftovers
