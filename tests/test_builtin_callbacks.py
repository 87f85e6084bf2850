"""The other built-ins: scoring, scheduling, guards and loggers."""

import csv
import pickle
import time

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV

from skcallback import NeuralClassifier, NeuralRegressor
from skcallback.callbacks import (
    Checkpoint,
    CSVLogger,
    EarlyStopping,
    EpochScoring,
    GradientClipping,
    LambdaCallback,
    LossMonitor,
    LRScheduler,
    MetricLogger,
    PrintLog,
    ProgressBar,
    TerminateOnNaN,
    TimeLimit,
    TimeMonitor,
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


def test_epoch_scoring_matches_the_metric_without_an_extra_forward(classification_data):
    X, y = classification_data
    forwards = []
    clf = NeuralClassifier(
        callbacks=[
            EpochScoring("accuracy"),
            EpochScoring("accuracy", on_train=True),
            LambdaCallback(name="count", on_after_forward=lambda ctx: forwards.append(ctx.phase)),
        ],
        validation_fraction=None,
        max_epochs=2,
        random_state=0,
    )
    clf.fit(X, y)
    assert "train_accuracy" in clf.history_[-1]
    assert "valid_accuracy" not in clf.history_[-1]
    assert forwards.count("valid") == 0
    # with validation: the score equals accuracy on the held-out rows
    seen = {}

    def keep(ctx):
        seen.setdefault("y", []).append(ctx.y_batch.numpy())
        seen.setdefault("p", []).append(ctx.y_pred.argmax(1).numpy())

    clf = NeuralClassifier(
        callbacks=[EpochScoring("accuracy"), LambdaCallback(on_valid_batch_end=keep)],
        max_epochs=1,
        random_state=0,
    ).fit(X, y)
    expected = accuracy_score(np.concatenate(seen["y"]), np.concatenate(seen["p"]))
    assert clf.history_[0]["valid_accuracy"] == pytest.approx(expected)


def test_epoch_scoring_drives_early_stopping_in_the_right_direction(regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[EpochScoring("r2"), EarlyStopping(monitor="valid_r2", patience=3)],
        lr=1e-2,
        max_epochs=30,
        random_state=0,
    ).fit(X, y)
    es = est.callbacks_.early_stopping
    assert es.best_score_ == max(est.history_.get("valid_r2"))


def test_lr_scheduler_steps_per_epoch_and_records_lr(regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[LRScheduler("StepLR", step_size=2, gamma=0.5)], lr=0.1, max_epochs=5
    ).fit(X, y)
    assert est.history_.get("lr") == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])


def test_lr_scheduler_kwargs_are_tunable(regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[LRScheduler("StepLR", step_size=1, gamma=0.5)],
        cb__lr_scheduler__gamma=0.1,
        lr=1.0,
        max_epochs=2,
    )
    assert est.get_params()["cb__lr_scheduler__gamma"] == 0.1
    est.fit(X, y)
    assert est.history_.get("lr") == pytest.approx([1.0, 0.1])
    search = GridSearchCV(est, {"cb__lr_scheduler__gamma": [0.5, 0.9]}, cv=2)
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 2


def test_one_cycle_gets_its_total_steps_and_steps_per_batch(regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[LRScheduler("OneCycleLR", step_every="batch", max_lr=0.1)],
        batch_size=20,
        max_epochs=3,
    ).fit(X, y)
    lrs = est.history_.get("lr")
    assert lrs[0] < 0.1 and len(lrs) == 3  # warm-up starts low; no error at the last step


def test_reduce_on_plateau_reads_the_monitored_metric(regression_data, scripted):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[
            scripted([1.0] * 5),
            LRScheduler("ReduceLROnPlateau", patience=0, factor=0.5),
        ],
        lr=0.1,
        max_epochs=4,
    ).fit(X, y)
    assert est.history_.get("lr") == pytest.approx([0.1, 0.1, 0.05, 0.025])


def test_unknown_scheduler_is_a_clear_error(regression_data):
    X, y = regression_data
    with pytest.raises(ValueError, match=r"policy.*StepLR.*got 'StepLRR'"):
        NeuralRegressor(callbacks=[LRScheduler("StepLRR")]).fit(X, y)


def test_terminate_on_nan_never_lets_the_bad_batch_reach_the_weights(regression_data):
    X, y = regression_data
    snapshot = {}

    def poison(ctx):
        if ctx.phase == "train" and ctx.step == 3:
            snapshot.update({k: v.clone() for k, v in ctx.module.state_dict().items()})
            ctx.loss = ctx.loss * float("nan")

    est = NeuralRegressor(
        callbacks=[LambdaCallback(name="poison", on_after_loss=poison), TerminateOnNaN()],
        batch_size=10,
        max_epochs=5,
    ).fit(X, y)
    assert est.callbacks_.terminate_on_nan.stopped_step_ == 3
    assert est.n_steps_ == 3 and est.n_iter_ == 1
    for key, value in est.module_.state_dict().items():
        assert torch.equal(value, snapshot[key])
    assert np.isfinite(est.predict(X)).all()


