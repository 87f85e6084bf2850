"""Estimator behaviour: targets, weights, partial_fit, warm_start, inputs."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from skcallback import NeuralClassifier, NeuralRegressor
from skcallback.callbacks import LambdaCallback


def test_regressor_learns_1d_and_2d_targets(regression_data):
    X, y = regression_data
    est = NeuralRegressor(lr=1e-2, max_epochs=60, random_state=0).fit(X, y)
    assert est.predict(X).shape == (120,) and est.predict(X).dtype == np.float64
    assert est.score(X, y) > 0.9
    Y = np.column_stack([y, -y])
    multi = NeuralRegressor(lr=1e-2, max_epochs=60, random_state=0).fit(X, Y)
    assert multi.n_outputs_ == 2 and multi.predict(X).shape == (120, 2)
    assert multi.score(X, Y) > 0.9
    column = NeuralRegressor(max_epochs=1).fit(X, y[:, None])
    assert column.predict(X).shape == (120, 1)


def test_empty_hidden_layers_give_a_linear_model(regression_data):
    X, y = regression_data
    est = NeuralRegressor(hidden_layer_sizes=(), max_epochs=1).fit(X, y)
    layers = list(est.module_.modules())
    assert sum(isinstance(m, torch.nn.Linear) for m in layers) == 1
    assert not any(isinstance(m, torch.nn.ReLU) for m in layers)


def test_mlp_is_sized_from_the_data(classification_data):
    X, y = classification_data
    est = NeuralClassifier(hidden_layer_sizes=(8, 5), dropout=0.2, max_epochs=1).fit(X, y)
    linears = [m for m in est.module_.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(4, 8), (8, 5), (5, 3)]
    assert any(isinstance(m, torch.nn.Dropout) for m in est.module_.modules())


def test_classifier_handles_string_labels_and_probabilities(classification_data):
    X, y = classification_data
    clf = NeuralClassifier(lr=1e-2, max_epochs=40, random_state=0).fit(X, y)
    assert clf.classes_.tolist() == ["cat", "dog", "emu"]
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, y) > 0.85


def test_binary_classification_with_integer_labels():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(100, 3))
    y = np.where(X[:, 0] > 0, 7, -3)
    clf = NeuralClassifier(lr=1e-2, max_epochs=30, random_state=0).fit(X, y)
    assert clf.classes_.tolist() == [-3, 7]
    assert set(clf.predict(X)) <= {-3, 7}
    assert clf.score(X, y) > 0.9


def test_same_seed_gives_identical_models_and_global_rng_is_untouched(regression_data):
    X, y = regression_data
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = NeuralRegressor(dropout=0.3, max_epochs=3, random_state=0).fit(X, y)
    b = NeuralRegressor(dropout=0.3, max_epochs=3, random_state=0).fit(X, y)
    assert torch.equal(before, torch.get_rng_state())
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    c = NeuralRegressor(dropout=0.3, max_epochs=3, random_state=1).fit(X, y)
    assert not np.array_equal(a.predict(X), c.predict(X))


def test_sample_weight_changes_the_fit(regression_data):
    X, y = regression_data
    w = np.where(X[:, 0] > 0, 10.0, 0.1)
    plain = NeuralRegressor(max_epochs=3, random_state=0).fit(X, y)
    weighted = NeuralRegressor(max_epochs=3, random_state=0).fit(X, y, sample_weight=w)
    assert not np.allclose(plain.predict(X), weighted.predict(X))
    with pytest.raises(ValueError, match=r"Negative values.*sample_weight"):
        NeuralRegressor().fit(X, y, sample_weight=-w)
    with pytest.raises(ValueError, match="at least one non-zero"):
        NeuralRegressor().fit(X, y, sample_weight=np.zeros(len(y)))


def test_partial_fit_runs_one_epoch_per_call(classification_data):
    X, y = classification_data
    clf = NeuralClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    for expected in (1, 2, 3):
        clf.partial_fit(X, y, classes=["cat", "dog", "emu"])
        assert clf.n_iter_ == expected
    assert [r["epoch"] for r in clf.history_] == [1, 2, 3]
    assert "valid_loss" not in clf.history_[0]
    with pytest.raises(ValueError, match="not among the classes"):
        clf.partial_fit(X, np.where(y == "cat", "cow", y))
    with pytest.raises(ValueError, match="4 features"):
        clf.partial_fit(X[:, :3], y)


def test_warm_start_continues_training_history_and_callback_state(regression_data):
    X, y = regression_data

    def count(ctx):
        cb = ctx.callbacks["counter"]
        cb.batches_ = getattr(cb, "batches_", 0) + 1

    est = NeuralRegressor(
        max_epochs=2,
        warm_start=True,
        random_state=0,
        callbacks=[LambdaCallback(name="counter", on_train_batch_end=count)],
    )
    est.fit(X, y)
    steps, weights = est.n_steps_, est.module_.layers[0].weight.detach().clone()
    est.fit(X, y)
    assert est.n_iter_ == 4 and [r["epoch"] for r in est.history_] == [1, 2, 3, 4]
    assert est.n_steps_ == 2 * steps
    assert est.callbacks_["counter"].batches_ == 2 * steps
    assert not torch.equal(weights, est.module_.layers[0].weight)
    cold = est.set_params(warm_start=False).fit(X, y)
    assert cold.n_iter_ == 2


def test_module_instance_is_copied_not_mutated(regression_data):
    X, y = regression_data
    net = torch.nn.Sequential(torch.nn.Linear(4, 1))
    before = net[0].weight.detach().clone()
    est = NeuralRegressor(module=net, max_epochs=3, lr=1e-1).fit(X, y)
    assert torch.equal(net[0].weight, before)
    assert est.module_ is not net
    with pytest.raises(ValueError, match="module__ parameters"):
        NeuralRegressor(module=net, module__bias=False).fit(X, y)


def test_module_factory_gets_sizes_when_it_names_them(classification_data):
    X, y = classification_data
    seen = {}

    def factory(n_features_in, n_outputs, width=4):
        seen.update(n_features_in=n_features_in, n_outputs=n_outputs, width=width)
        return torch.nn.Sequential(
            torch.nn.Linear(n_features_in, width), torch.nn.Linear(width, n_outputs)
        )

    NeuralClassifier(module=factory, module__width=6, max_epochs=1).fit(X, y)
    assert seen == {"n_features_in": 4, "n_outputs": 3, "width": 6}


def test_pandas_input_records_feature_names(regression_data):
    X, y = regression_data
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    est = NeuralRegressor(max_epochs=2, random_state=0).fit(frame, pd.Series(y))
    assert est.feature_names_in_.tolist() == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(est.predict(frame), est.predict(frame.astype(np.float64)))


def test_sparse_input_is_densified_one_batch_at_a_time(regression_data, monkeypatch):
    X, y = regression_data
    X_sparse = sp.csr_matrix(np.where(np.abs(X) > 0.5, X, 0))
    shapes = []
    original = sp.csr_matrix.toarray

    def spy(self, *args, **kwargs):
        shapes.append(self.shape[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sp.csr_matrix, "toarray", spy)
    sparse_fit = NeuralRegressor(max_epochs=2, batch_size=32, random_state=0).fit(X_sparse, y)
    assert shapes and max(shapes) <= 32
    monkeypatch.undo()
    dense_fit = NeuralRegressor(max_epochs=2, batch_size=32, random_state=0).fit(
        X_sparse.toarray(), y
    )
    np.testing.assert_allclose(sparse_fit.predict(X_sparse), dense_fit.predict(X_sparse.toarray()))


def test_float64_input_trains_a_float32_model(regression_data):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=1).fit(X.astype(np.float64), y)
    assert all(p.dtype == torch.float32 for p in est.module_.parameters())


def test_cuda_device_without_cuda_is_a_clear_error(regression_data, monkeypatch):
    X, y = regression_data
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"device='cuda:1'.*use device='cpu'"):
        NeuralRegressor(device="cuda:1").fit(X, y)
    est = NeuralRegressor(device="auto", max_epochs=1).fit(X, y)
    assert est.device_ == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fits_and_predicts_on_cuda(regression_data):
    X, y = regression_data
    est = NeuralRegressor(device="cuda", max_epochs=3, random_state=0).fit(X, y)
    assert next(est.module_.parameters()).is_cuda
    assert est.predict(X).shape == (120,)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_data_too_large_for_the_gpu_is_streamed_from_pinned_memory(regression_data, monkeypatch):
    from skcallback import _data

    X, y = regression_data
    w = np.linspace(0.5, 2.0, len(y))
    resident = NeuralRegressor(device="cuda", max_epochs=3, random_state=0).fit(X, y, w)
    monkeypatch.setattr(_data, "_fits_on", lambda device, nbytes: False)
    streamed = NeuralRegressor(device="cuda", max_epochs=3, random_state=0).fit(X, y, w)
    np.testing.assert_allclose(streamed.predict(X), resident.predict(X), rtol=1e-5, atol=1e-6)
