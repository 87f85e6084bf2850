"""EpochScoring: scikit-learn scorers on the predictions the loop made."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score
from torch import nn

from skcallback import NeuralClassifier, NeuralRegressor
from skcallback.callbacks import (
    EarlyStopping,
    EpochScoring,
    LambdaCallback,
)


def test_epoch_scoring_matches_the_metric_without_an_extra_forward(classification_data):
    X, y = classification_data
    forwards = []
    clf = NeuralClassifier(
        callbacks=[
            EpochScoring("accuracy"),
            EpochScoring("accuracy", on_train=True),
            LambdaCallback(name="count", on_after_forward=lambda ctx: forwards.append(ctx.phase)),
        ],
        validation_fraction=None,
        max_epochs=2,
        random_state=0,
    )
    clf.fit(X, y)
    assert "train_accuracy" in clf.history_[-1]
    assert "valid_accuracy" not in clf.history_[-1]
    assert forwards.count("valid") == 0
    # with validation: the score equals accuracy on the held-out rows
    seen = {}

    def keep(ctx):
        seen.setdefault("y", []).append(ctx.y_batch.numpy())
        seen.setdefault("p", []).append(ctx.y_pred.argmax(1).numpy())

    clf = NeuralClassifier(
        callbacks=[EpochScoring("accuracy"), LambdaCallback(on_valid_batch_end=keep)],
        max_epochs=1,
        random_state=0,
    ).fit(X, y)
    expected = accuracy_score(np.concatenate(seen["y"]), np.concatenate(seen["p"]))
    assert clf.history_[0]["valid_accuracy"] == pytest.approx(expected)


def test_epoch_scoring_drives_early_stopping_in_the_right_direction(regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[EpochScoring("r2"), EarlyStopping(monitor="valid_r2", patience=3)],
        lr=1e-2,
        max_epochs=30,
        random_state=0,
    ).fit(X, y)
    es = est.callbacks_.early_stopping
    assert es.best_score_ == max(est.history_.get("valid_r2"))


def test_epoch_scoring_weighs_the_validation_samples(regression_data):
    from sklearn.metrics import r2_score

    X, y = regression_data
    X_val, y_val = X[:40], y[:40]
    w_val = np.linspace(0.1, 5.0, 40)
    est = NeuralRegressor(max_epochs=1, callbacks=[EpochScoring("r2")], random_state=0)
    est.fit(X[40:], y[40:], X_val=X_val, y_val=y_val, sample_weight_val=w_val)
    predicted = est.predict(X_val)
    weighted = r2_score(y_val, predicted, sample_weight=w_val)
    assert est.history_[-1]["valid_r2"] == pytest.approx(weighted, rel=1e-6)
    assert weighted != pytest.approx(r2_score(y_val, predicted), rel=1e-3)


def test_a_classification_scorer_on_integer_regression_targets_fails_before_training():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(90, 3))
    y = rng.randint(0, 5, 90)  # integers, but predictions of a regressor are not
    started = []
    est = NeuralRegressor(
        max_epochs=2,
        callbacks=[
            EpochScoring("accuracy"),
            LambdaCallback(on_fit_begin=lambda ctx: started.append(True)),
        ],
    )
    with pytest.raises(ValueError, match=r"EpochScoring\('accuracy'\) cannot score.*continuous"):
        est.fit(X, y)
    assert not started


@pytest.mark.parametrize("scoring", ["roc_auc", "neg_log_loss", "balanced_accuracy"])
def test_epoch_scoring_with_probability_scorers(scoring):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3))
    y = np.where(X[:, 0] + 0.3 * rng.normal(size=200) > 0, "yes", "no")
    clf = NeuralClassifier(
        callbacks=[EpochScoring(scoring)], lr=1e-2, max_epochs=5, random_state=0
    ).fit(X, y)
    values = clf.history_.get(f"valid_{scoring}")
    assert len(values) == 5 and np.isfinite(values).all()
    if scoring == "roc_auc":
        assert values[-1] > 0.8


def scripted_scorer(values):
    calls = []

    def scorer(estimator, X, y):
        calls.append(1)
        return values[len(calls) - 1]

    return scorer


@pytest.mark.parametrize(("lower_is_better", "best", "n_iter"), [(True, 1.0, 4), (None, 3.0, 3)])
def test_lower_is_better_sets_the_direction_monitors_follow(
    regression_data, lower_is_better, best, n_iter
):
    X, y = regression_data
    scoring = EpochScoring(
        # The first call is EpochScoring's check of the scorer, before training.
        scripted_scorer([0.0, 3.0, 1.0, 2.0, 2.5, 2.7]),
        name="valid_err",
        lower_is_better=lower_is_better,
    )
    est = NeuralRegressor(
        max_epochs=5, callbacks=[scoring, EarlyStopping("valid_err", patience=2)]
    ).fit(X, y)
    assert est.callbacks_["early_stopping"].best_score_ == best
    assert est.n_iter_ == n_iter


def test_without_validation_it_warns_and_records_nothing(regression_data):
    X, y = regression_data
    with pytest.warns(UserWarning, match="records nothing"):
        est = NeuralRegressor(
            max_epochs=1, validation_fraction=None, callbacks=[EpochScoring("r2")]
        ).fit(X, y)
    assert "valid_r2" not in est.history_[0]
    on_train = NeuralRegressor(
        max_epochs=1, validation_fraction=None, callbacks=[EpochScoring("r2", on_train=True)]
    ).fit(X, y)
    assert "train_r2" in on_train.history_[0]


class CountingModule(nn.Module):
    """Counts its forward passes (training and evaluation alike)."""

    def __init__(self, n_features_in, n_outputs):
        super().__init__()
        self.linear = nn.Linear(n_features_in, n_outputs)
        self.forwards = 0

    def forward(self, X):
        self.forwards += 1
        return self.linear(X)


def test_epoch_scoring_adds_no_forward_pass(regression_data):
    X, y = regression_data

    def forwards(callbacks):
        est = NeuralRegressor(
            module=CountingModule, callbacks=callbacks, batch_size=30, max_epochs=3, random_state=0
        ).fit(X, y)
        return est.module_.forwards, est.history_[-1]

    plain, _ = forwards(None)
    scored, record = forwards([EpochScoring("r2"), EpochScoring("r2", on_train=True)])
    assert {"valid_r2", "train_r2"} <= set(record)
    assert scored == plain


def test_the_default_name_follows_the_scoring_and_the_phase(classification_data):
    X, y = classification_data
    clf = NeuralClassifier(
        callbacks=[
            EpochScoring("accuracy"),
            EpochScoring("accuracy", on_train=True),
            EpochScoring("balanced_accuracy", name="bal"),
        ],
        max_epochs=1,
    ).fit(X, y)
    assert list(clf.callbacks_) == ["history", "valid_accuracy", "train_accuracy", "bal"]
    assert {"valid_accuracy", "train_accuracy", "bal"} <= set(clf.history_[0])


@pytest.mark.parametrize("scoring", ["neg_log_loss", "roc_auc_ovr"])
def test_a_class_first_seen_late_in_the_data_is_scored(scoring):
    # The scorer is tried before training on a sample of the targets: a
    # class that appears only after its first rows must be in it, or a
    # scorer that needs every class refuses a fit it can score.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(1300, 4)).astype(np.float32)
    y = np.r_[np.zeros(650, int), np.ones(500, int), np.full(150, 2)]
    est = NeuralClassifier(
        max_epochs=1,
        validation_fraction=None,
        callbacks=[EpochScoring(scoring, on_train=True)],
    ).fit(X, y)
    assert np.isfinite(est.history_[-1][f"train_{scoring}"])


@pytest.mark.parametrize("on_train", [False, True])
def test_epoch_scoring_every_scores_every_kth_epoch_and_the_last(classification_data, on_train):
    X, y = classification_data
    clf = NeuralClassifier(
        callbacks=[EpochScoring("accuracy", on_train=on_train, every=3)],
        max_epochs=7,
        random_state=0,
    ).fit(X, y)
    key = "train_accuracy" if on_train else "valid_accuracy"
    scored = [r["epoch"] for r in clf.history_ if key in r]
    assert scored == [3, 6, 7]  # the others have no key


def test_epoch_scoring_every_and_validate_every_in_a_search_saved_and_loaded(
    classification_data, tmp_path
):
    import joblib
    from sklearn.model_selection import GridSearchCV

    import skcallback

    X, y = classification_data
    clf = NeuralClassifier(
        callbacks=[EpochScoring("accuracy"), EarlyStopping(monitor="valid_accuracy")],
        max_epochs=4,
        random_state=0,
    )
    grid = {"validate_every": [1, 2], "cb__valid_accuracy__every": [1, 3]}
    search = GridSearchCV(clf, grid, cv=2).fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    assert best.callbacks_.valid_accuracy.every == search.best_params_["cb__valid_accuracy__every"]
    joblib.dump(best, tmp_path / "best.joblib")
    for loaded in (
        joblib.load(tmp_path / "best.joblib"),
        skcallback.load(skcallback.save(best, tmp_path / "best.skc")),
    ):
        assert loaded.get_params()["validate_every"] == best.validate_every
        assert loaded.callbacks_.valid_accuracy.every == best.callbacks_.valid_accuracy.every
        np.testing.assert_array_equal(loaded.predict(X), best.predict(X))
    fitted = clf.set_params(validate_every=2, cb__valid_accuracy__every=3).fit(X, y)
    assert [r["epoch"] for r in fitted.history_ if "valid_accuracy" in r] == [4]
