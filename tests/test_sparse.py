"""Sparse inputs: the built-in MLP receives torch sparse batches and trains
the model the dense data trains; a user's module receives dense batches."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from skcallback import NeuralClassifier, NeuralRegressor
from skcallback.callbacks import LambdaCallback

FORMATS = {"csr": sp.csr_matrix, "csc": sp.csc_matrix, "coo": sp.coo_matrix}


def sparse_data(kind, seed=0, n_rows=150, n_features=40):
    """About 10% non-zeros, with all-zero rows (one in the first batch)."""
    rng = np.random.RandomState(seed)
    X = sp.random(n_rows, n_features, density=0.1, random_state=rng, dtype=np.float32)
    X = X.toarray()
    X[[3, 77]] = 0.0
    coef = rng.normal(size=n_features)
    score = X @ coef
    if kind == "regression":
        return X, score + 0.1 * rng.normal(size=n_rows)
    return X, np.digitize(score, np.quantile(score, [0.33, 0.66]))


#: name -> (data kind, estimator parameters, fit with sample weights)
CASES = {
    "regressor": ("regression", {}, False),
    "classifier": ("classification", {}, False),
    "sample weights": ("regression", {}, True),
    "classifier, weights, dropout": ("classification", {"dropout": 0.3}, True),
    "dropout, tanh": ("regression", {"dropout": 0.2, "activation": "tanh"}, False),
    "accumulate=2": ("regression", {"accumulate": 2}, False),
    "linear model": ("classification", {"hidden_layer_sizes": ()}, False),
    "validation": ("classification", {"validation_fraction": 0.2}, False),
    "float64": ("regression", {"precision": "64"}, False),
}


def make(kind, fast_path, **params):
    cls = NeuralRegressor if kind == "regression" else NeuralClassifier
    settings = {
        "hidden_layer_sizes": (16, 8),
        "batch_size": 32,
        "max_epochs": 3,
        "lr": 0.01,
        "validation_fraction": None,
        "random_state": 0,
        **params,
    }
    return cls(fast_path=fast_path, **settings)


def assert_same_model(a, b, X):
    for p, q in zip(a.module_.parameters(), b.module_.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
    if isinstance(a, NeuralClassifier):
        np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-4, atol=1e-5)
    else:
        np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("fast_path", [True, False])
@pytest.mark.parametrize("case", list(CASES))
def test_a_sparse_fit_trains_the_model_of_the_dense_fit(case, fast_path, fmt):
    kind, params, weighted = CASES[case]
    X, y = sparse_data(kind)
    w = np.random.RandomState(1).uniform(0, 3, size=len(y)) if weighted else None
    sparse = make(kind, fast_path, **params).fit(FORMATS[fmt](X), y, sample_weight=w)
    dense = make(kind, fast_path, **params).fit(X, y, sample_weight=w)
    assert sparse.fast_path_ is dense.fast_path_ is (fast_path and params.get("precision") != "64")
    assert_same_model(sparse, dense, X)
    # Predicting from the sparse matrix gives what predicting from the array does.
    assert_same_model(sparse, sparse, X)
    if isinstance(sparse, NeuralClassifier):
        np.testing.assert_allclose(
            sparse.predict_proba(FORMATS[fmt](X)), dense.predict_proba(X), rtol=1e-4, atol=1e-5
        )
    else:
        np.testing.assert_allclose(
            sparse.predict(FORMATS[fmt](X)), dense.predict(X), rtol=1e-4, atol=1e-5
        )
    if "validation" in case:
        np.testing.assert_allclose(
            sparse.history_.get("valid_loss"), dense.history_.get("valid_loss"), rtol=1e-5
        )


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_sparse_validation_set_validates_as_the_dense_one(fast_path):
    X, y = sparse_data("regression")
    X_val, y_val = X[:40], y[:40]
    sparse = make("regression", fast_path).fit(
        sp.csr_matrix(X), y, X_val=sp.csr_matrix(X_val), y_val=y_val
    )
    dense = make("regression", fast_path).fit(X, y, X_val=X_val, y_val=y_val)
    np.testing.assert_allclose(
        sparse.history_.get("valid_loss"), dense.history_.get("valid_loss"), rtol=1e-5
    )
    assert_same_model(sparse, dense, X)


def layouts_seen(est, X, y):
    """The layouts of the batches the fit's hooks and, at predict, the
    module's first layer saw."""
    seen = {"train": set(), "valid": set(), "predict": set()}

    def record(ctx):
        seen[ctx.phase].add(ctx.X_batch.layout)

    est.set_params(
        validation_fraction=0.2,
        callbacks=[LambdaCallback(on_train_batch_end=record, on_valid_batch_end=record)],
    )
    est.fit(X, y)
    first = next(m for m in est.module_.modules() if not list(m.children()))
    handle = first.register_forward_pre_hook(lambda m, args: seen["predict"].add(args[0].layout))
    try:
        est.predict(X)
    finally:
        handle.remove()
    return seen


