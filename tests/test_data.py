"""Rows are trained on as given; sample weights scale each row's loss; the
validation split is over samples (stratified for classifiers)."""

import math
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from skcallback import NeuralClassifier, NeuralRegressor
from skcallback.callbacks import LambdaCallback


def categorical_rows(n=2000, patterns=30, seed=0):
    """Many rows over few distinct patterns (duplicates galore)."""
    rng = np.random.RandomState(seed)
    codes = rng.randint(0, patterns, size=n)
    X = np.eye(patterns)[codes]
    y = (rng.uniform(size=n) < 0.3 + 0.4 * (codes % 2)).astype(int)
    return X, y


@pytest.mark.parametrize("batch_size", [1, 64, 128, 5000])
def test_an_epoch_is_one_step_per_batch_of_the_rows_as_given(batch_size):
    X, y = categorical_rows()
    est = NeuralClassifier(
        batch_size=batch_size, max_epochs=2, validation_fraction=0.1, random_state=0
    )
    if batch_size == 1:
        X, y = X[:300], y[:300]
    est.fit(X, y)
    n_train = len(y) - math.ceil(0.1 * len(y))
    assert est.n_steps_ == 2 * math.ceil(n_train / batch_size)


def test_zero_weight_rows_are_visited_but_do_not_move_the_loss(regression_data):
    X, y = regression_data
    w = np.ones(len(y))
    w[::2] = 0
    seen = []
    est = NeuralRegressor(
        validation_fraction=None,
        batch_size=10,
        max_epochs=1,
        random_state=0,
        callbacks=[LambdaCallback(on_train_batch_end=lambda ctx: seen.append(len(ctx.X_batch)))],
    ).fit(X, y, sample_weight=w)
    assert sum(seen) == len(y) and est.n_steps_ == 12
    kept = NeuralRegressor(validation_fraction=None, batch_size=120, max_epochs=1).fit(
        X, y, sample_weight=w
    )
    # With one full batch, the zero-weight rows contribute nothing at all:
    # the loss equals the mean loss of the weighted rows.
    init = NeuralRegressor(validation_fraction=None, batch_size=120, max_epochs=1, lr=1e-12)
    init.set_params(random_state=1).fit(X, y, sample_weight=w)
    out = init.predict(X)
    expected = np.mean((out[1::2] - y[1::2]) ** 2)
    assert init.history_[-1]["train_loss"] == pytest.approx(expected, rel=1e-5)
    assert np.isfinite(kept.predict(X)).all()


def test_scaling_every_weight_or_uniform_weights_change_nothing(regression_data):
    X, y = regression_data
    w = np.random.RandomState(1).uniform(0.5, 2.0, size=len(y))

    def fit(weights):
        est = NeuralRegressor(max_epochs=3, batch_size=16, random_state=0)
        return est.fit(X, y, sample_weight=weights).predict(X)

    np.testing.assert_allclose(fit(w), fit(1000.0 * w), rtol=1e-6)
    np.testing.assert_allclose(fit(w), fit(1e-30 * w), rtol=1e-6)  # tiny, not denormal
    np.testing.assert_array_equal(fit(None), fit(np.full(len(y), 3.0)))


def test_weights_scale_each_rows_loss(regression_data):
    X, y = regression_data
    w = np.where(X[:, 0] > 0, 3.0, 1.0)
    est = NeuralRegressor(validation_fraction=None, batch_size=500, max_epochs=1, lr=1e-12)
    est.set_params(random_state=0).fit(X, y, sample_weight=w)
    squared = (est.predict(X) - y) ** 2
    expected = np.sum(w * squared) / np.sum(w)
    assert est.history_[-1]["train_loss"] == pytest.approx(expected, rel=1e-5)


def linear_fit(X, y, w, seed, weighted):
    est = NeuralRegressor(
        hidden_layer_sizes=(),
        validation_fraction=None,
        batch_size=8,
        lr=0.1,
        max_epochs=60,
        random_state=seed,
    )
    if weighted:
        est.fit(X, y, sample_weight=w)
    else:
        est.fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    return est.predict(PROBE)


PROBE = np.random.RandomState(7).normal(size=(5, 3))


