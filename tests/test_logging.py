"""Callbacks that report progress: PrintLog, ProgressBar, LossMonitor, MetricLogger,
TimeMonitor, CSVLogger."""

import csv

import numpy as np
import pytest

from skcallback import NeuralRegressor
from skcallback.callbacks import (
    CSVLogger,
    EarlyStopping,
    EpochScoring,
    LambdaCallback,
    LossMonitor,
    MetricLogger,
    PrintLog,
    ProgressBar,
    TimeMonitor,
)


def test_loss_monitor_prints_mindspore_lines(regression_data):
    X, y = regression_data
    lines = []
    NeuralRegressor(
        callbacks=[LossMonitor(every=5, sink=lines.append)], batch_size=10, max_epochs=1
    ).fit(X, y)
    assert [line.split(",")[0] for line in lines[:-1]] == ["epoch: 1 step: 5", "epoch: 1 step: 10"]
    assert lines[-1].startswith("Eval result: epoch 1, metrics: {'valid_loss': ")
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


def test_print_log_marks_best_values_only_for_metrics_with_a_direction(regression_data, scripted):
    X, y = regression_data
    lines = []
    NeuralRegressor(
        max_epochs=3,
        callbacks=[
            scripted([3.0, 2.0, 2.5]),
            scripted([0.1, 0.2, 0.3], key="valid_odd"),
            PrintLog(keys=["epoch", "valid_loss", "valid_odd"], sink=lines.append),
        ],
    ).fit(X, y)
    rows = [line.split() for line in lines[2:]]
    assert [row[1].endswith("*") for row in rows] == [True, True, False]
    assert not any(row[2].endswith("*") for row in rows)  # no declared direction


def test_loss_monitor_prints_every_batch_by_default(regression_data):
    X, y = regression_data
    lines = []
    NeuralRegressor(
        callbacks=[LossMonitor(sink=lines.append)],
        batch_size=40,
        validation_fraction=None,
        max_epochs=2,
    ).fit(X, y)
    heads = [line.split(",")[0] for line in lines]
    assert heads == [f"epoch: {e} step: {s}" for e in (1, 2) for s in (1, 2, 3)]
    assert all(float(line.split(", loss is ")[1]) > 0 for line in lines)


def test_metric_logger_without_every_records_per_epoch_and_prints_nothing(regression_data):
    X, y = regression_data
    lines = []
    est = NeuralRegressor(
        callbacks=[MetricLogger(sink=lines.append)], batch_size=40, max_epochs=3
    ).fit(X, y)
    logger = est.callbacks_["metric_logger"]
    assert lines == [] and logger.batch_train_ == []
    assert logger.train_ == est.history_.get("train_loss") and len(logger.valid_) == 3


def test_print_log_defaults_to_every_key_printed(regression_data, capsys):
    X, y = regression_data
    NeuralRegressor(callbacks=[PrintLog(), EpochScoring("r2")], max_epochs=2).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    columns = {"epoch", "train_loss", "valid_loss", "valid_r2", "lr", "dur"}
    assert sorted(lines[0].split()) == sorted(columns)
    assert [line.split()[0] for line in lines[2:]] == ["1", "2"]


def test_csv_logger_replaces_an_existing_file_unless_appending(regression_data, tmp_path):
    X, y = regression_data
    path = tmp_path / "train.csv"
    NeuralRegressor(callbacks=[CSVLogger(path)], max_epochs=3).fit(X, y)
    NeuralRegressor(callbacks=[CSVLogger(path)], max_epochs=2).fit(X, y)
    rows = list(csv.DictReader(path.open()))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert set(rows[0]) == {"epoch", "train_loss", "valid_loss", "lr", "dur"}


def _on_a_terminal(monkeypatch):
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)


@pytest.fixture(params=["tqdm", "plain"])
def bar_kind(request, monkeypatch):
    """Each progress-bar test runs with tqdm and without it (a plain install,
    without the ``progress`` extra)."""
    import sys

    if request.param == "plain":
        monkeypatch.setitem(sys.modules, "tqdm", None)  # what a missing package looks like
        monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    return request.param


def test_verbose_2_draws_a_bar_per_epoch(regression_data, monkeypatch, capsys, bar_kind):
    X, y = regression_data
    _on_a_terminal(monkeypatch)
    NeuralRegressor(max_epochs=2, verbose=2).fit(X, y)
    err = capsys.readouterr().err
    assert "epoch 1" in err and "epoch 2" in err


