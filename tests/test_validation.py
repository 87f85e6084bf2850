"""Bad inputs and hyperparameters get clear errors and corrupt nothing."""

import warnings

import numpy as np
import pytest

from skcallback import InvalidParameterError, NeuralClassifier, NeuralRegressor, _internals


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.array([[1.0, np.nan]] * 10), "Input X contains NaN"),
        (np.array([[1.0, np.inf]] * 10), "Input X contains infinity"),
        (np.empty((0, 2)), "0 sample"),
        (np.arange(10.0), "Expected 2D array, got 1D array"),
        (np.array([[1 + 1j, 2]] * 10), "Complex data not supported"),
        (np.array([["a", "b"]] * 10, dtype=object), "X must hold numbers; it holds .a."),
    ],
)
def test_bad_X_is_a_clear_error(X, message):
    with pytest.raises(ValueError, match=message):
        NeuralRegressor().fit(X, np.arange(len(X), dtype=float))


def test_wrong_number_of_features_at_predict(regression_data):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but NeuralRegressor is expecting 4"):
        est.predict(X[:, :3])


def test_continuous_y_for_the_classifier(regression_data):
    X, y = regression_data
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        NeuralClassifier().fit(X, y)


def test_single_class_and_multiclass_multioutput_targets(regression_data):
    X, _ = regression_data
    with pytest.raises(ValueError, match="at least 2 classes"):
        NeuralClassifier().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="supports binary, multiclass and multi-label"):
        NeuralClassifier().fit(X, np.arange(2 * len(X)).reshape(-1, 2) % 3)


def test_too_few_samples_for_validation():
    with pytest.raises(ValueError, match="n_samples=1"):
        NeuralRegressor().fit(np.ones((1, 2)), [1.0])
    est = NeuralRegressor(validation_fraction=None, max_epochs=2).fit(np.ones((1, 2)), [1.0])
    assert est.n_iter_ == 2


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"lr": -1}, r"'lr' parameter of NeuralRegressor must be a float > 0; got -1"),
        ({"batch_size": 0}, r"'batch_size' parameter .* an int >= 1; got 0"),
        ({"max_epochs": 2.5}, r"'max_epochs' .* an int >= 1; got 2.5"),
        ({"optimizer": "adamm"}, r"'optimizer' .* one of \['adadelta'"),
        ({"activation": "swish"}, r"'activation' .* one of"),
        ({"dropout": 1.0}, r"'dropout' .* \[0, 1\)"),
        ({"validation_fraction": 1.5}, r"'validation_fraction' .* None or a float in \(0, 1\)"),
        ({"hidden_layer_sizes": (10, 0)}, r"'hidden_layer_sizes' .* positive ints"),
        ({"device": "gpu"}, r"'device' .* 'auto', 'cpu', 'cuda'"),
        ({"callbacks": "history"}, r"'callbacks' .* None or a list"),
        ({"warm_start": "yes"}, r"'warm_start' .* a bool"),
    ],
)
def test_bad_hyperparameters_fail_at_fit_naming_parameter_and_allowed_values(
    regression_data, params, message
):
    X, y = regression_data
    est = NeuralRegressor(**params)  # constructing never validates
    with pytest.raises(InvalidParameterError, match=message):
        est.fit(X, y)


def test_bad_callback_entries(regression_data):
    X, y = regression_data
    with pytest.raises(TypeError, match="Callback instance or a \\(name, Callback\\) pair"):
        NeuralRegressor(callbacks=[print]).fit(X, y)


def test_a_failed_call_leaves_the_fitted_model_intact(regression_data):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=2, random_state=0).fit(X, y)
    before = est.predict(X)
    with pytest.raises(ValueError):
        est.fit(X[:, :3], y, sample_weight=np.ones(3))  # bad weights after a new X
    assert est.n_features_in_ == 4
    np.testing.assert_array_equal(est.predict(X), before)
    with pytest.raises(ValueError):
        est.set_params(lr=-1).fit(X, y)
    np.testing.assert_array_equal(est.predict(X), before)


