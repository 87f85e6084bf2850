"""scikit-learn's own callbacks (sklearn.callback): the fit is the root task,
each epoch a sub-task named "epoch"."""

import importlib
import pickle
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skcallback
from skcallback import NeuralClassifier, NeuralRegressor

callback = pytest.importorskip("sklearn.callback")


class Recorder:
    """A FitCallback recording each task it sees, stopping at one epoch."""

    def __init__(self, stop_at=None):
        self.stop_at = stop_at
        self.events = []

    def setup(self, estimator, context):
        self.events.append(("setup", context.task_name))

    def teardown(self, estimator, context):
        self.events.append(("teardown", context.task_name))

    def on_fit_task_begin(self, estimator, context):
        self.events.append(("begin", context.task_name, context.task_id))

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        self.events.append(("end", context.task_name, context.task_id))
        if fitted_estimator is not None:
            fitted = estimator.__sklearn_is_fitted__()
            self.events.append(("fitted", fitted_estimator.n_iter_, fitted))
        return context.task_name == "epoch" and context.task_id == self.stop_at


class Propagated(Recorder):
    """An auto-propagated recorder of task paths."""

    max_propagation_depth = None

    def on_fit_task_end(self, estimator, context):
        path = []
        while context is not None:
            path.append((context.estimator_name, context.task_name))
            context = context.parent
        self.events.append(tuple(reversed(path)))


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = rng.randn(120, 4)
    return X, X @ rng.randn(4)


def test_each_epoch_is_a_task_of_the_fit(data):
    rec = Recorder()
    est = NeuralRegressor(max_epochs=3, random_state=0).set_callbacks(rec)
    est.fit(*data)
    assert rec.events[:2] == [("setup", "fit"), ("begin", "fit", 0)]
    epochs = [e for e in rec.events if e[0] in ("begin", "end") and e[1] == "epoch"]
    assert epochs == [(kind, "epoch", i) for i in range(3) for kind in ("begin", "end")]
    # the estimator handed to the hooks is untouched until the fit completes
    assert [e for e in rec.events if e[0] == "fitted"] == [
        ("fitted", 1, False),
        ("fitted", 2, False),
        ("fitted", 3, False),
    ]
    assert rec.events[-2:] == [("end", "fit", 0), ("teardown", "fit")]


def test_on_fit_task_end_returning_true_stops_after_that_epoch(data):
    est = NeuralRegressor(max_epochs=10, random_state=0).set_callbacks(Recorder(stop_at=1))
    est.fit(*data)
    assert est.n_iter_ == 2
    assert "on_fit_task_end returned True" in est.stop_reason_
    assert est.predict(data[0]).shape == (120,)


def test_scoring_monitor_records_a_row_per_epoch(data):
    monitor = callback.ScoringMonitor(scoring="r2")
    est = NeuralRegressor(max_epochs=4, lr=1e-2, random_state=0).set_callbacks(monitor)
    est.fit(*data)
    rows = monitor.get_logs().data
    assert [(r["task_name"], r["task_id"]) for r in rows] == [("epoch", i) for i in range(4)]
    scores = [r["r2"] for r in rows]
    assert scores[-1] > scores[0]
    assert scores[-1] == pytest.approx(est.score(*data))


def test_scoring_monitor_in_a_parallel_grid_search(data):
    X, y = data
    monitor = callback.ScoringMonitor(scoring="accuracy")
    inner = NeuralClassifier(max_epochs=2, random_state=0).set_callbacks(monitor)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), inner),
        {"neuralclassifier__lr": [1e-3, 1e-2]},
        cv=2,
        n_jobs=2,
    )
    search.fit(X, (y > 0).astype(int))
    rows = [r for log in monitor.get_logs(select="all") for r in log.data]
    # 2 candidates x 2 folds + the refit, 2 epochs each
    assert sum(r["task_name"] == "epoch" for r in rows) == 10


def test_auto_propagated_callbacks_reach_the_epochs(data):
    X, y = data
    rec = Propagated()
    search = GridSearchCV(
        make_pipeline(StandardScaler(), NeuralRegressor(max_epochs=2, random_state=0)),
        {"neuralregressor__lr": [1e-3]},
        cv=2,
    ).set_callbacks(rec)
    search.fit(X, y)
    epochs = [path for path in rec.events if path[-1] == ("NeuralRegressor", "epoch")]
    assert len(epochs) == 3 * 2  # two folds and the refit, two epochs each
    assert all(path[0] == ("GridSearchCV", "fit") for path in epochs)