def test_gradient_clipping_bounds_the_norm(regression_data):
    X, y = regression_data
    norms = []

    def measure(ctx):
        grads = [p.grad.flatten() for p in ctx.module.parameters()]
        norms.append(float(torch.cat(grads).norm()))

    NeuralRegressor(
        callbacks=[GradientClipping(0.01), LambdaCallback(name="m", on_before_step=measure)],
        max_epochs=1,
    ).fit(X, y * 100)
    assert max(norms) <= 0.01 + 1e-6


def test_time_limit_stops_training(regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[
            TimeLimit(0.05),
            LambdaCallback(on_train_batch_end=lambda ctx: time.sleep(0.02)),
        ],
        batch_size=10,
        max_epochs=100,
    ).fit(X, y)
    assert est.n_iter_ == 1
    assert est.callbacks_.time_limit.stopped_epoch_ == 1


def test_loss_monitor_prints_mindspore_lines(regression_data):
    X, y = regression_data
    lines = []
    NeuralRegressor(
        callbacks=[LossMonitor(every=5, sink=lines.append)], batch_size=10, max_epochs=1
    ).fit(X, y)
    assert [line.split(",")[0] for line in lines] == ["epoch: 1 step: 5", "epoch: 1 step: 10"]
    assert lines[0].split(", loss is ")[1].replace(".", "", 1).isdigit()


def test_metric_logger_records_train_and_valid_lists(regression_data):
    X, y = regression_data
    lines = []
    est = NeuralRegressor(
        callbacks=[MetricLogger(every=5, sink=lines.append)], batch_size=10, max_epochs=3
    ).fit(X, y)
    logger = est.callbacks_.metric_logger
    assert logger.train_ == est.history_.get("train_loss")
    assert logger.valid_ == est.history_.get("valid_loss")
    assert len(logger.batch_train_) == 6 and lines[0].startswith("Batch [5] Train-loss=")


def test_time_monitor_records_epoch_and_step_times(regression_data):
    X, y = regression_data
    lines = []
    est = NeuralRegressor(callbacks=[TimeMonitor(sink=lines.append)], max_epochs=2).fit(X, y)
    monitor = est.callbacks_.time_monitor
    assert len(monitor.epoch_times_) == 2 and monitor.step_time_ > 0
    assert lines[0].startswith("Train epoch time:") and "per step time:" in lines[0]


def test_csv_logger_writes_one_row_per_epoch(regression_data, tmp_path):
    X, y = regression_data
    path = tmp_path / "logs" / "train.csv"
    NeuralRegressor(callbacks=[CSVLogger(path)], max_epochs=3).fit(X, y)
    NeuralRegressor(callbacks=[CSVLogger(path, append=True)], max_epochs=2).fit(X, y)
    rows = list(csv.DictReader(path.open()))
    assert [row["epoch"] for row in rows] == ["1", "2", "3", "1", "2"]
    assert float(rows[0]["train_loss"]) > 0


def test_verbose_2_adds_a_progress_bar_that_is_quiet_off_a_terminal(regression_data, capsys):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=2, verbose=2).fit(X, y)
    assert list(est.callbacks_)[-2:] == ["progress_bar", "print_log"]
    captured = capsys.readouterr()
    assert "train_loss" in captured.out  # the table prints
    assert "epoch 1" not in captured.err  # the bar stays quiet: pytest's output is no tty


def test_progress_bar_draws_on_a_terminal(regression_data, monkeypatch, capsys):
    import sys

    X, y = regression_data
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    NeuralRegressor(max_epochs=1, callbacks=[ProgressBar(leave=True)]).fit(X, y)
    assert "epoch 1" in capsys.readouterr().err


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


def test_reduce_on_plateau_maximises_scores_by_default(regression_data, scripted):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[
            scripted([0.5, 0.6, 0.7, 0.8], key="valid_accuracy", lower_is_better=False),
            LRScheduler("ReduceLROnPlateau", monitor="valid_accuracy", patience=0, factor=0.5),
        ],
        lr=0.1,
        max_epochs=4,
    ).fit(X, y)
    assert est.history_.get("lr") == pytest.approx([0.1] * 4)  # improving: never reduced


@pytest.mark.parametrize("scoring", ["roc_auc", "neg_log_loss", "balanced_accuracy"])
def test_epoch_scoring_with_probability_scorers(scoring):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3))
    y = np.where(X[:, 0] + 0.3 * rng.normal(size=200) > 0, "yes", "no")
    clf = NeuralClassifier(
        callbacks=[EpochScoring(scoring)], lr=1e-2, max_epochs=5, random_state=0
    ).fit(X, y)
    values = clf.history_.get(f"valid_{scoring}")
    assert len(values) == 5 and np.isfinite(values).all()
    if scoring == "roc_auc":
        assert values[-1] > 0.8


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


def test_lr_schedule_continues_across_warm_start(regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[LRScheduler("StepLR", step_size=2, gamma=0.5)],
        lr=0.1,
        max_epochs=3,
        warm_start=True,
    )
    est.fit(X, y).fit(X, y)
    assert est.history_.get("lr") == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
