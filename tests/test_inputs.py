"""Inputs other than one 2-D table: arrays of any rank (images,
sequences) and dicts of arrays (``SliceDict``) for multi-input modules,
through fit, predict, scikit-learn's model selection and persistence."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from torch import nn

import skcallback
from skcallback import Callback, NeuralClassifier, NeuralRegressor, SliceDict


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X, y = X[:400], y[:400]
    return (X / 16).astype(np.float32), y


class CNN(nn.Module):
    """A small convolutional network sized from the images' shape."""

    def __init__(self, n_outputs, input_shape, channels=4):
        super().__init__()
        c, h, w = input_shape
        self.net = nn.Sequential(
            nn.Conv2d(c, channels, 3),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(channels * (h - 2) * (w - 2), n_outputs),
        )

    def forward(self, x):
        return self.net(x)


class TwoInputs(nn.Module):
    """Numeric features and a categorical code through an embedding."""

    def __init__(self, n_outputs, n_categories=10):
        super().__init__()
        self.embedding = nn.Embedding(n_categories, 3)
        self.linear = nn.Linear(64 + 3, n_outputs)

    def forward(self, numbers, category):
        return self.linear(torch.cat([numbers, self.embedding(category)], dim=1))


def test_images_keep_their_shape_and_predict_checks_it(digits):
    X, y = digits
    images = X.reshape(-1, 1, 8, 8)
    seen = []

    class Shapes(Callback):
        def on_train_batch_begin(self, ctx):
            seen.append(tuple(ctx.X_batch.shape[1:]))

    clf = NeuralClassifier(
        module=CNN, max_epochs=3, lr=1e-2, random_state=0, callbacks=[Shapes()]
    ).fit(images, y)
    assert set(seen) == {(1, 8, 8)}
    assert clf.score(images, y) > 0.8
    assert not hasattr(clf, "n_features_in_")  # as scikit-learn: 2-D X only
    assert clf.predict_proba(images[:5]).shape == (5, 10)
    with pytest.raises(
        ValueError, match=r"X is a 2-D array of 64 features.*\(n_samples, 1, 8, 8\)"
    ):
        clf.predict(X)
    with pytest.raises(ValueError, match=r"shape \(n_samples, 1, 4, 16\).*\(n_samples, 1, 8, 8\)"):
        clf.predict(X.reshape(-1, 1, 4, 16))


def test_integer_images_are_converted_like_2d_data(digits):
    X, y = digits
    pixels = (X * 16).astype(np.uint8).reshape(-1, 1, 8, 8)
    a = NeuralClassifier(module=CNN, max_epochs=2, random_state=0).fit(pixels, y)
    b = NeuralClassifier(module=CNN, max_epochs=2, random_state=0).fit(pixels.astype(np.float32), y)
    np.testing.assert_array_equal(a.predict_proba(pixels), b.predict_proba(pixels))


def test_the_builtin_mlp_says_how_to_use_other_ranks(digits):
    X, y = digits
    with pytest.raises(ValueError, match=r"built-in MLP.*2-D X.*reshape") as info:
        NeuralClassifier(max_epochs=1).fit(X.reshape(-1, 1, 8, 8), y)
    assert "(n_samples, 1, 8, 8)" in str(info.value)


def test_a_factory_asking_n_features_in_of_images_is_told_input_shape(digits):
    X, y = digits

    def factory(n_features_in, n_outputs):
        return nn.Linear(n_features_in, n_outputs)

    with pytest.raises(ValueError, match="input_shape"):
        NeuralClassifier(module=factory, max_epochs=1).fit(X.reshape(-1, 1, 8, 8), y)


