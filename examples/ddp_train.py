"""Train one model across two processes with ``strategy="ddp"``.

Launch it with torchrun (here two processes on this machine, gloo on the
CPU)::

    python -m torch.distributed.run --nproc_per_node=2 --standalone \\
        examples/ddp_train.py [FOLDER]

Every rank runs this same script and calls ``fit`` with the same
arguments. Each trains on its half of every batch of ``2 * batch_size``
rows; the gradients are summed across the ranks before each step, so both
end with the same model, the one a single process would train with
``batch_size=64``. EarlyStopping stops both ranks at the same epoch;
only rank 0 writes the checkpoints (``Checkpoint`` declares
``rank_zero_only``) and the fitted model, a plain single-process model
that predicts anywhere.

Kill the job (even with ``kill -9``) and run the same command again: the
fit resumes from its newest checkpoint and ends bit for bit where the
uninterrupted one would.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

import skcallback
from skcallback import NeuralRegressor
from skcallback.callbacks import Checkpoint, EarlyStopping


def load_data() -> tuple[np.ndarray, np.ndarray]:
    """A smooth regression problem: 1,000 rows of 8 features."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(1000, 8)).astype(np.float32)
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2] + 0.1 * rng.normal(size=1000)
    return X, y.astype(np.float32)


def make_model(folder: str | Path, **params) -> NeuralRegressor:
    """The model every rank fits: ``batch_size`` rows per rank and step."""
    settings = {
        "hidden_layer_sizes": (64, 64),
        "batch_size": 32,
        "lr": 1e-2,
        "max_epochs": 60,
        "random_state": 0,  # every rank must hold out and shuffle the same rows
        "callbacks": [
            EarlyStopping(patience=3),
            Checkpoint(dirname=folder, every_n_steps=50, keep_max=2, resume=True),
        ],
    }
    return NeuralRegressor(**{**settings, **params})


def main(folder: str | Path = "ddp-run") -> NeuralRegressor:
    torch.set_num_threads(1)  # one core per process
    est = make_model(folder, strategy="ddp").fit(*load_data())
    rank = int(os.environ.get("RANK", 0))
    print(
        f"rank {rank}: {est.n_iter_} epochs, {est.n_steps_} steps, stopped because "
        f"{est.stop_reason_!r}; best valid_loss {min(r['valid_loss'] for r in est.history_):.4f}",
        flush=True,
    )
    if rank == 0:
        skcallback.save(est, Path(folder) / "model.skc")
    return est


if __name__ == "__main__":
    main(*sys.argv[1:])
