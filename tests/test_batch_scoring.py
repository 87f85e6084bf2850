"""BatchScoring: a running training metric within each epoch, in
``ctx.metrics`` during the epoch and in the history per epoch."""

import math

import joblib
import numpy as np
import pytest
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skcallback
from skcallback import NeuralClassifier, NeuralRegressor
from skcallback.callbacks import (
    BatchScoring,
    Checkpoint,
    EarlyStopping,
    EpochScoring,
    LambdaCallback,
)


def watch(seen, key):
    """Record, after each training batch, the batch's labels, predicted
    labels, weights and what ``ctx.metrics[key]`` holds then."""

    def keep(ctx):
        seen.append(
            (
                ctx.y_batch.numpy(),
                ctx.y_pred.argmax(1).numpy(),
                None if ctx.sample_weight_batch is None else ctx.sample_weight_batch.numpy(),
                ctx.metrics.get(key),
                ctx.epoch,
            )
        )

    # after BatchScoring (order 0), so it sees the value of this batch
    return LambdaCallback(name="watch", on_train_batch_end=keep)


@pytest.mark.parametrize("every", [1, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_the_running_mean_grows_within_the_epoch_and_ends_in_the_history(
    classification_data, every, weighted
):
    X, y = classification_data
    weights = np.random.RandomState(1).uniform(0.1, 3.0, len(y)) if weighted else None
    seen = []
    watcher = watch(seen, "train_accuracy")
    watcher.order = 1
    clf = NeuralClassifier(
        batch_size=16,
        max_epochs=2,
        random_state=0,
        callbacks=[BatchScoring("accuracy", every=every), watcher],
    ).fit(X, y, sample_weight=weights)
    for epoch in (1, 2):
        rows = [r for r in seen if r[4] == epoch]
        total = weight_total = 0.0
        for batch, (y_b, p_b, w_b, running, _) in enumerate(rows, start=1):
            if (batch - 1) % every == 0:
                weight = len(y_b) if w_b is None else w_b.sum()
                total += accuracy_score(y_b, p_b, sample_weight=w_b) * weight
                weight_total += weight
            assert running == pytest.approx(total / weight_total)
        assert clf.history_[epoch - 1]["train_accuracy"] == rows[-1][3]


def test_it_keeps_the_fast_path_and_makes_no_extra_forward(regression_data):
    X, y = regression_data
    forwards = []
    est = NeuralRegressor(
        batch_size=16,
        max_epochs=2,
        validation_fraction=None,
        random_state=0,
        callbacks=[BatchScoring("neg_mean_squared_error")],
    ).fit(X, y)
    assert est.fast_path_
    counted = NeuralRegressor(
        batch_size=16,
        max_epochs=2,
        validation_fraction=None,
        random_state=0,
        callbacks=[
            BatchScoring("neg_mean_squared_error"),
            LambdaCallback(on_after_forward=lambda ctx: forwards.append(ctx.phase)),
        ],
    ).fit(X, y)
    assert len(forwards) == 2 * math.ceil(len(y) / 16)
    # the same model either way, and the score is the loss's own metric
    np.testing.assert_allclose(
        est.history_.get("train_neg_mean_squared_error"),
        counted.history_.get("train_neg_mean_squared_error"),
        rtol=1e-5,
    )
    assert est.history_[-1]["train_neg_mean_squared_error"] < 0


def test_early_stopping_monitors_it_in_the_scorer_direction(classification_data):
    X, y = classification_data
    clf = NeuralClassifier(
        batch_size=32,
        max_epochs=6,
        random_state=0,
        callbacks=[BatchScoring("accuracy"), EarlyStopping(monitor="train_accuracy", patience=2)],
    ).fit(X, y)
    es = clf.callbacks_.early_stopping
    assert es.best_score_ == max(clf.history_.get("train_accuracy"))


@pytest.mark.parametrize(
    ("est", "cb", "match"),
    [
        (NeuralClassifier(), BatchScoring("acuracy"), "scorer name"),
        (NeuralRegressor(), BatchScoring("roc_auc"), "predicted probabilities"),
        (NeuralRegressor(), BatchScoring("accuracy"), "cannot score this fit's targets"),
        (NeuralClassifier(), BatchScoring("accuracy", every=0), "'every' parameter"),
        (
            NeuralClassifier(),
            [BatchScoring("accuracy"), EpochScoring("accuracy", on_train=True)],
            "unique",
        ),
    ],
)
def test_configuration_errors_come_before_the_first_batch(classification_data, est, cb, match):
    X, y = classification_data
    if isinstance(est, NeuralRegressor):
        y = np.arange(len(y)) % 3  # integer targets a regressor takes
    batches = []
    cbs = cb if isinstance(cb, list) else [cb]
    est.set_params(
        max_epochs=1,
        callbacks=[*cbs, LambdaCallback(on_train_batch_begin=lambda ctx: batches.append(1))],
    )
    with pytest.raises((ValueError, TypeError), match=match):
        est.fit(X, y)
    assert batches == []


def test_a_batch_it_cannot_score_is_left_out_with_one_warning():
    X = np.random.RandomState(0).normal(size=(64, 3))
    y = (np.arange(64) < 4).astype(int)  # 4 positives: most batches of 8 have none,
    # where ROC AUC is undefined
    clf = NeuralClassifier(
        batch_size=8, max_epochs=1, validation_fraction=None, random_state=0,
        callbacks=[BatchScoring("roc_auc")],
    )  # fmt: skip
    with pytest.warns(UserWarning, match="left out") as record:
        clf.fit(X, y)
    assert sum("left out" in str(w.message) for w in record) == 1
    assert 0.0 <= clf.history_[-1]["train_roc_auc"] <= 1.0


CRASH_AT = [None]


def crash(ctx):
    if ctx.step == CRASH_AT[0]:
        raise RuntimeError("simulated crash")


def resumable(folder):
    return NeuralClassifier(
        hidden_layer_sizes=(8,),
        dropout=0.2,
        batch_size=16,
        max_epochs=3,
        random_state=0,
        callbacks=[
            Checkpoint(dirname=folder, every_n_steps=4, resume=True),
            BatchScoring("accuracy", every=2),
            LambdaCallback(name="crash", on_after_step=crash),
        ],
    )


def test_a_fit_crashed_mid_epoch_resumes_the_running_mean_exactly(tmp_path, classification_data):
    X, y = classification_data  # 135 training rows: 9 batches an epoch
    reference = resumable(tmp_path / "reference").fit(X, y)
    CRASH_AT[0] = 14  # after the checkpoint at step 12, in epoch 2
    try:
        with pytest.raises(RuntimeError, match="simulated crash"):
            resumable(tmp_path / "run").fit(X, y)
    finally:
        CRASH_AT[0] = None
    resumed = resumable(tmp_path / "run").fit(X, y)
    assert resumed.callbacks_.checkpoint.resumed_from_ is not None
    assert resumed.history_.get("train_accuracy") == reference.history_.get("train_accuracy")
    scorer = resumed.callbacks_["train_accuracy"]
    assert scorer.state_dict() == reference.callbacks_["train_accuracy"].state_dict()


def test_in_a_pipeline_and_a_grid_search_over_its_cb_parameters(classification_data):
    X, y = classification_data
    pipe = make_pipeline(
        StandardScaler(),
        NeuralClassifier(
            batch_size=32, max_epochs=2, random_state=0, callbacks=[BatchScoring("accuracy")]
        ),
    )
    search = GridSearchCV(
        pipe,
        {"neuralclassifier__cb__train_accuracy__every": [1, 2]},
        cv=2,
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 2
    best = search.best_estimator_[-1]
    assert (
        best.callbacks_["train_accuracy"].every
        == search.best_params_["neuralclassifier__cb__train_accuracy__every"]
    )
    assert np.isfinite(best.history_.get("train_accuracy")).all()


def test_joblib_and_skcallback_save_round_trips(tmp_path, regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        batch_size=32,
        max_epochs=2,
        random_state=0,
        callbacks=[BatchScoring("neg_mean_absolute_error", every=2, name="mae")],
    ).fit(X, y)
    joblib.dump(est, tmp_path / "est.joblib")
    loaded = [
        joblib.load(tmp_path / "est.joblib"),
        skcallback.load(skcallback.save(est, tmp_path / "est.skc")),
    ]
    for other in loaded:
        assert other.history_.get("mae") == est.history_.get("mae")
        cb = other.callbacks_["mae"]
        assert (cb.scoring, cb.every) == ("neg_mean_absolute_error", 2)
        assert cb.state_dict() == est.callbacks_["mae"].state_dict()
        np.testing.assert_array_equal(other.predict(X), est.predict(X))
        # and it trains on: a warm start records the metric for new epochs
        other.set_params(warm_start=True).fit(X, y)
        assert len(other.history_.get("mae")) == 4
        assert np.isfinite(other.history_.get("mae")).all()
