"""Callbacks that report to other tools; each tool is an optional extra,
imported when a fit starts, with an error naming the extra to install."""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Any

from .._context import Context
from ._base import Callback, import_extra
from ._checkpoint import ensure_writable


class OptunaPruning(Callback):
    """Report a metric to an Optuna trial after each epoch and stop the fit
    when the study's pruner says the trial is not promising.

    The trial is shared, not copied, by the clones each fit works on (see
    :attr:`~skcallback.Callback.shared_params`), so every fit of the
    objective reports to it. A pruned fit stops cleanly after the epoch, as
    EarlyStopping does: the estimator keeps the model and ``stop_reason_``
    says the trial was pruned. The objective then marks the trial pruned the
    way Optuna asks, by raising ``optuna.TrialPruned`` when
    ``trial.should_prune()`` (raising from inside ``fit`` would be swallowed
    as a failed fit by ``cross_val_score`` and by searches with
    ``error_score=nan``).

    Requires optuna (``pip install skcallback[optuna]``).

    Parameters
    ----------
    trial : optuna.trial.Trial
        The trial the objective was given.
    monitor : str, default="valid_loss"
        The metric reported, recorded by the fit (``train_loss``,
        ``valid_loss`` or an :class:`EpochScoring` name). The study's
        direction decides whether lower is better.

    Attributes
    ----------
    pruned_epoch_ : int or None
        The epoch after which the trial was pruned, or None.

    Examples
    --------
    >>> import optuna  # doctest: +SKIP
    >>> def objective(trial):  # doctest: +SKIP
    ...     est = NeuralRegressor(lr=trial.suggest_float("lr", 1e-4, 1e-1, log=True),
    ...                           callbacks=[OptunaPruning(trial)])
    ...     est.fit(X, y)
    ...     if trial.should_prune():
    ...         raise optuna.TrialPruned()
    ...     return est.history_[-1]["valid_loss"]
    """

    shared_params = ("trial",)

    def __init__(self, trial: Any = None, monitor: str = "valid_loss") -> None:
        self.trial = trial
        self.monitor = monitor

    def setup(self, plan: Any) -> None:
        optuna = import_extra("optuna", "optuna", "OptunaPruning")
        self._require("monitor", isinstance(self.monitor, str), "a metric name")
        self._require(
            "trial",
            isinstance(self.trial, optuna.trial.BaseTrial),
            "the optuna trial given to the objective",
        )
        self._key = plan.monitored("OptunaPruning", self.monitor)

    def on_fit_begin(self, ctx: Context) -> None:
        if not hasattr(self, "pruned_epoch_"):
            self.pruned_epoch_: int | None = None

    def on_epoch_end(self, ctx: Context) -> None:
        value = float(ctx.metrics[self._key])
        self.trial.report(value, step=ctx.epoch)
        if self.pruned_epoch_ is None and self.trial.should_prune():
            self.pruned_epoch_ = ctx.epoch
            ctx.request_stop(
                f"Optuna pruned trial {self.trial.number} after epoch {ctx.epoch} "
                f"({self._key}={value:.6g})"
            )


class TensorBoardLogger(Callback):
    """Write each epoch's metrics as TensorBoard scalars, one run folder per
    fit.

    Each fit writes to ``<log_dir>/<fit>``, named as :class:`Checkpoint`
    and :class:`CSVLogger` name theirs: by a digest of the estimator's
    parameters and training data. Each candidate and fold of a search is its
    own run, and a resumed or warm-started fit on the same data continues
    its run. The same fit run again from scratch adds to the same run (use
    another ``log_dir`` to keep both apart). The estimator's parameters are
    logged as text in the run. The folder is created and proven writable
    before training.

    Requires tensorboard (``pip install skcallback[tensorboard]``).

    Parameters
    ----------
    log_dir : str or path-like, default="runs"
        The folder holding the run folders (``tensorboard --logdir runs``).
    keys : list of str or None, default=None
        The metrics to write; None writes every number the epoch records
        except ``epoch`` itself.

    Attributes
    ----------
    run_dir_ : str
        The last fit's run folder.
    """

    def __init__(self, log_dir: str | os.PathLike = "runs", keys: list[str] | None = None) -> None:
        self.log_dir = log_dir
        self.keys = keys

    def setup(self, plan: Any) -> None:
        self._summary = import_extra("torch.utils.tensorboard", "tensorboard", "TensorBoardLogger")
        self._require("log_dir", isinstance(self.log_dir, str | os.PathLike), "a folder path")
        self._require(
            "keys",
            self.keys is None
            or (isinstance(self.keys, list | tuple) and all(isinstance(k, str) for k in self.keys)),
            "None or a list of metric names",
        )
        self._keys = None
        if self.keys is not None:
            self._keys = [plan.monitored("TensorBoardLogger", key) for key in self.keys]
        self._run = str(Path(self.log_dir) / plan.fit_name())
        ensure_writable(Path(self._run), "TensorBoardLogger", "log_dir")

    def on_fit_begin(self, ctx: Context) -> None:
        self._writer = self._summary.SummaryWriter(self._run)
        self._writer.add_text("estimator", repr(ctx.estimator), global_step=ctx.epoch)
        self.run_dir_ = self._run

    def on_epoch_end(self, ctx: Context) -> None:
        for key in self._keys if self._keys is not None else ctx.metrics:
            value = ctx.metrics.get(key)
            if key == "epoch" or not isinstance(value, numbers.Real) or isinstance(value, bool):
                continue
            if math.isfinite(value):
                self._writer.add_scalar(key, float(value), global_step=ctx.epoch)
        self._writer.flush()

    def on_fit_end(self, ctx: Context) -> None:
        writer = vars(self).pop("_writer", None)
        if writer is not None:
            writer.close()
