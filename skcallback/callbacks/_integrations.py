"""Callbacks that report to other tools; each tool is an optional extra,
imported when a fit starts, with an error naming the extra to install."""

from __future__ import annotations

import numbers
import os
import posixpath
import re
import sys
import threading
import time
import urllib.parse
import warnings
from pathlib import Path
from typing import Any, cast

from .._context import Context
from .._files import check_writable, ensure_writable
from .._internals import probe_tracking_server
from ._base import METRIC_KEYS, Callback, epoch_numbers, import_extra, metric_keys


class OptunaPruning(Callback):
    """Report a metric to an Optuna trial after each epoch and end the fit
    when the study's pruner says the trial is not promising.

    The trial is shared, not copied, by the clones each fit works on (see
    ``shared_params`` in [`Callback`][skcallback.Callback]), so every fit of the
    objective reports to it. By default a pruned fit raises
    ``optuna.TrialPruned`` after the epoch, as Optuna's own integrations do,
    so Optuna marks the trial pruned with no code in the objective; the fit
    fails as a transaction, leaving the estimator as it was before ``fit``.

    With ``raise_pruned=False`` the fit stops cleanly instead, as
    EarlyStopping does: the estimator keeps the model, ``stop_reason_`` says
    the trial was pruned, and the objective raises ``optuna.TrialPruned``
    itself when ``trial.should_prune()``. Use this when the estimator is fitted
    inside ``cross_val_score``, ``cross_validate`` or a search: they catch an
    error raised by ``fit`` (with ``error_score=nan``, their default) and
    record a failed fold, so the trial would not end pruned.

    Requires optuna (``pip install optuna``, or ``pip install '.[optuna]'`` in a
    clone of skcallback).

    Parameters
    ----------
    trial : optuna.trial.Trial
        The trial the objective was given.
    monitor : str, default="valid_loss"
        The metric reported, recorded by the fit (``train_loss``,
        ``valid_loss`` or an [`EpochScoring`][skcallback.callbacks.EpochScoring]
        name). The study's
        direction decides whether lower is better.
    raise_pruned : bool, default=True
        Raise ``optuna.TrialPruned`` from ``fit`` when the trial is pruned;
        False stops the fit cleanly after the epoch instead.

    Attributes
    ----------
    pruned_epoch_ : int or None
        The epoch after which the trial was pruned, or None.

    Notes
    -----
    Memory: the trial (shared, not copied) and the epoch it pruned.

    Examples
    --------
    >>> import numpy as np, optuna
    >>> from skcallback import NeuralRegressor
    >>> from skcallback.callbacks import OptunaPruning
    >>> X = np.random.RandomState(0).normal(size=(100, 3)); y = X.sum(axis=1)
    >>> def objective(trial):
    ...     est = NeuralRegressor(lr=trial.suggest_float("lr", 1e-4, 1e-1, log=True),
    ...                           max_epochs=5, random_state=0,
    ...                           callbacks=[OptunaPruning(trial)])
    ...     est.fit(X, y)  # raises optuna.TrialPruned when the trial is pruned
    ...     return est.history_[-1]["valid_loss"]
    >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    >>> study.optimize(objective, n_trials=4)
    >>> len(study.trials)
    4
    """

    shared_params = ("trial",)
    parameter_constraints = {
        "monitor": (lambda v: isinstance(v, str), "a metric name"),
        "raise_pruned": (lambda v: isinstance(v, bool), "True or False"),
    }

    def __init__(
        self, trial: Any = None, monitor: str = "valid_loss", raise_pruned: bool = True
    ) -> None:
        self.trial = trial
        self.monitor = monitor
        self.raise_pruned = raise_pruned

    def setup(self, plan: Any) -> None:
        optuna = import_extra("optuna", "optuna", "OptunaPruning")
        self._require(
            "trial",
            isinstance(self.trial, optuna.trial.BaseTrial),
            "the optuna trial given to the objective",
        )
        self._key = plan.monitored("OptunaPruning", self.monitor)
        study = getattr(self.trial, "study", None)
        if study is None:  # a FixedTrial: nothing to report to
            return
        if len(study.directions) > 1:
            raise ValueError(
                "OptunaPruning needs a single-objective study: Optuna does not prune "
                "multi-objective trials."
            )
        finished = study.get_trials(deepcopy=False, states=_finished(optuna))
        if any(t.number == self.trial.number for t in finished):
            raise ValueError(
                f"OptunaPruning was given trial {self.trial.number}, which has finished; "
                "create the estimator inside the objective, with the trial it is given."
            )
        lower_is_better = plan.metrics.get(self._key)
        minimizing = study.direction == optuna.study.StudyDirection.MINIMIZE
        if lower_is_better is not None and lower_is_better != minimizing:
            raise ValueError(
                f"OptunaPruning reports {self._key!r}, where "
                f"{'lower' if lower_is_better else 'higher'} is better, to a study that "
                f"{'minimizes' if minimizing else 'maximizes'}: the pruner would stop the best "
                "trials. Monitor a metric going the study's way, or create the study with "
                f"direction={'minimize' if lower_is_better else 'maximize'!r}."
            )

    def on_fit_begin(self, ctx: Context) -> None:
        self.pruned_epoch_: int | None = None

    def on_epoch_end(self, ctx: Context) -> None:
        if self._key not in ctx.metrics:  # an epoch that did not validate or score
            return
        value = float(ctx.metrics[self._key])
        self.trial.report(value, step=ctx.epoch)
        if self.pruned_epoch_ is None and self.trial.should_prune():
            self.pruned_epoch_ = ctx.epoch
            reason = (
                f"Optuna pruned trial {self.trial.number} after epoch {ctx.epoch} "
                f"({self._key}={value:.6g})"
            )
            if self.raise_pruned:
                optuna = import_extra("optuna", "optuna", "OptunaPruning")
                raise optuna.TrialPruned(reason)
            ctx.request_stop(reason)


