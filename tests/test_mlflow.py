"""MlflowLogger (extra mlflow): a run per fit, nested under the caller's run."""

import logging
import os
import signal
import sys

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from skcallback import NeuralRegressor
from skcallback.callbacks import Callback, Checkpoint, EarlyStopping, LambdaCallback, MlflowLogger

mlflow = pytest.importorskip("mlflow")
# SQLAlchemy deprecations inside MLflow's SQLite store, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
logging.getLogger("alembic").setLevel(logging.WARNING)
logging.getLogger("mlflow").setLevel(logging.WARNING)


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = rng.randn(150, 4)
    return X, X @ rng.randn(4)


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh SQLite store, the working folder being tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    yield mlflow.tracking.MlflowClient(uri)
    mlflow.set_tracking_uri(None)


def _runs(client, experiment="skcallback"):
    found = client.get_experiment_by_name(experiment)
    return [] if found is None else client.search_runs([found.experiment_id])


def _steps(client, run_id, key="train_loss"):
    return [(m.step, m.value) for m in client.get_metric_history(run_id, key)]


def test_a_fit_is_a_run_with_its_parameters_and_each_epochs_metrics(data, store):
    est = NeuralRegressor(
        max_epochs=4, lr=0.01, random_state=0, callbacks=[EarlyStopping(patience=50)]
    )
    est.set_params(callbacks=[*est.callbacks, MlflowLogger()]).fit(*data)
    (run,) = _runs(store)
    logger = est.callbacks_["mlflow_logger"]
    assert run.info.run_id == logger.run_id_ and logger.tracking_uri_ == mlflow.get_tracking_uri()
    assert run.info.status == "FINISHED"
    assert run.data.params["lr"] == "0.01" and run.data.params["max_epochs"] == "4"
    assert run.data.params["cb__early_stopping__patience"] == "50"
    assert run.data.params["hidden_layer_sizes"] == "(100,)"
    for key in ("train_loss", "valid_loss", "lr"):
        assert _steps(store, run.info.run_id, key) == [
            (r["epoch"], pytest.approx(r[key])) for r in est.history_
        ]
    assert "epoch" not in run.data.metrics and "stop_reason" not in run.data.tags


