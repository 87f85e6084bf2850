"""Callbacks that report progress: PrintLog, ProgressBar, LossMonitor,
MetricLogger, TimeMonitor, CSVLogger."""

from __future__ import annotations

import csv
import errno
import importlib
import io
import math
import numbers
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._context import Context
from .._files import atomic_write, check_writable, ensure_writable
from ._base import Callback, positive_int
from ._monitor import Monitor
from ._text_bar import TextBar


def _format(value: Any) -> str:
    if isinstance(value, numbers.Integral):
        return str(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-4) and math.isfinite(value):
            return f"{value:.3e}"
        return f"{value:.4f}"
    return str(value)


#: The constraint of a ``sink`` parameter.
_SINK = (callable, "a callable taking a line of text")


def columns(record: dict[str, Any], plan: Any) -> list[str]:
    """The keys of an epoch's record, with the declared metrics it lacks
    (``valid_*`` in an epoch that did not validate) before ``lr`` and
    ``dur``: the columns every epoch fills."""
    keys = list(record)
    missing = [key for key in plan.metrics if key not in record]
    tail = next((i for i, key in enumerate(keys) if key in ("lr", "dur")), len(keys))
    return keys[:tail] + missing + keys[tail:]


class PrintLog(Callback):
    """Print a table line per epoch, marking each value that is the best so
    far with ``*`` (used by ``verbose=1``), and why the fit stopped early
    when a callback stopped it.

    A value is marked when it beats every earlier one of its column
    (strictly: a tie is not marked; NaN never is), for the metrics with a
    direction, the rule of [`Monitor`][skcallback.callbacks.Monitor].

    Parameters
    ----------
    keys : sequence of str, optional
        The columns, in order; default: every key of the epoch's record.
    sink : callable, default=print
        Called with each line of text.

    Notes
    -----
    Memory: the best value of each metric so far (``best_``); nothing per
    batch.
    """

    rank_zero_only = True  # writes or prints: once, on rank 0

    order = 900
    parameter_constraints = {
        "keys": (
            lambda v: v is None or (not isinstance(v, str) and all(isinstance(k, str) for k in v)),
            "None or a list of metric names",
        ),
        "sink": _SINK,
    }

    def __init__(
        self, keys: Sequence[str] | None = None, sink: Callable[[str], Any] = print
    ) -> None:
        self.keys = keys
        self.sink = sink

    def on_fit_begin(self, ctx: Context) -> None:
        self._columns: list[str] | None = None
        if not hasattr(self, "best_"):
            self.best_: dict[str, float] = {}

    def on_epoch_end(self, ctx: Context) -> None:
        record = ctx.metrics
        if self._columns is None:
            self._columns = list(self.keys) if self.keys is not None else columns(record, ctx.plan)
            self._widths = [max(len(c), 10) for c in self._columns]
            self.sink(
                "  ".join(c.rjust(w) for c, w in zip(self._columns, self._widths, strict=True))
            )
            self.sink("  ".join("-" * w for w in self._widths))
        cells = []
        for column, width in zip(self._columns, self._widths, strict=True):
            value = record.get(column, "")
            text = _format(value)
            if isinstance(value, numbers.Real) and self._is_best(
                column, float(value), ctx.plan.metrics.get(column)
            ):
                text += "*"
            cells.append(text.rjust(width))
        self.sink("  ".join(cells))

    def on_fit_end(self, ctx: Context) -> None:
        if ctx.exception is None and ctx.stop_reason is not None:
            self.sink(f"Stopped after epoch {ctx.epoch}: {ctx.stop_reason}")

    def _is_best(self, key: str, value: float, lower: bool | None) -> bool:
        """Whether ``value`` is the best so far, for metrics declared with a
        direction (not ``epoch``, ``lr`` or ``dur``), by the rule of
        [`Monitor`][skcallback.callbacks.Monitor]."""
        if lower is None:
            return False
        if Monitor(key, "min" if lower else "max").is_improvement(value, self.best_.get(key)):
            self.best_[key] = value
            return True
        return False