def _finished(optuna: Any) -> tuple[Any, ...]:
    state = optuna.trial.TrialState
    return (state.COMPLETE, state.PRUNED, state.FAIL)


class TensorBoardLogger(Callback):
    """Write each epoch's metrics as TensorBoard scalars, one run folder per
    fit.

    Each fit writes to ``<log_dir>/<fit>``, named as
    [`Checkpoint`][skcallback.callbacks.Checkpoint] and
    [`CSVLogger`][skcallback.callbacks.CSVLogger] name theirs: by a digest
    of the estimator's parameters and training data. Each candidate and
    fold of a search is its own run. A fit that continues training
    (``warm_start``, each ``partial_fit`` call, a resumed fit) continues the
    run of the fit it continues. The same fit run again from scratch adds to the same run (use
    another ``log_dir`` to keep both apart). The estimator's parameters are
    logged as text in the run. The folder is created and proven writable
    before training.

    Requires tensorboard (``pip install tensorboard``, or
    ``pip install '.[tensorboard]'`` in a clone of skcallback).

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

    Notes
    -----
    Memory: the event writer during the fit; nothing after it (the events
    are on disk).

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    >>> from skcallback import NeuralRegressor
    >>> from skcallback.callbacks import TensorBoardLogger
    >>> X = np.random.RandomState(0).normal(size=(100, 3)); y = X.sum(axis=1)
    >>> est = NeuralRegressor(max_epochs=3, random_state=0,
    ...                       callbacks=[TensorBoardLogger(log_dir=tempfile.mkdtemp())]).fit(X, y)
    >>> run = EventAccumulator(est.callbacks_.tensor_board_logger.run_dir_).Reload()
    >>> run.Tags()["scalars"]
    ['train_loss', 'valid_loss', 'lr', 'dur']
    >>> [event.step for event in run.Scalars("valid_loss")]
    [1, 2, 3]
    """

    rank_zero_only = True  # writes or prints: once, on rank 0

    parameter_constraints = {
        "log_dir": (lambda v: isinstance(v, str | os.PathLike), "a folder path"),
        "keys": METRIC_KEYS,
    }

    def __init__(self, log_dir: str | os.PathLike = "runs", keys: list[str] | None = None) -> None:
        self.log_dir = log_dir
        self.keys = keys

    def setup(self, plan: Any) -> None:
        self._summary = import_extra(
            "torch.utils.tensorboard", "tensorboard", "TensorBoardLogger", package="tensorboard"
        )
        self._keys = metric_keys(self, plan)
        self._run = str(Path(self.log_dir) / plan.run_name())
        check_writable(Path(self._run), "TensorBoardLogger", "log_dir")

    def on_fit_begin(self, ctx: Context) -> None:
        ensure_writable(Path(self._run), "TensorBoardLogger", "log_dir")
        self._writer = self._summary.SummaryWriter(self._run)
        self._writer.add_text("estimator", repr(ctx.estimator), global_step=ctx.epoch)
        self.run_dir_ = self._run

    def on_epoch_end(self, ctx: Context) -> None:
        for key, value in epoch_numbers(ctx.metrics, self._keys):
            self._writer.add_scalar(key, value, global_step=ctx.epoch)
        self._writer.flush()

    def on_fit_end(self, ctx: Context) -> None:
        writer = vars(self).pop("_writer", None)
        if writer is not None:
            writer.close()


