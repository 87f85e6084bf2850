"""Checkpoint files: content, naming, keep_max, atomicity, load_checkpoint."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from skcallback import NeuralClassifier, NeuralRegressor
from skcallback.callbacks import (
    Checkpoint,
    EarlyStopping,
    LambdaCallback,
    atomic_save,
    read_checkpoint,
)


def test_every_epoch_with_mxnet_style_names(regression_data, tmp_path):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[Checkpoint(dirname=tmp_path, prefix="boston")], max_epochs=3
    ).fit(X, y)
    cp = est.callbacks_.checkpoint
    names = [Path(p).name for p in cp.saved_paths_]
    assert names == ["boston-0001.pt", "boston-0002.pt", "boston-0003.pt"]
    assert Path(cp.run_dir_).parent == tmp_path
    assert not list(Path(cp.run_dir_).glob("*.tmp"))


def test_every_n_steps_with_keep_max_like_mindspore(regression_data, tmp_path):
    X, y = regression_data  # 108 training rows, batch 10: 11 steps per epoch
    est = NeuralRegressor(
        callbacks=[Checkpoint(dirname=tmp_path, prefix="mnist", every_n_steps=5, keep_max=2)],
        batch_size=10,
        max_epochs=2,
    ).fit(X, y)
    cp = est.callbacks_.checkpoint
    names = ["mnist-0002-000000020.pt", "mnist-0002.pt"]  # the last: the end of training
    assert [Path(p).name for p in cp.saved_paths_] == names
    assert sorted(p.name for p in Path(cp.run_dir_).iterdir()) == names


@pytest.mark.parametrize(
    ("every", "save_last", "expected"),
    [
        (3, True, ["model-0003.pt", "model-0004.pt"]),
        (None, True, ["model-0004.pt"]),
        (3, False, ["model-0003.pt"]),
        (1, True, ["model-0001.pt", "model-0002.pt", "model-0003.pt", "model-0004.pt"]),
    ],
)
def test_the_end_of_training_is_saved_once(regression_data, tmp_path, every, save_last, expected):
    X, y = regression_data
    checkpoint = Checkpoint(dirname=tmp_path, every=every, save_last=save_last)
    est = NeuralRegressor(max_epochs=4, random_state=0, callbacks=[checkpoint]).fit(X, y)
    cp = est.callbacks_.checkpoint
    assert [Path(p).name for p in cp.saved_paths_] == expected
    assert sorted(p.name for p in Path(cp.run_dir_).iterdir()) == expected
    if save_last:  # the last file is the fitted model
        final = NeuralRegressor(max_epochs=4, random_state=0).load_checkpoint(cp.saved_paths_[-1])
        np.testing.assert_array_equal(final.predict(X), est.predict(X))


def test_a_stopped_fit_saves_where_it_stopped_and_a_failed_one_does_not(regression_data, tmp_path):
    X, y = regression_data
    stop = LambdaCallback(on_epoch_end=lambda ctx: ctx.epoch < 2)
    est = NeuralRegressor(
        max_epochs=6, callbacks=[stop, Checkpoint(dirname=tmp_path, every=5)]
    ).fit(X, y)
    assert [Path(p).name for p in est.callbacks_.checkpoint.saved_paths_] == ["model-0002.pt"]

    def fail(ctx):
        if ctx.epoch == 2:
            raise RuntimeError("crash")

    failing = NeuralRegressor(
        max_epochs=6,
        callbacks=[LambdaCallback(on_epoch_end=fail), Checkpoint(tmp_path / "f", every=5)],
    )
    with pytest.raises(RuntimeError):
        failing.fit(X, y)
    assert not list((tmp_path / "f").rglob("*.pt"))
    with pytest.raises(ValueError, match="'save_last' parameter of Checkpoint"):
        NeuralRegressor(callbacks=[Checkpoint(tmp_path, save_last="yes")]).fit(X, y)


def test_best_only_keeps_the_best_path(regression_data, scripted, tmp_path):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[
            scripted([3.0, 1.0, 2.0, 0.5, 0.7]),
            Checkpoint(dirname=tmp_path, monitor="valid_loss", save_best_only=True, keep_max=1),
        ],
        max_epochs=5,
    ).fit(X, y)
    cp = est.callbacks_.checkpoint
    assert Path(cp.best_path_).name == "model-0004.pt"
    assert cp.saved_paths_ == [cp.best_path_]


def test_a_checkpoint_loads_weights_only_and_restores_everything(classification_data, tmp_path):
    X, y = classification_data
    params = dict(
        callbacks=[Checkpoint(dirname=tmp_path), EarlyStopping(patience=50)],
        max_epochs=4,
        random_state=0,
    )
    fitted = NeuralClassifier(**params).fit(X, y)
    path = fitted.callbacks_.checkpoint.saved_paths_[-1]
    state = read_checkpoint(path)
    assert state["epoch"] == 4 and "module" in state and "optimizer" in state
    assert len(state["callbacks"]["history"]["records_"]) == 4

    fresh = NeuralClassifier(**params).load_checkpoint(path)  # unfitted before
    np.testing.assert_array_equal(fresh.predict_proba(X), fitted.predict_proba(X))
    assert fresh.classes_.tolist() == fitted.classes_.tolist()
    assert fresh.n_iter_ == 4 and fresh.n_steps_ == fitted.n_steps_
    assert fresh.history_.records_ == fitted.history_.records_
    assert (
        fresh.callbacks_.early_stopping.best_score_ == fitted.callbacks_.early_stopping.best_score_
    )
    fresh.set_params(warm_start=True, max_epochs=1).fit(X, y)  # resumes
    assert fresh.n_iter_ == 5


def test_corrupt_or_mismatched_files_are_clear_errors(regression_data, tmp_path):
    X, y = regression_data
    est = NeuralRegressor(callbacks=[Checkpoint(dirname=tmp_path)], max_epochs=1).fit(X, y)
    path = est.callbacks_.checkpoint.saved_paths_[0]
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(Path(path).read_bytes()[:100])
    with pytest.raises(ValueError, match="is corrupt: its checksum"):
        NeuralRegressor().load_checkpoint(truncated)
    torch.save({"weights": torch.ones(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a skcallback checkpoint"):
        NeuralRegressor().load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other parameters \(hidden_layer_sizes: saved"):
        NeuralRegressor(hidden_layer_sizes=(7,)).load_checkpoint(path)
    with pytest.raises(ValueError, match=r"optimizer: saved 'adam', here 'sgd'"):
        NeuralRegressor(optimizer="sgd").load_checkpoint(path)
    with pytest.raises(ValueError, match="saved by a NeuralRegressor"):
        NeuralClassifier().load_checkpoint(path)
    before = est.predict(X)
    with pytest.raises(ValueError):
        est.set_params(hidden_layer_sizes=(7,)).load_checkpoint(path)
    np.testing.assert_array_equal(est.predict(X), before)  # nothing changed


def test_a_crash_mid_write_never_leaves_a_truncated_file(tmp_path, monkeypatch):
    target = tmp_path / "model-0001.pt"
    atomic_save({"ok": torch.ones(1)}, target)
    good = target.read_bytes()

    def crash(obj, file):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"new": torch.zeros(1)}, target)
    assert target.read_bytes() == good
    assert os.listdir(tmp_path) == ["model-0001.pt"]


def test_each_fit_has_its_own_folder_and_a_rerun_finds_it(regression_data, tmp_path):
    X, y = regression_data

    def folder(**params):
        est = NeuralRegressor(callbacks=[Checkpoint(dirname=tmp_path)], max_epochs=1, **params)
        return est.fit(X, y).callbacks_.checkpoint.run_dir_

    first = folder(random_state=0)
    assert folder(random_state=0) == first  # the same fit: the same folder
    assert folder(random_state=1) != first  # other parameters
    assert folder(random_state=0, lr=0.01) != first
    est = NeuralRegressor(callbacks=[Checkpoint(dirname=tmp_path)], max_epochs=1, random_state=0)
    assert est.fit(X[:-1], y[:-1]).callbacks_.checkpoint.run_dir_ != first  # other data


def test_feature_names_survive_a_checkpoint(regression_data, tmp_path):
    import warnings

    import pandas as pd

    X, y = regression_data
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    params = dict(callbacks=[Checkpoint(dirname=tmp_path)], max_epochs=1, random_state=0)
    fitted = NeuralRegressor(**params).fit(frame, y)
    loaded = NeuralRegressor(**params).load_checkpoint(fitted.callbacks_.checkpoint.saved_paths_[0])
    assert loaded.feature_names_in_.tolist() == ["a", "b", "c", "d"]
    assert loaded.feature_names_in_.dtype == object
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no feature-name mismatch warning
        np.testing.assert_array_equal(loaded.predict(frame), fitted.predict(frame))


def test_a_failed_fit_names_its_newest_checkpoint(regression_data, tmp_path):
    X, y = regression_data

    def fail(ctx):
        if ctx.epoch == 3:
            raise RuntimeError("crash")

    est = NeuralRegressor(
        max_epochs=5,
        callbacks=[LambdaCallback(on_epoch_end=fail), Checkpoint(dirname=tmp_path)],
        random_state=0,
    )
    with pytest.raises(RuntimeError) as info:
        est.fit(X, y)
    note = next(n for n in info.value.__notes__ if "newest checkpoint" in n)
    path = note.split(" is ", 1)[1].split(";")[0]
    assert path.endswith("model-0002.pt")
    restored = NeuralRegressor(max_epochs=5, random_state=0).load_checkpoint(path)
    assert restored.n_iter_ == 2


def test_keep_max_prunes_the_files_and_the_list(regression_data, tmp_path):
    X, y = regression_data
    est = NeuralRegressor(
        max_epochs=5, callbacks=[Checkpoint(dirname=tmp_path, keep_max=2)], random_state=0
    ).fit(X, y)
    saved = est.callbacks_["checkpoint"].saved_paths_
    assert [Path(p).name for p in saved] == ["model-0004.pt", "model-0005.pt"]
    assert sorted(p.name for p in Path(saved[0]).parent.glob("*.pt")) == [
        "model-0004.pt",
        "model-0005.pt",
    ]


def test_keep_max_never_deletes_the_best_file(regression_data, tmp_path, scripted):
    X, y = regression_data
    est = NeuralRegressor(
        max_epochs=4,
        callbacks=[
            scripted([1.0, 2.0, 3.0, 4.0]),  # epoch 1 stays the best
            Checkpoint(dirname=tmp_path, monitor="valid_loss", keep_max=2),
        ],
    ).fit(X, y)
    checkpoint = est.callbacks_.checkpoint
    assert Path(checkpoint.best_path_).name == "model-0001.pt"
    folder = Path(checkpoint.run_dir_)
    assert sorted(p.name for p in folder.glob("*.pt")) == ["model-0001.pt", "model-0004.pt"]


def test_checkpoint_monitor_falls_back_to_train_metrics_without_validation(
    regression_data, tmp_path
):
    X, y = regression_data
    with pytest.warns(UserWarning, match="monitors 'train_loss' instead"):
        est = NeuralRegressor(
            callbacks=[Checkpoint(dirname=tmp_path, monitor="valid_loss", save_best_only=True)],
            validation_fraction=None,
            max_epochs=3,
        ).fit(X, y)
    assert est.callbacks_.checkpoint.best_path_ is not None


def test_a_fit_keeps_the_temporary_file_of_a_write_in_progress(regression_data, tmp_path):
    # Crash leftovers go by one rule for every format: a writer that lives
    # (another fit of the same parameters and data, writing now) keeps its file.
    X, y = regression_data
    est = NeuralRegressor(max_epochs=1, callbacks=[Checkpoint(dirname=tmp_path)], random_state=0)
    folder = Path(est.fit(X, y).callbacks_.checkpoint.run_dir_)
    writing = folder / f".model-0002.pt.{os.getpid()}.abc.tmp"
    writing.write_bytes(b"half a write")
    os.utime(writing, (0, 0))  # however old: its writer runs
    est.fit(X, y)
    assert writing.exists()


def test_every_seconds_saves_at_the_first_batch_boundary_after_that_time(regression_data, tmp_path):
    import time

    X, y = regression_data  # 108 training rows, batch 40: 3 batches an epoch

    def slow_batch(ctx):
        if ctx.step == 2:
            time.sleep(0.6)  # Checkpoint runs last: it sees the time spent

    est = NeuralRegressor(
        callbacks=[
            LambdaCallback(name="slow", on_train_batch_end=slow_batch),
            Checkpoint(dirname=tmp_path, every=None, save_last=False, every_seconds=0.5),
        ],
        batch_size=40,
        max_epochs=2,
    ).fit(X, y)
    assert [Path(p).name for p in est.callbacks_.checkpoint.saved_paths_] == [
        "model-0001-000000002.pt"
    ]


CRASH_AT = [None]


def _crash(ctx):
    """Fails the fit at step CRASH_AT[0] (a module-level switch, so the
    crashing fit and its re-run have the same parameters and folder)."""
    if ctx.step == CRASH_AT[0]:
        raise RuntimeError("simulated crash")


def test_every_seconds_checkpoints_resume_exactly_after_a_crash(classification_data, tmp_path):
    X, y = classification_data

    def make(folder):
        return NeuralClassifier(
            hidden_layer_sizes=(8,),
            dropout=0.2,
            batch_size=16,
            max_epochs=3,
            random_state=0,
            callbacks=[
                EarlyStopping(patience=5),
                LambdaCallback(name="crash", on_after_step=_crash),
                Checkpoint(dirname=folder, resume=True, every_seconds=1e-9),
            ],
        )

    CRASH_AT[0] = None
    uninterrupted = make(tmp_path / "a").fit(X, y)
    CRASH_AT[0] = 7
    with pytest.raises(RuntimeError, match="simulated crash"):
        make(tmp_path / "b").fit(X, y)
    CRASH_AT[0] = None
    resumed = make(tmp_path / "b").fit(X, y)
    assert Path(resumed.callbacks_.checkpoint.resumed_from_).name == "model-0001-000000006.pt"
    for name, value in uninterrupted.module_.state_dict().items():
        assert torch.equal(value, resumed.module_.state_dict()[name])
    assert resumed.history_.get("valid_loss") == uninterrupted.history_.get("valid_loss")


def test_every_seconds_is_tunable_and_survives_joblib_and_save(regression_data, tmp_path):
    import joblib
    from sklearn.model_selection import GridSearchCV

    import skcallback

    X, y = regression_data
    est = NeuralRegressor(callbacks=[Checkpoint(dirname=tmp_path / "runs")], max_epochs=2)
    search = GridSearchCV(est, {"cb__checkpoint__every_seconds": [None, 1e-9]}, cv=2).fit(X, y)
    best = search.best_estimator_
    seconds = search.best_params_["cb__checkpoint__every_seconds"]
    assert best.callbacks_.checkpoint.every_seconds == seconds
    mid_epoch = [p for p in best.callbacks_.checkpoint.saved_paths_ if Path(p).stem.count("-") == 2]
    assert bool(mid_epoch) == (seconds is not None)
    joblib.dump(best, tmp_path / "best.joblib")
    for loaded in (
        joblib.load(tmp_path / "best.joblib"),
        skcallback.load(skcallback.save(best, tmp_path / "best.skc")),
    ):
        assert loaded.get_params()["cb__checkpoint__every_seconds"] == seconds
