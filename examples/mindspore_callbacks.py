"""MindSpore's "Callback Mechanism" tutorial, with skcallback.

The digits data instead of MNIST. ``ModelCheckpoint`` with
``CheckpointConfig(save_checkpoint_steps, keep_checkpoint_max)`` becomes
``Checkpoint(every_n_steps=..., keep_max=...)``; ``LossMonitor`` and
``TimeMonitor`` are built in; and the tutorial's two custom callbacks are
written against ``ctx`` (MindSpore's ``RunContext.original_args()``): one stops
after a time budget using a value it sets on ``ctx`` at the beginning, the
other saves a checkpoint whenever the batch loss drops below a threshold.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sklearn.datasets import load_digits

from skcallback import Callback, NeuralClassifier
from skcallback.callbacks import Checkpoint, LossMonitor, TimeMonitor, save_checkpoint


class StopTimeMonitor(Callback):
    """Stop once ``run_time`` seconds have passed (checked after each step)."""

    def __init__(self, run_time: float = 4.0) -> None:
        self.run_time = run_time

    def on_fit_begin(self, ctx) -> None:
        ctx.init_time = time.time()  # a value of our own, shared through ctx
        print(f"Begin training, time is: {ctx.init_time}")

    def on_train_batch_end(self, ctx) -> None:
        now = time.time()
        if now - ctx.init_time > self.run_time:
            print(
                f"End training, time: {now}, epoch: {ctx.epoch}, step: {ctx.step}, "
                f"loss: {ctx.loss.item():.5f}"
            )
            ctx.request_stop("time budget spent")


class SaveCkptMonitor(Callback):
    """Save a checkpoint whenever the batch loss is below ``loss``."""

    def __init__(self, loss: float = 0.05, directory: str = "checkpoint") -> None:
        self.loss = loss
        self.directory = directory

    def on_train_batch_end(self, ctx) -> None:
        current = ctx.loss.item()
        if current < self.loss:
            path = Path(self.directory) / f"{ctx.epoch}_{ctx.step}.pt"
            save_checkpoint(ctx, path)
            self.saved_ = [*getattr(self, "saved_", []), str(path)]
            print(f"Saved checkpoint, loss:{current:8.7f}, current step num:{ctx.step:4}.")


def main(max_epochs: int = 5) -> None:
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    with tempfile.TemporaryDirectory() as folder:
        model = NeuralClassifier(
            hidden_layer_sizes=(512, 512),
            optimizer="sgd",
            lr=0.1,
            batch_size=64,
            max_epochs=max_epochs,
            validation_fraction=None,
            callbacks=[
                Checkpoint(dirname=folder, prefix="digits", every_n_steps=25, keep_max=3),
                LossMonitor(every=10),
                TimeMonitor(),
                StopTimeMonitor(run_time=30.0),
                SaveCkptMonitor(loss=0.05, directory=f"{folder}/low-loss"),
            ],
            random_state=0,
        )
        model.fit(X, y)
        kept = [Path(p).name for p in model.callbacks_.checkpoint.saved_paths_]
        print(f"kept checkpoints (keep_max=3): {kept}")
        low = getattr(model.callbacks_.save_ckpt_monitor, "saved_", [])
        print(f"low-loss checkpoints: {len(low)}")
    print(f"training accuracy: {model.score(X, y):.3f} after {model.n_iter_} epochs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=5)
    main(parser.parse_args().epochs)
