"""A grid search that a test kills with SIGKILL and runs again: prints
``ready`` when the first fit starts, and writes the search's results to
``out`` when done.

Usage: python grid_child.py FOLDER OUT
"""

import sys

import numpy as np
import torch
from sklearn.model_selection import GridSearchCV

from skcallback import NeuralClassifier
from skcallback.callbacks import Checkpoint, LambdaCallback

torch.set_num_threads(1)


def announce(ctx):
    print("ready", flush=True)


if __name__ == "__main__":
    folder, out = sys.argv[1:]
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 6)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    est = NeuralClassifier(
        hidden_layer_sizes=(16,),
        dropout=0.2,
        batch_size=16,
        max_epochs=15,
        random_state=0,
        callbacks=[
            LambdaCallback(name="announce", on_fit_begin=announce),
            Checkpoint(dirname=folder, every_n_steps=29, keep_max=2, resume=True),
        ],
    )
    search = GridSearchCV(est, {"lr": [0.003, 0.01], "batch_size": [16, 32]}, cv=2).fit(X, y)
    torch.save(
        {
            "scores": torch.tensor(search.cv_results_["mean_test_score"]),
            "weights": search.best_estimator_.module_.state_dict(),
        },
        out,
    )