#: Characters MLflow accepts in metric and parameter names (a colon too,
#: except on Windows).
_MLFLOW_KEY = re.compile(r"[\w\-. /]+" if os.name == "nt" else r"[\w\-. /:]+")
#: MLflow's longest metric or parameter name.
_MLFLOW_KEY_LENGTH = 250
#: Seconds an HTTP tracking server has to answer the first request of a fit.
_PROBE_TIMEOUT = 10


class MlflowLogger(Callback):
    """Log each fit as an MLflow run: the estimator's parameters when the
    run starts, each epoch's metrics, and how the fit ended.

    Each fit is its own run, nested under a parent run when there is one:
    ``parent_run_id``, else the MLflow run active where the fit started, or
    where a search, a cross-validation or a pipeline cloned the estimator
    (so ``with mlflow.start_run(): search.fit(X, y)`` nests every candidate
    and fold under the search's run, in worker processes too). A
    ``warm_start`` fit, a ``partial_fit`` call and a resumed fit
    ([`Checkpoint`][skcallback.callbacks.Checkpoint] with ``resume=True``)
    continue the run of the fit they continue. A run ends ``FINISHED``
    (with the stop reason as the tag ``stop_reason``), ``FAILED`` or, after
    Ctrl-C, ``KILLED``.

    The store and the experiment are opened before training, so a wrong
    URI, an HTTP server that does not answer (within seconds), a deleted
    experiment or parent run fail before the first batch; so do metric and
    callback names MLflow refuses, before the run is created.

    Requires MLflow: ``pip install '.[mlflow]'`` in a clone of skcallback
    installs ``mlflow-skinny`` and what its SQLite store needs
    (``pip install mlflow-skinny sqlalchemy alembic``).

    Parameters
    ----------
    tracking_uri : str or None, default=None
        Where runs are stored. None uses the URI in effect where the
        estimator is fit (for a search's fits in worker processes, where the
        search cloned it): ``mlflow.set_tracking_uri``, the
        ``MLFLOW_TRACKING_URI`` environment variable, else MLflow's default,
        a local SQLite file ``mlflow.db`` in the working folder (MLflow 3
        no longer creates runs in its old ``mlruns`` file store).
    experiment : str, default="skcallback"
        The experiment holding the runs; created when missing. A run nested
        under a parent goes to the parent's experiment, since MLflow shows
        children under their parent within one experiment.
    parent_run_id : str or None, default=None
        The run under which each fit's run is nested; None nests under the
        active run described above, if any.
    keys : list of str or None, default=None
        The metrics to log; None logs every finite number an epoch records
        except ``epoch`` itself (the run's step).

    Attributes
    ----------
    run_id_ : str
        The last fit's run.
    tracking_uri_ : str
        The store the last fit logged to.

    Notes
    -----
    Memory: the tracking client during the fit and the run's id; the metrics
    are on the tracking server.

    Examples
    --------
    >>> import os, tempfile
    >>> import mlflow
    >>> import numpy as np
    >>> from skcallback import NeuralRegressor
    >>> from skcallback.callbacks import MlflowLogger
    >>> X = np.random.RandomState(0).normal(size=(100, 3)); y = X.sum(axis=1)
    >>> uri = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "mlflow.db")
    >>> est = NeuralRegressor(max_epochs=3, random_state=0,
    ...                       callbacks=[MlflowLogger(tracking_uri=uri)]).fit(X, y)
    >>> client = mlflow.MlflowClient(uri)
    >>> run = client.get_run(est.callbacks_.mlflow_logger.run_id_)
    >>> run.info.status, run.data.params["lr"]
    ('FINISHED', '0.001')
    >>> [metric.step for metric in client.get_metric_history(run.info.run_id, "valid_loss")]
    [1, 2, 3]
    """

    rank_zero_only = True  # writes or prints: once, on rank 0

    parameter_constraints = {
        "tracking_uri": (
            lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
            "None or a URI",
        ),
        "experiment": (lambda v: isinstance(v, str) and v.strip() != "", "a name"),
        "parent_run_id": (lambda v: v is None or isinstance(v, str), "None or an MLflow run id"),
        "keys": METRIC_KEYS,
    }

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment: str = "skcallback",
        parent_run_id: str | None = None,
        keys: list[str] | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.parent_run_id = parent_run_id
        self.keys = keys

    def __sklearn_clone__(self) -> MlflowLogger:
        new = cast(MlflowLogger, super().__sklearn_clone__())
        new._where = _clone_where(self._where)
        return new

    #: (tracking URI, active run, process id, thread id) where a search or a
    #: fit cloned the callback, for fits run in other processes or threads.
    _where: tuple[str, str | None, int, int] | None = None

    def setup(self, plan: Any) -> None:
        mlflow = import_extra("mlflow", "mlflow", "MlflowLogger")
        self._keys = metric_keys(self, plan)
        # Every callback has declared its metrics (declare runs before setup):
        # a name MLflow refuses fails the fit before any callback makes a file.
        self._check_metric_names(plan)
        where_uri, active = _fit_context(mlflow, self._where)
        uri = self.tracking_uri if self.tracking_uri is not None else where_uri
        try:
            _probe(uri, self.experiment)  # reads only: a dead server fails here, at once
        except Exception as exc:
            raise ValueError(
                f"MlflowLogger cannot open experiment {self.experiment!r} at tracking_uri "
                f"{uri!r}: {exc}"
            ) from exc
        parent = self.parent_run_id
        if parent is None and self.tracking_uri in (None, where_uri):
            parent = active
        self._uri, self._parent, self._fit_name = uri, parent, plan.fit_name()
        # Only a run this fit's logger created continues: a saved or
        # checkpointed run id is data, and must not open someone else's run.
        previous = getattr(self, "run_id_", None)
        continuing = plan.continuing or plan.resume is not None
        self._previous = previous if continuing and isinstance(previous, str) else None
        self._resumed = plan.resume is not None

    def on_fit_begin(self, ctx: Context) -> None:
        # The store is opened (an experiment created, a local store's file
        # made) here, once every callback's setup has passed.
        mlflow = import_extra("mlflow", "mlflow", "MlflowLogger")
        self._experiment_id = self._open_experiment(mlflow)
        self._continue = self._continued_run()
        params = self._params(ctx)
        self._skipped: set[str] = set()
        self.tracking_uri_ = self._uri
        if self._continue is not None:
            self.run_id_ = self._continue
            self._client.update_run(self.run_id_, status="RUNNING")
            self._status: str | None = "FINISHED"  # the run is open: on_fit_end closes it
            return
        tags = {"skcallback.fit": self._fit_name, "estimator": type(ctx.estimator).__name__}
        if self._parent is not None:
            tags["mlflow.parentRunId"] = self._parent
        run = self._client.create_run(self._experiment_id, tags=tags)
        self.run_id_ = run.info.run_id
        self._status = "FINISHED"
        for start in range(0, len(params), 100):
            self._client.log_batch(self.run_id_, params=params[start : start + 100])

    def _open_experiment(self, mlflow: Any) -> str:
        """The id of the experiment the fit's run goes to: the parent run's
        (MLflow shows children under their parent within one experiment),
        else ``experiment``, created when missing."""
        uri = self._uri
        try:
            client = self._client = mlflow.tracking.MlflowClient(uri)
            experiment = client.get_experiment_by_name(self.experiment)
            experiment_id = (
                experiment.experiment_id
                if experiment is not None
                else _create_experiment(mlflow, client, self.experiment)
            )
        except Exception as exc:
            raise ValueError(
                f"MlflowLogger cannot open experiment {self.experiment!r} at tracking_uri "
                f"{uri!r}: {exc}"
            ) from exc
        if self._parent is not None:
            parent_run = _run_exists(client, self._parent)
            if parent_run is None or not _active(client, parent_run):
                raise ValueError(
                    f"MlflowLogger's parent run {self._parent!r} does not exist at {uri!r}, or "
                    "it or its experiment is deleted; "
                    + (
                        "pass parent_run_id=None or a run of that store."
                        if self.parent_run_id is not None
                        else "it is the active MLflow run: end it, or pass parent_run_id."
                    )
                )
            return str(parent_run.info.experiment_id)
        if experiment is not None and experiment.lifecycle_stage != "active":
            raise ValueError(
                f"MlflowLogger's experiment {self.experiment!r} at {uri!r} is deleted, and MLflow "
                "logs no runs to it nor creates another of that name; restore it (mlflow "
                "experiments restore) or pass another experiment."
            )
        return str(experiment_id)

    def _continued_run(self) -> str | None:
        """The run a continuing fit logs on: the previous fit's, when this
        logger's fit created it (tagged with a fit name; the same fit's when
        resumed) and it is live in the experiment."""
        if self._previous is None:
            return None
        run = _run_exists(self._client, self._previous)
        fit = None if run is None else run.data.tags.get("skcallback.fit")
        if (
            run is not None
            and run.info.experiment_id == self._experiment_id
            and run.info.lifecycle_stage == "active"
            and fit is not None
            and (not self._resumed or fit == self._fit_name)
        ):
            return self._previous
        return None

    def _check_metric_names(self, plan: Any) -> None:
        """Raise a ValueError naming the metrics to log that MLflow refuses."""
        keys = self._keys if self._keys is not None else list(plan.metrics)
        bad = [key for key in keys if key != "epoch" and not _mlflow_name(key)]
        if bad:
            raise ValueError(
                f"MlflowLogger cannot log the metrics {bad}: MLflow names take up to "
                f"{_MLFLOW_KEY_LENGTH} letters, digits, '_', '-', '.', '/', ':' and spaces, and "
                "are not paths such as '/x' or 'a/../b'. Rename them, or pass keys= without "
                "them."
            )

    def _params(self, ctx: Context) -> list[Any]:
        """The estimator's parameters as MLflow params, with its metric and
        parameter names checked (the metrics again: a callback set up after
        this one may declare one)."""
        from mlflow.entities import Param

        self._check_metric_names(ctx.plan)
        params = [
            Param(key, str(value)[:6000])
            for key, value in ctx.estimator.get_params(deep=True).items()
            if _scalar(value)
            or (isinstance(value, tuple | list) and all(_scalar(item) for item in value))
        ]
        bad = [param.key for param in params if not _mlflow_name(param.key)]
        if bad and self._continue is None:
            raise ValueError(
                f"MlflowLogger cannot log the parameters {bad}: MLflow names take up to "
                f"{_MLFLOW_KEY_LENGTH} letters, digits, '_', '-', '.', '/', ':' and spaces, and "
                "are not paths. Rename the callbacks whose names they hold."
            )
        return params

    def on_epoch_end(self, ctx: Context) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [
            Metric(key, value, stamp, ctx.epoch)
            for key, value in epoch_numbers(ctx.metrics, self._keys)
            if self._loggable(key)
        ]
        self._store(lambda client: client.log_batch(self.run_id_, metrics=metrics))

    def _store(self, write: Any) -> None:
        """Write to the tracking store. Once training has started, a store
        that fails (a server gone, a run deleted) must not cost the model:
        the logger warns, stops logging for the rest of the fit, and the fit
        goes on."""
        client = vars(self).get("_client")
        if client is None:
            return
        try:
            write(client)
        except Exception as exc:
            del self._client
            self._status = None
            warnings.warn(
                f"MlflowLogger stopped logging run {self.run_id_}: {type(exc).__name__}: "
                f"{exc}. Training goes on; the run stays incomplete.",
                RuntimeWarning,
                stacklevel=3,
            )

    def _loggable(self, key: Any) -> bool:
        """Whether MLflow takes ``key``; a metric no callback declared (set
        in ``ctx.metrics`` by a hook) and MLflow refuses is skipped with a
        warning, once per fit, rather than failing the fit."""
        if _mlflow_name(key):
            return True
        if key not in self._skipped:
            self._skipped.add(key)
            warnings.warn(
                f"MlflowLogger skips the metric {key!r}, a name MLflow refuses.",
                UserWarning,
                stacklevel=2,
            )
        return False

    def on_exception(self, ctx: Context) -> None:
        if "_status" in vars(self):  # the run is open
            self._status = "KILLED" if isinstance(ctx.exception, KeyboardInterrupt) else "FAILED"

    def on_fit_end(self, ctx: Context) -> None:
        status = vars(self).pop("_status", None)
        if "_client" not in vars(self) or status is None:  # the run never started, or broke
            vars(self).pop("_client", None)
            return
        if status == "FINISHED" and ctx.stop_reason:
            self._store(lambda client: client.set_tag(self.run_id_, "stop_reason", ctx.stop_reason))
            if ctx.stop_reason == "KeyboardInterrupt":  # a Ctrl-C'd fit stops cleanly
                status = "KILLED"
        self._store(lambda client: client.set_terminated(self.run_id_, status=status))
        vars(self).pop("_client", None)