def test_sequences_of_shape_n_t_f_train_a_recurrent_regressor():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 7, 3)).astype(np.float32)
    y = X[:, :, 0].sum(axis=1)

    class Recurrent(nn.Module):
        def __init__(self, input_shape, n_outputs):
            super().__init__()
            self.gru = nn.GRU(input_shape[1], 16, batch_first=True)
            self.head = nn.Linear(16, n_outputs)

        def forward(self, x):
            return self.head(self.gru(x)[1][-1])

    reg = NeuralRegressor(module=Recurrent, max_epochs=40, lr=1e-2, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (200,)
    assert reg.score(X, y) > 0.8


def test_a_dict_feeds_a_multi_input_module_by_keyword(digits):
    X, y = digits
    inputs = {"numbers": X, "category": y % 10}
    kinds = []

    class Batches(Callback):
        def on_train_batch_begin(self, ctx):
            kinds.append({k: v.dtype for k, v in ctx.X_batch.items()})

    clf = NeuralClassifier(
        module=TwoInputs, max_epochs=3, lr=1e-2, random_state=0, callbacks=[Batches()]
    ).fit(inputs, y)
    assert kinds[0] == {"numbers": torch.float32, "category": torch.int64}
    assert clf.score(inputs, y) > 0.8
    assert clf.predict(SliceDict(**inputs)[:7]).shape == (7,)
    reordered = {"category": inputs["category"], "numbers": inputs["numbers"]}  # by name
    np.testing.assert_array_equal(clf.predict_proba(reordered), clf.predict_proba(inputs))


def test_a_dict_predict_is_checked_against_the_fit(digits):
    X, y = digits
    clf = NeuralClassifier(module=TwoInputs, max_epochs=1, random_state=0)
    clf.fit({"numbers": X, "category": y % 10}, y)
    with pytest.raises(ValueError, match=r"fitted on a dict of arrays.*'category': int"):
        clf.predict({"numbers": X})
    with pytest.raises(ValueError, match=r"'category': float"):
        clf.predict({"numbers": X, "category": (y % 10) + 0.5})
    with pytest.raises(ValueError, match="fitted on a dict"):
        clf.predict(X)


@pytest.mark.parametrize(
    ("X", "message"),
    [
        ({}, "empty dict"),
        ({1: np.zeros((4, 2))}, "not a str"),
        ({"a": np.zeros((4, 2)), "b": np.zeros(3)}, "same number of rows"),
        ({"a": np.array([[1.0, np.nan]] * 4)}, "NaN"),
        ({"a": np.array(["x", "y", "z", "w"])}, "must hold numbers"),
        ({"a": np.float32(1.0)}, "scalar"),
    ],
)
def test_bad_dicts_are_refused_in_our_words(X, message):
    with pytest.raises(ValueError, match=message):
        NeuralRegressor(module=nn.Linear(2, 1), max_epochs=1).fit(X, np.zeros(4))


def test_dict_with_wrong_target_count_is_refused():
    with pytest.raises(ValueError, match="4 samples but y has 3"):
        NeuralRegressor(module=nn.Linear(2, 1)).fit({"a": np.zeros((4, 2))}, np.zeros(3))


def test_slicedict_indexes_by_rows():
    X = SliceDict(a=np.arange(10).reshape(5, 2), b=np.arange(5), c=torch.arange(5))
    assert X.shape == (5,) and len(X) == 5
    assert X[1]["b"].tolist() == [1]
    assert X[1:3]["a"].tolist() == [[2, 3], [4, 5]]
    assert X[np.array([4, 0])]["c"].tolist() == [4, 0]
    mask = np.array([True, False, True, False, False])
    assert X[mask]["b"].tolist() == [0, 2]
    assert X[mask]["c"].tolist() == [0, 2]
    texts = SliceDict(t=list("vwxyz"), b=np.arange(5))  # a list: rows by a mask or indices
    assert texts[mask]["t"] == ["v", "x"] and texts[[3, 1]]["t"] == ["y", "w"]
    assert isinstance(pickle.loads(pickle.dumps(X)), SliceDict)
    with pytest.raises(ValueError, match="same length"):
        SliceDict(a=np.zeros(3), b=np.zeros(4))
    with pytest.raises(ValueError, match="must have 5 rows"):
        X["d"] = np.zeros(4)
    train, test = train_test_split(X, test_size=2, random_state=0)
    assert len(train) == 3 and len(test) == 2


def test_slicedict_goes_through_model_selection(digits):
    X, y = digits
    inputs = SliceDict(numbers=X, category=y % 10)
    est = NeuralClassifier(module=TwoInputs, max_epochs=2, lr=1e-2, random_state=0)
    scores = cross_val_score(est, inputs, y, cv=3)
    assert scores.mean() > 0.4  # chance is 0.1
    search = GridSearchCV(est, {"module__n_categories": [10, 12]}, cv=2, n_jobs=2)
    search.fit(inputs, y)
    assert search.best_estimator_.predict(inputs[:3]).shape == (3,)
    passthrough = make_pipeline(FunctionTransformer(), est).fit(inputs, y)
    assert passthrough.score(inputs, y) > 0.4


def test_images_in_a_parallel_grid_search(digits):
    X, y = digits
    images = X.reshape(-1, 1, 8, 8)
    search = GridSearchCV(
        NeuralClassifier(module=CNN, max_epochs=2, lr=1e-2, random_state=0),
        {"module__channels": [2, 4]},
        cv=2,
        n_jobs=2,
    ).fit(images, y)
    assert search.best_score_ > 0.5


def test_other_inputs_persist_and_resume(digits, tmp_path):
    X, y = digits
    images = X.reshape(-1, 1, 8, 8)
    clf = NeuralClassifier(module=CNN, max_epochs=2, random_state=0).fit(images, y)
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_proba(images), clf.predict_proba(images))
    skcallback.save(clf, tmp_path / "cnn.skc")
    loaded = skcallback.load(tmp_path / "cnn.skc", trusted=[f"{__name__}.CNN"])
    np.testing.assert_array_equal(loaded.predict_proba(images), clf.predict_proba(images))
    with pytest.raises(ValueError, match="fitted on an array of shape"):
        loaded.predict(X)
    inputs = {"numbers": X, "category": y % 10}
    two = NeuralClassifier(module=TwoInputs, max_epochs=2, random_state=0).fit(inputs, y)
    skcallback.save(two, tmp_path / "two.skc")
    loaded = skcallback.load(tmp_path / "two.skc", trusted=[f"{__name__}.TwoInputs"])
    np.testing.assert_array_equal(loaded.predict_proba(inputs), two.predict_proba(inputs))
    # warm start continues on the same kind of input, and refuses another
    two.set_params(warm_start=True, max_epochs=1).fit(inputs, y)
    assert two.n_iter_ == 3
    with pytest.raises(ValueError, match="fitted on a dict"):
        two.fit(X, y)
    assert two.n_iter_ == 3


