"""EpochScoring: scikit-learn scorers on the predictions the loop made."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.metrics import get_scorer

from .._context import Context
from ._base import Callback, positive_int

_PHASE_HOOKS = ("begin", "batch_end", "end")


class _CachedPredictions:
    """Stands in for the estimator inside a scorer: answers ``predict`` (and
    for classifiers ``predict_proba`` and ``classes_``) from outputs the loop
    already computed, through the fit plan's output adapter."""

    def __init__(self, plan: Any, output: torch.Tensor) -> None:
        self._plan, self._output = plan, output
        if hasattr(plan.outputs, "classes_"):
            self.classes_ = plan.outputs.classes_

    def __sklearn_tags__(self):
        return self._plan.estimator.__sklearn_tags__()

    def predict(self, X: Any) -> np.ndarray:
        return self._plan.outputs.predict(self._output)

    def predict_proba(self, X: Any) -> np.ndarray:
        return self._plan.outputs.predict_proba(self._output)


_PROBABILISTIC = {"predict_proba", "decision_function", "predict_log_proba"}


def scorer_label(scoring: Any) -> str:
    """The name a scorer gives its metric: the scoring string, or a
    function's name."""
    return scoring if isinstance(scoring, str) else getattr(scoring, "__name__", "score")


def resolve_scorer(scoring: Any, plan: Any, owner: str) -> Callable[..., Any]:
    """The scorer ``scoring`` names (or is), checked against the estimator
    of ``plan``: a scorer of probabilities on a regressor is refused in the
    words of ``owner`` (the callback class's name)."""
    if not isinstance(scoring, str):
        return scoring
    try:
        scorer = get_scorer(scoring)
    except ValueError:
        raise ValueError(
            f"The 'scoring' parameter of {owner} must be a scikit-learn scorer name "
            "(see sklearn.metrics.get_scorer_names()) or a callable scorer(estimator, X, y); "
            f"got {scoring!r}."
        ) from None
    response = getattr(scorer, "_response_method", "predict")
    needs = {response} if isinstance(response, str) else set(response)
    if needs <= _PROBABILISTIC and not hasattr(plan.outputs, "predict_proba"):
        raise ValueError(
            f"{owner}({scoring!r}) needs predicted probabilities, which a "
            f"{type(plan.estimator).__name__} does not give; use a regression scorer "
            "such as 'r2' or 'neg_mean_squared_error'."
        )
    return scorer


def try_scorer(scorer: Callable[..., Any], scoring: Any, plan: Any, owner: str) -> None:
    """Score predictions of the fit's own targets: a scorer that cannot
    score this task (a binary metric on three classes, a classification
    metric on a regressor, a ``pos_label`` that is no label) fails before
    training rather than after an epoch or a batch. The output is the
    perfect one scaled and shifted: a classifier's labels and ranking stay,
    while a regressor's integer targets become fractions, as its
    predictions will be."""
    y = plan.target_sample
    output = plan.outputs.perfect_output(y) * 1.25 + 0.37
    try:
        float(scorer(_CachedPredictions(plan, output), None, plan.outputs.targets(y)))
    except Exception as exc:
        raise ValueError(
            f"{owner}({scoring!r}) cannot score this fit's targets "
            f"({type(plan.estimator).__name__}): {type(exc).__name__}: {exc}"
        ) from exc