def _mlflow_where() -> tuple[str, str | None, int, int] | None:
    """The tracking URI and active run of this thread, and where that is
    (process and thread), when MLflow is in use (imported); None otherwise."""
    mlflow = sys.modules.get("mlflow")
    if mlflow is None:
        return None
    run = mlflow.active_run()
    run_id = None if run is None else run.info.run_id
    return mlflow.get_tracking_uri(), run_id, os.getpid(), threading.get_ident()


def _clone_where(where: tuple[str, str | None, int, int] | None) -> Any:
    """What a clone notes: what is in effect here, unless the callback was
    cloned in another process or thread, whose notes a search's worker keeps."""
    here = _mlflow_where()
    if where is None or (here is not None and where[2:] == here[2:]):
        return here
    return where


def _fit_context(mlflow: Any, where: tuple[str, str | None, int, int] | None) -> Any:
    """The tracking URI and the run to nest under for a fit starting here:
    those in effect here, except in another process or thread than the one
    that cloned the callback (a search's worker), which use what was in
    effect there. The URI is per process and the active run per thread."""
    here = _mlflow_where() or (mlflow.get_tracking_uri(), None, os.getpid(), 0)
    if where is None:
        return here[:2]
    uri, run, pid, thread = where
    if pid != os.getpid():
        return uri, run
    if here[1] is None and thread != threading.get_ident():
        return here[0], run
    return here[:2]


