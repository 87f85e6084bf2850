"""A fit that a test kills with SIGKILL and runs again: prints ``ready``
when it starts training, and writes its final state to ``out`` when done.

Usage: python resume_child.py FOLDER OUT
"""

import sys

import numpy as np
import torch

from skcallback import NeuralClassifier
from skcallback.callbacks import Checkpoint, EarlyStopping, LambdaCallback, LRScheduler

torch.set_num_threads(1)


def announce(ctx):
    print("ready", flush=True)


def make(folder):
    return NeuralClassifier(
        hidden_layer_sizes=(32,),
        dropout=0.3,
        batch_size=16,
        max_epochs=25,
        random_state=0,
        callbacks=[
            LambdaCallback(name="announce", on_fit_begin=announce),
            EarlyStopping(patience=30),
            LRScheduler("CosineAnnealingLR", T_max=25),
            Checkpoint(dirname=folder, every_n_steps=37, keep_max=3, resume=True),
        ],
    )


def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(600, 8)).astype(np.float32)
    return X, (X[:, 0] * X[:, 1] + X[:, 2] > 0).astype(int)


if __name__ == "__main__":
    folder, out = sys.argv[1:]
    est = make(folder).fit(*data())
    torch.save(
        {
            "weights": est.module_.state_dict(),
            "n_iter": est.n_iter_,
            "n_steps": est.n_steps_,
            "resumed_from": est.callbacks_.checkpoint.resumed_from_,
        },
        out,
    )