def test_a_failed_fit_tears_down_and_leaves_the_estimator_as_it_was(data):
    rec = Recorder()
    est = NeuralRegressor(max_epochs=2, random_state=0).set_callbacks(rec)
    est.fit(*data)
    before = est.predict(data[0])
    rec.events.clear()
    est.set_params(lr=-1.0)
    with pytest.raises(ValueError, match="lr"):
        est.fit(*data)
    assert rec.events == []  # a configuration error comes before any set-up
    np.testing.assert_array_equal(est.predict(data[0]), before)
    # a failure in training, after the callbacks were set up, also tears down
    rec.events.clear()
    est.set_params(lr=1e-3, callbacks=[skcallback.callbacks.LambdaCallback(on_epoch_end=_boom)])
    with pytest.raises(RuntimeError, match="boom"):
        est.fit(*data)
    assert rec.events[-1] == ("teardown", "fit")
    assert ("end", "fit", 0) not in rec.events
    np.testing.assert_array_equal(est.predict(data[0]), before)


def _boom(ctx):
    raise RuntimeError("boom")


def test_callbacks_survive_clone_and_pickle(data):
    rec = Recorder()
    est = NeuralRegressor(max_epochs=1, random_state=0).set_callbacks(rec)
    assert clone(est)._skl_callbacks[0] is rec
    est.fit(*data)
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.predict(data[0]), est.predict(data[0]))
    loaded.fit(*data)
    assert ("begin", "epoch", 0) in loaded._skl_callbacks[0].events


def test_without_sklearn_callback_set_callbacks_explains(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.callback", None)
    module = importlib.import_module("skcallback._sklearn_callbacks")
    try:
        stand_in = importlib.reload(module)
        with pytest.raises(RuntimeError, match=r"scikit-learn >= 1\.9"):
            stand_in.CallbackSupportMixin().set_callbacks(Recorder())
    finally:
        monkeypatch.undo()
        importlib.reload(module)


def test_progress_bar_on_a_search_draws_a_bar_per_fit(data, capfd):
    pytest.importorskip("rich")
    X, y = data
    search = GridSearchCV(
        NeuralRegressor(max_epochs=2, random_state=0), {"lr": [1e-3, 1e-2]}, cv=2
    ).set_callbacks(callback.ProgressBar())
    search.fit(X, y)
    drawn = capfd.readouterr().out
    # two candidates x two folds, then the refit: each fit's bar completes
    assert drawn.count("NeuralRegressor - fit") == 5
    assert drawn.count("100%") >= 5


def test_fits_in_a_search_without_callbacks_skip_the_tasks(data, monkeypatch):
    from skcallback import _sklearn_callbacks

    opened = []
    original = _sklearn_callbacks.epoch_tasks
    monkeypatch.setattr(
        _sklearn_callbacks,
        "epoch_tasks",
        lambda *args: opened.append(original(*args)) or opened[-1],
    )
    pipe = make_pipeline(StandardScaler(), NeuralRegressor(max_epochs=1, random_state=0))
    GridSearchCV(pipe, {"neuralregressor__lr": [1e-3]}, cv=2).fit(*data)
    assert opened == [None, None, None]


_CRASH_AT_EPOCH = [None]


def _crash_at_epoch(ctx):
    if ctx.epoch == _CRASH_AT_EPOCH[0]:
        raise RuntimeError("simulated crash")


@pytest.mark.parametrize("every_n_steps", [None, 3])
def test_a_resumed_fit_has_a_task_for_each_epoch_it_runs(data, tmp_path, every_n_steps):
    from skcallback.callbacks import Checkpoint, LambdaCallback

    class Announced(Recorder):
        def on_fit_task_begin(self, estimator, context):
            self.events.append((context.task_name, context.max_subtasks))

    rec = Announced()
    est = NeuralRegressor(
        max_epochs=4,
        batch_size=32,
        random_state=0,
        callbacks=[
            Checkpoint(dirname=tmp_path, every_n_steps=every_n_steps, resume=True),
            LambdaCallback(name="crash", on_epoch_end=_crash_at_epoch),
        ],
    ).set_callbacks(rec)
    _CRASH_AT_EPOCH[0] = 2
    with pytest.raises(RuntimeError, match="simulated crash"):
        est.fit(*data)
    _CRASH_AT_EPOCH[0] = None
    rec.events.clear()
    est.fit(*data)
    assert est.n_iter_ == 4
    announced = dict(e for e in rec.events if len(e) == 2 and e[0] == "fit")
    n_epochs = sum(e[:2] == ("end", "epoch") for e in rec.events)
    assert announced["fit"] == n_epochs


def test_the_epoch_tasks_callback_has_a_repr_params_and_clones(data):
    from skcallback._sklearn_callbacks import _EpochTasks

    X, y = data
    est, root = NeuralRegressor(), object()
    tasks = _EpochTasks(est, root, X, y, None)
    assert repr(tasks) == "_EpochTasks(owner=NeuralRegressor)"
    assert tasks.get_params() == {"owner": est, "root": root, "X": X, "y": y, "metadata": None}
    copy = clone(tasks)
    # The estimator, its task and its data are shared, never copied.
    assert copy.get_params()["owner"] is est and copy.get_params()["X"] is X
