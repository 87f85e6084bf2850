"""Targets of ``NeuralClassifier``: multi-label indicator matrices, as
scikit-learn's ``MLPClassifier`` takes them, and ``class_weight``, as
scikit-learn's classifiers weigh classes."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.datasets import make_multilabel_classification
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier
from sklearn.utils.class_weight import compute_sample_weight
from torch import nn

import skcallback
from skcallback import NeuralClassifier, NeuralRegressor
from skcallback.callbacks import Checkpoint, EpochScoring, LambdaCallback

# ----------------------------------------------------------------------
# Multi-label targets
# ----------------------------------------------------------------------


@pytest.fixture
def multilabel_data():
    X, Y = make_multilabel_classification(
        n_samples=160, n_features=6, n_classes=4, allow_unlabeled=True, random_state=0
    )
    return (X / X.max()).astype(np.float32), Y


def small(**params):
    settings = {"hidden_layer_sizes": (16,), "lr": 1e-2, "max_epochs": 5, "random_state": 0}
    return NeuralClassifier(**{**settings, **params})


def mlp_reference(X, Y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLPClassifier's ConvergenceWarning
        return MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0).fit(X, Y)


@pytest.mark.parametrize(
    "form",
    ["int", "bool", "float", "list of lists", "sparse"],
)
def test_multilabel_follows_the_conventions_of_mlpclassifier(multilabel_data, form):
    X, Y = multilabel_data
    given = {
        "int": Y,
        "bool": Y.astype(bool),
        "float": Y.astype(float),
        "list of lists": Y.tolist(),
        "sparse": sp.csr_matrix(Y),
    }[form]
    est = small().fit(X, given)
    reference = mlp_reference(X, Y)
    assert est.classes_.dtype == reference.classes_.dtype
    np.testing.assert_array_equal(est.classes_, reference.classes_)
    assert est.n_outputs_ == reference.n_outputs_ == 4
    predicted, expected = est.predict(X), reference.predict(X)
    assert type(predicted) is np.ndarray
    assert predicted.shape == expected.shape and predicted.dtype == expected.dtype
    assert set(np.unique(predicted)) <= {0, 1}
    proba = est.predict_proba(X)
    assert proba.shape == reference.predict_proba(X).shape == (160, 4)
    assert ((proba > 0) & (proba < 1)).all()
    np.testing.assert_array_equal(predicted, (proba > 0.5).astype(int))
    assert est.score(X, given) == accuracy_score(Y, predicted)  # subset accuracy
    assert "valid_loss" in est.history_[-1]  # a plain shuffled split of the rows


def test_multilabel_probabilities_are_the_sigmoid_of_each_logit(multilabel_data):
    X, Y = multilabel_data
    est = small().fit(X, Y)
    assert isinstance(est.criterion_, nn.BCEWithLogitsLoss)
    with torch.no_grad():
        logits = est.module_(torch.from_numpy(X)).double()
    np.testing.assert_allclose(est.predict_proba(X), torch.sigmoid(logits).numpy(), rtol=1e-6)


def test_multilabel_learns(multilabel_data):
    X, Y = multilabel_data
    est = NeuralClassifier(lr=1e-2, max_epochs=60, random_state=0).fit(X, Y)
    baseline = accuracy_score(Y, np.zeros_like(Y))
    assert est.score(X, Y) > baseline + 0.2
    assert est.history_[-1]["train_loss"] < 0.75 * est.history_[0]["train_loss"]


def test_scores_of_a_multilabel_fit_are_those_of_its_indicator_predictions(multilabel_data):
    X, Y = multilabel_data
    scorers = [EpochScoring(name, on_train=True) for name in ("accuracy", "f1_micro", "roc_auc")]
    est = small(max_epochs=40, validation_fraction=None, callbacks=scorers).fit(X, Y)
    record = est.history_[-1]
    assert record["train_roc_auc"] > 0.75 and 0 < record["train_accuracy"] < 1
    # The last epoch's training score is of the outputs before each step;
    # the model's own score on the same rows after it is close.
    assert abs(record["train_f1_micro"] - f1_score(Y, est.predict(X), average="micro")) < 0.05


class _ByKey(nn.Module):
    def __init__(self, input_shape, n_outputs):
        super().__init__()
        self.linear = nn.Linear(input_shape["a"][-1], n_outputs)

    def forward(self, a):
        return self.linear(a)


def test_multilabel_targets_of_a_dict_input_and_of_a_dataset(multilabel_data):
    X, Y = multilabel_data
    by_key = small(module=_ByKey).fit(skcallback.SliceDict(a=X), sp.csr_matrix(Y))
    assert by_key.predict(skcallback.SliceDict(a=X)).shape == Y.shape
    items = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(Y))
    from_items = small().fit(items, None)
    np.testing.assert_array_equal(from_items.predict(X), small().fit(X, Y).predict(X))


def test_a_single_column_is_class_labels_with_scikit_learns_warning(multilabel_data):
    X, Y = multilabel_data
    from sklearn.exceptions import DataConversionWarning

    with pytest.warns(DataConversionWarning):
        est = small().fit(X, Y[:, :1])
    assert est.predict(X).shape == (160,) and isinstance(est.criterion_, nn.CrossEntropyLoss)


def test_multilabel_in_a_grid_search(multilabel_data):
    X, Y = multilabel_data
    search = GridSearchCV(
        small(max_epochs=2), {"lr": [1e-3, 1e-2], "class_weight": [None, "balanced"]}, cv=2
    ).fit(X, Y)
    assert search.best_estimator_.predict(X).shape == Y.shape
    assert len(search.cv_results_["params"]) == 4
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_multilabel_survives_pickle_and_save_load(multilabel_data, tmp_path):
    X, Y = multilabel_data
    est = small().fit(X, Y)
    copies = [
        pickle.loads(pickle.dumps(est)),
        skcallback.load(skcallback.save(est, tmp_path / "model.skc")),
    ]
    for copy in copies:
        np.testing.assert_array_equal(copy.predict_proba(X), est.predict_proba(X))
        np.testing.assert_array_equal(copy.predict(X), est.predict(X))
        np.testing.assert_array_equal(copy.classes_, est.classes_)
        # Training goes on with the multi-label loss, on a multi-label y only.
        copy.set_params(warm_start=True, max_epochs=1).fit(X, Y)
        assert isinstance(copy.criterion_, nn.BCEWithLogitsLoss)
        with pytest.raises(ValueError, match="fitted on a multi-label indicator matrix"):
            copy.fit(X, Y[:, 0])


def test_a_multilabel_checkpoint_loads_and_a_crashed_fit_resumes_exactly(multilabel_data, tmp_path):
    X, Y = multilabel_data
    crash = [True]

    def stop_once(ctx):
        if crash[0] and ctx.step == 4:
            raise RuntimeError("simulated crash")

    def make(folder):
        return small(
            batch_size=32,
            callbacks=[
                Checkpoint(dirname=folder, every_n_steps=1, resume=True),
                LambdaCallback(name="crash", on_after_step=stop_once),
            ],
        )

    with pytest.raises(RuntimeError, match="simulated crash"):
        make(tmp_path / "run").fit(X, Y)
    crash[0] = False
    resumed = make(tmp_path / "run").fit(X, Y)
    whole = make(tmp_path / "whole").fit(X, Y)
    assert resumed.callbacks_.checkpoint.resumed_from_ is not None
    np.testing.assert_array_equal(resumed.predict_proba(X), whole.predict_proba(X))
    loaded = make(tmp_path / "other").load_checkpoint(whole.callbacks_.checkpoint.saved_paths_[-1])
    np.testing.assert_array_equal(loaded.predict(X), whole.predict(X))


def test_partial_fit_takes_the_label_indices_as_classes(multilabel_data):
    X, Y = multilabel_data
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        NeuralClassifier().partial_fit(X, Y)
    with pytest.raises(ValueError, match=r"must be the label indices \[0, 1, 2, 3\]"):
        NeuralClassifier().partial_fit(X, Y, classes=["a", "b", "c", "d"])
    est = small().partial_fit(X[:80], Y[:80], classes=[0, 1, 2, 3]).partial_fit(X[80:], Y[80:])
    assert est.n_iter_ == 2 and est.predict(X).shape == Y.shape
    with pytest.raises(ValueError, match=r"y has 3 labels .* fitted on 4"):
        est.partial_fit(X, Y[:, :3])


@pytest.mark.parametrize("continuing", ["warm_start", "partial_fit"])
def test_a_continued_fit_keeps_the_kind_and_number_of_labels(multilabel_data, continuing):
    X, Y = multilabel_data
    labels = Y[:, 0]

    def continue_(est, y):
        if continuing == "warm_start":
            return est.set_params(warm_start=True).fit(X, y)
        return est.partial_fit(X, y)

    multilabel, single = small().fit(X, Y), small().fit(X, labels)
    before = multilabel.predict_proba(X)
    with pytest.raises(ValueError, match="fitted on a multi-label indicator matrix"):
        continue_(multilabel, labels)
    with pytest.raises(ValueError, match=r"y has 2 labels .* fitted on 4"):
        continue_(multilabel, Y[:, :2])
    with pytest.raises(ValueError, match="y is a multi-label indicator matrix, but the model"):
        continue_(single, Y)
    np.testing.assert_array_equal(multilabel.predict_proba(X), before)  # left as it was
    continue_(multilabel, Y)
    assert multilabel.n_iter_ == (10 if continuing == "warm_start" else 6)


def test_a_module_of_another_width_than_the_labels_is_refused_before_training(
    multilabel_data,
):
    X, Y = multilabel_data

    def module(n_features_in):
        return nn.Linear(n_features_in, 3)

    with pytest.raises(ValueError, match=r"shape \(n_samples, 4\) \(one logit per label\)"):
        NeuralClassifier(module=module).fit(X, Y)


def test_a_criterion_of_the_users_own_keeps_working(multilabel_data):
    X, Y = multilabel_data
    pos_weight = torch.tensor([1.0, 1.0, 1.0, 50.0])
    plain = small(max_epochs=10).fit(X, Y)
    weighted = small(max_epochs=10, criterion=nn.BCEWithLogitsLoss(pos_weight=pos_weight)).fit(X, Y)
    assert not weighted.fast_path_ and torch.equal(weighted.criterion_.pos_weight, pos_weight)
    # Positives of the last label weigh 50 times more: it is predicted far more often.
    assert weighted.predict(X)[:, 3].sum() > plain.predict(X)[:, 3].sum() + 20
    by_class = small(
        max_epochs=10, criterion=nn.BCEWithLogitsLoss, criterion__pos_weight=pos_weight
    )
    assert by_class.fit(X, Y).predict(X)[:, 3].sum() == weighted.predict(X)[:, 3].sum()


# ----------------------------------------------------------------------
# class_weight
# ----------------------------------------------------------------------


@pytest.fixture
def imbalanced():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    score = X[:, 0] + 0.5 * X[:, 1]
    y = np.array(["common", "rare", "mid"])[(score > 1.2).astype(int) + 2 * (score < -0.8)]
    return X, y


def assert_same_model(a, b):
    for p, q in zip(a.module_.parameters(), b.module_.parameters(), strict=True):
        assert torch.equal(p, q)
    for key in ("train_loss", "valid_loss"):  # the same losses, validation's too
        assert [r.get(key) for r in a.history_] == [r.get(key) for r in b.history_]


@pytest.mark.parametrize("fast_path", [True, False])
@pytest.mark.parametrize("with_sample_weight", [False, True])
def test_balanced_trains_the_model_of_the_equivalent_sample_weight(
    imbalanced, fast_path, with_sample_weight
):
    X, y = imbalanced
    assert np.unique(y, return_counts=True)[1].tolist() != [100, 100, 100]
    weights = np.random.RandomState(1).uniform(0.5, 2, len(y)) if with_sample_weight else None
    balanced = small(fast_path=fast_path, class_weight="balanced").fit(X, y, weights)
    equivalent = compute_sample_weight("balanced", y) * (1 if weights is None else weights)
    explicit = small(fast_path=fast_path).fit(X, y, equivalent)
    assert balanced.fast_path_ is fast_path
    assert_same_model(balanced, explicit)
    unweighted = small(fast_path=fast_path).fit(X, y, weights)
    assert not torch.equal(
        next(balanced.module_.parameters()), next(unweighted.module_.parameters())
    )


def test_balanced_multilabel_weighs_rows_as_compute_sample_weight(multilabel_data):
    X, Y = multilabel_data
    Y = np.column_stack([Y, np.zeros(len(Y), dtype=int)])  # a label no row has: weighs 1
    balanced = small(class_weight="balanced").fit(X, Y)
    explicit = small().fit(X, Y, compute_sample_weight("balanced", Y))
    assert_same_model(balanced, explicit)
    with pytest.raises(ValueError, match="a multi-label y has none"):
        small(class_weight={0: 2.0}).fit(X, Y)


@pytest.mark.parametrize("fast_path", [True, False])
def test_dict_weights_train_the_model_of_the_equivalent_sample_weight(imbalanced, fast_path):
    X, y = imbalanced
    class_weight = {"rare": 5.0, "mid": 0.5}  # "common" is not named: it weighs 1
    weighted = small(fast_path=fast_path, class_weight=class_weight).fit(X, y)
    equivalent = np.vectorize(lambda label: class_weight.get(label, 1.0))(y)
    assert_same_model(weighted, small(fast_path=fast_path).fit(X, y, equivalent))


def test_class_weight_weighs_an_explicit_validation_set_with_the_training_weights(imbalanced):
    X, y = imbalanced
    X_val, y_val = X[:60], y[:60]
    counts = dict(zip(*np.unique(y, return_counts=True), strict=True))
    per_class = {label: len(y) / (3 * count) for label, count in counts.items()}
    weighted = small(class_weight="balanced").fit(X, y, X_val=X_val, y_val=y_val)
    explicit = small().fit(
        X,
        y,
        compute_sample_weight("balanced", y),
        X_val=X_val,
        y_val=y_val,
        sample_weight_val=np.array([per_class[label] for label in y_val]),
    )
    assert_same_model(weighted, explicit)


@pytest.mark.parametrize(
    ("class_weight", "message"),
    [
        ({"rare": 2.0, "unknown": 3.0}, r"weights for \['unknown'\], which are not classes"),
        ({"rare": -1.0}, "non-negative finite weight"),
        ({"rare": float("nan")}, "non-negative finite weight"),
        ({"rare": float("inf")}, "non-negative finite weight"),
        ({"rare": "2"}, "non-negative finite weight"),
        ({"rare": True}, "non-negative finite weight"),
        ("Balanced", "'class_weight' parameter of NeuralClassifier must be None, 'balanced'"),
        ([1.0, 2.0], "'class_weight' parameter of NeuralClassifier must be None, 'balanced'"),
        ({"rare": 0.0, "mid": 0.0}, "at least 2 classes with a non-zero weight"),
        ({"rare": 0.0, "mid": 0.0, "common": 0.0}, "Every one of the training samples has a zero"),
    ],
    ids=repr,
)
def test_bad_class_weights_are_refused_before_training(imbalanced, class_weight, message):
    X, y = imbalanced
    with pytest.raises(ValueError, match=message) as caught:
        small(class_weight=class_weight).fit(X, y)
    if "unknown" in class_weight:
        assert "the classes are ['common', 'mid', 'rare']" in str(caught.value)


def test_class_weight_is_a_parameter_of_the_classifier_only(tmp_path):
    assert NeuralClassifier().get_params()["class_weight"] is None
    assert "class_weight" not in NeuralRegressor().get_params()
    weights = {0: 2.0}
    est = NeuralClassifier(class_weight=weights)
    assert clone(est).class_weight == weights and est.class_weight is weights
    assert "class_weight={0: 2.0}" in repr(est)
    loaded = skcallback.load(skcallback.save(est, tmp_path / "model.skc"))
    assert (
        loaded.class_weight == weights and pickle.loads(pickle.dumps(est)).class_weight == weights
    )


def test_class_weight_is_tunable_in_a_grid_search(imbalanced):
    X, y = imbalanced
    grid = {"class_weight": [None, "balanced", {"rare": 20.0}]}
    search = GridSearchCV(small(max_epochs=3), grid, cv=2, scoring="balanced_accuracy").fit(X, y)
    assert [p["class_weight"] for p in search.cv_results_["params"]] == grid["class_weight"]
    scores = search.cv_results_["mean_test_score"]
    assert len(set(scores.tolist())) == 3  # each setting trained its own models
    assert search.best_estimator_.class_weight == grid["class_weight"][int(np.argmax(scores))]


def test_a_changed_class_weight_applies_to_a_warm_started_fit(imbalanced):
    X, y = imbalanced
    first = small().fit(X, y)
    changed = clone(first).fit(X, y)
    changed.set_params(warm_start=True, class_weight="balanced").fit(X, y)
    explicit = clone(first).fit(X, y)
    explicit.set_params(warm_start=True).fit(X, y, compute_sample_weight("balanced", y))
    assert_same_model(changed, explicit)


def test_partial_fit_refuses_balanced_and_takes_a_dict(imbalanced):
    X, y = imbalanced
    classes = np.unique(y)
    with pytest.raises(ValueError, match="'balanced' is not supported by partial_fit"):
        small(class_weight="balanced").partial_fit(X, y, classes=classes)
    class_weight = {"rare": 4.0}
    weighted = small(class_weight=class_weight).partial_fit(X, y, classes=classes)
    equivalent = np.where(y == "rare", 4.0, 1.0)
    explicit = small().partial_fit(X, y, classes=classes, sample_weight=equivalent)
    assert_same_model(weighted, explicit)
