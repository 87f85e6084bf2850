"""Checkpoint: atomic, checksummed, ``weights_only``-safe snapshots of a fit,
and exact resume from them."""

from __future__ import annotations

import contextlib
import io
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from .. import _snapshot
from .._context import Context
from .._files import atomic_write, check_writable, ensure_writable, remove_leftovers
from ._base import Callback, positive_int, positive_number
from ._monitor import Monitor


def save_checkpoint(ctx: Context, path: str | os.PathLike) -> Path:
    """Save the fit's current state to ``path`` (atomically); for custom
    callbacks such as MindSpore's save-when-the-loss-is-low example.

    The file records the fit's exact position when saved between training
    batches (``on_after_step``, ``on_train_batch_end``, ``on_train_end``) or
    between epochs (``on_fit_begin``, ``on_epoch_end``, ``on_fit_end``); a
    resume continues exactly from there.

    Parameters
    ----------
    ctx : Context
        The context the hook received.
    path : str or path-like
        The file to write (missing folders are created).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        When called from another hook (mid-batch or during validation, where
        the fit's position cannot be resumed).
    OSError
        If the file cannot be written; the message names it.
    """
    return _snapshot.write(_snapshot.snapshot(ctx), path)


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """The contents of a checkpoint file, checked (checksum, format, fields)
    and loaded with ``torch.load(weights_only=True)``: plain data, never an
    unpickled object.

    Parameters
    ----------
    path : str or path-like
        A file written by [`Checkpoint`][skcallback.callbacks.Checkpoint] or
        [`save_checkpoint`][skcallback.callbacks.save_checkpoint].
    map_location : str or torch.device, default="cpu"
        Where the tensors are loaded.

    Returns
    -------
    dict
        The saved state: ``epoch``, ``step``, the module's and optimizer's
        state dicts, the callbacks' states, the random generators, ...

    Raises
    ------
    ValueError
        If the file is corrupt, not a checkpoint, or malformed.
    """
    return _snapshot.read(path, torch.device(map_location))


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically (temporary file, flush,
    fsync, rename): a crash never leaves a truncated file under ``path``.

    Parameters
    ----------
    obj : object
        What ``torch.save`` can save.
    path : str or path-like
        The file to write or replace.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write(buffer.getvalue(), path)


def checkpoint_files(folder: str | os.PathLike, prefix: str) -> list[Path]:
    """The checkpoint files of ``folder`` named by a Checkpoint with
    ``prefix``, oldest first (by epoch, then step; an epoch's final file after
    its mid-epoch ones).

    Parameters
    ----------
    folder : str or path-like
        A fit's folder, e.g. ``est.callbacks_.checkpoint.run_dir_``.
    prefix : str
        The Checkpoint's ``prefix``.

    Returns
    -------
    list of pathlib.Path
        Oldest first: ``checkpoint_files(run_dir, "model")[-1]`` is the
        newest. Empty when there is none (or no such folder).
    """
    pattern = re.compile(rf"{re.escape(prefix)}-(\d{{4,}})(?:-(\d{{9,}}))?\.pt")
    found = []
    for path in Path(folder).glob(f"{glob_escape(prefix)}-*.pt"):
        match = pattern.fullmatch(path.name)
        if match:
            epoch, step = int(match[1]), match[2]
            found.append(((epoch, step is None, int(step or 0)), path))
    return [path for _, path in sorted(found)]


def glob_escape(text: str) -> str:
    return re.sub(r"([*?[])", r"[\1]", text)


def _positive_int_or_none(value: Any) -> bool:
    return positive_int(value, allow_none=True)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


