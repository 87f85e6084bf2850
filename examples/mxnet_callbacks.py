"""MXNet's R "Callback Function" tutorial, with skcallback.

The tutorial fits a linear regression (one dense unit) on Boston housing,
trains on every third row and evaluates on the others, in batches of 20 with
SGD and momentum 0.9, and reports the RMSE. The diabetes data (unscaled, like
Boston's) stand in for Boston, which scikit-learn no longer ships; the
learning rate is 1e-6 (2e-6 there).

- ``eval.data=list(data=test.x, label=test.y)`` is
  ``fit(X_train, y_train, X_val=X_eval, y_val=y_eval)``: the same fixed split.
- ``eval.metric=mx.metric.rmse`` is the ``rmse`` callback below, which adds
  ``train_rmse`` and ``valid_rmse`` to each epoch and prints them as MXNet
  does (``[1] Train-rmse=...``).
- ``epoch.end.callback=mx.callback.save.checkpoint("boston")`` is
  ``Checkpoint(prefix="diabetes")``: one file per epoch. MXNet prints
  ``Model checkpoint saved to ...`` at each save; skcallback prints nothing
  and lists the files in ``saved_paths_``.
- ``batch.end.callback=mx.callback.log.train.metric(5)`` is
  ``log_train_metric(5)``, MXNet's function ported: ``Batch [5] Train-rmse=``.
- ``mx.metric.logger`` is ``MetricLogger``: ``train_`` and ``valid_`` hold
  one value per epoch (``logger$train`` and ``logger$eval``).
- ``mx.callback.early.stop(10)`` is ``early_stop(84)``: a function that
  returns False, which stops training, once the validation RMSE is below
  the threshold. Its bookkeeping (best score and epoch, epochs without
  improvement for ``bad_steps``) lives in the fit's ``state`` dict, so each
  fit starts afresh, a checkpoint saves it, and the fitted model, functions
  and all, goes through ``joblib``.

Run ``python examples/mxnet_callbacks.py``.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import joblib
import numpy as np
import torch
from sklearn.datasets import load_diabetes

from skcallback import NeuralRegressor
from skcallback.callbacks import Checkpoint, LambdaCallback, MetricLogger


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``train.ind = seq(1, 506, 3)``: rows 1, 4, 7, ... (R counts from 1)
    train, the others evaluate."""
    X, y = load_diabetes(return_X_y=True, scaled=False)
    train = np.arange(0, len(y), 3)
    test = np.setdiff1d(np.arange(len(y)), train)
    return X[train], y[train], X[test], y[test]


def rmse_callback() -> LambdaCallback:
    """``eval.metric = mx.metric.rmse``: the root of each phase's mean
    squared error, recorded and printed at the end of the phase."""

    def declare(plan) -> None:  # announce the metrics, so others may watch them
        for phase in ("train", "valid"):
            plan.declare_metric(f"{phase}_rmse", lower_is_better=True)

    def record(ctx) -> None:
        value = math.sqrt(ctx.metrics[f"{ctx.phase}_loss"])
        ctx.metrics[f"{ctx.phase}_rmse"] = value
        print(f"[{ctx.epoch}] {'Train' if ctx.phase == 'train' else 'Validation'}-rmse={value}")

    return LambdaCallback(name="rmse", declare=declare, on_train_end=record, on_valid_end=record)


def log_train_metric(period: int):
    """``mx.callback.log.train.metric(period)``: every ``period`` batches,
    the training RMSE of the epoch so far.

    MXNet's ``function(iteration, nbatch, env)`` is ``f(ctx, state)``:
    ``ctx.epoch`` is ``iteration``, ``ctx.batch`` is ``nbatch``, and the
    running sums MXNet keeps in ``env$metric`` go in ``state``.
    """

    def on_train_batch_end(ctx, state) -> None:
        if ctx.batch == 1:
            state["sum"], state["count"] = 0.0, 0
        n = len(ctx.y_batch)
        state["sum"] += ctx.loss.item() * n
        state["count"] += n
        if ctx.batch % period == 0:
            print(f"Batch [{ctx.batch}] Train-rmse={math.sqrt(state['sum'] / state['count'])}")

    return on_train_batch_end