@pytest.mark.parametrize("fast_path", [True, False])
def test_the_built_in_mlp_receives_sparse_batches(fast_path):
    X, y = sparse_data("regression")
    seen = layouts_seen(make("regression", fast_path), sp.csr_matrix(X), y)
    assert seen == {
        "train": {torch.sparse_coo},
        "valid": {torch.sparse_coo},
        "predict": {torch.sparse_coo},
    }
    # Dense data stays dense.
    seen = layouts_seen(make("regression", fast_path), X, y)
    assert seen == {"train": {torch.strided}, "valid": {torch.strided}, "predict": {torch.strided}}


class LayoutRecorder(nn.Module):
    """A user's module that refuses sparse input, as many would."""

    def __init__(self, n_features_in, n_outputs):
        super().__init__()
        self.linear = nn.Linear(n_features_in, n_outputs)
        self.layouts = set()

    def forward(self, X):
        self.layouts.add(X.layout)
        if X.layout != torch.strided:
            raise TypeError("dense input only")
        return self.linear(X)


def test_a_custom_module_still_receives_dense_batches():
    X, y = sparse_data("regression")
    est = make("regression", True, module=LayoutRecorder, validation_fraction=0.2)
    est.fit(sp.csr_matrix(X), y)
    est.predict(sp.csr_matrix(X))
    assert est.module_.layouts == {torch.strided}
    dense = make("regression", True, module=LayoutRecorder, validation_fraction=0.2).fit(X, y)
    np.testing.assert_array_equal(est.predict(X), dense.predict(X))


def test_autocast_receives_dense_batches():
    X, y = sparse_data("regression")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # bf16 emulated on some CPUs
        est = make("regression", True, precision="bf16-mixed")
        seen = layouts_seen(est, sp.csr_matrix(X), y)
    assert seen == {"train": {torch.strided}, "valid": {torch.strided}, "predict": {torch.strided}}


def test_a_non_canonical_matrix_trains_as_its_sum_and_is_left_alone():
    """Duplicate entries add up and unsorted column indices are sorted, on a
    copy: the user's matrix is not changed."""
    X, y = sparse_data("regression")
    coo = sp.coo_matrix(X)
    order = np.lexsort((-coo.col, coo.row))  # by row, columns in reverse order
    row, col, val = coo.row[order], coo.col[order], coo.data[order]
    indptr = np.r_[0, np.cumsum(2 * np.bincount(row, minlength=X.shape[0]))]
    # Every entry twice, halved.
    raw = sp.csr_matrix((np.repeat(val / 2, 2), np.repeat(col, 2), indptr), shape=X.shape)
    assert not raw.has_canonical_format
    before = (raw.indptr.copy(), raw.indices.copy(), raw.data.copy())
    batches = []
    record = LambdaCallback(on_train_batch_end=lambda ctx: batches.append(ctx.X_batch))
    sparse = make("regression", True, callbacks=[record]).fit(raw, y)
    for batch in batches:  # coalesced, as flagged: sorted, unique indices
        assert torch.equal(batch.indices(), batch.to_dense().to_sparse().indices())
    dense = make("regression", True).fit(X, y)
    assert_same_model(sparse, dense, X)
    np.testing.assert_allclose(sparse.predict(raw), dense.predict(X), rtol=1e-4, atol=1e-5)
    for a, b in zip(before, (raw.indptr, raw.indices, raw.data), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("layout", ["coo", "csr"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_torch_tensor_trains_and_predicts_as_its_scipy_or_numpy_twin(layout, dtype):
    rng = np.random.RandomState(0)
    dense = rng.normal(size=(40, 5)) * (rng.rand(40, 5) < 0.4)
    y = dense @ rng.normal(size=5)
    tensor = torch.tensor(dense).to(dtype)
    twin = sp.csr_matrix(tensor.float().numpy())  # bfloat16 values widen exactly
    tensor = tensor.to_sparse() if layout == "coo" else tensor.to_sparse_csr()
    params = {"device": "cpu", "max_epochs": 2, "random_state": 0, "hidden_layer_sizes": (4,)}
    from_tensor = NeuralRegressor(**params).fit(tensor, y)
    from_twin = NeuralRegressor(**params).fit(twin, y)
    np.testing.assert_array_equal(from_tensor.predict(tensor), from_twin.predict(twin))
    np.testing.assert_array_equal(
        from_tensor.predict(tensor.to_dense()), from_twin.predict(twin.toarray())
    )
