"""Scaling out on existing engines: joblib's threading backend, a Dask
cluster through joblib's dask backend, and dask-ml's Incremental through
partial_fit (optional extra: dask[distributed] and dask-ml)."""

import logging
import os
import threading
from pathlib import Path
from unittest import mock

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV, cross_validate

from skcallback import NeuralClassifier, NeuralRegressor
from skcallback.callbacks import EarlyStopping, LambdaCallback

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
psutil = pytest.importorskip("psutil")

QUIET = logging.ERROR
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _start_cluster(n_workers=2):
    # A thread variable set in this process overrides the nanny's default of
    # 1 for the workers (docs/scaling-out.md); start from dask's default.
    with mock.patch.dict(os.environ):
        for name in THREAD_VARIABLES:
            os.environ.pop(name, None)
        cluster = distributed.LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=QUIET,
        )
    return cluster, distributed.Client(cluster)


def _close(cluster, client):
    """Close the client and cluster, and check that every worker process
    (and anything else they started) has exited."""
    workers = [psutil.Process(pid) for pid in client.run(os.getpid).values()]
    spawned = [p for w in workers for p in w.children(recursive=True)]
    client.close()
    cluster.close()
    _, alive = psutil.wait_procs(workers + spawned, timeout=10)
    assert not alive, f"processes left behind: {alive}"


@pytest.fixture(scope="module")
def client():
    """One LocalCluster per module: 2 worker processes, 1 thread each."""
    cluster, client = _start_cluster()
    yield client
    _close(cluster, client)


def _search(n_jobs):
    """A seeded search over the learning rate and an EarlyStopping parameter
    that changes how many epochs a fit runs (min_delta=1e3 stops at epoch 2).
    Extra scorers report each fit's epochs, process and thread."""
    est = NeuralRegressor(
        hidden_layer_sizes=(8,),
        dropout=0.1,
        max_epochs=6,
        random_state=0,
        callbacks=[EarlyStopping(patience=1)],
    )
    grid = {"lr": [1e-2, 5e-2], "cb__early_stopping__min_delta": [0.0, 1e3]}
    scoring = {
        "r2": "r2",
        "epochs": lambda est, X, y: est.n_iter_,
        "pid": lambda est, X, y: os.getpid(),
        "main_thread": lambda est, X, y: threading.current_thread() is threading.main_thread(),
    }
    return GridSearchCV(est, grid, cv=2, scoring=scoring, refit="r2", n_jobs=n_jobs)


def _assert_same_search(search, reference, X):
    for key in ("r2", "epochs"):
        for name in (f"split0_test_{key}", f"split1_test_{key}", f"rank_test_{key}"):
            np.testing.assert_array_equal(search.cv_results_[name], reference.cv_results_[name])
    assert search.cv_results_["params"] == reference.cv_results_["params"]
    assert search.best_params_ == reference.best_params_
    np.testing.assert_array_equal(search.predict(X), reference.predict(X))
    for params, epochs in zip(search.cv_results_["params"], search.cv_results_["mean_test_epochs"]):
        stops_at_2 = params["cb__early_stopping__min_delta"] > 0  # the grid's value reached the fit
        assert (epochs == 2) == stops_at_2


def test_grid_search_on_a_dask_cluster_matches_the_sequential_search(client, regression_data):
    X, y = regression_data
    reference = _search(n_jobs=1).fit(X, y)
    with joblib.parallel_backend("dask"):
        search = _search(n_jobs=2).fit(X, y)
    _assert_same_search(search, reference, X)
    workers = set(client.run(os.getpid).values())
    fitted_in = {int(p) for s in (0, 1) for p in search.cv_results_[f"split{s}_test_pid"]}
    assert fitted_in <= workers and os.getpid() not in fitted_in
    best = search.best_estimator_
    assert list(best.callbacks_) == ["history", "early_stopping"]
    assert len(best.history_) == best.n_iter_
    assert 1 <= best.callbacks_["early_stopping"].best_epoch_ <= best.n_iter_


def test_joblib_threading_backend_matches_the_sequential_search(regression_data):
    X, y = regression_data
    reference = _search(n_jobs=1).fit(X, y)
    with joblib.parallel_backend("threading"):
        search = _search(n_jobs=2).fit(X, y)
    _assert_same_search(search, reference, X)
    assert not any(search.cv_results_["split0_test_main_thread"])  # in the pool's threads
    assert all(reference.cv_results_["split0_test_main_thread"])


def _thread_probe():
    """Records torch's thread count and the process id in each epoch."""

    def declare(plan):
        plan.declare_metric("torch_threads")
        plan.declare_metric("pid")

    def record(ctx):
        ctx.metrics["torch_threads"] = torch.get_num_threads()
        ctx.metrics["pid"] = os.getpid()

    return LambdaCallback(name="probe", declare=declare, on_epoch_end=record)


def _fits_on_workers(data):
    """Estimators fitted in the cluster's workers, returned to this process."""
    # threads=None: the count the worker process gives torch, not the estimator's choice
    est = NeuralRegressor(max_epochs=2, random_state=0, threads=None, callbacks=[_thread_probe()])
    with joblib.parallel_backend("dask"):
        return cross_validate(est, *data, cv=2, n_jobs=2, return_estimator=True)["estimator"]