class ProgressBar(Callback):
    """A tqdm progress bar over each epoch's training batches (``verbose=2``).

    It adapts to notebooks and stays quiet when output is not a terminal.
    Without tqdm (the ``progress`` extra: ``pip install tqdm``, or
    ``pip install '.[progress]'`` in a clone) it draws a plain text line,
    ``epoch 3: 12/40 [train_loss=0.4210]``, on a terminal.

    Parameters
    ----------
    leave : bool, default=False
        Keep each epoch's finished bar on screen.

    Notes
    -----
    Memory: the open progress bar during a fit; nothing after it.
    """

    rank_zero_only = True  # writes or prints: once, on rank 0

    def __init__(self, leave: bool = False) -> None:
        self.leave = leave

    def setup(self, plan: Any) -> None:
        try:
            self._tqdm: Callable[..., Any] = importlib.import_module("tqdm.auto").tqdm
        except ImportError:  # a plain install: verbose=2 still shows progress
            self._tqdm = TextBar

    def on_train_begin(self, ctx: Context) -> None:
        self._bar = self._tqdm(
            total=ctx.n_batches, desc=f"epoch {ctx.epoch}", leave=self.leave, disable=None
        )

    def on_train_batch_end(self, ctx: Context) -> None:
        self._bar.update(1)

    def on_train_end(self, ctx: Context) -> None:
        self._bar.set_postfix(train_loss=f"{ctx.metrics['train_loss']:.4f}")
        self._bar.close()

    def on_fit_end(self, ctx: Context) -> None:
        bar = getattr(self, "_bar", None)
        if bar is not None:
            bar.close()
            del self._bar


class LossMonitor(Callback):
    """Print the training loss every ``every`` batches, as MindSpore's
    ``LossMonitor``: ``epoch: 1 step: 300, loss is 0.45``; and after an
    epoch that validated, its validation metrics, as MindSpore does when it
    trains and evaluates: ``Eval result: epoch 1, metrics: {'valid_loss':
    0.21, 'valid_accuracy': 0.92}`` (the ``valid_*`` values of the epoch's
    record, EpochScoring's included).

    Parameters
    ----------
    every : int, default=1
        Print every ``every`` training batches, counted across epochs as
        MindSpore's ``per_print_times`` counts steps (so a period longer
        than an epoch still prints); ``step`` in the line is the batch
        within its epoch, as in MindSpore. The loss is read only then.
    sink : callable, default=print
        Called with each line.

    Notes
    -----
    Memory: a count of the fit's training batches; nothing per batch.
    """

    rank_zero_only = True  # writes or prints: once, on rank 0

    parameter_constraints = {"every": (positive_int, "an int >= 1"), "sink": _SINK}

    def __init__(self, every: int = 1, sink: Callable[[str], Any] = print) -> None:
        self.every = every
        self.sink = sink

    def setup(self, plan: Any) -> None:
        self._batches = 0  # training batches seen in this fit

    def on_train_batch_end(self, ctx: Context) -> None:
        self._batches += 1
        if self._batches % self.every == 0 and ctx.loss is not None:
            self.sink(f"epoch: {ctx.epoch} step: {ctx.batch}, loss is {ctx.loss.item()}")

    def on_epoch_end(self, ctx: Context) -> None:
        # After the epoch rather than on_valid_end: scores recorded at
        # on_valid_end by callbacks listed later are in the record by now.
        metrics = {key: value for key, value in ctx.metrics.items() if key.startswith("valid_")}
        if metrics:
            self.sink(f"Eval result: epoch {ctx.epoch}, metrics: {metrics}")


