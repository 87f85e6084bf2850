# ruff: noqa: NPY002  (Datasets draw augmentation from the global generators: the point here)
"""A fit on a Dataset that loads items lazily from files, with random
augmentation, in two worker processes, that a test kills with SIGKILL and
runs again: prints ``ready`` when it starts training, and writes its final
state to ``out`` when done.

Usage: python dataset_child.py FOLDER OUT  (FOLDER holds ``items/``, made by
``write_items``, and receives the checkpoints)
"""

import os
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from skcallback import NeuralClassifier
from skcallback.callbacks import Checkpoint, LambdaCallback

torch.set_num_threads(1)


class FileItems(Dataset):
    """One ``.npz`` file per item, read when the item is asked for, with
    noise drawn from NumPy's and torch's global generators (augmentation)."""

    def __init__(self, folder):
        self.files = sorted(Path(folder).glob("*.npz"))

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        with np.load(self.files[i]) as item:
            x, y = item["x"], int(item["y"])
        x = x + np.random.normal(0, 0.05, size=x.shape).astype(np.float32)
        return torch.from_numpy(x) + 0.01 * torch.randn(x.shape), y


def write_items(folder, n=240):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    for i in range(n):
        x = rng.normal(size=(1, 6, 6)).astype(np.float32)
        np.savez(folder / f"{i:04d}.npz", x=x, y=int(x.sum() > 0))


class SmallCNN(nn.Module):
    def __init__(self, n_outputs):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Dropout(0.2), nn.Flatten(), nn.Linear(64, n_outputs)
        )

    def forward(self, x):
        return self.net(x)


def announce(ctx):
    print("ready", flush=True)


def make(folder, **params):
    return NeuralClassifier(
        module=SmallCNN,
        batch_size=16,
        max_epochs=6,
        lr=1e-2,
        random_state=0,
        dataloader__num_workers=int(os.environ.get("WORKERS", 2)),
        dataloader__persistent_workers=os.environ.get("WORKERS") != "0",
        callbacks=[
            LambdaCallback(name="announce", on_fit_begin=announce),
            Checkpoint(dirname=Path(folder) / "checkpoints", every_n_steps=5, resume=True),
        ],
        **params,
    )


if __name__ == "__main__":
    folder, out = sys.argv[1:]
    est = make(folder).fit(FileItems(Path(folder).parent / "items"))
    torch.save(
        {
            "weights": est.module_.state_dict(),
            "n_iter": est.n_iter_,
            "n_steps": est.n_steps_,
            "resumed_from": est.callbacks_.checkpoint.resumed_from_,
        },
        out,
    )
