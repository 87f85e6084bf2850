"""A fit on images or on a dict of arrays, with dropout and checkpoints
every few steps, that a test kills with SIGKILL and runs again: prints
``ready`` when it starts training, and writes its final state to ``out``
when done.

Usage: python inputs_child.py KIND FOLDER OUT  (KIND: images or dict)
"""

import sys

import numpy as np
import torch
from torch import nn

from skcallback import NeuralClassifier, SliceDict
from skcallback.callbacks import Checkpoint, LambdaCallback

torch.set_num_threads(1)


class ImageNet(nn.Module):
    def __init__(self, n_outputs):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Dropout(0.3), nn.Flatten(), nn.Linear(128, n_outputs)
        )

    def forward(self, x):
        return self.net(x)


class TwoInputs(nn.Module):
    def __init__(self, n_outputs):
        super().__init__()
        self.embedding = nn.Embedding(7, 4)
        self.net = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Dropout(0.3))
        self.out = nn.Linear(32, n_outputs)

    def forward(self, numbers, code):
        return self.out(self.net(torch.cat([numbers, self.embedding(code)], dim=1)))


def data(kind):
    rng = np.random.RandomState(0)
    images = rng.normal(size=(600, 1, 6, 6)).astype(np.float32)
    y = (images[:, 0, :3].sum((1, 2)) > 0).astype(int)
    if kind == "images":
        return images, y
    numbers = images[:, 0, 0, :] + y[:, None]
    return SliceDict(numbers=numbers, code=y * 3 + rng.randint(3, size=600)), y


def make(kind, folder):
    return NeuralClassifier(
        module=ImageNet if kind == "images" else TwoInputs,
        batch_size=16,
        max_epochs=12,
        random_state=0,
        callbacks=[
            LambdaCallback(name="announce", on_fit_begin=lambda ctx: print("ready", flush=True)),
            Checkpoint(dirname=folder, every_n_steps=7, keep_max=2, resume=True),
        ],
    )


if __name__ == "__main__":
    kind, folder, out = sys.argv[1:]
    est = make(kind, folder).fit(*data(kind))
    torch.save(
        {
            "weights": est.module_.state_dict(),
            "n_steps": est.n_steps_,
            "resumed_from": est.callbacks_.checkpoint.resumed_from_,
        },
        out,
    )