def test_a_fit_in_a_dask_worker_uses_one_torch_thread(client, regression_data):
    fitted = _fits_on_workers(regression_data)
    workers = set(client.run(os.getpid).values())
    for est in fitted:
        assert list(est.callbacks_) == ["history", "probe"] and len(est.history_) == 2
        assert est.history_[-1]["pid"] in workers
        assert est.history_[-1]["torch_threads"] == 1
    # The nanny sets these before spawning each worker (dask's config).
    for name in THREAD_VARIABLES:
        assert set(client.run(lambda name=name: os.environ[name]).values()) == {"1"}


@pytest.mark.slow  # starts a second cluster
def test_the_workers_thread_count_follows_the_nanny_environment(client, regression_data):
    """The supported way to change it: distributed.nanny.pre-spawn-environ
    (torch reads MKL_NUM_THREADS over OMP_NUM_THREADS, so set both)."""
    dask = pytest.importorskip("dask")
    environ = {f"distributed.nanny.pre-spawn-environ.{name}": 2 for name in THREAD_VARIABLES}
    with dask.config.set(environ):
        cluster, other = _start_cluster(n_workers=1)
    try:
        # Not through joblib: with one worker thread in all, joblib's dask
        # backend runs the tasks in this process.
        est = NeuralRegressor(max_epochs=1, threads=None, callbacks=[_thread_probe()])
        fitted = other.submit(est.fit, *regression_data).result()
        assert fitted.history_[-1]["pid"] in other.run(os.getpid).values()
        assert fitted.history_[-1]["torch_threads"] == 2
    finally:
        _close(cluster, other)


def _blocks(X, y, chunk):
    return da.from_array(X, chunks=(chunk, X.shape[1])), da.from_array(y, chunks=chunk)


def _assert_same_predictions(inc, by_hand, X, dX, method="predict"):
    """The same model; dask predicts block by block, and float32 results can
    differ in the last bit with the number of rows in a batch, so compare
    block by block too."""
    np.testing.assert_array_equal(getattr(inc.estimator_, method)(X), getattr(by_hand, method)(X))
    blocks = [getattr(by_hand, method)(X[s : s + n]) for s, n in _starts(dX.chunks[0])]
    np.testing.assert_array_equal(getattr(inc, method)(dX).compute(), np.concatenate(blocks))


def _starts(chunks):
    return zip(np.cumsum((0, *chunks[:-1])), chunks)


def test_dask_ml_incremental_trains_a_regressor_block_by_block(client, regression_data):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X, y = regression_data
    est = NeuralRegressor(hidden_layer_sizes=(8,), lr=1e-2, batch_size=16, random_state=0)
    dX, dy = _blocks(X, y, 30)

    inc = wrappers.Incremental(est, shuffle_blocks=False).fit(dX, dy)
    by_hand = NeuralRegressor(**est.get_params())
    for start in range(0, 120, 30):
        by_hand.partial_fit(X[start : start + 30], y[start : start + 30])
        assert by_hand.n_iter_ == len(by_hand.history_) == start // 30 + 1
    assert inc.estimator_.n_iter_ == len(inc.estimator_.history_) == 4
    _assert_same_predictions(inc, by_hand, X, dX)

    inc.partial_fit(dX, dy)  # continues from the fitted state: 4 more epochs
    for start in range(0, 120, 30):
        by_hand.partial_fit(X[start : start + 30], y[start : start + 30])
    assert inc.estimator_.n_iter_ == len(inc.estimator_.history_) == 8
    _assert_same_predictions(inc, by_hand, X, dX)


def test_dask_ml_incremental_trains_a_classifier_with_classes(client, classification_data):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X, y = classification_data
    classes = np.unique(y)
    est = NeuralClassifier(hidden_layer_sizes=(8,), lr=1e-2, batch_size=16, random_state=0)
    dX, dy = _blocks(X, y, 50)

    inc = wrappers.Incremental(est, shuffle_blocks=False).fit(dX, dy, classes=classes)
    by_hand = NeuralClassifier(**est.get_params())
    for start in range(0, 150, 50):
        by_hand.partial_fit(X[start : start + 50], y[start : start + 50], classes=classes)
    assert inc.estimator_.n_iter_ == len(inc.estimator_.history_) == 3
    assert inc.estimator_.classes_.tolist() == ["cat", "dog", "emu"]
    _assert_same_predictions(inc, by_hand, X, dX)
    _assert_same_predictions(inc, by_hand, X, dX, method="predict_proba")


@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")
def test_docs_page_snippets_run():
    """Each block runs as a script's ``__main__`` (as in test_docs.py): the
    page's cluster code sits under ``if __name__ == "__main__":``, as dask's
    spawned workers require. The snippets close their clusters: no new
    process outlives them."""
    pytest.importorskip("dask_ml")
    page = Path(__file__).resolve().parents[1] / "docs" / "scaling-out.md"
    blocks = page.read_text().split("```python\n")[1:]
    assert blocks, "scaling-out.md has no python snippets"
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    for block in blocks:
        namespace = {"__name__": "__main__"}
        exec(compile(block.split("```")[0], str(page), "exec"), namespace)
    started = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    _, alive = psutil.wait_procs(started, timeout=10)
    assert not alive, f"processes left behind: {alive}"
