"""``NeuralClassifier``'s ``class_weight``: a weight per class that
multiplies each row's ``sample_weight``, as scikit-learn's classifiers
weigh classes (``sklearn.utils.class_weight.compute_sample_weight``)."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

#: What the ``class_weight`` parameter allows, in the constraint's words.
ALLOWED = "None, 'balanced' or a dict of class label -> non-negative finite weight"


def is_class_weight(value: Any) -> bool:
    """Whether ``value`` is a ``class_weight``: None, ``"balanced"`` or a
    mapping of labels to non-negative finite real numbers (its keys are
    checked against the classes at fit)."""
    if value is None or (isinstance(value, str) and value == "balanced"):
        return True
    return isinstance(value, Mapping) and all(
        isinstance(weight, numbers.Real)
        and not isinstance(weight, bool)
        and bool(np.isfinite(float(weight)))
        and float(weight) >= 0
        for weight in value.values()
    )


class ClassWeights:
    """Row weights from the classes of the rows.

    ``table[j, v]`` weighs value ``v`` of target column ``j``: class labels
    have one column (``v`` a class index), a multi-label indicator one per
    label (``v`` 0 or 1); a row weighs the product over its columns, as
    ``compute_sample_weight`` multiplies the weights of each output.

    Parameters
    ----------
    table : ndarray of shape (n_columns, n_values)
    """

    def __init__(self, table: np.ndarray) -> None:
        self.table = table

    @classmethod
    def balanced(cls, y: np.ndarray, n_values: int) -> ClassWeights:
        """``n_samples / (n_classes * bincount(y))`` per column of the
        encoded targets ``y``, over the classes present in it (as
        ``compute_class_weight("balanced", ...)``); a class absent from
        ``y`` (in a validation set only) weighs 1."""
        codes = _codes(y)
        table = np.ones((codes.shape[1], n_values))
        for j, column in enumerate(codes.T):
            counts = np.bincount(column, minlength=n_values).astype(np.float64)
            present = counts > 0
            table[j, present] = counts.sum() / (np.count_nonzero(present) * counts[present])
        return cls(table)

    @classmethod
    def from_dict(cls, class_weight: Mapping[Any, Any], classes: np.ndarray) -> ClassWeights:
        """The weight of each of ``classes`` in ``class_weight`` (1 where it
        has none).

        Raises
        ------
        ValueError
            If a key of ``class_weight`` is not one of ``classes``.
        """
        labels = classes.tolist()
        known = set(labels)
        unknown = [key for key in class_weight if key not in known]
        if unknown:
            raise ValueError(
                f"class_weight has weights for {unknown[:10]}, which are not classes of y; "
                f"the classes are {labels[:20]}."
            )
        weights = [float(class_weight.get(label, 1.0)) for label in labels]
        return cls(np.asarray([weights], dtype=np.float64))

    def row_weights(self, y: np.ndarray) -> np.ndarray:
        """The weight of each row of the encoded targets ``y``."""
        codes = _codes(y)
        weights = self.table[0, codes[:, 0]]
        for j in range(1, codes.shape[1]):  # in column order, as compute_sample_weight
            weights = weights * self.table[j, codes[:, j]]
        return weights

    def apply(self, y: np.ndarray, sample_weight: np.ndarray | None, where: str) -> np.ndarray:
        """``sample_weight`` (None: ones) times the weights of the rows'
        classes.

        Raises
        ------
        ValueError
            If every product is zero, or their sum overflows.
        """
        weights = self.row_weights(y)
        if sample_weight is not None:
            weights = sample_weight * weights
        with np.errstate(over="ignore"):
            total = weights.sum()
        if not np.isfinite(total):
            raise ValueError(
                f"The weights of {where} (sample_weight times class_weight) overflow float64; "
                "scale them down, only their ratios matter."
            )
        if not total:
            raise ValueError(
                f"Every one of {where} has a zero weight (sample_weight times class_weight); "
                "give some of them a non-zero weight."
            )
        return weights


def _codes(y: np.ndarray) -> np.ndarray:
    """Encoded targets as integer codes, one column per target column:
    class indices, or the 0/1 values of an indicator matrix."""
    codes = y.reshape(len(y), -1)
    return codes if codes.dtype.kind in "iu" else (codes > 0.5).astype(np.intp)
