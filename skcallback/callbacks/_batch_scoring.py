"""BatchScoring: a running training metric within each epoch (MXNet's
``env$metric``), from the predictions the loop made."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import sklearn
import torch

from .._context import Context
from ._base import Callback, positive_int
from ._scoring import _CachedPredictions, resolve_scorer, scorer_label, try_scorer


class BatchScoring(Callback):
    """Score training batches with a scikit-learn scorer as they are
    trained, and keep the epoch's running mean in ``ctx.metrics``.

    After each scored batch, ``ctx.metrics[name]`` holds the mean of the
    epoch's batch scores so far, weighted by each batch's rows (its summed
    sample weights when the fit has them): callbacks and loggers see it
    grow within the epoch (MXNet's ``env$metric``), and the epoch's final
    mean becomes its history value, which EarlyStopping, Checkpoint and
    LRScheduler can monitor. The score of a batch is that of the module's
    output for it, before the batch's optimizer step; no extra forward pass
    is made.

    For a metric that is a mean over samples (accuracy, squared or absolute
    error) the running mean is the metric of the rows scored so far; for
    others (``r2``, ROC AUC) it is a mean of batch scores, which depends on
    the batch size: [`EpochScoring`][skcallback.callbacks.EpochScoring]
    with ``on_train=True`` scores the epoch's predictions as a whole. A
    batch the scorer cannot score (ROC AUC on a batch of one class) is
    left out, with one warning per fit.

    Cost: the scorer runs on the CPU for each scored batch, with one host
    synchronisation; scikit-learn's scorers check their inputs at each call
    (about 0.2 ms on small batches, more than a small MLP's whole step), so
    ``every=k`` scores one batch in ``k``. Reading ``ctx.y_pred`` keeps the
    built-in MLP's hand-derived step.

    The batch is scored after its backward pass, before the optimizer step
    (``on_after_backward``): a checkpoint saved after the step holds its
    score, and callbacks read the updated mean from ``on_after_step`` on.
    Batches skipped by ``ctx.skip_batch()`` are not scored.

    Parameters
    ----------
    scoring : str or callable
        A scorer name (``"accuracy"``, ``"neg_mean_squared_error"``, ...) or
        a callable ``scorer(estimator, X, y)``.
    every : int, default=1
        Score the first training batch of each epoch and every ``every``-th
        after it (batches 1, 1 + every, ...).
    name : str, optional
        The metric's key and the callback's name; default
        ``train_<scoring>``. Give another one beside
        ``EpochScoring(scoring, on_train=True)``, which has the same default.
    lower_is_better : bool, optional
        Direction for EarlyStopping and best marks; scikit-learn scorers are
        higher-is-better, so the default is False.

    Attributes
    ----------
    score_total_ : float
        The current epoch's sum of batch score times batch weight.
    weight_total_ : float
        The current epoch's sum of the scored batches' weights (both saved
        in checkpoints, so a fit resumed mid-epoch continues the mean).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skcallback import NeuralClassifier
    >>> from skcallback.callbacks import BatchScoring, LambdaCallback
    >>> X, y = load_iris(return_X_y=True)
    >>> seen = []
    >>> clf = NeuralClassifier(
    ...     batch_size=32, max_epochs=2, random_state=0,
    ...     callbacks=[
    ...         BatchScoring("accuracy"),
    ...         LambdaCallback(on_train_batch_end=lambda ctx: seen.append(
    ...             ctx.metrics["train_accuracy"])),
    ...     ],
    ... ).fit(X, y)
    >>> len(seen), clf.history_[-1]["train_accuracy"] == seen[-1]
    (10, True)
    """

    parameter_constraints = {
        "scoring": (lambda v: isinstance(v, str) or callable(v), "a scorer name or a callable"),
        "every": (positive_int, "an int >= 1 (training batches)"),
        "name": (lambda v: v is None or (isinstance(v, str) and v != ""), "None or a name"),
        "lower_is_better": (lambda v: v is None or isinstance(v, bool), "None, True or False"),
    }

    def __init__(
        self,
        scoring: str | Callable[..., float],
        every: int = 1,
        name: str | None = None,
        lower_is_better: bool | None = None,
    ) -> None:
        self.scoring = scoring
        self.every = every
        self.name = name
        self.lower_is_better = lower_is_better

    def _default_name(self) -> str:
        return self.name or f"train_{scorer_label(self.scoring)}"

    def declare(self, plan: Any) -> None:
        plan.declare_metric(self._default_name(), lower_is_better=bool(self.lower_is_better))

    def setup(self, plan: Any) -> None:
        self._scorer = resolve_scorer(self.scoring, plan, "BatchScoring")
        self._warned = False
        try_scorer(self._scorer, self.scoring, plan, "BatchScoring")

    def on_epoch_begin(self, ctx: Context) -> None:
        # Not fired when a fit resumes mid-epoch: the totals then come from
        # the checkpoint (load_state_dict).
        self.score_total_, self.weight_total_ = 0.0, 0.0
        ctx.metrics[self._default_name()] = math.nan

    def on_after_backward(self, ctx: Context) -> None:
        # Scored before the step: a checkpoint saved after it (on_after_step)
        # records this batch as done, so it must hold the batch's score too.
        # Skipped batches never get here.
        if (ctx.batch - 1) % self.every:
            return
        weights = ctx.sample_weight_batch
        weight = float(len(ctx.y_batch) if weights is None else weights.sum())
        if weight <= 0:
            return
        score = self._score(ctx, weights)
        if score is None:
            return
        self.score_total_ += score * weight
        self.weight_total_ += weight
        ctx.metrics[self._default_name()] = self.score_total_ / self.weight_total_

    def _score(self, ctx: Context, weights: torch.Tensor | None) -> float | None:
        """The scorer on the batch's predictions; None (warned once) when it
        cannot score this batch."""
        plan = ctx.plan
        output = ctx.y_pred.detach().cpu()
        kwargs = {} if weights is None else {"sample_weight": weights.cpu().numpy()}
        problem = None
        try:
            # Our own outputs and targets: scikit-learn's checks of the
            # parameters and of finiteness (a NaN score is reported below)
            # are a third of a scorer's cost on a small batch.
            with (
                warnings.catch_warnings(),
                sklearn.config_context(assume_finite=True, skip_parameter_validation=True),
            ):
                warnings.simplefilter("ignore")  # undefined for this batch: reported below
                score = float(
                    self._scorer(
                        _CachedPredictions(plan, output),
                        None,
                        plan.outputs.targets(ctx.y_batch),
                        **kwargs,
                    )
                )
        except ValueError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if math.isfinite(score):
                return score
            problem = f"the score was {score}"
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"BatchScoring({self.scoring!r}) could not score batch {ctx.batch} of epoch "
                f"{ctx.epoch} ({problem}); such batches are left out of "
                f"{self._default_name()!r}. Larger batches, or EpochScoring(on_train=True), "
                "score more rows at once.",
                UserWarning,
                stacklevel=2,
            )
        return None
