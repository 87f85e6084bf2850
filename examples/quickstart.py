"""skcallback quick start: train with callbacks, tune a callback parameter
with GridSearchCV, save and reload with joblib.

Run with ``make demo`` (or ``python examples/quickstart.py``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import joblib
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skcallback import Callback, NeuralClassifier
from skcallback.callbacks import EarlyStopping, EpochScoring


class MovingAverageLoss(Callback):
    """mlr3torch's custom logger: an exponential moving average of the
    training loss, kept as fitted state."""

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = alpha

    def on_train_batch_end(self, ctx) -> None:
        loss = ctx.loss.item()
        previous = getattr(self, "moving_loss_", loss)
        self.moving_loss_ = self.alpha * loss + (1 - self.alpha) * previous


def main(max_epochs: int = 60) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)

    model = make_pipeline(
        StandardScaler(),
        NeuralClassifier(
            hidden_layer_sizes=(32,),
            lr=1e-2,
            max_epochs=max_epochs,
            callbacks=[
                EpochScoring("accuracy"),  # valid_accuracy, from the predictions already made
                EarlyStopping(monitor="valid_loss"),
                MovingAverageLoss(alpha=0.2),
            ],
            random_state=0,
        ),
    )
    search = GridSearchCV(
        model,
        {"neuralclassifier__cb__early_stopping__patience": [1, 8]},
        cv=3,
        n_jobs=2,
    )
    search.fit(X_train, y_train)
    best = search.best_estimator_
    net = best[-1]

    print("grid search over a callback parameter (EarlyStopping patience):")
    for params, score in zip(
        search.cv_results_["params"], search.cv_results_["mean_test_score"], strict=True
    ):
        print(
            f"  patience={params['neuralclassifier__cb__early_stopping__patience']}"
            f" -> cross-validated accuracy {score:.3f}"
        )
    stopper = net.callbacks_.early_stopping
    print(f"test accuracy:        {best.score(X_test, y_test):.3f}")
    print(f"epochs run:           {net.n_iter_} of {net.max_epochs}")
    print(
        f"best epoch:           {stopper.best_epoch_} (valid_loss {stopper.best_score_:.4f}; "
        "its weights were restored)"
    )
    print(f"moving average loss:  {net.callbacks_.moving_average_loss.moving_loss_:.4f}")
    print("last epochs of the history:")
    for record in net.history_[-3:]:
        print(
            f"  epoch {record['epoch']:3d}  train_loss {record['train_loss']:.4f}  "
            f"valid_loss {record['valid_loss']:.4f}  valid_accuracy {record['valid_accuracy']:.3f}"
        )

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.joblib"
        joblib.dump(best, path)
        reloaded = joblib.load(path)
    same = (reloaded.predict_proba(X_test) == best.predict_proba(X_test)).all()
    print(f"saved and reloaded with joblib; identical predictions: {bool(same)}")
    print(
        f"callback state after reload: {reloaded[-1].callbacks_.early_stopping.state_dict().keys()}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=60, help="maximum epochs per fit")
    main(max_epochs=parser.parse_args().epochs)