def test_dict_inputs_take_sample_weights_and_validation_sets(digits):
    X, y = digits
    inputs = SliceDict(numbers=X, category=y % 10)
    w = np.where(y == 0, 5.0, 1.0)
    a = NeuralClassifier(module=TwoInputs, max_epochs=2, random_state=0)
    a.fit(inputs[:300], y[:300], sample_weight=w[:300], X_val=inputs[300:], y_val=y[300:])
    b = NeuralClassifier(module=TwoInputs, max_epochs=2, random_state=0)
    b.fit(inputs[:300], y[:300], X_val=inputs[300:], y_val=y[300:])
    assert np.isfinite(a.history_[-1]["valid_loss"])
    assert not np.array_equal(a.predict_proba(inputs), b.predict_proba(inputs))
    with pytest.raises(ValueError, match="validation set"):
        a.fit(inputs, y, X_val={"numbers": X}, y_val=y)


def test_a_factory_naming_input_shape_gets_it_for_2d_x_too(digits):
    """One factory (say a generic network sized from input_shape) serves
    tables and images alike: a 2-D X's sample shape is (n_features,)."""
    X, y = digits
    seen = []

    def factory(input_shape, n_outputs):
        seen.append(input_shape)
        return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), n_outputs))

    NeuralClassifier(module=factory, max_epochs=1).fit(X, y)
    NeuralClassifier(module=factory, max_epochs=1).fit(X.reshape(-1, 1, 8, 8), y)
    assert seen == [(64,), (1, 8, 8)]


def _run_inputs_child(kind, folder, out, kill_after=None):
    """Run ``inputs_child.py``; with ``kill_after`` (seconds after training
    starts), SIGKILL it. Returns whether it was still running when killed,
    and the seconds it trained."""
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("inputs_child.py")), kind, folder, out],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert process.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    if kill_after is None:
        process.communicate(timeout=300)
        assert process.returncode == 0
        return False, time.perf_counter() - started
    time.sleep(kill_after)
    running = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    return running, kill_after


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["images", "dict"])
def test_a_killed_fit_on_images_or_a_dict_resumes_bit_for_bit(tmp_path, kind):
    _, seconds = _run_inputs_child(kind, tmp_path / "reference", tmp_path / "reference.pt")
    expected = torch.load(tmp_path / "reference.pt", weights_only=True)
    killed = []
    for i, share in enumerate([0.3, 0.7]):
        folder, out = tmp_path / f"run{i}", tmp_path / f"run{i}.pt"
        killed.append(_run_inputs_child(kind, folder, out, kill_after=share * seconds)[0])
        _run_inputs_child(kind, folder, out)
        result = torch.load(out, weights_only=True)
        assert result["n_steps"] == expected["n_steps"]
        for name, value in expected["weights"].items():
            assert torch.equal(result["weights"][name], value), (kind, i, name)
        assert result["resumed_from"] is not None or not killed[-1]
    assert any(killed)


def test_prediction_hooks_see_each_kind_of_batch(digits):
    X, y = digits
    seen = []

    class Watch(Callback):
        def on_predict_batch_begin(self, ctx):
            batch = ctx.X_batch
            seen.append(sorted(batch) if isinstance(batch, dict) else tuple(batch.shape[1:]))

    images = NeuralClassifier(module=CNN, max_epochs=1, callbacks=[Watch()]).fit(
        X.reshape(-1, 1, 8, 8), y
    )
    inputs = {"numbers": X, "category": y % 10}
    two = NeuralClassifier(module=TwoInputs, max_epochs=1, callbacks=[Watch()]).fit(inputs, y)
    seen.clear()
    plain = images.predict(X[:5].reshape(-1, 1, 8, 8))
    assert seen == [(1, 8, 8)]
    assert two.predict(inputs).shape == (len(y),) and seen[-1] == ["category", "numbers"]
    assert plain.shape == (5,)
