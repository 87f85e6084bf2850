"""mlr3torch's "Custom Callbacks" vignette, with skcallback.

A custom logger keeps an exponential moving average of the training loss and
prints it each epoch. Its smoothing parameter is set on the estimator as
``cb__custom_logger__alpha=0.05`` (mlr3torch's ``cb.custom_logger.alpha``),
and its state is read from the fitted estimator through ``state_dict()``.
"""

from __future__ import annotations

import argparse

from sklearn.datasets import load_iris

from skcallback import Callback, NeuralClassifier


class CustomLogger(Callback):
    """Moving average of the training loss."""

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = alpha

    def on_train_batch_end(self, ctx) -> None:
        loss = ctx.loss.item()
        if getattr(self, "moving_loss", None) is None:
            self.moving_loss = loss
        else:
            self.moving_loss = self.alpha * loss + (1 - self.alpha) * self.moving_loss

    def on_valid_begin(self, ctx) -> None:
        print(f"Epoch {ctx.epoch}: {self.moving_loss:.2f}")

    # Only needed to keep a value that does not end in "_" (mlr3torch style).
    def state_dict(self) -> float | None:
        return getattr(self, "moving_loss", None)

    def load_state_dict(self, state: float | None) -> None:
        self.moving_loss = state


def main(max_epochs: int = 5) -> None:
    X, y = load_iris(return_X_y=True)
    mlp = NeuralClassifier(
        callbacks=[CustomLogger()],
        cb__custom_logger__alpha=0.05,
        max_epochs=max_epochs,
        batch_size=64,
        hidden_layer_sizes=(20,),
        random_state=0,
    )
    mlp.fit(X, y)
    print("mlp.callbacks_.custom_logger.state_dict():", mlp.callbacks_.custom_logger.state_dict())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=5)
    main(parser.parse_args().epochs)
