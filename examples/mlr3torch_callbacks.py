"""mlr3torch's "Custom Callbacks" vignette, with skcallback.

The vignette's custom logger keeps an exponential moving average of the
training loss, with smoothing parameter ``alpha``, prints it at the end of
each epoch's training (mlr3torch's ``on_before_valid``, here ``on_train_end``:
``on_valid_begin`` would fire only in epochs that validate), and exposes
it through ``state_dict()``. Its ``alpha`` is a hyperparameter of the
learner, ``cb.custom_logger.alpha``; here it is ``cb__custom_logger__alpha``,
which ``GridSearchCV`` can tune.

- ``train_learner`` is the vignette: iris, 5 epochs, batches of 64, 20
  neurons, ``alpha=0.05``; ``model.callbacks_.custom_logger.state_dict()``
  is mlr3torch's ``mlp$model$callbacks$custom_logger``.
- ``round_trip`` saves the learner with ``skcallback.save`` and pickles
  it: the logger's state, a bare number, comes back with the model.
- ``tune_alpha`` tunes ``alpha`` by cross-validation. A logger's parameter
  changes the model only if something acts on what it logs, so the logger
  also records the moving average in the history as ``moving_loss`` and
  ``EarlyStopping`` watches it: a large ``alpha`` follows every noisy batch
  and stops training early, a small one smooths the noise out. The search
  picks the ``alpha`` with the best cross-validated accuracy, and the best
  model's logger holds its final moving average.

(The vignette's ``on_batch_end`` tests ``self$moving_training_loss``, a
field that is never set, so its moving average is always the last loss; the
port computes the average it describes.)

Run ``python examples/mlr3torch_callbacks.py``.
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
from pathlib import Path

import torch
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV

import skcallback
from skcallback import Callback, NeuralClassifier
from skcallback.callbacks import EarlyStopping


class CustomLogger(Callback):
    """Exponential moving average of the training loss (mlr3torch's
    ``custom_logger``); ``verbose=False`` silences it, e.g. in a search."""

    def __init__(self, alpha: float = 0.1, verbose: bool = True) -> None:
        self.alpha = alpha
        self.verbose = verbose

    def declare(self, plan) -> None:
        plan.declare_metric("moving_loss", lower_is_better=True)  # so it can be watched

    def on_train_batch_end(self, ctx) -> None:  # mlr3torch's on_batch_end
        loss = ctx.loss.item()  # ctx$last_loss
        if getattr(self, "moving_loss", None) is None:  # each fit starts on a fresh copy
            self.moving_loss = loss
        else:
            self.moving_loss = self.alpha * loss + (1 - self.alpha) * self.moving_loss

    def on_train_end(self, ctx) -> None:  # mlr3torch's on_before_valid, called every epoch
        if self.verbose:
            print(f"Epoch {ctx.epoch}: {self.moving_loss:.2f}")

    def on_epoch_end(self, ctx) -> None:
        ctx.metrics["moving_loss"] = self.moving_loss  # into the history

    # As in the vignette: the state is the moving average. (Attributes ending
    # in "_" would be saved without these two methods.)
    def state_dict(self) -> float | None:
        return getattr(self, "moving_loss", None)

    def load_state_dict(self, state_dict: float | None) -> None:
        self.moving_loss = state_dict


def train_learner(alpha: float = 0.05, max_epochs: int = 5) -> NeuralClassifier:
    """``lrn("classif.mlp", callbacks = custom_logger, cb.custom_logger.alpha
    = 0.05, epochs = 5, batch_size = 64, neurons = 20)$train(tsk("iris"))``."""
    X, y = load_iris(return_X_y=True)
    mlp = NeuralClassifier(
        callbacks=[CustomLogger()],
        cb__custom_logger__alpha=alpha,
        max_epochs=max_epochs,
        batch_size=64,
        hidden_layer_sizes=(20,),
        validation_fraction=None,  # mlr3torch validates only when asked to
        random_state=0,
    )
    mlp.fit(X, y)
    print("mlp.callbacks_.custom_logger.state_dict():", mlp.callbacks_.custom_logger.state_dict())
    return mlp


def round_trip(learner: NeuralClassifier, folder: str) -> dict:
    """The learner through ``skcallback.save``/``load`` and through pickle:
    the logger's state (whatever ``state_dict()`` returns, here a number)
    comes back with it. Loading a file imports the logger's class only when
    ``trusted`` names it."""
    path = skcallback.save(learner, Path(folder) / "mlp.skc")
    from_file = skcallback.load(path, trusted=[f"{CustomLogger.__module__}.CustomLogger"])
    from_pickle = pickle.loads(pickle.dumps(learner))
    for how, model in (("skcallback.load", from_file), ("pickle", from_pickle)):
        print(f"after {how}: state_dict() = {model.callbacks_.custom_logger.state_dict()}")
    return {"file": from_file, "pickle": from_pickle}


def epochs_run(estimator, X, y) -> int:
    """A "score" that reports how many epochs a fit ran."""
    return estimator.n_iter_


def tune_alpha(alphas=(0.05, 0.3, 0.9), max_epochs: int = 300) -> GridSearchCV:
    """Tune ``alpha`` with ``EarlyStopping`` watching the moving average."""
    X, y = load_iris(return_X_y=True)
    mlp = NeuralClassifier(
        callbacks=[CustomLogger(verbose=False), EarlyStopping(monitor="moving_loss", patience=3)],
        max_epochs=max_epochs,
        batch_size=64,
        hidden_layer_sizes=(20,),
        lr=3e-3,
        random_state=0,
    )
    search = GridSearchCV(
        mlp,
        {"cb__custom_logger__alpha": list(alphas)},
        scoring={"accuracy": "accuracy", "epochs": epochs_run},
        refit="accuracy",
        cv=3,
    )
    search.fit(X, y)
    results = search.cv_results_
    for params, score, epochs in zip(
        results["params"],
        results["mean_test_accuracy"],
        results["mean_test_epochs"],
        strict=True,
    ):
        print(
            f"  alpha={params['cb__custom_logger__alpha']:<5} accuracy {score:.3f}, "
            f"stopped after {epochs:.0f} epochs on average"
        )
    best = search.best_estimator_
    print(
        f"best alpha {search.best_params_['cb__custom_logger__alpha']}: refit stopped after "
        f"{best.n_iter_} epochs; best_estimator_.callbacks_.custom_logger.state_dict() = "
        f"{best.callbacks_.custom_logger.state_dict():.4f}"
    )
    return search


def main(max_epochs: int = 5) -> dict:
    print("== the vignette: alpha = 0.05, 5 epochs")
    learner = train_learner(max_epochs=max_epochs)
    print("== saved and loaded again")
    with tempfile.TemporaryDirectory() as folder:
        reloaded = round_trip(learner, folder)
    print("== tuning alpha (3-fold cross-validated accuracy), EarlyStopping on moving_loss")
    search = tune_alpha()
    return {"learner": learner, "reloaded": reloaded, "search": search}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=5)
    epochs = parser.parse_args().epochs
    torch.set_num_threads(1)  # small networks: one thread is as fast, and shares the CPU well
    # skcallback.save refuses classes of __main__ (no other process could
    # import them): run main() from this file imported as a module, so that
    # CustomLogger is saved as mlr3torch_callbacks.CustomLogger.
    import mlr3torch_callbacks

    mlr3torch_callbacks.main(epochs)