class MetricLogger(Callback):
    """Record a training and a validation metric per epoch (MXNet's
    ``mx.metric.logger`` with ``mx.callback.log.train.metric``).

    Parameters
    ----------
    every : int, optional
        Also print the running mean training loss every ``every`` batches
        (``Batch [5] Train-loss=...``) and record it in ``batch_train_``.
    train : str, default="train_loss"
        The metric appended to ``train_`` at each epoch end.
    valid : str, default="valid_loss"
        The metric appended to ``valid_`` (when recorded).
    sink : callable, default=print
        Called with each printed line.

    Attributes
    ----------
    train_, valid_ : list of float
        One value per epoch.
    batch_train_ : list of float
        The running mean training loss every ``every`` batches.

    Notes
    -----
    Memory: one number per epoch (``train_``, ``valid_``) and, with
    ``every``, one per ``every`` batches (``batch_train_``); during an
    epoch, its batch losses (one scalar tensor each).
    """

    parameter_constraints = {
        "every": (lambda v: positive_int(v, allow_none=True), "None or an int >= 1"),
        "sink": _SINK,
    }

    def __init__(
        self,
        every: int | None = None,
        train: str = "train_loss",
        valid: str = "valid_loss",
        sink: Callable[[str], Any] = print,
    ) -> None:
        self.every = every
        self.train = train
        self.valid = valid
        self.sink = sink

    def setup(self, plan: Any) -> None:
        recorded = f"a metric of the fit {sorted(plan.metrics)}"
        self._require("train", self.train in plan.metrics, recorded)
        self._require("valid", self.valid in plan.metrics or not plan.has_validation, recorded)

    def idle_hooks(self) -> set[str]:
        # Nothing to do per batch without ``every``: keep the batch loop free.
        return {"on_train_begin", "on_train_batch_end"} if self.every is None else set()

    def on_fit_begin(self, ctx: Context) -> None:
        if not hasattr(self, "train_"):
            self.train_: list[float] = []
        if not hasattr(self, "valid_"):
            self.valid_: list[float] = []
        if not hasattr(self, "batch_train_"):
            self.batch_train_: list[float] = []

    def on_train_begin(self, ctx: Context) -> None:
        self._losses: list[Any] = []

    def on_train_batch_end(self, ctx: Context) -> None:
        if ctx.loss is not None:
            self._losses.append(ctx.loss.detach())
        assert self.every is not None  # idle_hooks drops this hook otherwise
        if ctx.batch % self.every == 0 and self._losses:
            value = float(sum(self._losses) / len(self._losses))
            self.batch_train_.append(value)
            self.sink(f"Batch [{ctx.batch}] Train-loss={value}")

    def on_epoch_end(self, ctx: Context) -> None:
        if self.train in ctx.metrics:
            self.train_.append(float(ctx.metrics[self.train]))
        if self.valid in ctx.metrics:
            self.valid_.append(float(ctx.metrics[self.valid]))


class TimeMonitor(Callback):
    """Time each epoch's training, as MindSpore's ``TimeMonitor``:
    ``Train epoch time: 7388.254 ms, per step time: 7.877 ms``.

    Parameters
    ----------
    sink : callable or None, default=print
        Called with each line; None records without printing.

    Attributes
    ----------
    epoch_times_ : list of float
        Seconds of training per epoch.
    step_time_ : float
        Seconds per training batch in the last epoch.

    Notes
    -----
    Memory: one duration per epoch.
    """

    rank_zero_only = True  # writes or prints: once, on rank 0

    def __init__(self, sink: Callable[[str], Any] | None = print) -> None:
        self.sink = sink

    def on_fit_begin(self, ctx: Context) -> None:
        if not hasattr(self, "epoch_times_"):
            self.epoch_times_: list[float] = []

    def on_train_begin(self, ctx: Context) -> None:
        self._started = time.perf_counter()

    def on_train_end(self, ctx: Context) -> None:
        seconds = time.perf_counter() - self._started
        self.epoch_times_.append(seconds)
        self.step_time_ = seconds / max(ctx.batch, 1)
        if self.sink is not None:
            self.sink(
                f"Train epoch time: {seconds * 1e3:.3f} ms, per step time: "
                f"{self.step_time_ * 1e3:.3f} ms"
            )


