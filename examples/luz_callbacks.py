"""luz's ``luz_callback()`` example, with skcallback.

A callback that prints ``Iteration n`` for every training batch and a message
when an epoch is done, and ordering with ``order`` (luz's ``weight``): the
callback with the larger order runs later.
"""

from __future__ import annotations

import argparse

from sklearn.datasets import load_iris

from skcallback import Callback, NeuralClassifier


class PrintCallback(Callback):
    """Prints the batch index and, at the end of each epoch, a message."""

    def __init__(self, message: str = "Done!") -> None:
        self.message = message

    def on_train_batch_end(self, ctx) -> None:
        print(f"Iteration {ctx.batch}")

    def on_epoch_end(self, ctx) -> None:
        print(self.message)


class Late(Callback):
    order = 10  # runs after the default order 0, like luz's weight = 10

    def on_epoch_end(self, ctx) -> None:
        print(f"(order {self.order}) epoch {ctx.epoch} train_loss {ctx.metrics['train_loss']:.3f}")


def main(max_epochs: int = 2) -> None:
    X, y = load_iris(return_X_y=True)
    model = NeuralClassifier(
        batch_size=50,
        max_epochs=max_epochs,
        validation_fraction=None,
        callbacks=[Late(), PrintCallback(message="Done!")],
        random_state=0,
    )
    model.fit(X, y)
    print("dispatch order:", list(model.callbacks_))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=2)
    main(parser.parse_args().epochs)