def test_without_a_uri_runs_go_to_a_local_sqlite_file(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri(None)
    est = NeuralRegressor(max_epochs=1, callbacks=[MlflowLogger(experiment="local")])
    est.fit(*data)
    assert est.callbacks_["mlflow_logger"].tracking_uri_.startswith("sqlite:")
    assert (tmp_path / "mlflow.db").is_file()
    assert len(_runs(mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db"), "local")) == 1


def test_a_stopped_fit_records_why(data, store):
    est = NeuralRegressor(
        max_epochs=50, lr=0.1, random_state=0, callbacks=[EarlyStopping(patience=1), MlflowLogger()]
    ).fit(*data)
    (run,) = _runs(store)
    assert run.info.status == "FINISHED" and run.data.tags["stop_reason"] == est.stop_reason_
    assert len(_steps(store, run.info.run_id)) == est.n_iter_ < 50


def test_a_search_within_a_run_nests_every_fit_under_it(data, store):
    est = NeuralRegressor(max_epochs=2, random_state=0, callbacks=[MlflowLogger()])
    with mlflow.start_run(run_name="search") as parent:
        GridSearchCV(est, {"lr": [1e-3, 1e-2]}, cv=2, n_jobs=2).fit(*data)
    assert _runs(store) == []  # children live in their parent's experiment
    runs = store.search_runs([parent.info.experiment_id], "tags.`mlflow.parentRunId` != ''")
    assert len(runs) == 5  # 2 candidates x 2 folds, and the refit
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in runs)
    assert all(r.info.status == "FINISHED" for r in runs)
    assert sorted(r.data.params["lr"] for r in runs) == ["0.001", "0.001", "0.01", "0.01", "0.01"]
    assert all(len(_steps(store, r.info.run_id)) == 2 for r in runs)


def test_an_explicit_parent_run_must_exist(data, store):
    parent = store.create_run(store.create_experiment("parents")).info.run_id
    est = NeuralRegressor(max_epochs=1, callbacks=[MlflowLogger(parent_run_id=parent)])
    est.fit(*data)
    assert _runs(store) == []
    (run,) = [r for r in _runs(store, "parents") if r.info.run_id != parent]
    assert run.data.tags["mlflow.parentRunId"] == parent
    missing = NeuralRegressor(max_epochs=1, callbacks=[MlflowLogger(parent_run_id="0" * 32)])
    with pytest.raises(ValueError, match=r"parent run '0+' does not exist"):
        missing.fit(*data)
    assert len(_runs(store, "parents")) == 2 and not hasattr(missing, "n_iter_")


def test_warm_start_and_partial_fit_continue_their_run(data, store):
    est = NeuralRegressor(max_epochs=3, warm_start=True, random_state=0, callbacks=[MlflowLogger()])
    est.fit(*data).fit(*data)
    X, y = data
    stream = NeuralRegressor(random_state=0, callbacks=[MlflowLogger(experiment="stream")])
    for rows in np.array_split(np.arange(len(y)), 3):
        stream.partial_fit(X[rows], y[rows])
    (run,) = _runs(store)
    assert [step for step, _ in _steps(store, run.info.run_id)] == [1, 2, 3, 4, 5, 6]
    assert run.info.status == "FINISHED"
    (streamed,) = _runs(store, "stream")
    assert [step for step, _ in _steps(store, streamed.info.run_id)] == [1, 2, 3]


class _Fail(Callback):
    """Raises once the fit reaches ``at`` epochs while ``armed``."""

    armed = True

    def __init__(self, at=2):
        self.at = at

    def on_epoch_end(self, ctx):
        if type(self).armed and ctx.epoch == self.at:
            raise RuntimeError("boom")


def test_a_failed_fit_fails_its_run_and_a_resumed_fit_finishes_it(data, store, tmp_path):
    callbacks = [Checkpoint(tmp_path / "ckpt", resume=True), _Fail(at=2), MlflowLogger()]
    est = NeuralRegressor(max_epochs=4, random_state=0, callbacks=callbacks)
    with pytest.raises(RuntimeError, match="boom"):
        est.fit(*data)
    (run,) = _runs(store)
    assert run.info.status == "FAILED" and not hasattr(est, "n_iter_")
    _Fail.armed = False
    try:
        est.fit(*data)
    finally:
        _Fail.armed = True
    (run,) = _runs(store)
    assert run.info.status == "FINISHED"
    assert [step for step, _ in _steps(store, run.info.run_id)] == [1, 2, 3, 4]


def test_ctrl_c_marks_the_run_killed(data, store, monkeypatch):
    from skcallback import _loop

    monkeypatch.setattr(_loop, "_last_interrupt", [-float("inf")])
    press = LambdaCallback(on_epoch_end=lambda ctx: os.kill(os.getpid(), signal.SIGINT))
    est = NeuralRegressor(max_epochs=4, callbacks=[press, MlflowLogger()])
    with pytest.warns(RuntimeWarning, match="interrupted"):
        est.fit(*data)
    (run,) = _runs(store)
    assert est.stop_reason_ == "KeyboardInterrupt" and run.info.status == "KILLED"
    assert est.n_iter_ == 1 and len(_steps(store, run.info.run_id)) == 1


def test_configuration_errors_come_before_training(data, store):
    bad_uri = MlflowLogger(tracking_uri="nosuchscheme://x")
    with pytest.raises(ValueError, match="MlflowLogger cannot open experiment 'skcallback'"):
        NeuralRegressor(max_epochs=1, callbacks=[bad_uri]).fit(*data)
    with pytest.raises(ValueError, match="'experiment' parameter of MlflowLogger"):
        NeuralRegressor(max_epochs=1, callbacks=[MlflowLogger(experiment="")]).fit(*data)
    with pytest.raises(ValueError, match="'tracking_uri' parameter of MlflowLogger"):
        NeuralRegressor(max_epochs=1, callbacks=[MlflowLogger(tracking_uri="")]).fit(*data)
    with pytest.raises(ValueError, match="valid_r2"):
        NeuralRegressor(max_epochs=1, callbacks=[MlflowLogger(keys=["valid_r2"])]).fit(*data)
    assert _runs(store) == []


def test_a_fit_failing_in_a_later_setup_creates_no_experiment(data, store):
    def refuse(plan):
        raise ValueError("a later callback refuses")

    logger = MlflowLogger(experiment="fresh")
    est = NeuralRegressor(
        max_epochs=1, callbacks=[logger, LambdaCallback(name="refuse", setup=refuse)]
    )
    with pytest.raises(ValueError, match="a later callback refuses"):
        est.fit(*data)
    assert store.get_experiment_by_name("fresh") is None
    est.set_params(cb__refuse=None).fit(*data)
    assert [run.info.status for run in _runs(store, "fresh")] == ["FINISHED"]


def test_a_metric_name_mlflow_refuses_fails_the_fit_before_any_file_is_written(
    data, store, tmp_path
):
    from skcallback.callbacks import CSVLogger, EpochScoring

    log = tmp_path / "logs" / "fit.csv"
    est = NeuralRegressor(
        max_epochs=1,
        callbacks=[CSVLogger(log), EpochScoring("r2", name="r2$"), MlflowLogger()],
    )
    with pytest.raises(ValueError, match=r"cannot log the metrics \['r2\$'\]"):
        est.fit(*data)
    assert not (tmp_path / "logs").exists() and _runs(store) == []


def test_without_mlflow_the_error_names_the_extra(data, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ImportError, match=r"needs mlflow, .*'mlflow-skinny>=.*'\.\[mlflow\]'"):
        NeuralRegressor(max_epochs=1, callbacks=[MlflowLogger()]).fit(*data)


def test_an_unreachable_server_fails_in_seconds(data, store):
    import socket
    import time

    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    logger = MlflowLogger(tracking_uri=f"http://127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(ValueError, match="MlflowLogger cannot open experiment"):
        NeuralRegressor(max_epochs=1, callbacks=[logger]).fit(*data)
    assert time.monotonic() - started < 30  # MLflow's own retries take minutes


def test_deleted_experiments_and_runs_are_refused_before_training(data, store):
    store.delete_experiment(store.create_experiment("gone"))
    est = NeuralRegressor(max_epochs=1, callbacks=[MlflowLogger(experiment="gone")])
    with pytest.raises(ValueError, match=r"experiment 'gone' .* is deleted") as info:
        est.fit(*data)
    # Found when the store is opened, once every setup has passed, before training.
    assert "in on_fit_begin" in " ".join(info.value.__notes__) and not hasattr(est, "n_iter_")
    parent = store.create_run(store.create_experiment("parents")).info.run_id
    store.delete_run(parent)
    orphan = NeuralRegressor(max_epochs=1, callbacks=[MlflowLogger(parent_run_id=parent)])
    with pytest.raises(ValueError, match="or it or its experiment is deleted"):
        orphan.fit(*data)
    with mlflow.start_run() as active:
        store.delete_run(active.info.run_id)
        with pytest.raises(ValueError, match="it is the active MLflow run"):
            NeuralRegressor(max_epochs=1, callbacks=[MlflowLogger()]).fit(*data)
        store.restore_run(active.info.run_id)
    # a warm start whose run was deleted meanwhile logs to a new run
    warm = NeuralRegressor(max_epochs=1, warm_start=True, callbacks=[MlflowLogger()]).fit(*data)
    first = warm.callbacks_["mlflow_logger"].run_id_
    store.delete_run(first)
    second = warm.fit(*data).callbacks_["mlflow_logger"].run_id_
    assert second != first and store.get_run(second).info.status == "FINISHED"


def test_names_mlflow_refuses_fail_before_the_run_or_are_skipped(data, store):
    from skcallback.callbacks import EpochScoring

    for name in ("/r2", "a/../r2", "r2$", "r" * 251):
        est = NeuralRegressor(
            max_epochs=1, callbacks=[EpochScoring("r2", name=name), MlflowLogger()]
        )
        with pytest.raises(ValueError, match="MlflowLogger cannot log the metrics") as info:
            est.fit(*data)
        assert not any("on_fit_end" in note for note in info.value.__notes__)
    odd = NeuralRegressor(max_epochs=1, callbacks=[("stop$", EarlyStopping()), MlflowLogger()])
    with pytest.raises(ValueError, match=r"cannot log the parameters \['cb__stop\$__"):
        odd.fit(*data)
    assert _runs(store) == []  # refused before a run was created
    named = EpochScoring("r2", name="valid:r2")  # MLflow takes colons
    est = NeuralRegressor(max_epochs=1, callbacks=[named, MlflowLogger()]).fit(*data)
    assert "valid:r2" in store.get_run(est.callbacks_["mlflow_logger"].run_id_).data.metrics

    def undeclared(ctx):
        ctx.metrics["/odd"] = 1.0

    est = NeuralRegressor(
        max_epochs=2, callbacks=[LambdaCallback(on_epoch_end=undeclared), MlflowLogger()]
    )
    with pytest.warns(UserWarning, match="skips the metric '/odd'"):
        est.fit(*data)
    run = store.get_run(est.callbacks_["mlflow_logger"].run_id_)
    assert run.info.status == "FINISHED" and "train_loss" in run.data.metrics


def test_a_clone_logs_where_it_is_fit_and_a_threaded_search_nests(data, store, tmp_path):
    import joblib
    from sklearn.base import clone

    early = clone(NeuralRegressor(max_epochs=1, callbacks=[MlflowLogger()]))
    later = f"sqlite:///{tmp_path / 'later.db'}"
    mlflow.set_tracking_uri(later)
    with mlflow.start_run() as parent:
        early.fit(*data)
        est = NeuralRegressor(max_epochs=1, random_state=0, callbacks=[MlflowLogger()])
        with joblib.parallel_backend("threading"):
            GridSearchCV(est, {"lr": [1e-3, 1e-2]}, cv=2, n_jobs=2).fit(*data)
    client = mlflow.tracking.MlflowClient(later)
    run = client.get_run(early.callbacks_["mlflow_logger"].run_id_)
    assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(children) == 1 + 5  # the early clone, 2 candidates x 2 folds and the refit


def test_a_run_id_from_a_file_opens_only_a_run_of_its_fit(data, store):
    other = store.create_run(store.create_experiment("skcallback")).info.run_id
    est = NeuralRegressor(max_epochs=1, warm_start=True, callbacks=[MlflowLogger()]).fit(*data)
    # what skcallback.load or a checkpoint would restore from a crafted file
    est.callbacks_["mlflow_logger"].load_state_dict({"run_id_": other})
    est.fit(*data)
    assert est.callbacks_["mlflow_logger"].run_id_ != other
    assert store.get_run(other).info.status == "RUNNING" and not store.get_run(other).data.metrics


def test_a_search_of_an_early_clone_nests_under_the_search_run(data, store, tmp_path):
    from sklearn.base import clone

    early = clone(NeuralRegressor(max_epochs=1, random_state=0, callbacks=[MlflowLogger()]))
    later = f"sqlite:///{tmp_path / 'later.db'}"
    mlflow.set_tracking_uri(later)
    with mlflow.start_run() as parent:
        GridSearchCV(early, {"lr": [1e-3, 1e-2]}, cv=2, n_jobs=2).fit(*data)
    runs = mlflow.tracking.MlflowClient(later).search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(runs) == 5 and _runs(store) == []


def test_a_store_failing_mid_fit_costs_the_run_not_the_model(data, store):
    def delete_run(ctx):
        if ctx.epoch == 2:
            store.delete_run(ctx.callbacks["mlflow_logger"].run_id_)

    est = NeuralRegressor(
        max_epochs=4, random_state=0, callbacks=[LambdaCallback(on_epoch_end=delete_run)]
    )
    est.set_params(callbacks=[*est.callbacks, MlflowLogger()])
    with pytest.warns(RuntimeWarning, match="MlflowLogger stopped logging run"):
        est.fit(*data)
    assert est.n_iter_ == 4 and est.predict(data[0]).shape == (150,)


def test_only_finite_numbers_are_logged(data, store):
    def record(ctx):
        ctx.metrics.update(score=0.5, broken=float("nan"), flag=True, note="text")

    est = NeuralRegressor(max_epochs=2, callbacks=[LambdaCallback(on_epoch_end=record)])
    est.set_params(callbacks=[*est.callbacks, MlflowLogger()]).fit(*data)
    (run,) = _runs(store)
    assert {"score", "train_loss"} <= set(run.data.metrics)
    assert not {"broken", "flag", "note", "epoch"} & set(run.data.metrics)


def test_a_fit_failing_in_setup_opens_no_store(data, tmp_path):
    # setup only checks: the store (here a local SQLite file) is opened, and
    # an experiment created, once every callback's setup has passed.
    uri = f"sqlite:///{tmp_path / 'never.db'}"
    callbacks = [MlflowLogger(tracking_uri=uri, experiment="e"), EarlyStopping(monitor="nothing")]
    with pytest.raises(ValueError, match="nothing"):
        NeuralRegressor(max_epochs=1, callbacks=callbacks).fit(*data)
    assert not (tmp_path / "never.db").exists()
    NeuralRegressor(max_epochs=1, callbacks=callbacks[:1]).fit(*data)
    assert mlflow.tracking.MlflowClient(uri).get_experiment_by_name("e") is not None
