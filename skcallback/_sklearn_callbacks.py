"""scikit-learn's own callbacks (``sklearn.callback``, scikit-learn >= 1.9).

A fit is the root task of the estimator's task tree and each epoch a
sub-task named ``"epoch"``. The epochs are reported by ``_EpochTasks``,
an internal callback that joins the fit's hook table only when scikit-learn
callbacks are set on the estimator or propagated to it by a meta-estimator,
so ordinary fits, in searches and pipelines too, pay nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import sklearn

from ._fitted_state import is_fitted_key
from ._internals import open_root_task, sklearn_callbacks_set
from .callbacks._base import Callback

try:
    from sklearn.callback import CallbackSupportMixin, with_callbacks

    AVAILABLE = True
except ImportError:  # scikit-learn < 1.9
    AVAILABLE = False

    class CallbackSupportMixin:  # type: ignore[no-redef]
        """Stand-in for scikit-learn < 1.9, whose ``sklearn.callback`` is absent."""

        def set_callbacks(self, *callbacks: Any) -> Any:
            """Not available: scikit-learn's callbacks need scikit-learn >= 1.9."""
            raise RuntimeError(
                "set_callbacks needs scikit-learn >= 1.9, which has sklearn.callback; "
                f"scikit-learn {sklearn.__version__} is installed. skcallback's own "
                "callbacks (the callbacks= parameter) work with every version."
            )


#: Where the epoch tasks run among skcallback's callbacks: after
#: EarlyStopping (1000), so a stop it requests is seen first, and before
#: Checkpoint (inf), so a stop requested here is in the epoch's checkpoint.
EPOCH_TASKS_ORDER = 2000.0
#: The stop reason when a scikit-learn callback ends the fit.
STOP_REASON = "a scikit-learn callback's on_fit_task_end returned True"


def wanted(estimator: Any) -> bool:
    """Whether a fit of ``estimator`` reports to scikit-learn callbacks: its
    own or those a meta-estimator propagated to it. A search or pipeline
    links every fit to its task tree, but with no callback listening the
    fit skips the tasks."""
    return AVAILABLE and sklearn_callbacks_set(estimator)


@contextlib.contextmanager
def fit_scope(estimator: Any) -> Iterator[None]:
    """scikit-learn's callback management around a fit: every callback set
    up by the fit is torn down when it ends, whether it completes or fails."""
    if not wanted(estimator):
        yield
        return
    try:
        yield
    finally:
        # scikit-learn's public with_callbacks tears down, after the method
        # it wraps, the callbacks the fit set up: here a method doing nothing.
        with_callbacks(_set_up_by_the_fit)(estimator)


def _set_up_by_the_fit(estimator: Any) -> None:
    """Nothing: the fit, which ran before, set its callbacks up."""


def epoch_tasks(estimator: Any, plan: Any, X: Any, y: Any, sample_weight: Any) -> Any:
    """Open the fit's root task, announcing the epochs the plan will run
    (those left after a resume), and return the callback reporting them
    (``None`` when no scikit-learn callback listens)."""
    if not wanted(estimator):
        return None
    done = plan.first_epoch if plan.resume is None else plan.resume["epoch"]
    root = open_root_task(estimator, max_subtasks=plan.max_epochs - done)
    metadata = None if sample_weight is None else {"sample_weight": sample_weight}
    root.call_on_fit_task_begin(estimator=estimator, X=X, y=y, metadata=metadata)
    return _EpochTasks(estimator, root, X, y, metadata)


class _EpochTasks(Callback):
    """Reports each epoch to scikit-learn's callbacks as a sub-task of the
    fit; a ``True`` from ``on_fit_task_end`` stops after that epoch.

    The data given to the hooks is the data given to ``fit`` (validation
    rows included when they were split from it). A hook asking for a
    ``fitted_estimator`` gets a copy of the estimator holding the model as it
    stands after the epoch; nothing is computed for hooks that do not ask.
    """

    order = EPOCH_TASKS_ORDER
    # The estimator, its task and its data: shared by a copy, never cloned.
    shared_params = ("owner", "root", "X", "y", "metadata")
    _task: Any = None  # the epoch's task, between on_epoch_begin and on_epoch_end

    def __init__(self, owner: Any, root: Any, X: Any, y: Any, metadata: Any) -> None:
        self.owner, self.root = owner, root
        self.X, self.y, self.metadata = X, y, metadata

    def __repr__(self) -> str:
        return f"_EpochTasks(owner={type(self.owner).__name__})"

    def on_epoch_begin(self, ctx: Any) -> None:
        self._task = self.root.subcontext(task_name="epoch")
        self._task.call_on_fit_task_begin(
            estimator=self.owner, X=self.X, y=self.y, metadata=self.metadata
        )

    def on_epoch_end(self, ctx: Any) -> None:
        if self._task is None:  # an epoch resumed from a checkpoint began before
            self.on_epoch_begin(ctx)
        task, self._task = self._task, None
        work = ctx.estimator
        stop = task.call_on_fit_task_end(
            estimator=self.owner,
            X=self.X,
            y=self.y,
            metadata=self.metadata,
            reconstruction_attributes=lambda: _fitted_state(work, ctx),
        )
        if stop and not ctx.stop_requested:
            ctx.request_stop(STOP_REASON)

    def on_fit_end(self, ctx: Any) -> None:
        if ctx.exception is None:
            self.root.call_on_fit_task_end(
                estimator=self.owner, X=self.X, y=self.y, metadata=self.metadata
            )


def _fitted_state(work: Any, ctx: Any) -> dict[str, Any]:
    """The fitted attributes of the model as it stands (shared, not copied)."""
    state = {key: value for key, value in vars(work).items() if is_fitted_key(key)}
    state.update(n_iter_=ctx.epoch, n_steps_=ctx.step, stop_reason_=ctx.stop_reason)
    return state
