"""MindSpore's "Callback Mechanism" tutorial, with skcallback.

Each section of the tutorial is a function, and ``main()`` runs them in turn:

- ``model_checkpoint``: ``ModelCheckpoint`` with
  ``CheckpointConfig(save_checkpoint_steps=1875, keep_checkpoint_max=10)``,
  trained for one epoch, writes one file: the end of training
  (``mnist-1_938.ckpt``). ``Checkpoint(every_n_steps=..., keep_max=10)``
  does the same, because it saves the end of training too (``save_last``).
- ``loss_monitor``: ``LossMonitor(300)`` prints the loss at steps 300, 600
  and 900 of the epoch.
- ``time_monitor``: ``TimeMonitor()`` prints the epoch's time and the time
  per step.
- ``stop_time_monitor``: the custom ``StopTimeMonitor`` stops training once
  its time budget is spent, using a start time it puts on the run context.
- ``save_ckpt_monitor``: the custom ``SaveCkptMonitor(0.05)`` saves a
  checkpoint each time a batch's loss is below 0.05 (7 files in the tutorial).

Scale. The digits (1,797 8x8 images) stand in for MNIST (60,000 28x28). With
the tutorial's batches of 64 an epoch here is 29 steps where MNIST's is 938,
so the tutorial's step counts are divided by 32: ``save_checkpoint_steps=1875``
(two epochs) becomes ``every_n_steps=58``, ``LossMonitor(300)`` becomes
``LossMonitor(every=9)``. The network is the tutorial's (512-512), trained by
SGD with a learning rate of 0.1 instead of 0.01 so that short epochs learn.
An epoch takes about 0.05 s where the tutorial's took 7.4 s, so the time
budget is 0.5 s instead of 4 s, and the tutorial's 5 epochs of 938 steps are
160 epochs of 29: the budget runs out long before. The save-below-loss run
trains 8 epochs (232 steps) to reach the low losses the tutorial's one MNIST
epoch reached, and saves 7 files, as the tutorial does.

Run ``python examples/mindspore_callbacks.py``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

from skcallback import Callback, NeuralClassifier
from skcallback.callbacks import Checkpoint, LossMonitor, TimeMonitor, save_checkpoint


def load_data() -> tuple[np.ndarray, np.ndarray]:
    """The digits, normalised as the tutorial normalises MNIST: pixels to
    [0, 1], then one mean and one standard deviation for all pixels."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return (X - X.mean()) / X.std(), y


def network(max_epochs: int, callbacks: list) -> NeuralClassifier:
    """The tutorial's ``Network`` (two dense layers of 512 and ReLU), loss,
    optimizer and batch size, wrapped in a scikit-learn estimator."""
    return NeuralClassifier(
        hidden_layer_sizes=(512, 512),
        optimizer="sgd",
        lr=0.1,
        batch_size=64,
        max_epochs=max_epochs,
        validation_fraction=None,  # trainer.train: no evaluation data
        callbacks=callbacks,
        random_state=0,
    )


def model_checkpoint(folder: str, max_epochs: int = 1) -> NeuralClassifier:
    """``ModelCheckpoint(prefix="mnist", config=CheckpointConfig(1875, 10))``.

    The step period is longer than the training, so the only file is the one
    saved when training ends. File names differ from MindSpore's: MindSpore's
    ``mnist-<epoch>_<step within the epoch>.ckpt`` is ``mnist-<epoch>.pt`` for
    the end of an epoch, ``mnist-<epoch>-<global step>.pt`` within a run.
    """
    X, y = load_data()
    checkpoint = Checkpoint(dirname=folder, prefix="mnist", every_n_steps=58, keep_max=10)
    model = network(max_epochs, [checkpoint]).fit(X, y)
    # MindSpore announces nothing either; the files are listed in saved_paths_.
    names = [Path(p).name for p in model.callbacks_.checkpoint.saved_paths_]
    print(f"trained {model.n_iter_} epoch(s), {model.n_steps_} steps; checkpoint files: {names}")
    return model


def loss_monitor(max_epochs: int = 1) -> NeuralClassifier:
    """``LossMonitor(300)``: the loss every 9 steps of the epoch here."""
    X, y = load_data()
    return network(max_epochs, [LossMonitor(every=9)]).fit(X, y)


def time_monitor(max_epochs: int = 1) -> NeuralClassifier:
    """``TimeMonitor()``: the training time of each epoch."""
    X, y = load_data()
    return network(max_epochs, [TimeMonitor()]).fit(X, y)


