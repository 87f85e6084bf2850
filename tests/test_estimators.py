"""Estimator behaviour: targets, weights, partial_fit, warm_start, inputs; a
fit is a transaction; non-finite training is refused; random state."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import NotFittedError
from torch import nn

from skcallback import Callback, NeuralClassifier, NeuralRegressor
from skcallback.callbacks import LambdaCallback, TerminateOnNaN


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


# -- a fit is a transaction ---------------------------------------------------
class FailAt(Callback):
    """Raises in ``hook``, at the ``epoch``-th epoch of this fit for
    ``on_epoch_end`` (after some training happened)."""

    def __init__(self, hook="on_epoch_end", epoch=2):
        self.hook = hook
        self.epoch = epoch

    def on_epoch_end(self, ctx):
        if self.hook == "on_epoch_end" and ctx.epoch - ctx.plan.first_epoch == self.epoch:
            raise RuntimeError("fail at epoch end")

    def on_fit_end(self, ctx):
        if self.hook == "on_fit_end":
            raise RuntimeError("fail at fit end")


def fitted_state(est):
    """What a user can observe of a fitted estimator."""
    return (
        est.predict(PROBE_X).tobytes(),
        est.n_iter_,
        est.n_steps_,
        len(est.history_),
        {k: v.detach().clone() for k, v in est.module_.state_dict().items()},
        est.optimizer_.state_dict()["state"].keys(),
    )


def assert_same_state(before, after):
    assert before[:4] == after[:4]
    assert all(torch.equal(before[4][k], after[4][k]) for k in before[4])
    assert before[5] == after[5]


PROBE_X = np.random.RandomState(3).normal(size=(7, 4))


@pytest.mark.parametrize("hook", ["on_epoch_end", "on_fit_end"])
def test_a_failed_fresh_fit_leaves_the_estimator_unfitted(regression_data, hook):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=3, callbacks=[FailAt(hook)], random_state=0)
    with pytest.raises(RuntimeError, match="fail at"):
        est.fit(X, y)
    with pytest.raises(NotFittedError):
        est.predict(X)
    assert not [k for k in vars(est) if k.endswith("_")]


@pytest.mark.parametrize("warm_start", [False, True])
@pytest.mark.parametrize("hook", ["on_epoch_end", "on_fit_end"])
def test_a_failed_refit_keeps_the_previous_model(regression_data, warm_start, hook):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=3, random_state=0, dropout=0.2).fit(X, y)
    before = fitted_state(est)
    est.set_params(warm_start=warm_start, callbacks=[FailAt(hook)])
    with pytest.raises(RuntimeError, match="fail at"):
        est.fit(X * 2, y)
    assert_same_state(before, fitted_state(est))
    # The kept model trains on as if the failed fit never happened.
    est.set_params(callbacks=None, warm_start=True).fit(X, y)
    assert est.n_iter_ == 6


def test_a_failed_partial_fit_or_bad_data_changes_nothing(classification_data):
    X, y = classification_data
    clf = NeuralClassifier(random_state=0).partial_fit(X, y, classes=["cat", "dog", "emu"])
    before = fitted_state_classifier(clf)
    with pytest.raises(ValueError, match="not among the classes"):
        clf.partial_fit(X, np.where(y == "cat", "cow", y))
    with pytest.raises(ValueError, match="4 features"):
        clf.partial_fit(X[:, :2], y)
    clf.set_params(callbacks=[FailAt("on_epoch_end", epoch=1)])
    with pytest.raises(RuntimeError):
        clf.partial_fit(X, y)
    assert fitted_state_classifier(clf) == before


def fitted_state_classifier(clf):
    return clf.predict_proba(PROBE_X).tobytes(), clf.n_iter_, clf.n_steps_, len(clf.history_)


def test_a_failed_load_checkpoint_changes_nothing(regression_data, tmp_path):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=2, random_state=0).fit(X, y)
    before = fitted_state(est)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError):
        est.load_checkpoint(tmp_path / "bad.pt")
    assert_same_state(before, fitted_state(est))


def test_a_stop_is_a_completion_with_its_reason(regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        max_epochs=10,
        callbacks=[LambdaCallback(on_epoch_end=lambda ctx: ctx.epoch < 3)],
        random_state=0,
    ).fit(X, y)
    assert est.n_iter_ == 3 and est.stop_reason_ == "lambda_callback.on_epoch_end returned False"
    est.set_params(callbacks=None, max_epochs=2).fit(X, y)
    assert est.stop_reason_ is None and est.n_steps_ == 2


# -- non-finite training is refused ---------------------------------------------
@pytest.mark.parametrize(
    ("X_scale", "y_value", "lr", "message"),
    [
        (1.0, 1e39, 1e-3, r"y has values beyond float32's range"),
        (1e20, None, 1e-3, r"loss on the first 8 samples is inf.*Scale them"),
        (1.0, None, 1e30, r"Training diverged in epoch \d.*lower lr \(now 1e\+30\)"),
    ],
)
def test_non_finite_training_is_an_error_that_says_what_to_try(
    regression_data, X_scale, y_value, lr, message
):
    X, y = regression_data
    y = y if y_value is None else np.full(len(y), y_value)
    est = NeuralRegressor(max_epochs=3, lr=lr, random_state=0)
    with pytest.raises(ValueError, match=message):
        est.fit(X * X_scale, y)
    with pytest.raises(NotFittedError):
        est.predict(X)


def test_terminate_on_nan_keeps_the_last_good_weights_instead(regression_data):
    X, y = regression_data

    def poison(ctx):
        if ctx.epoch == 2 and ctx.batch == 1:
            ctx.loss = ctx.loss * float("nan")

    est = NeuralRegressor(
        max_epochs=4,
        batch_size=40,
        callbacks=[LambdaCallback(on_after_loss=poison), TerminateOnNaN()],
        random_state=0,
    ).fit(X, y)
    assert est.stop_reason_.startswith("terminate_on_nan") and est.n_iter_ == 2
    assert np.isfinite(est.predict(X)).all()


def test_non_finite_predictions_are_an_error(regression_data):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=1, random_state=0).fit(X, y)
    with torch.no_grad():
        next(est.module_.parameters()).fill_(float("nan"))
    with pytest.raises(ValueError, match="output is not finite"):
        est.predict(X)


# -- random state --------------------------------------------------------------
def fit_with_dropout(X, y, seed):
    est = NeuralRegressor(dropout=0.3, max_epochs=3, batch_size=16, random_state=seed)
    return est.fit(X, y).predict(X)


def test_same_seed_fits_in_threads_equal_the_sequential_fit(regression_data):
    X, y = regression_data
    sequential = [fit_with_dropout(X, y, seed) for seed in (0, 0, 1)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        threaded = list(pool.map(lambda s: fit_with_dropout(X, y, s), [0, 0, 1] * 2))
    for i, result in enumerate(threaded):
        np.testing.assert_array_equal(result, sequential[i % 3])
    assert not np.array_equal(sequential[0], sequential[2])


@pytest.mark.parametrize("module", [None, "custom"])
def test_a_fit_never_reads_or_changes_the_global_torch_rng(regression_data, module):
    X, y = regression_data
    module = make_custom_module if module == "custom" else None
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    first = NeuralRegressor(module=module, dropout=0.0, max_epochs=2, random_state=0)
    first = first.fit(X, y).predict(X)
    assert torch.equal(state, torch.random.get_rng_state())
    torch.manual_seed(999)  # another global state: same model
    again = NeuralRegressor(module=module, max_epochs=2, random_state=0).fit(X, y).predict(X)
    np.testing.assert_array_equal(first, again)


def make_custom_module(n_features_in, n_outputs):
    return nn.Sequential(nn.Linear(n_features_in, 8), nn.Dropout(0.2), nn.Linear(8, n_outputs))


def test_a_warm_start_keeps_the_validation_split(regression_data):
    X, y = regression_data
    held_out = []
    record = LambdaCallback(on_valid_batch_end=lambda ctx: held_out.append(ctx.y_batch.clone()))
    est = NeuralRegressor(max_epochs=1, callbacks=[record], warm_start=True, random_state=0)
    est.fit(X, y).fit(X, y)
    assert torch.equal(held_out[0], held_out[1])
