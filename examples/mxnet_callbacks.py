"""MXNet's R "Callback Function" tutorial, with skcallback.

Linear regression (no hidden layer) on the diabetes data instead of Boston
housing. MXNet's ``batch.end.callback = mx.callback.log.train.metric(5)``
becomes ``MetricLogger(every=5)``, ``mx.callback.save.checkpoint("boston")``
becomes ``Checkpoint(prefix="diabetes")``, the ``mx.metric.logger`` is read
afterwards, and ``mx.callback.early.stop`` is a function that returns False
once the validation RMSE passes a threshold.
"""

from __future__ import annotations

import argparse
import math
import tempfile

from sklearn.datasets import load_diabetes
from sklearn.preprocessing import StandardScaler

from skcallback import NeuralRegressor
from skcallback.callbacks import Checkpoint, LambdaCallback, MetricLogger


def add_rmse(ctx) -> None:
    """MXNet's eval.metric = mx.metric.rmse: the root of the mean squared loss."""
    phase = ctx.phase
    ctx.metrics[f"{phase}_rmse"] = math.sqrt(ctx.metrics[f"{phase}_loss"])


def declare_rmse(plan) -> None:
    """Announce the metrics add_rmse records, so other callbacks may use them."""
    for phase in ("train", "valid"):
        plan.declare_metric(f"{phase}_rmse", lower_is_better=True)


def early_stop(threshold: float):
    """mx.callback.early.stop: returning False stops training."""

    def callback(ctx) -> bool:
        return ctx.metrics["valid_rmse"] >= threshold

    return callback


def main(max_epochs: int = 30) -> None:
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    with tempfile.TemporaryDirectory() as folder:
        model = NeuralRegressor(
            hidden_layer_sizes=(),  # linear regression, as fc1 + LinearRegressionOutput
            optimizer="sgd",
            optimizer__momentum=0.9,
            lr=0.05,
            batch_size=20,
            max_epochs=max_epochs,
            callbacks=[
                LambdaCallback(
                    name="rmse", setup=declare_rmse, on_train_end=add_rmse, on_valid_end=add_rmse
                ),
                MetricLogger(every=5, train="train_rmse", valid="valid_rmse"),
                Checkpoint(dirname=folder, prefix="diabetes"),
                LambdaCallback(name="early_stop", on_epoch_end=early_stop(58.0)),
            ],
            random_state=0,
        )
        model.fit(X, y)
        checkpoint = model.callbacks_.checkpoint
        print(f"checkpoints saved: {[p.rsplit('/', 1)[1] for p in checkpoint.saved_paths_]}")
    logger = model.callbacks_.metric_logger
    print("logger train:", [round(v, 2) for v in logger.train_])
    print("logger valid:", [round(v, 2) for v in logger.valid_])
    stopped = model.n_iter_ < model.max_epochs
    print(
        f"{'stopped early' if stopped else 'ran all'} after {model.n_iter_} epochs "
        f"(last valid RMSE {logger.valid_[-1]:.2f}, threshold 58)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=30)
    main(parser.parse_args().epochs)
