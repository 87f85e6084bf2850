"""EpochScoring: scikit-learn scorers on the predictions the loop made."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.metrics import get_scorer

from ._base import Callback


class _CachedPredictions:
    """Stands in for the estimator inside a scorer: answers ``predict`` from
    outputs the loop already computed."""

    def __init__(self, estimator: Any, output: torch.Tensor) -> None:
        self._estimator, self._output = estimator, output

    def __sklearn_tags__(self):
        return self._estimator.__sklearn_tags__()

    def predict(self, X: Any) -> np.ndarray:
        return self._estimator._predict_from_output(self._output)


class _CachedClassifierPredictions(_CachedPredictions):
    """The same, with ``classes_`` and ``predict_proba`` for classifiers."""

    def __init__(self, estimator: Any, output: torch.Tensor) -> None:
        super().__init__(estimator, output)
        self.classes_ = estimator.classes_

    def predict_proba(self, X: Any) -> np.ndarray:
        return self._estimator._proba_from_output(self._output)


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
    """

    def __init__(
        self,
        scoring: str | Callable[..., float],
        on_train: bool = False,
        name: str | None = None,
        lower_is_better: bool | None = None,
    ) -> None:
        self.scoring = scoring
        self.on_train = on_train
        self.name = name
        self.lower_is_better = lower_is_better

    def _default_name(self) -> str:
        if self.name:
            return self.name
        label = (
            self.scoring
            if isinstance(self.scoring, str)
            else getattr(self.scoring, "__name__", "score")
        )
        return f"{'train' if self.on_train else 'valid'}_{label}"

    def _lower_is_better_for(self, key: str) -> bool | None:
        if key != self._default_name():
            return None
        return bool(self.lower_is_better)

    def _inactive_hooks(self) -> set[str]:
        other = "valid" if self.on_train else "train"
        return {f"on_{other}_begin", f"on_{other}_batch_end", f"on_{other}_end"}

    def on_fit_begin(self, ctx: Any) -> None:
        self._scorer = get_scorer(self.scoring) if isinstance(self.scoring, str) else self.scoring

    def _start(self, ctx: Any) -> None:
        self._outputs: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []
        self._weights: list[torch.Tensor] = []

    def _collect(self, ctx: Any) -> None:
        if ctx.y_pred is None:  # a skipped batch
            return
        self._outputs.append(ctx.y_pred.detach())
        self._targets.append(ctx.y_batch)
        if ctx.sample_weight_batch is not None:
            self._weights.append(ctx.sample_weight_batch)

    def _score(self, ctx: Any) -> None:
        if not self._outputs:
            return
        estimator = ctx.estimator
        output = torch.cat(self._outputs).cpu()
        y_true = estimator._targets_for_scoring(torch.cat(self._targets))
        kwargs = {}
        if self._weights:
            kwargs["sample_weight"] = torch.cat(self._weights).cpu().numpy()
        is_classifier = hasattr(estimator, "_proba_from_output")
        proxy = (_CachedClassifierPredictions if is_classifier else _CachedPredictions)(
            estimator, output
        )
        ctx.metrics[self._default_name()] = float(self._scorer(proxy, None, y_true, **kwargs))
        del self._outputs, self._targets, self._weights

    on_train_begin = on_valid_begin = _start
    on_train_batch_end = on_valid_batch_end = _collect
    on_train_end = on_valid_end = _score
