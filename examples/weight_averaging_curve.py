"""The test error of the last weights and of their moving average, epoch by
epoch, on a noisy regression trained with a large learning rate.

1. Both fits validate on the same held-out rows, given as ``X_val`` and
   ``y_val``; ``WeightAveraging(use_for_validation=True)`` validates with
   the averaged weights, so ``history_`` holds the averaged model's error.
2. The last weights jump around with the noise of each batch; their
   exponential moving average is steadier and lower.

Run ``python examples/weight_averaging_curve.py`` to redraw
``docs/img/weight_averaging.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from skcallback import NeuralRegressor
from skcallback.callbacks import WeightAveraging

IMAGE = Path(__file__).resolve().parents[1] / "docs" / "img" / "weight_averaging.png"


def noisy_regression(seed: int = 0):
    """y = sin(3 x0) + x1 with noise of standard deviation 1 (training) and
    without (the held-out rows: the error of the function learned)."""
    rng = np.random.RandomState(seed)
    X = rng.uniform(-1, 1, size=(1200, 2)).astype(np.float32)
    clean = np.sin(3 * X[:, 0]) + X[:, 1]
    X_train, X_val, y_train, _, _, clean_val = train_test_split(
        X, clean + rng.normal(scale=1.0, size=len(clean)), clean, test_size=0.5, random_state=seed
    )
    return X_train, y_train, X_val, clean_val


def curve(data, *, averaged: bool) -> list[float]:
    """The validation loss (mean squared error) after each epoch."""
    X_train, y_train, X_val, clean_val = data
    callbacks = [WeightAveraging("ema", decay=0.99, use_for_validation=True)] if averaged else []
    model = NeuralRegressor(
        hidden_layer_sizes=(64, 64),
        lr=0.01,
        batch_size=16,
        max_epochs=20,
        random_state=0,
        callbacks=callbacks,
    ).fit(X_train, y_train, X_val=X_val, y_val=clean_val)
    return model.history_.get("valid_loss")


def main(image: str | Path | None = None) -> dict:
    data = noisy_regression()
    curves = {"last weights": curve(data, averaged=False), "EMA": curve(data, averaged=True)}
    for name, values in curves.items():
        print(f"{name:>12}: test MSE {values[-1]:.4f} after {len(values)} epochs")
    if image is not None:
        draw(curves, image)
    return curves


def draw(curves: dict, image: str | Path) -> None:
    """The two curves as a PNG (matplotlib without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(7, 4))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test MSE (noise-free targets)")
    ax.set_title("WeightAveraging('ema', decay=0.99) on a noisy regression")
    ax.legend()
    figure.tight_layout()
    figure.savefig(image, dpi=80)
    plt.close(figure)


if __name__ == "__main__":
    main(IMAGE)