def _probe(uri: str, experiment: str) -> None:
    """Ask an HTTP tracking server once, without MLflow's retries, so that
    one that does not answer fails the fit in seconds, not minutes."""
    if urllib.parse.urlsplit(uri).scheme in ("http", "https"):
        probe_tracking_server(uri, experiment, _PROBE_TIMEOUT)


def _scalar(value: Any) -> bool:
    """Whether a parameter is logged as it prints: None, a string or a number."""
    return value is None or isinstance(value, str | numbers.Number)


def _mlflow_name(key: Any) -> bool:
    """Whether MLflow takes ``key`` as a metric or parameter name."""
    if not isinstance(key, str) or len(key) > _MLFLOW_KEY_LENGTH:
        return False
    normal = posixpath.normpath(key)
    return bool(_MLFLOW_KEY.fullmatch(key)) and normal == key and not normal.startswith(("/", ".."))


def _active(client: Any, run: Any) -> bool:
    """Whether neither ``run`` nor its experiment is deleted."""
    if run.info.lifecycle_stage != "active":
        return False
    return client.get_experiment(run.info.experiment_id).lifecycle_stage == "active"


def _create_experiment(mlflow: Any, client: Any, name: str) -> str:
    try:
        return str(client.create_experiment(name))
    except mlflow.exceptions.MlflowException:  # created meanwhile by a parallel fit
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)


def _run_exists(client: Any, run_id: str) -> Any:
    try:
        return client.get_run(run_id)
    except Exception:
        return None
