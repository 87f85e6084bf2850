"""luz's ``luz_callback()`` example, with skcallback.

The tutorial's callback prints ``Iteration n`` after every training batch and
a message when an epoch is done. Two things it explains are shown at work:

- **The context is shared.** luz's callbacks read the fields of one
  ``ctx`` and leave values for each other in ``ctx$buffers``; skcallback's
  ``ctx`` takes any attribute. Here a ``BatchAccuracy`` callback computes each
  batch's accuracy from ``ctx.y_pred`` (luz's ``ctx$pred``) and puts it on
  ``ctx``, where ``PrintCallback`` reads it.
- **Callbacks run in order of their weight.** luz calls a callback with
  ``weight = 10`` after one with ``weight = 1``, whatever order they were
  passed in; skcallback's ``order`` does the same. ``PrintCallback`` (order
  10) is passed first and ``BatchAccuracy`` (order 1) second, yet the
  accuracy is computed first, so each printed line shows the accuracy of its
  own batch. With the orders swapped, each line shows the previous batch's.
  ``EarlyStopping`` has order 1000, as luz gives early stopping
  ``weight = Inf``: it runs last, after the epoch's message.

Run ``python examples/luz_callbacks.py``.
"""

from __future__ import annotations

import argparse

import torch
from sklearn.datasets import load_iris

from skcallback import Callback, NeuralClassifier
from skcallback.callbacks import EarlyStopping


class BatchAccuracy(Callback):
    """Put the accuracy of each training batch on ``ctx.batch_accuracy``."""

    def on_fit_begin(self, ctx) -> None:
        self.values_: list[tuple[int, int, float]] = []  # (epoch, batch, accuracy)

    def on_train_batch_end(self, ctx) -> None:
        correct = ctx.y_pred.argmax(dim=1) == ctx.y_batch
        ctx.batch_accuracy = correct.to(torch.float32).mean().item()  # shared with later callbacks
        self.values_.append((ctx.epoch, ctx.batch, ctx.batch_accuracy))


class PrintCallback(Callback):
    """The tutorial's callback: ``Iteration n`` for every training batch, and
    ``message`` at the end of each epoch; it also prints the batch accuracy
    another callback left on the context."""

    def __init__(self, message: str = "Done!") -> None:
        self.message = message

    def on_fit_begin(self, ctx) -> None:
        self.seen_: list[tuple[int, int, float | None]] = []  # (epoch, batch, accuracy read)

    def on_train_batch_end(self, ctx) -> None:
        accuracy = getattr(ctx, "batch_accuracy", None)  # None until BatchAccuracy ran
        self.seen_.append((ctx.epoch, ctx.batch, accuracy))
        shown = "-" if accuracy is None else f"{accuracy:.2f}"
        print(f"Iteration {ctx.batch}  (batch accuracy {shown})")  # luz's ctx$iter

    def on_epoch_end(self, ctx) -> None:
        print(self.message)


def fit(
    print_order: float = 10, accuracy_order: float = 1, max_epochs: int = 3
) -> NeuralClassifier:
    """Fit with the callbacks passed as ``[PrintCallback, BatchAccuracy,
    EarlyStopping]``, given these orders (luz's weights)."""
    X, y = load_iris(return_X_y=True)
    printer, accuracy = PrintCallback(message="Done!"), BatchAccuracy()
    printer.order, accuracy.order = print_order, accuracy_order  # kept by clones
    model = NeuralClassifier(
        hidden_layer_sizes=(16,),
        lr=0.01,
        batch_size=50,
        max_epochs=max_epochs,
        callbacks=[printer, accuracy, EarlyStopping(patience=2)],
        random_state=0,
    )
    model.fit(X, y)
    print("callbacks in the order they run:", list(model.callbacks_))
    return model


def main(max_epochs: int = 3) -> dict:
    print("== PrintCallback has order 10, BatchAccuracy order 1")
    weighted = fit(print_order=10, accuracy_order=1, max_epochs=max_epochs)
    print("== swapped: PrintCallback runs first, and sees the previous batch's accuracy")
    swapped = fit(print_order=1, accuracy_order=10, max_epochs=1)
    return {"weighted": weighted, "swapped": swapped}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    epochs = parser.parse_args().epochs
    torch.set_num_threads(1)  # small networks: one thread is as fast, and shares the CPU well
    main(epochs)