class CSVLogger(Callback):
    """Write each epoch's record as a CSV row, flushed every epoch.

    Parameters
    ----------
    path : str or path-like
        The file to write, or a folder (an existing one, or a string ending
        in ``/``) to write one file per fit, ``<path>/<fit>.csv``. ``<fit>``
        is the first 16 characters of a digest of the estimator's parameters
        and training data, so every candidate and fold of a search, run in
        parallel or not, keeps its rows, and a fit run again rewrites its
        file. A fit that continues training (``warm_start``, each
        ``partial_fit`` call, a resumed fit) adds to the file of the fit it
        continues (a model loaded from a file, which names no fit, starts
        the file of its own ``<fit>``). Identical fits run at the same time (same parameters and
        data, ``random_state=None``) share a name: give them different
        folders. A single file is rewritten by each fit of a search, so only
        the last fit's rows remain.
    append : bool, default=False
        Add to an existing file instead of replacing it. A fit that continues
        training (``warm_start``, ``partial_fit``, a resumed fit) always adds
        its rows, after those of the epochs it continues (rows of later
        epochs, left by a fit that was killed, are dropped).

    Attributes
    ----------
    path_ : str
        The file the last fit wrote.

    Notes
    -----
    Memory: the open file during the fit; nothing after it (the rows are on
    disk).

    A fit that raises leaves the file as it was before the fit (the kept
    model's rows, or no file), as it leaves the estimator; unless running
    it again resumes it from a checkpoint (``Checkpoint(resume=True)``),
    which continues its rows. A killed fit's rows stay.

    Examples
    --------
    >>> import csv, os, tempfile
    >>> import numpy as np
    >>> from skcallback import NeuralRegressor
    >>> from skcallback.callbacks import CSVLogger
    >>> X = np.random.RandomState(0).normal(size=(100, 3)); y = X.sum(axis=1)
    >>> path = os.path.join(tempfile.mkdtemp(), "history.csv")
    >>> est = NeuralRegressor(max_epochs=3, random_state=0,
    ...                       callbacks=[CSVLogger(path)]).fit(X, y)
    >>> with open(path, newline="") as file:
    ...     rows = list(csv.DictReader(file))
    >>> list(rows[0])
    ['epoch', 'train_loss', 'valid_loss', 'lr', 'dur']
    >>> [row["epoch"] for row in rows]
    ['1', '2', '3']
    """

    rank_zero_only = True  # writes or prints: once, on rank 0

    _fingerprint_ignores = ("path",)

    def __init__(self, path: str | os.PathLike, append: bool = False) -> None:
        self.path = path
        self.append = append

    def setup(self, plan: Any) -> None:
        # A fit that continues (warm start, partial_fit, resume) adds its rows.
        self._append = self.append or plan.continuing or plan.resumed_from is not None
        path = Path(self.path)
        if path.is_dir() or str(self.path).endswith(("/", os.sep)):
            path = path / f"{plan.run_name()}.csv"
            if path.is_dir():
                raise IsADirectoryError(
                    errno.EISDIR, f"CSVLogger cannot write {str(path)!r}: it is a folder."
                )
        self._path = path
        self._kept: _KeptFile | None = None
        check_writable(path.parent, "CSVLogger", "path")
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(
                errno.EACCES, f"CSVLogger cannot write to {str(path)!r}; choose a writable path."
            )

    def on_fit_begin(self, ctx: Context) -> None:
        path = self._path
        ensure_writable(path.parent, "CSVLogger", "path")
        self.path_ = str(path)
        self._header = None
        plan = ctx.plan
        try:
            stale = False
            if self._append and path.exists() and path.stat().st_size > 0:
                with path.open(newline="") as file:
                    self._header = next(csv.reader(file), None)
                # A fit that continues (or resumes) follows the epochs it
                # continues: later rows are those of a fit killed since.
                stale = (plan.continuing or plan.resumed_from is not None) and _has_rows_after(
                    path, self._header, ctx.epoch
                )
            self._kept = _KeptFile(path, rewrites=stale or not self._append)
            if stale:
                _drop_rows_after(path, ctx.epoch)
            self._file = path.open("a" if self._append else "w", newline="")
        except OSError as exc:
            raise OSError(exc.errno, f"CSVLogger cannot write {str(path)!r}: {exc}") from exc
        self._writer: csv.DictWriter | None = None

    def on_epoch_end(self, ctx: Context) -> None:
        if self._writer is None:
            header = self._header or columns(ctx.metrics, ctx.plan)
            missing = [key for key in ctx.metrics if key not in header]
            if missing:
                warnings.warn(
                    f"CSVLogger adds rows to {str(self._path)!r} under its header {header}; "
                    f"{missing} are not in it and are not written. Write to another path, or "
                    "set append=False to replace the file.",
                    UserWarning,
                    stacklevel=2,
                )
            self._writer = csv.DictWriter(
                self._file, fieldnames=header, extrasaction="ignore", restval=""
            )
            if self._header is None:
                self._writer.writeheader()
        try:
            self._writer.writerow(ctx.metrics)
            self._file.flush()
        except OSError as exc:
            raise OSError(exc.errno, f"CSVLogger cannot write {str(self._path)!r}: {exc}") from exc

    def on_exception(self, ctx: Context) -> None:
        # A fit that raises leaves the file as it found it (the kept model's
        # rows, or no file), unless re-running it resumes it from a
        # checkpoint, which continues its rows. A killed fit runs no hook:
        # its rows stay, for a resumed or continued fit to follow.
        self.on_fit_end(ctx)
        kept, self._kept = self._kept, None
        if kept is not None and not _resumable(ctx):
            kept.restore()

    def on_fit_end(self, ctx: Context) -> None:
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()
            del self._file


