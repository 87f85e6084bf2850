"""Checkpoint: atomic, ``weights_only``-safe snapshots of a fit."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._base import Callback, positive_int
from ._monitor import Monitor

FORMAT = "skcallback-checkpoint-1"


def _plain(value: Any) -> Any:
    """Convert NumPy values to types ``torch.load(weights_only=True)`` accepts."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy()) if value.dtype.kind in "biuf" else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def checkpoint_state(ctx: Any) -> dict[str, Any]:
    """Everything needed to resume: module, optimizer, callback states and
    history, and what the estimator learned about its data."""
    estimator = ctx.estimator
    return {
        "format": FORMAT,
        "estimator": type(estimator).__name__,
        "epoch": ctx.epoch,
        "step": ctx.step,
        "module": ctx.module.state_dict(),
        "optimizer": ctx.optimizer.state_dict(),
        "callbacks": {name: _plain(cb.state_dict()) for name, cb in ctx.callbacks.items()},
        "data": _plain(estimator._data_state()),
    }


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, flush, fsync,
    then rename: a crash never leaves a truncated file under ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def ensure_writable(folder: Path, owner: str, parameter: str) -> None:
    """Create ``folder`` and prove a file can be written in it, or raise an
    ``OSError`` naming the folder and the parameter to change."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OSError(
            exc.errno,
            f"{owner} cannot write to the folder {str(folder)!r} ({exc.strerror or exc}); "
            f"choose a writable {parameter}.",
        ) from exc


def save_checkpoint(ctx: Any, path: str | os.PathLike) -> Path:
    """Save the fit's current state to ``path`` (atomically); for custom
    callbacks such as MindSpore's save-when-the-loss-is-low example."""
    return atomic_save(checkpoint_state(ctx), path)


def read_checkpoint(path: str | os.PathLike, device: torch.device) -> dict[str, Any]:
    """Load a checkpoint without unpickling arbitrary objects."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise ValueError(f"{path} is not a readable skcallback checkpoint: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a skcallback checkpoint (format {FORMAT!r} expected).")
    state["data"] = _arrays(state["data"])
    return state


def _arrays(data: dict[str, Any]) -> dict[str, Any]:
    """Undo :func:`_plain` for the estimator's array attributes."""
    data = dict(data)
    if "classes_" in data:
        classes = data["classes_"]
        data["classes_"] = np.asarray(
            classes.numpy() if isinstance(classes, torch.Tensor) else classes
        )
    if "feature_names_in_" in data:
        data["feature_names_in_"] = np.asarray(data["feature_names_in_"], dtype=object)
    return data


class Checkpoint(Callback):
    """Save checkpoints during training (MXNet's ``save.checkpoint``,
    MindSpore's ``ModelCheckpoint``).

    A checkpoint holds the module, the optimizer, every callback's state and
    the history. It is written atomically and loads with
    ``torch.load(weights_only=True)``; restore it with
    ``est.load_checkpoint(path)``. Each fit writes into its own folder under
    ``dirname`` (``run_dir_``), so parallel fits never collide and a new run
    never overwrites an old one. Checkpoint runs last (``order = inf``), so
    a file holds the epoch's final state, EarlyStopping's included.

    Parameters
    ----------
    dirname : str or path-like, default="checkpoints"
        Where run folders are created.
    prefix : str, default="model"
        File names are ``<prefix>-0001.pt`` (epoch 1) or, with
        ``every_n_steps``, ``<prefix>-<epoch>_<step>.pt``.
    every : int or None, default=1
        Save every ``every`` epochs; None for no epoch saves.
    every_n_steps : int, optional
        Save every ``every_n_steps`` optimizer steps instead of per epoch.
    keep_max : int, optional
        Keep only the newest ``keep_max`` files.
    monitor : str, optional
        A metric whose best value is tracked (``best_path_``).
    save_best_only : bool, default=False
        With ``monitor``, save only epochs that improve it.

    Attributes
    ----------
    run_dir_ : str
        The folder of this fit's files.
    saved_paths_ : list of str
        Saved files that still exist, oldest first.
    best_path_ : str or None
        The file of the best monitored epoch.
    """

    order = float("inf")

    def __init__(
        self,
        dirname: str | os.PathLike = "checkpoints",
        prefix: str = "model",
        every: int | None = 1,
        every_n_steps: int | None = None,
        keep_max: int | None = None,
        monitor: str | None = None,
        save_best_only: bool = False,
    ) -> None:
        self.dirname = dirname
        self.prefix = prefix
        self.every = every
        self.every_n_steps = every_n_steps
        self.keep_max = keep_max
        self.monitor = monitor
        self.save_best_only = save_best_only

    def setup(self, plan: Any) -> None:
        for name in ("every", "every_n_steps", "keep_max"):
            self._require(
                name, positive_int(getattr(self, name), allow_none=True), "None or an int >= 1"
            )
        self._require(
            "monitor",
            self.monitor is not None or not self.save_best_only,
            "a metric name when save_best_only=True",
        )
        self._monitor = (
            None
            if self.monitor is None
            else Monitor.for_plan(plan, "Checkpoint", self.monitor, "auto", 0.0)
        )
        if not hasattr(self, "run_dir_"):
            stamp = time.strftime("%Y%m%d-%H%M%S")
            self.run_dir_ = str(
                Path(self.dirname) / f"run-{stamp}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
            )
            self.best_path_: str | None = None
            self.best_score_: float | None = None
        ensure_writable(Path(self.run_dir_), "Checkpoint", "dirname")

    def idle_hooks(self) -> set[str]:
        return {"on_after_step"} if self.every_n_steps is None else set()

    def on_fit_begin(self, ctx: Any) -> None:
        self.saved_paths_ = [p for p in getattr(self, "saved_paths_", []) if Path(p).exists()]

    def on_exception(self, ctx: Any) -> None:
        if self.saved_paths_:
            ctx.exception.add_note(
                f"The newest checkpoint of this fit is {self.saved_paths_[-1]}; "
                "est.load_checkpoint(path) restores it."
            )

    def on_after_step(self, ctx: Any) -> None:
        if ctx.step % self.every_n_steps == 0:
            self._save(ctx, f"{self.prefix}-{ctx.epoch}_{ctx.step}.pt")

    def on_epoch_end(self, ctx: Any) -> None:
        improved = False
        if self._monitor is not None:
            value = self._monitor.value(ctx.metrics)
            improved = self._monitor.is_improvement(value, self.best_score_)
            if improved:
                self.best_score_ = value
        if self.save_best_only:
            due = improved
        else:
            due = (
                self.every_n_steps is None
                and self.every is not None
                and ctx.epoch % self.every == 0
            )
        if due:
            path = self._save(ctx, f"{self.prefix}-{ctx.epoch:04d}.pt")
            if improved:
                self.best_path_ = path

    def _save(self, ctx: Any, filename: str) -> str:
        path = str(Path(self.run_dir_) / filename)
        atomic_save(checkpoint_state(ctx), path)
        if path in self.saved_paths_:
            self.saved_paths_.remove(path)
        self.saved_paths_.append(path)
        while self.keep_max is not None and len(self.saved_paths_) > self.keep_max:
            # The oldest file goes, but never the best one.
            victim = next((p for p in self.saved_paths_ if p != self.best_path_), None)
            if victim is None:
                break
            self.saved_paths_.remove(victim)
            with contextlib.suppress(FileNotFoundError):
                Path(victim).unlink()
        return path
