"""NeuralClassifier."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from torch import nn

from ._base import NeuralEstimatorBase


class NeuralClassifier(ClassifierMixin, NeuralEstimatorBase):
    """A scikit-learn classifier trained by a PyTorch loop with callbacks.

    Binary and multiclass targets with any labels (strings too). The module
    outputs one logit per class; the loss is cross-entropy unless
    ``criterion`` says otherwise, and ``predict_proba`` is their softmax.
    The validation split is stratified.

    Parameters
    ----------
    module, hidden_layer_sizes, activation, dropout, criterion, optimizer, lr, \
batch_size, accumulate, max_epochs, validation_fraction, callbacks, device, \
random_state, verbose, warm_start, compile, precision, **routed_params
        As for :class:`~skcallback.NeuralRegressor`; ``criterion=None`` is
        ``nn.CrossEntropyLoss``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    module_, optimizer_, criterion_, callbacks_, history_, n_iter_, n_steps_, \
n_outputs_, device_, n_features_in_, feature_names_in_
        As for :class:`~skcallback.NeuralRegressor` (``n_outputs_`` is the
        number of classes).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skcallback import NeuralClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NeuralClassifier(lr=1e-2, max_epochs=30, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).sum(axis=1).round(6).tolist()
    [1.0, 1.0]
    """

    _target_validation: dict[str, Any] = {}
    _default_criterion = nn.CrossEntropyLoss
    _output_meaning = "one logit per class"
    _criterion_hint = (
        "The classifier's targets are class indices (int64) of shape (n_samples,) and the "
        "output one logit per class, as nn.CrossEntropyLoss expects."
    )

    def _encode_targets(self, y: Any, *, continuing: bool, classes: Any = None):
        check_classification_targets(y)
        kind = type_of_target(y, input_name="y")
        if kind not in ("binary", "multiclass"):
            raise ValueError(
                f"{type(self).__name__} supports binary and multiclass targets; got a {kind} y."
            )
        if continuing:
            known = self.classes_
            if classes is not None and not np.array_equal(np.unique(classes), known):
                raise ValueError(
                    f"classes={np.unique(classes).tolist()} differs from the classes of the "
                    f"fit, {known.tolist()}."
                )
        else:
            known = np.unique(y if classes is None else classes)
            if len(known) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes; the data "
                    f"has 1 class: {known.tolist()}."
                )
        try:
            encoded = np.searchsorted(known, y)
        except TypeError:
            raise ValueError(
                f"y holds labels of another type ({np.asarray(y).dtype}) than the classes "
                f"{known.tolist()[:10]} ({known.dtype})."
            ) from None
        unknown = (encoded >= len(known)) | (known[np.minimum(encoded, len(known) - 1)] != y)
        if unknown.any():
            raise ValueError(
                f"y contains labels {np.unique(np.asarray(y)[unknown]).tolist()[:10]} that are "
                f"not among the classes {known.tolist()}."
            )
        return encoded.astype(np.int64), {"classes_": known, "n_outputs_": len(known)}

    def _stratify_labels(self, y: np.ndarray) -> np.ndarray:
        return y

    def _check_target_weights(self, y: np.ndarray, sample_weight: np.ndarray | None) -> None:
        """Zero weights must leave samples of at least two classes."""
        if sample_weight is None:
            return
        weighted = np.unique(y[sample_weight > 0])
        if len(weighted) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes with a non-zero "
                f"sample_weight; only class {self.classes_[weighted].tolist()} has any."
            )

    def partial_fit(
        self,
        X: Any,
        y: Any,
        classes: Any = None,
        sample_weight: Any = None,
        *,
        X_val: Any = None,
        y_val: Any = None,
        sample_weight_val: Any = None,
    ) -> NeuralClassifier:
        """Train for one epoch, continuing from the fitted state if any.

        Like ``fit``, a call completes or leaves the estimator as it was.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like, optional
            Every class label; required on the first call.
        sample_weight : array-like of shape (n_samples,), optional
        X_val, y_val, sample_weight_val : array-like, optional
            Validation data for this epoch (none is held out otherwise).

        Returns
        -------
        self
        """
        if classes is None and not self.__sklearn_is_fitted__():
            raise ValueError("classes must be passed on the first call to partial_fit.")
        return self._fit(
            X,
            y,
            sample_weight,
            partial=True,
            classes=classes,
            X_val=X_val,
            y_val=y_val,
            sample_weight_val=sample_weight_val,
        )

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (softmax of the logits), rows summing to 1.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        output = self._forward(X)
        return self._outputs().predict_proba(output)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class labels.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        output = self._forward(X)
        return self._outputs().predict(output)

    @staticmethod
    def _output_adapter(data_state: dict[str, Any]) -> ClassificationOutputs:
        return ClassificationOutputs(data_state["classes_"])


class ClassificationOutputs:
    """Turns a classifier module's logits into labels and probabilities."""

    def __init__(self, classes: np.ndarray) -> None:
        self.classes_ = classes

    def predict_proba(self, output: torch.Tensor) -> np.ndarray:
        """Class probabilities: the softmax of the logits."""
        return torch.softmax(output.detach().double(), dim=1).cpu().numpy()

    def predict(self, output: torch.Tensor) -> np.ndarray:
        """The label of the largest logit."""
        return self.classes_[output.detach().argmax(dim=1).cpu().numpy()]

    def targets(self, y: torch.Tensor) -> np.ndarray:
        """Labels from their encoded class indices."""
        return self.classes_[y.detach().cpu().numpy()]

    def perfect_output(self, y: torch.Tensor) -> torch.Tensor:
        """Logits that predict the class indices ``y`` with certainty."""
        return torch.nn.functional.one_hot(y, len(self.classes_)).to(torch.float64) * 10