class Checkpoint(Callback):
    """Save checkpoints during training (MXNet's ``save.checkpoint``,
    MindSpore's ``ModelCheckpoint``), and resume from them.

    A checkpoint holds everything the rest of the fit depends on: module,
    optimizer, every callback's state (history included), the random
    generators and the position within the epoch. It is written atomically,
    with a checksum, and loads with ``torch.load(weights_only=True)``.

    Each fit writes into its own folder, ``<dirname>/<prefix>-<fingerprint>``
    (``run_dir_``), named after a fingerprint of the estimator's parameters
    and the training data: parallel fits never collide, and a re-run of the
    same fit finds its files. Checkpoint runs last (``order = inf``), so a
    file holds the epoch's final state, EarlyStopping's included.

    Parameters
    ----------
    dirname : str or path-like, default="checkpoints"
        Where fit folders are created (checked writable before training).
    prefix : str, default="model"
        File names are ``<prefix>-0001.pt`` (end of epoch 1) and, with
        ``every_n_steps``, ``<prefix>-0002-000000450.pt`` (epoch 2, step 450):
        zero-padded, so names sort in time order.
    every : int or None, default=1
        Save every ``every`` epochs; None for no epoch saves.
    every_n_steps : int, optional
        Save every ``every_n_steps`` optimizer steps (mid-epoch files)
        instead of per epoch.
    every_seconds : float, optional
        Also save at the first boundary between training batches (after an
        optimizer step) once this many seconds have passed since the last
        save of this fit, or since it began: MindSpore's
        ``save_checkpoint_seconds``. The files are named as those of
        ``every_n_steps``, and a resume from them is as exact. It does not
        change the fit (it is not part of the folder's fingerprint).
    keep_max : int, optional
        Keep only the newest ``keep_max`` files of the fit's folder (the best
        one is never removed).
    monitor : str, optional
        A metric whose best value is tracked (``best_path_``).
    save_best_only : bool, default=False
        With ``monitor``, save only epochs that improve it.
    save_last : bool, default=True
        Also save when the fit ends (completed or stopped, not failed),
        unless the file of its last epoch exists already: the final model is
        on disk whatever ``every`` or ``every_n_steps`` say, as MindSpore's
        ``ModelCheckpoint`` and Lightning's ``save_last`` do. Ignored with
        ``save_best_only=True``.
    resume : bool, default=False
        When the fit's folder already holds a checkpoint of the same fit
        (same parameters and data), continue from its newest valid file, so
        the fit ends exactly as the uninterrupted one would (bit for bit on
        the CPU). A re-run of a killed script or grid search thus continues
        every fit, and fits that had finished are not trained again.

    Attributes
    ----------
    run_dir_ : str
        The folder of this fit's files.
    saved_paths_ : list of str
        The checkpoint files in ``run_dir_``, oldest first.
    best_path_ : str or None
        The file of the best monitored epoch.
    resumed_from_ : str or None
        The file this fit resumed from.

    Notes
    -----
    Memory: file names and the best score; no weights (they are on disk).

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from skcallback import NeuralRegressor
    >>> from skcallback.callbacks import Checkpoint
    >>> X = np.random.RandomState(0).normal(size=(100, 3)); y = X.sum(axis=1)
    >>> folder = tempfile.mkdtemp()
    >>> est = NeuralRegressor(max_epochs=3, random_state=0,
    ...                       callbacks=[Checkpoint(dirname=folder, resume=True)]).fit(X, y)
    >>> again = NeuralRegressor(max_epochs=3, random_state=0,
    ...                         callbacks=[Checkpoint(dirname=folder, resume=True)]).fit(X, y)
    >>> again.callbacks_.checkpoint.resumed_from_.endswith("model-0003.pt")  # nothing retrained
    True
    """

    rank_zero_only = True  # writes or prints: once, on rank 0

    order = float("inf")
    parameter_constraints = {
        "every": (_positive_int_or_none, "None or an int >= 1"),
        "every_n_steps": (_positive_int_or_none, "None or an int >= 1"),
        "every_seconds": (
            lambda v: v is None or positive_number(v),
            "None or a number of seconds > 0",
        ),
        "keep_max": (_positive_int_or_none, "None or an int >= 1"),
        "prefix": (
            lambda v: isinstance(v, str) and re.fullmatch(r"[\w.-]+", v) is not None,
            "a file name prefix of letters, digits, '_', '.' or '-'",
        ),
        "save_best_only": (_is_bool, "True or False"),
        "save_last": (_is_bool, "True or False"),
        "resume": (_is_bool, "True or False"),
    }
    _fingerprint_ignores = ("resume", "dirname", "keep_max", "save_last", "every_seconds")

    def __init__(
        self,
        dirname: str | os.PathLike = "checkpoints",
        prefix: str = "model",
        every: int | None = 1,
        every_n_steps: int | None = None,
        keep_max: int | None = None,
        monitor: str | None = None,
        save_best_only: bool = False,
        save_last: bool = True,
        resume: bool = False,
        every_seconds: float | None = None,
    ) -> None:
        self.dirname = dirname
        self.prefix = prefix
        self.every = every
        self.every_n_steps = every_n_steps
        self.keep_max = keep_max
        self.monitor = monitor
        self.save_best_only = save_best_only
        self.save_last = save_last
        self.resume = resume
        self.every_seconds = every_seconds

    def _folder(self, plan: Any) -> Path:
        return Path(self.dirname) / f"{self.prefix}-{plan.fit_name()}"

    def resume_from(self, plan: Any) -> str | None:
        if not self.resume:
            return None
        for path in reversed(checkpoint_files(self._folder(plan), self.prefix)):
            try:
                _snapshot.verify(path)
            except (ValueError, OSError) as exc:
                warnings.warn(
                    f"Checkpoint skips {path} when resuming: {exc}", RuntimeWarning, stacklevel=2
                )
                continue
            return str(path)
        return None

    def setup(self, plan: Any) -> None:
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
        folder = self._folder(plan)
        check_writable(folder, "Checkpoint", "dirname")
        self.run_dir_ = str(folder)
        self.resumed_from_ = plan.resumed_from
        if not hasattr(self, "best_score_"):
            self.best_score_: float | None = None
        best_name = getattr(self, "_best_name", None)
        best = folder / best_name if best_name else None
        self.best_path_ = str(best) if best is not None and best.exists() else None

    def idle_hooks(self) -> set[str]:
        idle = {"on_after_step"} if self.every_n_steps is None else set()
        return idle | ({"on_train_batch_end"} if self.every_seconds is None else set())

    def on_fit_begin(self, ctx: Context) -> None:
        folder = Path(self.run_dir_)
        ensure_writable(folder, "Checkpoint", "dirname")
        remove_leftovers(folder, f"{glob_escape(self.prefix)}-*.pt")  # of killed writes
        self.saved_paths_ = [str(p) for p in checkpoint_files(folder, self.prefix)]
        self._saved_at = time.monotonic()

    def on_exception(self, ctx: Context) -> None:
        assert ctx.exception is not None  # the loop sets it before on_exception
        if getattr(self, "saved_paths_", None):
            ctx.exception.add_note(
                f"The newest checkpoint of this fit is {self.saved_paths_[-1]}; "
                "est.load_checkpoint(path) restores it, and Checkpoint(resume=True) continues "
                "the fit from it."
            )

    def on_after_step(self, ctx: Context) -> None:
        assert self.every_n_steps is not None  # idle_hooks drops this hook otherwise
        if ctx.step % self.every_n_steps == 0:
            self._save(ctx, f"{self.prefix}-{ctx.epoch:04d}-{ctx.step:09d}.pt")

    def on_train_batch_end(self, ctx: Context) -> None:
        assert self.every_seconds is not None  # idle_hooks drops this hook otherwise
        # Within an accumulation window the position is not exact: wait for its step.
        if ctx.progress.between_batches and (
            time.monotonic() - self._saved_at >= self.every_seconds
        ):
            self._save(ctx, f"{self.prefix}-{ctx.epoch:04d}-{ctx.step:09d}.pt")

    def on_epoch_end(self, ctx: Context) -> None:
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
            self._save(ctx, f"{self.prefix}-{ctx.epoch:04d}.pt", best=improved)

    def on_fit_end(self, ctx: Context) -> None:
        if not self.save_last or self.save_best_only or ctx.exception is not None:
            return
        filename = f"{self.prefix}-{ctx.epoch:04d}.pt"
        if ctx.epoch > 0 and str(Path(self.run_dir_) / filename) not in self.saved_paths_:
            self._save(ctx, filename)

    def _save(self, ctx: Context, filename: str, best: bool = False) -> str:
        path = str(Path(self.run_dir_) / filename)
        if best:  # the file must know it is the best one when it is resumed from
            self._best_name: str | None = filename
            self.best_path_ = path
        save_checkpoint(ctx, path)
        self._saved_at = time.monotonic()
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

    def state_dict(self) -> dict[str, Any]:
        """The best score and the best file's name; never a path (a loaded
        checkpoint must not decide where files are written or removed).

        Returns
        -------
        dict
            ``best_score`` (float or None) and ``best_name`` (str or None).
        """
        return {
            "best_score": getattr(self, "best_score_", None),
            "best_name": getattr(self, "_best_name", None),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        score, name = state.get("best_score"), state.get("best_name")
        if score is not None and not isinstance(score, int | float):
            raise ValueError(f"Checkpoint state: best_score must be a number; got {score!r}.")
        if name is not None and (
            not isinstance(name, str) or re.fullmatch(r"[\w.-]+\.pt", name) is None
        ):
            raise ValueError(f"Checkpoint state: best_name must be a file name; got {name!r}.")
        self.best_score_ = score
        self._best_name = name
