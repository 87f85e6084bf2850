"""skcallback quick start: a PyTorch network as a scikit-learn estimator,
steered by callbacks.

1. A fit on the digits with three callbacks: validation accuracy each epoch,
   a learning rate that decays each epoch, and early stopping. ``verbose=1``
   prints a line per epoch (``*`` marks the best value so far) and why the
   fit stopped.
2. ``GridSearchCV`` tunes a callback's parameter, the decay of the
   learning rate (``cb__lr_scheduler__gamma``), by cross-validation.
3. What each callback learned is kept in ``best_estimator_.callbacks_``.
4. ``Checkpoint(resume=True)``: a fit that was killed is re-run, continues
   from its last checkpoint, and ends exactly where the uninterrupted fit
   ended.
5. ``skcallback.save`` writes the tuned model; a fresh Python process loads
   it and predicts the same probabilities.

Run with ``make demo`` (or ``python examples/quickstart.py``).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split

import skcallback
from skcallback import NeuralClassifier
from skcallback.callbacks import Checkpoint, EarlyStopping, EpochScoring, LRScheduler


def load_data():
    """The 8x8 digits, pixels scaled to [0, 1]; a quarter held out for testing."""
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, stratify=y, random_state=0)


def make_model(**params) -> NeuralClassifier:
    return NeuralClassifier(
        hidden_layer_sizes=(64,),
        lr=0.01,
        batch_size=64,
        max_epochs=30,
        callbacks=[
            EpochScoring("accuracy"),  # valid_accuracy, from the predictions already made
            LRScheduler("ExponentialLR", gamma=0.9),  # lr *= gamma after each epoch
            EarlyStopping(patience=3),  # on valid_loss; the best epoch's weights are kept
        ],
        random_state=0,
    ).set_params(**params)


def fit_with_table(data) -> NeuralClassifier:
    X_train, X_test, y_train, y_test = data
    model = make_model(verbose=1).fit(X_train, y_train)
    best_epoch = model.callbacks_.early_stopping.best_epoch_
    print(
        f"test accuracy {model.score(X_test, y_test):.3f} "
        f"(the weights of epoch {best_epoch}, restored by EarlyStopping)"
    )
    return model


def tune_decay(data, gammas=(0.5, 0.9), cv: int = 3) -> GridSearchCV:
    X_train, X_test, y_train, y_test = data
    search = GridSearchCV(make_model(), {"cb__lr_scheduler__gamma": list(gammas)}, cv=cv)
    search.fit(X_train, y_train)
    for gamma, score in zip(gammas, search.cv_results_["mean_test_score"], strict=True):
        print(f"  gamma={gamma}: cross-validated accuracy {score:.3f}")
    best = search.best_estimator_
    print(
        f"best: gamma={search.best_params_['cb__lr_scheduler__gamma']}, "
        f"test accuracy {best.score(X_test, y_test):.3f}"
    )
    return search


def show_callback_state(model: NeuralClassifier) -> None:
    print(f"callbacks_: {list(model.callbacks_)}")
    stopper = model.callbacks_.early_stopping
    print(
        f"early_stopping: best valid_loss {stopper.best_score_:.4f} at epoch "
        f"{stopper.best_epoch_}, stopped at epoch {stopper.stopped_epoch_}"
    )
    lrs = model.history_.get("lr")
    print(f"history lr: {lrs[0]:.4f} at epoch 1 -> {lrs[-1]:.5f} at epoch {len(lrs)}")


def resume_after_kill(data, folder: str, max_epochs: int = 8, killed_in: int = 5):
    """Fit with checkpoints; delete the files written from epoch ``killed_in``
    on, which is what a run killed during that epoch leaves behind; re-run
    the same script line. Returns the uninterrupted and the resumed model."""
    X_train, X_test, y_train, _ = data

    def run() -> NeuralClassifier:
        checkpoint = Checkpoint(dirname=folder, resume=True)
        model = make_model(max_epochs=max_epochs)
        return model.set_params(callbacks=[*model.callbacks, checkpoint]).fit(X_train, y_train)

    full = run()
    for path in full.callbacks_.checkpoint.saved_paths_:
        if int(Path(path).stem.split("-")[1]) >= killed_in:
            Path(path).unlink()
    resumed = run()
    same = np.array_equal(resumed.predict_proba(X_test), full.predict_proba(X_test))
    print(
        f"re-run resumed from {Path(resumed.callbacks_.checkpoint.resumed_from_).name}, "
        f"trained epochs {killed_in}-{resumed.n_iter_}; "
        f"predictions identical to the uninterrupted fit: {same}"
    )
    return full, resumed


def reload_elsewhere(model: NeuralClassifier, data, folder: str) -> bool:
    """Save with skcallback.save, load in a new Python process, compare."""
    X_test = data[1]
    path, inputs, outputs = (Path(folder) / name for name in ("model.skc", "X.npy", "p.npy"))
    skcallback.save(model, path)
    np.save(inputs, X_test)
    code = (
        "import sys, numpy, skcallback; "
        "model = skcallback.load(sys.argv[1]); "
        "numpy.save(sys.argv[3], model.predict_proba(numpy.load(sys.argv[2])))"
    )
    subprocess.run([sys.executable, "-c", code, path, inputs, outputs], check=True)
    same = np.array_equal(np.load(outputs), model.predict_proba(X_test))
    print(f"saved to {path.name}; loaded in a new process, identical probabilities: {same}")
    return same


def main(folder: str | None = None) -> dict:
    """Run the five steps, writing files under ``folder`` (a temporary
    folder by default); return what they produced."""
    data = load_data()
    print(f"1. fit on {len(data[0])} digits, verbose=1")
    model = fit_with_table(data)
    print("\n2. GridSearchCV over the learning-rate callback's gamma")
    search = tune_decay(data)
    print("\n3. callback state of best_estimator_")
    show_callback_state(search.best_estimator_)
    with tempfile.TemporaryDirectory() as scratch:
        folder = folder or scratch
        print("\n4. Checkpoint(resume=True): a fit killed in epoch 5, run again")
        full, resumed = resume_after_kill(data, folder)
        print("\n5. save, and load in another process")
        reloaded_same = reload_elsewhere(search.best_estimator_, data, folder)
    return {
        "data": data,
        "model": model,
        "search": search,
        "full": full,
        "resumed": resumed,
        "reloaded_same": reloaded_same,
    }


if __name__ == "__main__":
    torch.set_num_threads(1)  # small networks: one thread is as fast, and shares the CPU well
    main()