class StopTimeMonitor(Callback):
    """Stop training once ``run_time`` seconds have passed, checked after
    each step (the tutorial's custom callback).

    MindSpore's ``on_train_begin`` runs once per training; skcallback's
    ``on_train_begin`` runs at the start of every epoch's training phase (as
    luz's does), and would restart the clock each epoch, so the budget would
    never run out. ``on_fit_begin`` is the hook that runs once.
    """

    def __init__(self, run_time: float = 0.5) -> None:
        self.run_time = run_time

    def on_fit_begin(self, ctx) -> None:
        ctx.init_time = time.time()  # a value of our own, put on the context
        print(f"Begin training, time is: {ctx.init_time}")

    def on_train_batch_end(self, ctx) -> None:
        now = time.time()
        if now - ctx.init_time > self.run_time:
            # ctx.step counts steps from the start of training, like
            # MindSpore's cur_step_num; ctx.loss is the step's loss.
            print(
                f"End training, time: {now}, epoch: {ctx.epoch}, step: {ctx.step}, "
                f"loss: {ctx.loss.item():.5f}"
            )
            self.stopped_after_ = now - ctx.init_time
            ctx.request_stop(f"time budget of {self.run_time} s spent")


def stop_time_monitor(run_time: float = 0.5, max_epochs: int = 160) -> NeuralClassifier:
    """``trainer.train(5, ..., callbacks=[LossMonitor(datasize), StopTimeMonitor(4)])``.

    The tutorial's 5 epochs of 938 steps are 160 epochs of 29 steps here.
    """
    X, y = load_data()
    model = network(max_epochs, [LossMonitor(every=29), StopTimeMonitor(run_time)]).fit(X, y)
    print(f"stopped after epoch {model.n_iter_} of {max_epochs}: {model.stop_reason_}")
    return model


class SaveCkptMonitor(Callback):
    """Save a checkpoint whenever a step's loss is below ``loss`` (the
    tutorial's custom callback), as ``<directory>/<epoch>_<step>.pt``."""

    def __init__(self, loss: float = 0.05, directory: str = "checkpoint") -> None:
        self.loss = loss
        self.directory = directory

    def on_fit_begin(self, ctx) -> None:
        self.saved_: list[tuple[str, float]] = []  # (file, loss): learned state

    def on_train_batch_end(self, ctx) -> None:
        current = ctx.loss.item()
        if current < self.loss:
            path = Path(self.directory) / f"{ctx.epoch}_{ctx.step}.pt"
            save_checkpoint(ctx, path)  # the whole fit's state, as ms.save_checkpoint
            self.saved_.append((str(path), current))
            print(f"Saved checkpoint, loss:{current:8.7f}, current step num:{ctx.step:4}.")


def save_ckpt_monitor(folder: str, loss: float = 0.05, max_epochs: int = 8) -> NeuralClassifier:
    """``trainer.train(1, ..., callbacks=[SaveCkptMonitor(0.05)])``."""
    X, y = load_data()
    model = network(max_epochs, [SaveCkptMonitor(loss=loss, directory=folder)]).fit(X, y)
    files = sorted(p.name for p in Path(folder).glob("*.pt"))
    print(f"{len(files)} files in the checkpoint folder: {files}")
    return model


def main(folder: str | None = None) -> dict:
    """Run every section, writing files under ``folder`` (a temporary folder
    by default); return the fitted models by section."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = folder or scratch
        print("== ModelCheckpoint: save_checkpoint_steps=1875 (58 here), one epoch")
        one_epoch = model_checkpoint(f"{folder}/one-epoch")
        print("== the same over 3 epochs: a file at step 58, and the end of training")
        three_epochs = model_checkpoint(f"{folder}/three-epochs", max_epochs=3)
        print("== LossMonitor(300) (9 here)")
        losses = loss_monitor()
        print("== TimeMonitor()")
        times = time_monitor()
        print("== StopTimeMonitor(4) (0.5 s here)")
        stopped = stop_time_monitor()
        print("== SaveCkptMonitor(0.05)")
        saved = save_ckpt_monitor(f"{folder}/checkpoint")
    return {
        "one_epoch": one_epoch,
        "three_epochs": three_epochs,
        "loss_monitor": losses,
        "time_monitor": times,
        "stop_time_monitor": stopped,
        "save_ckpt_monitor": saved,
    }


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__).parse_args()
    torch.set_num_threads(1)  # small networks: one thread is as fast, and shares the CPU well
    main()