def test_without_tqdm_verbose_2_draws_a_plain_line(regression_data, monkeypatch, capsys):
    import sys

    X, y = regression_data
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    NeuralRegressor(max_epochs=1, verbose=2, batch_size=len(X) // 3 + 1).fit(X, y)
    assert capsys.readouterr().err == ""  # quiet off a terminal, as tqdm is
    _on_a_terminal(monkeypatch)
    est = NeuralRegressor(max_epochs=1, batch_size=len(X) // 3 + 1, callbacks=[ProgressBar(True)])
    est.fit(X, y)
    train_loss = est.history_[-1]["train_loss"]
    line = capsys.readouterr().err.split("\r")[-1]
    assert line == f"epoch 1: 3/3 [train_loss={train_loss:.4f}]\n"


@pytest.mark.parametrize("leave", [False, True])
def test_progress_bar_leaves_finished_bars_only_when_asked(
    regression_data, monkeypatch, capsys, leave, bar_kind
):
    X, y = regression_data
    _on_a_terminal(monkeypatch)
    bar = ProgressBar() if not leave else ProgressBar(leave=True)
    assert bar.leave is leave
    NeuralRegressor(max_epochs=2, callbacks=[bar]).fit(X, y)
    err = capsys.readouterr().err
    assert "epoch 2" in err
    assert err.count("\n") == (2 if leave else 0)  # a kept bar ends its line


def test_csv_logger_adds_the_rows_of_continuing_fits(regression_data, tmp_path):
    X, y = regression_data
    path = tmp_path / "log.csv"
    est = NeuralRegressor(max_epochs=2, warm_start=True, callbacks=[CSVLogger(path)])
    est.fit(X, y).fit(X, y)
    est.partial_fit(X, y)  # no validation: an empty valid_loss
    with path.open() as file:
        rows = list(csv.DictReader(file))
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3, 4, 5]
    assert rows[-1]["valid_loss"] == "" and float(rows[-1]["train_loss"]) > 0


def test_csv_logger_writes_under_an_existing_header(regression_data, tmp_path):
    X, y = regression_data
    path = tmp_path / "log.csv"
    path.write_text("epoch,valid_loss,other\n0,9.0,x\n")
    est = NeuralRegressor(max_epochs=1, callbacks=[CSVLogger(path, append=True)])
    with pytest.warns(UserWarning, match=r"\['train_loss', 'lr', 'dur'\] are not in it"):
        est.fit(X, y)
    with path.open() as file:
        rows = list(csv.DictReader(file))
    assert rows[1]["epoch"] == "1" and rows[1]["other"] == ""
    assert float(rows[1]["valid_loss"]) == pytest.approx(est.history_[0]["valid_loss"])


def test_csv_logger_writes_a_file_per_fit_into_a_folder(regression_data, tmp_path):
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV

    X, y = regression_data
    folder = tmp_path / "logs"
    est = NeuralRegressor(max_epochs=2, random_state=0, callbacks=[CSVLogger(f"{folder}/")])
    search = GridSearchCV(est, {"lr": [1e-3, 1e-2]}, cv=2, n_jobs=2).fit(X, y)
    files = sorted(folder.iterdir())
    assert len(files) == 2 * 2 + 1  # every fit of the search and the refit keep their rows
    for file in files:
        with file.open(newline="") as f:
            assert [row["epoch"] for row in csv.DictReader(f)] == ["1", "2"]
    written = search.best_estimator_.callbacks_["csv_logger"].path_
    assert written in {str(f) for f in files}
    # the same fit again (into the folder, now existing) rewrites its own file
    again = clone(search.best_estimator_).set_params(callbacks=[CSVLogger(folder)]).fit(X, y)
    assert again.callbacks_["csv_logger"].path_ == written
    assert len(list(folder.iterdir())) == 5
    with open(written, newline="") as f:
        assert len(list(csv.DictReader(f))) == 2


def test_training_that_continues_adds_to_the_file_of_the_fit_it_continues(
    regression_data, tmp_path
):
    X, y = regression_data
    stream = NeuralRegressor(random_state=0, callbacks=[CSVLogger(f"{tmp_path}/")])
    for rows in np.array_split(np.arange(len(y)), 3):  # new data each call
        stream.partial_fit(X[rows], y[rows])
    (file,) = tmp_path.iterdir()
    assert stream.callbacks_["csv_logger"].path_ == str(file)
    with file.open(newline="") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["1", "2", "3"]
    warm = NeuralRegressor(max_epochs=2, warm_start=True, callbacks=[CSVLogger(tmp_path)])
    warm.fit(X, y).fit(X[:50], y[:50])
    assert len(list(tmp_path.iterdir())) == 2
    with open(warm.callbacks_["csv_logger"].path_, newline="") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["1", "2", "3", "4"]


def test_verbose_output_says_why_a_fit_stopped(regression_data, capsys):
    X, y = regression_data
    stopped = NeuralRegressor(
        max_epochs=50, lr=0.1, verbose=1, random_state=0, callbacks=[EarlyStopping(patience=1)]
    ).fit(X, y)
    out = capsys.readouterr().out.splitlines()
    assert stopped.stop_reason_ is not None
    assert out[-1] == f"Stopped after epoch {stopped.n_iter_}: {stopped.stop_reason_}"
    NeuralRegressor(max_epochs=2, verbose=1).fit(X, y)  # ran to max_epochs: no stop line
    assert "Stopped" not in capsys.readouterr().out


def test_loss_monitor_counts_batches_across_epochs_as_mindspore(regression_data):
    X, y = regression_data  # 108 training rows, batch 40: 3 batches an epoch
    lines = []
    NeuralRegressor(
        callbacks=[LossMonitor(every=4, sink=lines.append)], batch_size=40, max_epochs=3
    ).fit(X, y)
    heads = [line.split(",")[0] for line in lines if line.startswith("epoch:")]
    assert heads == ["epoch: 2 step: 1", "epoch: 3 step: 2"]  # batches 4 and 8 of the fit


def test_loss_monitor_prints_mindspores_eval_result_after_validating_epochs(regression_data):
    X, y = regression_data
    lines = []
    est = NeuralRegressor(
        callbacks=[LossMonitor(every=100, sink=lines.append), EpochScoring("r2")],
        validate_every=2,
        max_epochs=3,
    ).fit(X, y)
    evals = [line for line in lines if line.startswith("Eval result")]
    history = est.history_
    expected = [
        {key: history[epoch - 1][key] for key in ("valid_loss", "valid_r2")} for epoch in (2, 3)
    ]
    assert evals == [
        f"Eval result: epoch {epoch}, metrics: {metrics}"
        for epoch, metrics in zip((2, 3), expected, strict=True)
    ]
    lines.clear()
    NeuralRegressor(
        callbacks=[LossMonitor(every=100, sink=lines.append)],
        validation_fraction=None,
        max_epochs=2,
    ).fit(X, y)
    assert lines == []  # nothing validated, nothing to report


def _crash_at_epoch(epoch):
    def crash(ctx):
        if ctx.epoch == epoch:
            raise RuntimeError("simulated failure")

    return LambdaCallback(name="crash", on_epoch_begin=crash)


def _epochs(path):
    with open(path, newline="") as file:
        return [int(row["epoch"]) for row in csv.DictReader(file)]


@pytest.mark.parametrize("warm_start", [False, True])
def test_a_failed_fit_leaves_the_kept_models_log_as_it_was(regression_data, tmp_path, warm_start):
    X, y = regression_data
    path = tmp_path / "log.csv"
    est = NeuralRegressor(max_epochs=2, warm_start=warm_start, callbacks=[CSVLogger(path)])
    est.fit(X, y)
    kept = path.read_bytes()
    # a refit would rewrite the file, a warm start add to it: both fail after a row
    est.set_params(callbacks=[CSVLogger(path), _crash_at_epoch(4 if warm_start else 2)])
    with pytest.raises(RuntimeError, match="simulated failure"):
        est.fit(X, y)
    assert path.read_bytes() == kept
    if warm_start:  # the kept model goes on, and so does its log
        est.set_params(callbacks=[CSVLogger(path)]).fit(X[:60], y[:60])
        assert _epochs(path) == [1, 2, 3, 4]


def test_a_failed_first_fit_leaves_no_log(regression_data, tmp_path):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=3, callbacks=[CSVLogger(tmp_path), _crash_at_epoch(3)])
    with pytest.raises(RuntimeError, match="simulated failure"):
        est.fit(X, y)
    assert list(tmp_path.iterdir()) == []