def test_integer_weights_and_repeated_rows_give_equivalent_models_over_seeds():
    """The statistical form of scikit-learn's weights-vs-repeats check: over
    many seeds the predictions of weighted fits and of fits on repeated rows
    have the same mean (within a few standard errors), and both estimate the
    weighted least-squares solution. Fitting without the weights does not."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 3))
    y = X @ [1.0, -2.0, 0.5] + 3 * np.abs(X[:, 0]) + 0.3 * rng.normal(size=40)
    # Heavier weights where x0 > 0: the weighted linear fit has a steeper x0.
    w = np.where(X[:, 0] > 0, 3, rng.randint(0, 2, size=40))
    seeds = range(10)
    weighted = np.array([linear_fit(X, y, w, s, weighted=True) for s in seeds])
    repeated = np.array([linear_fit(X, y, w, s, weighted=False) for s in seeds])
    ignored = np.array([linear_fit(X, y, np.ones(40, int), s, weighted=False) for s in seeds])

    def standard_error(a, b):
        return np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b)) + 1e-3

    se = standard_error(weighted, repeated)
    assert np.all(np.abs(weighted.mean(0) - repeated.mean(0)) < 4 * se)
    design = np.c_[X, np.ones(40)]
    coef = np.linalg.lstsq(design * np.sqrt(w)[:, None], y * np.sqrt(w), rcond=None)[0]
    wls = np.c_[PROBE, np.ones(len(PROBE))] @ coef
    np.testing.assert_allclose(weighted.mean(0), wls, atol=0.1)
    np.testing.assert_allclose(repeated.mean(0), wls, atol=0.1)
    # The control: the test can tell weights from no weights.
    assert np.any(
        np.abs(ignored.mean(0) - repeated.mean(0)) > 4 * standard_error(ignored, repeated)
    )


@pytest.mark.parametrize("seed", range(5))
def test_the_classifier_split_is_stratified_over_samples(seed):
    rng = np.random.RandomState(seed)
    y = np.array([0] * 90 + [1] * 10)
    X = rng.normal(size=(100, 2))
    held_out = []
    NeuralClassifier(
        max_epochs=1,
        validation_fraction=0.2,
        random_state=seed,
        callbacks=[LambdaCallback(on_valid_batch_end=lambda ctx: held_out.append(ctx.y_batch))],
    ).fit(X, y)
    valid = torch.cat(held_out).numpy()
    assert np.bincount(valid).tolist() == [18, 2]


def test_duplicated_patterns_are_split_row_by_row():
    X, y = categorical_rows(n=3000, patterns=5)
    held_out = []
    NeuralClassifier(
        max_epochs=1,
        validation_fraction=0.2,
        random_state=0,
        callbacks=[LambdaCallback(on_valid_batch_end=lambda ctx: held_out.append(ctx.X_batch))],
    ).fit(X, y)
    valid_patterns = torch.cat(held_out).argmax(1).numpy()
    counts = np.bincount(valid_patterns, minlength=5)
    # Every pattern is in both parts, in proportion to its rows.
    assert np.all(counts > 0.5 * counts.mean())


def test_an_explicit_validation_set_is_used_as_given(regression_data):
    X, y = regression_data
    X_val, y_val = X[:30] + 1, y[:30]
    sizes = []
    est = NeuralRegressor(
        max_epochs=2,
        random_state=0,
        callbacks=[LambdaCallback(on_valid_end=lambda ctx: sizes.append(ctx.plan.n_valid))],
    ).fit(X, y, X_val=X_val, y_val=y_val)
    assert sizes == [30, 30]
    assert est.n_steps_ == 2 * math.ceil(120 / 128)  # every training sample trains
    # valid_loss is the loss on X_val
    assert est.history_[-1]["valid_loss"] == pytest.approx(
        np.mean((est.predict(X_val) - y_val) ** 2), rel=1e-5
    )
    with pytest.raises(ValueError, match="both X_val and y_val"):
        NeuralRegressor().fit(X, y, X_val=X_val)
    with pytest.raises(ValueError, match="3 features"):
        NeuralRegressor().fit(X, y, X_val=X_val[:, :3], y_val=y_val)


def test_validation_weights_weigh_the_validation_loss(regression_data):
    X, y = regression_data
    w_val = np.r_[np.zeros(10), np.ones(20)]
    est = NeuralRegressor(max_epochs=1, random_state=0).fit(
        X, y, X_val=X[:30], y_val=y[:30], sample_weight_val=w_val
    )
    squared = (est.predict(X[:30]) - y[:30]) ** 2
    assert est.history_[-1]["valid_loss"] == pytest.approx(squared[10:].mean(), rel=1e-5)


class BatchSizeRecorder(nn.Module):
    def __init__(self, n_features_in, n_outputs):
        super().__init__()
        self.linear = nn.Linear(n_features_in, n_outputs)
        self.sizes = []

    def forward(self, X):
        self.sizes.append(len(X))
        return self.linear(X)


def test_prediction_batches_are_the_rows_given(regression_data):
    X, y = regression_data
    est = NeuralRegressor(module=BatchSizeRecorder, max_epochs=1, random_state=0).fit(X, y)
    est.module_.sizes.clear()
    est.predict(X[:3])
    assert est.module_.sizes == [3]  # no padding rows reach the module


@pytest.mark.parametrize("precision", ["32", "64"])
def test_a_rows_prediction_does_not_depend_on_its_batch(regression_data, precision):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=2, random_state=0, precision=precision).fit(X, y)
    full = est.predict(X)
    one_by_one = np.concatenate([est.predict(X[i : i + 1]) for i in range(len(X))])
    rtol = 1e-12 if precision == "64" else 1e-6
    np.testing.assert_allclose(full, one_by_one, rtol=rtol, atol=rtol)


def test_sparse_and_dense_rows_train_alike(regression_data):
    X, y = regression_data
    dense = NeuralRegressor(max_epochs=2, random_state=0).fit(X, y).predict(X)
    sparse = NeuralRegressor(max_epochs=2, random_state=0).fit(sp.csr_matrix(X), y).predict(X)
    np.testing.assert_allclose(dense, sparse, rtol=1e-5, atol=1e-6)


def test_torch_inputs_work_under_array_api_dispatch():
    """scikit-learn's array_api_dispatch needs SCIPY_ARRAY_API=1 before scipy
    is imported, so the check runs in a fresh process."""
    import os
    import subprocess
    import sys

    code = """