def test_predict_checks_plain_arrays_as_scikit_learn_does():
    """A plain float array takes a shorter validation path at predict: the
    same results and the same errors as scikit-learn's validate_data."""
    import re

    from sklearn.utils.validation import validate_data

    rng = np.random.RandomState(0)
    X = rng.randn(60, 3)
    est = NeuralRegressor(max_epochs=1, random_state=0).fit(X, X.sum(axis=1))
    np.testing.assert_array_equal(est.predict(X), est.predict(X.astype(np.float32)))
    np.testing.assert_array_equal(est.predict(X[:1]), est.predict(X[:1].tolist()))
    np.testing.assert_array_equal(est.predict(np.asfortranarray(X)), est.predict(X))
    np.testing.assert_array_equal(est.predict(X.astype(int)), est.predict(X.astype(int) * 1.0))
    for bad in (
        np.where(np.eye(60, 3) > 0, np.nan, X),
        np.full((2, 3), np.inf),
        X[:, :2],
        X[:0],
        np.array([1e300, 0.0, 0.0])[None, :],
    ):
        with pytest.raises(ValueError) as ours:
            est.predict(bad)
        with pytest.raises(ValueError) as theirs:
            validate_data(
                est,
                bad.astype(np.float32) if bad.size and np.isfinite(bad).all() else bad,
                reset=False,
                dtype=np.float32,
            )
        assert re.sub(r"\d+", "#", str(ours.value)) == re.sub(r"\d+", "#", str(theirs.value))


def test_predict_checks_lists_and_named_frames_as_scikit_learn_does(monkeypatch):
    """Lists and DataFrames named as in the fit also take the shorter path:
    the predictions of validate_data's path, and its errors and warnings."""
    pd = pytest.importorskip("pandas")
    import re

    rng = np.random.RandomState(0)
    X = rng.randn(60, 3)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    plain = NeuralRegressor(max_epochs=1, random_state=0).fit(X, X.sum(axis=1))
    named = NeuralRegressor(max_epochs=1, random_state=0).fit(frame, X.sum(axis=1))
    inputs = [
        (plain, X[:2].tolist()),
        (plain, X.astype(int).tolist()),
        (plain, [[2**60 + 2**36 + 1, 1, 2]]),  # rounds differently through int64
        (named, frame),
        (named, frame.astype(np.float32).iloc[:1]),
        (named, frame.round().astype(int)),
        (named, frame.astype("Float64")),  # a pandas extension dtype
    ]
    short = [est.predict(data) for est, data in inputs]
    monkeypatch.setattr(_internals, "plain_array", lambda estimator, X: None)
    for (est, data), ours in zip(inputs, short, strict=True):
        np.testing.assert_array_equal(ours, est.predict(data))
    monkeypatch.undo()

    def error(est, data):
        with pytest.raises(ValueError) as raised:
            est.predict(data)
        return re.sub(r"\d+", "#", str(raised.value))

    bad = [
        (plain, [[1.0, np.nan, 0.0]]),
        (plain, [[1.0, 2.0], [1.0, 2.0, 3.0]]),  # ragged
        (plain, [[1.0, 2.0]]),
        (plain, [1.0, 2.0, 3.0]),
        (named, frame[["b", "a", "c"]]),
        (named, frame.assign(a=np.inf)),
        (named, frame.rename(columns={"a": "z"})),
    ]
    errors = [error(est, data) for est, data in bad]
    assert "NaN" in errors[0] and "Expected #D array" in errors[3] and "infinity" in errors[5]
    assert "feature names" in errors[4] and "feature names" in errors[6]
    monkeypatch.setattr(_internals, "plain_array", lambda estimator, X: None)
    assert [error(est, data) for est, data in bad] == errors
    monkeypatch.undo()
    # inf - inf in the finiteness sum: validate_data's warnings, no more.
    both_infinities = np.array([[np.inf, -np.inf, 2.0]])
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        error(plain, both_infinities)
    monkeypatch.setattr(_internals, "plain_array", lambda estimator, X: None)
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        error(plain, both_infinities)
    monkeypatch.undo()
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]
    with pytest.warns(UserWarning, match="feature names"):
        named.predict(X[:1].tolist())