def test_a_continued_fit_continues_only_the_kept_models_rows(regression_data, tmp_path):
    X, y = regression_data
    path = tmp_path / "log.csv"
    est = NeuralRegressor(max_epochs=2, warm_start=True, callbacks=[CSVLogger(path)]).fit(X, y)
    with path.open("a") as file:  # rows of a continued fit that was killed
        file.write("3,9.0,9.0,0.001,0.1\n4,9.0,9.0,0.001,0.1\n")
    est.fit(X, y)
    assert _epochs(path) == [1, 2, 3, 4]
    with path.open(newline="") as file:
        assert all(float(row["train_loss"]) != 9.0 for row in csv.DictReader(file))


def test_a_checkpoints_logger_state_does_not_choose_the_log_a_fit_continues(
    regression_data, tmp_path
):
    from skcallback.callbacks import Checkpoint, checkpoint_files

    X, y = regression_data
    logs = tmp_path / "logs"
    NeuralRegressor(
        max_epochs=2, callbacks=[CSVLogger(f"{logs}/"), Checkpoint(dirname=tmp_path / "ck")]
    ).fit(X[:60], y[:60])
    (other_log,) = logs.iterdir()
    kept = other_log.read_bytes()
    (folder,) = (tmp_path / "ck").iterdir()
    est = NeuralRegressor(max_epochs=1, warm_start=True, callbacks=[CSVLogger(logs)])
    est.load_checkpoint(checkpoint_files(folder, "model")[-1])
    est.fit(X, y)
    assert other_log.read_bytes() == kept  # another fit's log is not touched
    assert est.callbacks_["csv_logger"].path_ != str(other_log)
    assert _epochs(est.callbacks_["csv_logger"].path_) == [3]


def test_loggers_keep_a_column_for_metrics_the_first_epoch_did_not_record(
    regression_data, tmp_path
):
    X, y = regression_data
    lines = []
    path = tmp_path / "history.csv"
    NeuralRegressor(
        callbacks=[PrintLog(sink=lines.append), CSVLogger(path)], validate_every=2, max_epochs=2
    ).fit(X, y)
    assert lines[0].split() == ["epoch", "train_loss", "valid_loss", "lr", "dur"]
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert rows[0]["valid_loss"] == "" and float(rows[1]["valid_loss"]) > 0