import sys
import numpy as np, sklearn, torch
try:
    with sklearn.config_context(array_api_dispatch=True):
        pass
except ImportError as exc:  # scikit-learn's own prerequisites (array-api-compat, scipy)
    sys.exit(f"SKIP: {exc}")
from skcallback import NeuralClassifier, NeuralRegressor
X = torch.randn(120, 3, generator=torch.Generator().manual_seed(0))
y = X.sum(1)
with sklearn.config_context(array_api_dispatch=True):
    reg = NeuralRegressor(max_epochs=2, random_state=0)
    reg.fit(X, y, sample_weight=torch.ones(120))
    labels = (y > 0).long()
    clf = NeuralClassifier(max_epochs=2, random_state=0).fit(X, labels, X_val=X, y_val=labels)
    print(reg.predict(X).shape, clf.predict_proba(X).shape, clf.score(X, labels) > 0)
plain = NeuralRegressor(max_epochs=2, random_state=0).fit(X.numpy(), y.numpy())
np.testing.assert_array_equal(reg.predict(X.numpy()), plain.predict(X.numpy()))
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "SCIPY_ARRAY_API": "1"},
        timeout=120,
        check=False,
    )
    if result.stderr.startswith("SKIP: "):
        pytest.skip(f"array_api_dispatch unavailable here: {result.stderr[6:].strip()}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["(120,)", "(120,", "2)", "True"]


@pytest.mark.parametrize("weighted", [False, True])
def test_an_epoch_gathered_in_many_chunks_trains_on_the_batches_of_one(
    regression_data, monkeypatch, weighted
):
    """Large data is gathered a chunk of batches at a time: the batches, their
    weights and order, and so the model, are those of a single chunk."""
    from skcallback import _data

    X, y = regression_data
    weights = np.random.RandomState(1).uniform(0.5, 2, size=len(X)) if weighted else None

    def fit():
        seen = []

        def record(ctx):
            w = ctx.sample_weight_batch
            seen.append((ctx.X_batch.clone(), None if w is None else w.clone()))

        est = NeuralRegressor(
            batch_size=16,
            max_epochs=2,
            random_state=0,
            callbacks=[LambdaCallback(name="seen", on_train_batch_begin=record)],
        ).fit(X, y, sample_weight=weights)
        return est, seen

    whole, whole_batches = fit()
    row_bytes = X.shape[1] * 4 + 4  # float32 features and target
    monkeypatch.setattr(_data, "CHUNK_BYTES", 3 * 16 * row_bytes)  # 3 batches a chunk
    chunked, chunked_batches = fit()
    assert len(chunked_batches) == len(whole_batches) > 6
    for (X_a, w_a), (X_b, w_b) in zip(whole_batches, chunked_batches, strict=True):
        torch.testing.assert_close(X_a, X_b, rtol=0, atol=0)
        if weighted:
            torch.testing.assert_close(w_a, w_b, rtol=0, atol=0)
    np.testing.assert_array_equal(whole.predict(X), chunked.predict(X))
    if weighted:  # each row comes with its own weight (normalised: a common factor)
        row_of = {row.tobytes(): i for i, row in enumerate(X.astype(np.float32))}
        ratios = np.concatenate(
            [
                w_b.numpy() / weights[[row_of[row.tobytes()] for row in X_b.numpy()]]
                for X_b, w_b in chunked_batches
            ]
        )
        np.testing.assert_allclose(ratios, ratios[0], rtol=1e-5)


def test_read_only_inputs_raise_no_torch_warning_under_the_users_filters(tmp_path):
    # torch warns once per process about a read-only array: a new process,
    # whose filters (set after import, as a user's or pytest's are) turn
    # every warning into an error.
    script = """
import warnings
import numpy as np
import scipy.sparse as sp
import skcallback
warnings.simplefilter("error")
rng = np.random.RandomState(0)
X = rng.normal(size=(40, 3)).astype(np.float32)
y = X.sum(axis=1).astype(np.float32)
np.save("x.npy", X)
mapped = np.load("x.npy", mmap_mode="r")  # memory that cannot be written
sparse = sp.csr_matrix(X)
for array in (X, y, sparse.data, sparse.indices, sparse.indptr):
    array.setflags(write=False)
for data in (X, mapped, sparse):
    est = skcallback.NeuralRegressor(max_epochs=1, validation_fraction=None).fit(data, y)
    est.predict(data)
assert not X.flags.writeable and not mapped.flags.writeable
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