class EpochScoring(Callback):
    """Score each epoch with a scikit-learn scorer, without an extra forward
    pass: it reuses the predictions the loop made for the batches.

    Parameters
    ----------
    scoring : str or callable
        A scorer name (``"accuracy"``, ``"r2"``, ``"neg_root_mean_squared_error"``,
        ...) or a callable ``scorer(estimator, X, y)``.
    on_train : bool, default=False
        Score the training batches (as they were predicted during the epoch)
        instead of the validation data.
    name : str, optional
        The history key, and the callback's name; default
        ``valid_<scoring>`` or ``train_<scoring>``.
    lower_is_better : bool, optional
        Direction for EarlyStopping and best marks; scikit-learn scorers are
        higher-is-better, so the default is False.
    every : int, default=1
        Score every ``every``-th epoch (counted from the start of training)
        and the last one (the fit's ``max_epochs``-th, or one in which a
        stop was requested before its phase began). Other epochs record no
        value: the key is missing from their ``history_`` record, and the
        callbacks that watch it skip them (EarlyStopping's patience counts
        scored epochs). A validation score is also missing in epochs that
        do not validate (the estimator's ``validate_every``).

    Notes
    -----
    Memory: the module's outputs, targets and sample weights of the
    epoch's scored phase, until the phase ends (the size of the training
    or validation targets times the outputs per row); nothing after the
    fit.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skcallback import NeuralClassifier
    >>> from skcallback.callbacks import EarlyStopping, EpochScoring
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NeuralClassifier(
    ...     max_epochs=5, random_state=0,
    ...     callbacks=[EpochScoring("accuracy"), EarlyStopping(monitor="valid_accuracy")],
    ... ).fit(X, y)
    >>> len(clf.history_.get("valid_accuracy"))
    5
    """

    parameter_constraints = {
        "lower_is_better": (lambda v: v is None or isinstance(v, bool), "None, True or False"),
        "scoring": (lambda v: isinstance(v, str) or callable(v), "a scorer name or a callable"),
        "every": (positive_int, "an int >= 1"),
    }

    def __init__(
        self,
        scoring: str | Callable[..., float],
        on_train: bool = False,
        name: str | None = None,
        lower_is_better: bool | None = None,
        every: int = 1,
    ) -> None:
        self.scoring = scoring
        self.on_train = on_train
        self.name = name
        self.lower_is_better = lower_is_better
        self.every = every

    def _default_name(self) -> str:
        return self.name or f"{'train' if self.on_train else 'valid'}_{scorer_label(self.scoring)}"

    def setup(self, plan: Any) -> None:
        self._scorer = resolve_scorer(self.scoring, plan, "EpochScoring")
        try_scorer(self._scorer, self.scoring, plan, "EpochScoring")
        if not self._records(plan):
            warnings.warn(
                f"EpochScoring({self.scoring!r}) scores validation data but this fit has "
                "none, so it records nothing; set on_train=True, validation_fraction, or "
                "pass X_val and y_val.",
                UserWarning,
                stacklevel=2,
            )

    def declare(self, plan: Any) -> None:
        if self._records(plan):
            name, lower = self._default_name(), bool(self.lower_is_better)
            plan.declare_metric(name, lower_is_better=lower, finite=True)

    def _records(self, plan: Any) -> bool:
        """Whether this fit has the data the score is computed on."""
        self._active = self.on_train or plan.has_validation
        return self._active

    def idle_hooks(self) -> set[str]:
        if not getattr(self, "_active", True):
            return {f"on_{phase}_{hook}" for phase in ("train", "valid") for hook in _PHASE_HOOKS}
        other = "valid" if self.on_train else "train"
        return {f"on_{other}_{hook}" for hook in _PHASE_HOOKS}

    def _start(self, ctx: Context) -> None:
        self._due = ctx.epoch % self.every == 0 or ctx.epoch >= ctx.max_epochs or ctx.stop_requested
        self._outputs: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []
        self._weights: list[torch.Tensor] = []

    def _collect(self, ctx: Context) -> None:
        if ctx.y_pred is None or not self._due:  # a skipped batch, an epoch not scored
            return
        self._outputs.append(ctx.y_pred.detach())
        self._targets.append(ctx.y_batch)
        if ctx.sample_weight_batch is not None:
            self._weights.append(ctx.sample_weight_batch)

    def _score(self, ctx: Context) -> None:
        if not self._outputs:
            return
        plan = ctx.plan
        output = torch.cat(self._outputs).cpu()
        y_true = plan.outputs.targets(torch.cat(self._targets))
        kwargs = {}
        if self._weights:
            kwargs["sample_weight"] = torch.cat(self._weights).cpu().numpy()
        name = self._default_name()
        try:
            score = self._scorer(_CachedPredictions(plan, output), None, y_true, **kwargs)
        except Exception as exc:
            raise ValueError(
                f"EpochScoring({self.scoring!r}) could not score epoch {ctx.epoch}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        ctx.metrics[name] = float(score)
        del self._outputs, self._targets, self._weights

    on_train_begin = on_valid_begin = _start
    on_train_batch_end = on_valid_batch_end = _collect
    on_train_end = on_valid_end = _score
