"""Fine-tuning with skcallback: load a pre-trained backbone, freeze it,
unfreeze it at a lower learning rate; and a moving average of the weights.

1. A small CNN learns the digits 0-4 (scikit-learn's 8x8 digits, no
   download); its weights are saved with ``torch.save``.
2. A new classifier of the digits 5-9, from 30 labelled images:
   ``LoadWeights`` puts the saved backbone into it (the head stays new),
   ``Freezer`` keeps the backbone fixed while the head learns, and
   unfreezes it at epoch 6, when ``optimizer__param_groups`` gives it a
   tenth of the head's learning rate.
3. ``WeightAveraging`` (an exponential moving average of the weights) on a
   noisy regression trained with a large learning rate: the averaged
   weights have a lower test error than the last ones.

Run with ``python examples/finetune.py``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split
from torch import nn

from skcallback import NeuralClassifier, NeuralRegressor
from skcallback.callbacks import Freezer, LoadWeights, WeightAveraging


class SmallCNN(nn.Module):
    """Two convolutions (``backbone.*``) and a linear ``head``, for 1x8x8
    images."""

    def __init__(self, input_shape, n_outputs):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(input_shape[0], 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 4x4
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 2x2
            nn.Flatten(),
        )
        self.head = nn.Linear(32 * 2 * 2, n_outputs)

    def forward(self, X):
        return self.head(self.backbone(X))


def digits():
    """The digits as images (n, 1, 8, 8) scaled to [0, 1], and their labels."""
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).reshape(-1, 1, 8, 8).astype(np.float32), y


def pretrain(X, y, path: Path) -> NeuralClassifier:
    """The CNN trained on the digits 0-4; its weights saved to ``path``."""
    model = NeuralClassifier(
        module=SmallCNN,
        lr=1e-2,
        batch_size=64,
        max_epochs=8,
        validation_fraction=None,
        random_state=0,
    ).fit(X, y)
    torch.save(model.module_.state_dict(), path)
    return model


def finetune(X, y, path: Path) -> NeuralClassifier:
    """A new classifier of ``y`` with the backbone of ``path``: frozen for
    5 epochs while the new head learns, then trained at a tenth of the
    head's learning rate."""
    return NeuralClassifier(
        module=SmallCNN,
        lr=1e-2,
        batch_size=10,
        max_epochs=15,
        validation_fraction=None,
        random_state=1,
        callbacks=[LoadWeights(path, patterns="backbone.*"), Freezer("backbone.*", unfreeze_at=6)],
        optimizer__param_groups=[("backbone.*", {"lr": 1e-3})],
    ).fit(X, y)


def noisy_regression(seed: int = 0):
    """y = sin(3 x0) + x1, with noise of standard deviation 1, split in two."""
    rng = np.random.RandomState(seed)
    X = rng.uniform(-1, 1, size=(1200, 2)).astype(np.float32)
    y = np.sin(3 * X[:, 0]) + X[:, 1]
    noisy = y + rng.normal(scale=1.0, size=len(y))
    X_train, X_test, y_train, _, _, clean_test = train_test_split(
        X, noisy, y, test_size=0.5, random_state=seed
    )
    return X_train, y_train, X_test, clean_test


def averaged(X, y, *, ema: bool) -> NeuralRegressor:
    """A regressor trained with a large learning rate, with or without an
    exponential moving average of its weights."""
    return NeuralRegressor(
        hidden_layer_sizes=(64, 64),
        lr=0.01,
        batch_size=16,
        max_epochs=20,
        validation_fraction=None,
        random_state=0,
        callbacks=[WeightAveraging("ema", decay=0.99)] if ema else [],
    ).fit(X, y)


def main(folder: str | None = None) -> dict:
    folder_path = Path(folder or tempfile.mkdtemp())
    X, y = digits()
    old, new = y < 5, y >= 5
    X_new_train, X_new_test, y_new_train, y_new_test = train_test_split(
        X[new], y[new], train_size=30, stratify=y[new], random_state=0
    )

    print("== Pre-training on the digits 0-4")
    path = folder_path / "digits-0-4.pt"
    pretrained = pretrain(X[old], y[old], path)
    print(f"saved {path.name}: {sorted(pretrained.module_.state_dict())}")

    print("== Fine-tuning on 30 images of the digits 5-9")
    tuned = finetune(X_new_train, y_new_train, path)
    accuracy = tuned.score(X_new_test, y_new_test)
    lrs = [group["lr"] for group in tuned.optimizer_.param_groups]
    print(f"learning rates (head, backbone): {lrs}; test accuracy: {accuracy:.3f}")

    print("== A moving average of the weights on a noisy regression")
    X_train, y_train, X_test, clean_test = noisy_regression()
    last, ema = averaged(X_train, y_train, ema=False), averaged(X_train, y_train, ema=True)
    last_error = mean_squared_error(clean_test, last.predict(X_test))
    ema_error = mean_squared_error(clean_test, ema.predict(X_test))
    print(f"test MSE, last weights:     {last_error:.4f}")
    print(f"test MSE, averaged weights: {ema_error:.4f}")
    return {
        "path": path,
        "pretrained": pretrained,
        "tuned": tuned,
        "accuracy": accuracy,
        "mse": (last_error, ema_error),
    }


if __name__ == "__main__":
    main()