def early_stop(eval_metric: float | None = None, bad_steps: int | None = None):
    """``mx.callback.early.stop(eval.metric, bad.steps)``: returning False
    stops training, once the validation RMSE is below ``eval_metric`` or
    after ``bad_steps`` epochs without improvement."""

    def on_epoch_end(ctx, state) -> bool:
        value = ctx.metrics["valid_rmse"]
        if value < state.get("best_score", math.inf):
            state["best_score"], state["best_iteration"], state["bad"] = value, ctx.epoch, 0
        else:
            state["bad"] += 1
        if eval_metric is not None and value < eval_metric:
            return False
        return bad_steps is None or state["bad"] < bad_steps

    return on_epoch_end


def train(data, callbacks: list, max_epochs: int = 10) -> NeuralRegressor:
    """``mx.model.FeedForward.create(lro, X=train.x, y=train.y,
    eval.data=..., num.round=10, array.batch.size=20, learning.rate=2e-6,
    momentum=0.9, eval.metric=mx.metric.rmse, ...)``."""
    X_train, y_train, X_eval, y_eval = data
    model = NeuralRegressor(
        hidden_layer_sizes=(),  # fc1 (num_hidden=1) + LinearRegressionOutput
        optimizer="sgd",
        optimizer__momentum=0.9,
        lr=1e-6,
        batch_size=20,
        max_epochs=max_epochs,
        callbacks=[rmse_callback(), *callbacks],
        random_state=0,  # mx.set.seed(0)
    )
    return model.fit(X_train, y_train, X_val=X_eval, y_val=y_eval)


def checkpoints_and_logs(folder: str, max_epochs: int = 10) -> NeuralRegressor:
    """The tutorial's built-in callbacks, in one training."""
    model = train(
        load_data(),
        [
            Checkpoint(dirname=folder, prefix="diabetes"),
            LambdaCallback(name="log_train_metric", on_train_batch_end=log_train_metric(5)),
            MetricLogger(train="train_rmse", valid="valid_rmse"),
        ],
        max_epochs,
    )
    names = [Path(p).name for p in model.callbacks_.checkpoint.saved_paths_]
    print(f"checkpoint files: {names}")
    logger = model.callbacks_.metric_logger
    print("logger$train:", [round(v, 2) for v in logger.train_])
    print("logger$eval: ", [round(v, 2) for v in logger.valid_])
    return model


def stop_early(threshold: float = 84.0, max_epochs: int = 10) -> NeuralRegressor:
    """``epoch.end.callback = mx.callback.early.stop(10)``."""
    stopper = LambdaCallback(name="early_stop", on_epoch_end=early_stop(eval_metric=threshold))
    model = train(load_data(), [stopper], max_epochs)
    print(
        f"stopped after epoch {model.n_iter_} of {max_epochs} "
        f"({model.stop_reason_}); Validation-rmse < {threshold}"
    )
    print(f"its state: {model.callbacks_.early_stop.state_}")
    return model


def joblib_round_trip(model: NeuralRegressor, folder: str) -> NeuralRegressor:
    """Dump and load the fitted model: the callback functions go with it."""
    path = Path(folder) / "model.joblib"
    joblib.dump(model, path)
    loaded = joblib.load(path)
    X_eval = load_data()[2]
    same = np.array_equal(loaded.predict(X_eval), model.predict(X_eval))
    print(
        f"joblib round trip: identical predictions {same}, "
        f"early_stop state {loaded.callbacks_.early_stop.state_}"
    )
    return loaded


def main(max_epochs: int = 10, folder: str | None = None) -> dict:
    """Run the tutorial, writing files under ``folder`` (a temporary folder
    by default); return the models."""
    X_train, _, X_eval, _ = load_data()
    print(f"train on {len(X_train)} rows, evaluate on {len(X_eval)}")
    with tempfile.TemporaryDirectory() as scratch:
        folder = folder or scratch
        print("== save.checkpoint, log.train.metric(5) and a metric logger")
        logged = checkpoints_and_logs(folder, max_epochs)
        print("== early.stop: stop once Validation-rmse < 84")
        stopped = stop_early(max_epochs=max_epochs)
        loaded = joblib_round_trip(stopped, folder)
    return {"logged": logged, "stopped": stopped, "loaded": loaded}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=10, help="num.round")
    epochs = parser.parse_args().epochs
    torch.set_num_threads(1)  # small networks: one thread is as fast, and shares the CPU well
    main(epochs)