class _KeptFile:
    """A file as it was before a fit wrote to it, to put back if the fit
    fails: its size (a fit that only adds rows) or, when the fit
    ``rewrites`` it, its contents; or that it did not exist."""

    def __init__(self, path: Path, *, rewrites: bool) -> None:
        self.path = path
        self.size = path.stat().st_size if path.exists() else None
        self.contents = path.read_bytes() if rewrites and self.size is not None else None

    def restore(self) -> None:
        if self.size is None:
            self.path.unlink(missing_ok=True)
        elif self.contents is not None:
            self.path.write_bytes(self.contents)
        else:
            os.truncate(self.path, self.size)


def _resumable(ctx: Context) -> bool:
    """Whether running the failed fit again continues it from a checkpoint
    (``Checkpoint(resume=True)`` names one), which continues its log too."""
    plan = ctx.plan
    if plan.continuing or plan.partial:  # only a new fit resumes
        return False
    return any(cb.resume_from(plan) is not None for cb in ctx.callbacks.values())


def _has_rows_after(path: Path, header: list[str] | None, epoch: int) -> bool:
    """Whether the last row of ``path`` (read from its end: a long log is
    not read whole at every ``partial_fit`` call) is of an epoch after
    ``epoch``."""
    if not header or "epoch" not in header:
        return False
    with path.open("rb") as file:
        file.seek(max(0, path.stat().st_size - 2**16))
        lines = [line for line in file.read().decode(errors="replace").splitlines() if line]
    last = next(csv.reader(lines[-1:]), [])
    column = header.index("epoch")
    return column < len(last) and last[column].isdigit() and int(last[column]) > epoch


def _drop_rows_after(path: Path, epoch: int) -> None:
    """Keep the rows of epochs up to ``epoch`` (a resumed fit writes the
    later ones again)."""
    with path.open(newline="") as file:
        rows = list(csv.reader(file))
    if not rows or "epoch" not in rows[0]:
        return
    column = rows[0].index("epoch")
    kept = [rows[0]] + [r for r in rows[1:] if r[column].isdigit() and int(r[column]) <= epoch]
    if len(kept) < len(rows):  # rewritten whole or not at all (a kill mid-rewrite)
        text = io.StringIO(newline="")
        csv.writer(text).writerows(kept)
        atomic_write(text.getvalue().encode(), path, "the CSV log")
