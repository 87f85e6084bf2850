"""A multi-label classifier: each sample carries any number of 5 labels,
compared with scikit-learn's ``MLPClassifier`` on the same data, with
``class_weight="balanced"`` for rare labels.

1. ``y`` is an indicator matrix ``(n_samples, n_labels)`` of 0/1, as
   ``sklearn.datasets.make_multilabel_classification`` gives. The module
   outputs one logit per label and trains with ``BCEWithLogitsLoss``;
   ``predict`` returns the 0/1 matrix, ``predict_proba`` one probability
   per label, ``classes_`` the label indices: ``MLPClassifier``'s
   conventions, so code written for one reads the other.
2. The scores: subset accuracy (``score``: every label of a sample right)
   and the macro F1 over labels, on held-out rows.
3. ``class_weight="balanced"`` weighs each label's rare value up (per label,
   multiplied over a row's labels, as ``compute_sample_weight`` does): the
   recall of the rarest label goes up.

Run ``python examples/multilabel.py``.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.datasets import make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import f1_score, recall_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skcallback import NeuralClassifier


def load_data(seed: int = 0):
    X, Y = make_multilabel_classification(
        n_samples=1500, n_features=20, n_classes=5, n_labels=2, random_state=seed
    )
    return train_test_split(X.astype(np.float32), Y, test_size=0.3, random_state=seed)


def evaluate(name: str, model, X_test, Y_test) -> dict:
    predicted = model.predict(X_test)
    rarest = int(np.argmin(Y_test.mean(axis=0)))
    result = {
        "subset_accuracy": model.score(X_test, Y_test),
        "macro_f1": f1_score(Y_test, predicted, average="macro"),
        "rarest_recall": recall_score(Y_test[:, rarest], predicted[:, rarest]),
    }
    print(
        f"  {name:<34} subset accuracy {result['subset_accuracy']:.3f}, "
        f"macro F1 {result['macro_f1']:.3f}, "
        f"recall of the rarest label {result['rarest_recall']:.3f}"
    )
    return result


def main() -> dict:
    X_train, X_test, Y_train, Y_test = load_data()
    print(f"y: {Y_train.shape[1]} labels, {Y_train.sum(axis=1).mean():.2f} per sample on average")
    ours = make_pipeline(
        StandardScaler(), NeuralClassifier(lr=1e-2, max_epochs=60, random_state=0)
    ).fit(X_train, Y_train)
    with warnings.catch_warnings():  # MLPClassifier's ConvergenceWarning at max_iter
        warnings.simplefilter("ignore", ConvergenceWarning)
        sklearn = make_pipeline(StandardScaler(), MLPClassifier(max_iter=300, random_state=0))
        sklearn.fit(X_train, Y_train)
    balanced = make_pipeline(
        StandardScaler(),
        NeuralClassifier(lr=1e-2, max_epochs=60, random_state=0, class_weight="balanced"),
    ).fit(X_train, Y_train)
    print("held-out rows:")
    results = {
        "skcallback": evaluate("NeuralClassifier", ours, X_test, Y_test),
        "sklearn": evaluate("MLPClassifier", sklearn, X_test, Y_test),
        "balanced": evaluate('NeuralClassifier, class_weight="balanced"', balanced, X_test, Y_test),
    }
    clf = ours[-1]
    print(
        f"classes_ {clf.classes_.tolist()} (MLPClassifier: {sklearn[-1].classes_.tolist()}); "
        f"predict_proba shape {clf.predict_proba(ours[0].transform(X_test[:3])).shape}"
    )
    return {"results": results, "ours": ours, "sklearn": sklearn, "data": (X_test, Y_test)}


if __name__ == "__main__":
    main()
