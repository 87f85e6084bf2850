"""Estimator behaviour: targets, weights, partial_fit, warm_start, inputs; a
fit is a transaction; non-finite training is refused; random state."""

import inspect
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.metrics import accuracy_score, r2_score
from torch import nn

from skcallback import Callback, NeuralClassifier, NeuralRegressor, _snapshot
from skcallback.callbacks import (
    Checkpoint,
    EarlyStopping,
    LambdaCallback,
    TerminateOnNaN,
    read_checkpoint,
)


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


def test_predict_proba_is_the_softmax_of_the_module_logits(classification_data):
    X, y = classification_data
    clf = NeuralClassifier(max_epochs=3, random_state=0).fit(X, y)
    with torch.no_grad():
        logits = clf.module_(torch.as_tensor(X, dtype=torch.float32)).double()
    expected = torch.softmax(logits, dim=1).numpy()
    np.testing.assert_allclose(clf.predict_proba(X), expected, rtol=1e-6, atol=1e-12)


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


def test_a_refit_drops_the_fitted_attributes_of_the_previous_fit(regression_data):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=1, random_state=0)
    est.fit(pd.DataFrame(X, columns=["a", "b", "c", "d"]), y)
    assert hasattr(est, "feature_names_in_")
    est.fit(X, y)  # no names now: the old ones would make predict warn and check them
    assert not hasattr(est, "feature_names_in_")
    est.predict(X)


class _Linear(torch.nn.Module):
    def __init__(self, n_features_in, n_outputs):
        super().__init__()
        self.linear = torch.nn.Linear(n_features_in, n_outputs)

    def forward(self, X):
        return self.linear(X)


def test_sparse_input_is_never_densified_whole(regression_data, monkeypatch):
    """A user's module gets dense batches, densified one batch at a time in
    training; the built-in MLP multiplies sparse batches, densifying nothing."""
    X, y = regression_data
    X_sparse = sp.csr_matrix(np.where(np.abs(X) > 0.5, X, 0))
    shapes = []
    original = sp.csr_matrix.toarray

    def spy(self, *args, **kwargs):
        shapes.append(self.shape[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sp.csr_matrix, "toarray", spy)
    params = dict(module=_Linear, max_epochs=2, batch_size=32, random_state=0)
    sparse_fit = NeuralRegressor(**params).fit(X_sparse, y)
    assert shapes and max(shapes) <= 32
    sparse_pred = sparse_fit.predict(X_sparse)
    shapes.clear()
    NeuralRegressor(max_epochs=2, batch_size=32, random_state=0).fit(X_sparse, y).predict(X_sparse)
    assert shapes == []
    monkeypatch.undo()
    dense_fit = NeuralRegressor(**params).fit(X_sparse.toarray(), y)
    np.testing.assert_allclose(sparse_pred, dense_fit.predict(X_sparse.toarray()))


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


def test_a_non_finite_validation_loss_is_divergence_and_leaves_the_estimator(regression_data):
    X, y = regression_data
    # SGD at lr=1e6: epoch 2's training loss is finite (1e24) but the weights
    # now overflow the validation forward pass to NaN.
    est = NeuralRegressor(optimizer="sgd", lr=1e6, max_epochs=1, random_state=0).fit(X, y)
    before = fitted_state(est)
    est.set_params(max_epochs=2)
    with pytest.raises(ValueError, match=r"Training diverged in epoch 2: valid_loss is nan"):
        est.fit(X, y)
    assert_same_state(before, fitted_state(est))
    with pytest.raises(ValueError, match=r"Training diverged in epoch 1: valid_loss is inf"):
        NeuralRegressor(max_epochs=2, random_state=0).fit(X, y, X_val=X[:10] * 1e37, y_val=y[:10])


def test_a_non_finite_score_is_divergence(regression_data):
    from skcallback.callbacks import EpochScoring

    X, y = regression_data
    nan_score = EpochScoring(lambda est, X, y: float("nan"), name="valid_nan")
    est = NeuralRegressor(max_epochs=2, callbacks=[nan_score], random_state=0)
    with pytest.raises(ValueError, match=r"diverged in epoch 1: valid_nan is nan"):
        est.fit(X, y)


@pytest.mark.parametrize("listed_first", [True, False])
def test_terminate_on_nan_stops_on_a_non_finite_validation_metric(regression_data, listed_first):
    from skcallback.callbacks import EpochScoring

    X, y = regression_data
    scores = iter([0.0, 0.5, float("inf"), 0.5])  # the first one is setup's try
    scoring = EpochScoring(lambda est, X, y: next(scores), name="valid_odd")
    callbacks = [TerminateOnNaN(), scoring] if listed_first else [scoring, TerminateOnNaN()]
    est = NeuralRegressor(max_epochs=3, callbacks=callbacks, random_state=0).fit(X, y)
    assert est.n_iter_ == 2 and est.history_.get("valid_odd") == [0.5, float("inf")]
    assert est.stop_reason_ == "terminate_on_nan: valid_odd is inf at epoch 2"
    est = NeuralRegressor(optimizer="sgd", lr=1e6, max_epochs=5, callbacks=[TerminateOnNaN()])
    est.set_params(random_state=0).fit(X, y)
    assert est.n_iter_ == 2 and est.stop_reason_.startswith("terminate_on_nan: valid_loss is nan")


@pytest.mark.parametrize("where", ["sample_weight", "sample_weight_val"])
def test_weights_whose_sum_overflows_are_refused(regression_data, where):
    X, y = regression_data
    weights = {where: np.full(len(y) if where == "sample_weight" else 10, 1.7e308)}
    if where == "sample_weight_val":
        weights.update(X_val=X[:10], y_val=y[:10])
    est = NeuralRegressor(max_epochs=1)
    with pytest.raises(ValueError, match=r"sum of sample_weight overflows float64.*scale"):
        est.fit(X, y, **weights)


@pytest.mark.parametrize(
    ("labels", "classes"), [([0.0, 1.0, np.nan], None), ([0.0, 1.0], [0.0, 1.0, np.nan])]
)
def test_non_finite_class_labels_are_refused(regression_data, labels, classes):
    X, _ = regression_data
    y = np.resize(np.array(labels), len(X))
    clf = NeuralClassifier(max_epochs=1)
    with pytest.raises(ValueError, match=r"(y|classes) contains NaN"):
        clf.partial_fit(X, y, classes=classes if classes is not None else np.unique(y))
    with pytest.raises(ValueError, match=r"contains NaN or infinity"):
        clf.partial_fit(X, y[:1].repeat(len(y)), classes=[0.0, np.inf])


def test_weights_made_non_finite_are_divergence_even_with_a_finite_loss(regression_data):
    X, y = regression_data

    def poison_after_the_last_step(ctx):
        if ctx.batch == ctx.n_batches:  # the epoch's losses are all finite by now
            with torch.no_grad():
                ctx.module.linear.weight[0, 0] = float("inf")

    est = NeuralRegressor(
        max_epochs=2,
        module=_Linear,
        callbacks=[LambdaCallback(on_after_step=poison_after_the_last_step)],
        random_state=0,
    )
    with pytest.raises(ValueError, match=r"Training diverged in epoch 1: a weight is not finite"):
        est.fit(X, y)
    with pytest.raises(NotFittedError):
        est.predict(X)


def test_large_finite_weights_are_no_divergence(regression_data):
    """Weights whose sum overflows float32 are finite: the fit completes."""
    X, y = regression_data

    def enlarge_after_the_last_step(ctx):
        if ctx.batch == ctx.n_batches:
            with torch.no_grad():
                ctx.module.linear.weight[0, :2] = 3e38

    est = NeuralRegressor(
        max_epochs=1,
        module=_Linear,
        validation_fraction=None,
        callbacks=[LambdaCallback(on_after_step=enlarge_after_the_last_step)],
        random_state=0,
    ).fit(X, y)
    assert bool((est.module_.linear.weight[0, :2] == torch.tensor(3e38)).all())


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


# -- the public contract (API.md), sentence by sentence ------------------------
def test_the_documented_names_import():
    from skcallback import Callback, Context, NeuralClassifier, NeuralRegressor
    from skcallback.callbacks import (
        Checkpoint,
        CSVLogger,
        EarlyStopping,
        EpochScoring,
        GradientClipping,
        History,
        LambdaCallback,
        LossMonitor,
        LRScheduler,
        MetricLogger,
        PrintLog,
        ProgressBar,
        TerminateOnNaN,
        TimeLimit,
        TimeMonitor,
    )

    builtins = [History, EarlyStopping, Checkpoint, LRScheduler, EpochScoring, PrintLog]
    builtins += [LossMonitor, MetricLogger, TimeMonitor, ProgressBar, TimeLimit, TerminateOnNaN]
    builtins += [GradientClipping, CSVLogger, LambdaCallback]
    assert all(issubclass(cls, Callback) for cls in builtins)
    assert isinstance(Context, type)
    assert NeuralRegressor is not NeuralClassifier


def test_estimators_are_scikit_learn_regressor_and_classifier(regression_data, classification_data):
    X, y = regression_data
    reg = NeuralRegressor(max_epochs=3, random_state=0)
    assert isinstance(reg, BaseEstimator) and isinstance(reg, RegressorMixin)
    assert is_regressor(reg) and not is_classifier(reg)
    reg.fit(X, y)
    assert reg.score(X, y) == pytest.approx(r2_score(y, reg.predict(X)))
    assert not hasattr(reg, "feature_names_in_")  # no names from a plain array
    Xc, yc = classification_data
    clf = NeuralClassifier(max_epochs=3, random_state=0)
    assert isinstance(clf, BaseEstimator) and isinstance(clf, ClassifierMixin)
    assert is_classifier(clf) and not is_regressor(clf)
    clf.fit(Xc, yc)
    assert clf.score(Xc, yc) == pytest.approx(accuracy_score(yc, clf.predict(Xc)))


DOCUMENTED_DEFAULTS = {
    "module": None,
    "hidden_layer_sizes": (100,),
    "activation": "relu",
    "dropout": 0.0,
    "criterion": None,
    "optimizer": "adam",
    "lr": 1e-3,
    "batch_size": 128,
    "max_epochs": 100,
    "validation_fraction": 0.1,
    "callbacks": None,
    "device": "auto",
    "random_state": None,
    "verbose": 0,
    "warm_start": False,
}


@pytest.mark.parametrize("cls", [NeuralRegressor, NeuralClassifier])
def test_constructor_parameters_are_keywords_with_the_documented_defaults(cls):
    params = cls().get_params(deep=False)
    assert {key: params[key] for key in DOCUMENTED_DEFAULTS} == DOCUMENTED_DEFAULTS
    signature = inspect.signature(cls)
    for name in DOCUMENTED_DEFAULTS:
        assert signature.parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
    with pytest.raises(TypeError):
        cls(None)


def test_constructor_parameters_are_stored_unchanged_and_never_mutated(regression_data):
    X, y = regression_data
    marker = object()
    assert NeuralRegressor(lr=marker).lr is marker  # stored as given, checked at fit
    callbacks = [LambdaCallback(name="watch")]
    sizes = [8]
    est = NeuralRegressor(callbacks=callbacks, hidden_layer_sizes=sizes, max_epochs=1)
    est.fit(X, y)
    assert est.callbacks is callbacks and len(callbacks) == 1  # History not added to it
    assert est.hidden_layer_sizes is sizes and sizes == [8]
    assert est.get_params(deep=False)["callbacks"] is callbacks


@pytest.mark.parametrize(
    ("activation", "layer"),
    [("relu", torch.nn.ReLU), ("tanh", torch.nn.Tanh), ("logistic", torch.nn.Sigmoid)],
)
def test_the_builtin_mlp_uses_the_activation(regression_data, activation, layer):
    X, y = regression_data
    est = NeuralRegressor(hidden_layer_sizes=(3, 2), activation=activation, max_epochs=1)
    kinds = [type(m) for m in est.fit(X, y).module_.modules()]
    assert kinds.count(layer) == 2
    others = {torch.nn.ReLU, torch.nn.Tanh, torch.nn.Sigmoid} - {layer}
    assert not others.intersection(kinds)


def test_a_module_factory_gets_only_the_sizes_its_signature_names(regression_data):
    X, y = regression_data
    calls = []

    def no_sizes():
        calls.append("no_sizes")
        return torch.nn.Linear(4, 1)

    def only_outputs(n_outputs, bias=True):
        calls.append(("only_outputs", n_outputs, bias))
        return torch.nn.Linear(4, n_outputs, bias=bias)

    NeuralRegressor(module=no_sizes, max_epochs=1).fit(X, y)
    est = NeuralRegressor(module=only_outputs, module__bias=False, max_epochs=1).fit(X, y)
    assert calls == ["no_sizes", ("only_outputs", 1, False)]
    assert est.module_.bias is None


def test_default_criteria_are_mse_and_cross_entropy(regression_data, classification_data):
    X, y = regression_data
    assert type(NeuralRegressor(max_epochs=1).fit(X, y).criterion_) is torch.nn.MSELoss
    Xc, yc = classification_data
    clf = NeuralClassifier(max_epochs=1).fit(Xc, yc)
    assert type(clf.criterion_) is torch.nn.CrossEntropyLoss


@pytest.mark.parametrize(
    ("optimizer", "expected"),
    [
        (None, torch.optim.Adam),  # the default, "adam"
        ("adamw", torch.optim.AdamW),
        ("sgd", torch.optim.SGD),
        (torch.optim.RMSprop, torch.optim.RMSprop),
    ],
)
def test_optimizer_by_name_or_class_with_lr(regression_data, optimizer, expected):
    X, y = regression_data
    params = {} if optimizer is None else {"optimizer": optimizer}
    est = NeuralRegressor(lr=0.05, max_epochs=1, **params).fit(X, y)
    assert type(est.optimizer_) is expected
    assert est.optimizer_.param_groups[0]["lr"] == 0.05


def _rows_per_phase(est, X, y, **fit_params):
    rows = {"train": 0, "valid": 0}

    def count(ctx):
        rows[ctx.phase] += len(ctx.X_batch)

    est.set_params(
        callbacks=[LambdaCallback(on_train_batch_end=count, on_valid_batch_end=count)],
        max_epochs=1,
        random_state=0,
    )
    est.fit(X, y, **fit_params)
    return rows


def test_validation_fraction_holds_out_that_share_and_none_validates_nothing(regression_data):
    X, y = regression_data  # 120 rows
    est = NeuralRegressor(validation_fraction=0.25)
    assert _rows_per_phase(est, X, y) == {"train": 90, "valid": 30}
    assert "valid_loss" in est.history_[0]
    est = NeuralRegressor(validation_fraction=None)
    assert _rows_per_phase(est, X, y) == {"train": 120, "valid": 0}
    assert "valid_loss" not in est.history_[0]


def test_verbose_0_is_silent_and_1_prints_a_line_per_epoch(regression_data, capsys):
    X, y = regression_data
    NeuralRegressor(max_epochs=3, random_state=0).fit(X, y)
    assert capsys.readouterr() == ("", "")
    NeuralRegressor(max_epochs=3, verbose=1, random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines if line.split()[0].isdigit()] == ["1", "2", "3"]


def _seeded_run(X, y, seed):
    seen = {}

    def at_begin(ctx):
        seen["init"] = ctx.module.layers[0].weight.detach().clone()

    def at_batch(ctx):
        seen.setdefault("order", []).append(ctx.y_batch.clone())

    def at_valid(ctx):
        seen.setdefault("valid", []).append(ctx.y_batch.clone())

    lam = LambdaCallback(on_fit_begin=at_begin, on_train_batch_begin=at_batch)
    spy = LambdaCallback(name="valid_spy", on_valid_batch_end=at_valid)
    NeuralRegressor(
        hidden_layer_sizes=(5,), batch_size=30, max_epochs=1, random_state=seed
    ).set_params(callbacks=[lam, spy]).fit(X, y)
    valid = torch.cat(seen["valid"]).sort().values
    train = torch.cat(seen["order"])
    return seen["init"], train, valid


def test_random_state_seeds_init_shuffling_and_the_validation_split(regression_data):
    X, y = regression_data
    a, b, c = (_seeded_run(X, y, seed) for seed in (0, 0, 1))
    for first, second in zip(a, b, strict=True):
        assert torch.equal(first, second)
    init, order, valid = (not torch.equal(first, other) for first, other in zip(a, c, strict=True))
    assert init and order and valid


def test_device_cpu_trains_and_predicts_on_the_cpu(regression_data):
    X, y = regression_data
    devices = []
    spy = LambdaCallback(on_train_batch_end=lambda ctx: devices.append(ctx.X_batch.device))
    est = NeuralRegressor(device="cpu", max_epochs=1, callbacks=[spy]).fit(X, y)
    assert est.device_ == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in est.module_.parameters())
    assert {d.type for d in devices} == {"cpu"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_auto_picks_cuda_when_available(regression_data):
    X, y = regression_data
    est = NeuralRegressor(device="auto", max_epochs=1).fit(X, y)
    assert est.device_.type == "cuda" and next(est.module_.parameters()).is_cuda


def test_partial_fit_takes_sample_weight_for_both_estimators(regression_data, classification_data):
    X, y = regression_data
    w = np.where(X[:, 0] > 0, 10.0, 0.1)
    plain = NeuralRegressor(random_state=0).partial_fit(X, y)
    weighted = NeuralRegressor(random_state=0).partial_fit(X, y, sample_weight=w)
    assert weighted.n_iter_ == 1
    assert not np.allclose(plain.predict(X), weighted.predict(X))
    Xc, yc = classification_data
    wc = np.where(yc == "cat", 10.0, 0.1)
    classes = ["cat", "dog", "emu"]
    plain = NeuralClassifier(random_state=0).partial_fit(Xc, yc, classes=classes)
    weighted = NeuralClassifier(random_state=0).partial_fit(
        Xc, yc, classes=classes, sample_weight=wc
    )
    assert not np.allclose(plain.predict_proba(Xc), weighted.predict_proba(Xc))


def test_partial_fit_validates_on_a_weighted_explicit_validation_set(regression_data):
    X, y = regression_data
    w_val = np.r_[np.zeros(10), np.ones(20)]
    est = NeuralRegressor(random_state=0)
    est.partial_fit(X, y, X_val=X[:30], y_val=y[:30], sample_weight_val=w_val)
    est.partial_fit(X, y, X_val=X[:30], y_val=y[:30], sample_weight_val=w_val)
    squared = (est.predict(X[:30]) - y[:30]) ** 2
    assert est.history_.get("valid_loss")[-1] == pytest.approx(squared[10:].mean(), rel=1e-5)
    assert est.n_iter_ == 2 and len(est.history_) == 2


def test_fitted_torch_objects_are_those_the_hooks_saw(regression_data):
    X, y = regression_data
    seen = {}

    def look(ctx):
        seen.update(module=ctx.module, optimizer=ctx.optimizer, criterion=ctx.criterion)

    est = NeuralRegressor(max_epochs=2, callbacks=[LambdaCallback(on_epoch_end=look)]).fit(X, y)
    assert est.module_ is seen["module"] and isinstance(est.module_, torch.nn.Module)
    assert est.optimizer_ is seen["optimizer"]
    assert isinstance(est.optimizer_, torch.optim.Optimizer)
    assert est.criterion_ is seen["criterion"] and isinstance(est.criterion_, torch.nn.Module)
    trained = {id(p) for group in est.optimizer_.param_groups for p in group["params"]}
    assert trained == {id(p) for p in est.module_.parameters()}


def _checkpointed_params(tmp_path):
    return dict(
        callbacks=[Checkpoint(dirname=tmp_path), EarlyStopping(patience=50, restore_best=False)],
        max_epochs=3,
        dropout=0.1,
        random_state=0,
    )


def test_load_checkpoint_into_a_fitted_estimator_restores_everything(regression_data, tmp_path):
    X, y = regression_data
    source = NeuralRegressor(**_checkpointed_params(tmp_path)).fit(X, y)
    path = source.callbacks_["checkpoint"].saved_paths_[-1]
    target = NeuralRegressor(**_checkpointed_params(tmp_path)).fit(X[:60], -y[:60])
    assert not np.array_equal(target.predict(X), source.predict(X))
    assert target.load_checkpoint(path) is target
    np.testing.assert_array_equal(target.predict(X), source.predict(X))
    assert target.n_iter_ == 3 and target.n_steps_ == source.n_steps_
    assert list(target.history_) == list(source.history_)
    stopping, expected = target.callbacks_["early_stopping"], source.callbacks_["early_stopping"]
    assert (stopping.best_score_, stopping.best_epoch_) == (
        expected.best_score_,
        expected.best_epoch_,
    )
    ours, theirs = target.optimizer_.state_dict(), source.optimizer_.state_dict()
    assert ours["state"].keys() == theirs["state"].keys()
    for key, state in theirs["state"].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(ours["state"][key][name]), torch.as_tensor(value))


_UNPICKLED = []


def _record_unpickling():
    _UNPICKLED.append("ran")
    return {}


class _Payload:
    def __reduce__(self):
        return (_record_unpickling, ())


def test_load_checkpoint_never_unpickles_arbitrary_objects(regression_data, tmp_path):
    X, y = regression_data
    source = NeuralRegressor(**_checkpointed_params(tmp_path)).fit(X, y)
    state = read_checkpoint(source.callbacks_["checkpoint"].saved_paths_[-1])
    state["callbacks"]["early_stopping"]["payload_"] = _Payload()
    _snapshot.write(state, tmp_path / "tampered.pt")  # a valid checksum: crafted, not corrupt
    _UNPICKLED.clear()
    est = NeuralRegressor(**_checkpointed_params(tmp_path))
    with pytest.raises(ValueError):
        est.load_checkpoint(tmp_path / "tampered.pt")
    assert _UNPICKLED == []
    with pytest.raises(NotFittedError):
        est.predict(X)


def test_a_user_activation_class_runs_under_the_fits_seed(regression_data):
    X, y = regression_data

    def fit():
        est = NeuralRegressor(activation=nn.RReLU, max_epochs=2, random_state=0)
        return est.fit(X, y).predict(X)

    torch.manual_seed(1)
    first = fit()
    state = torch.random.get_rng_state()
    torch.manual_seed(2)
    np.testing.assert_array_equal(first, fit())
    torch.manual_seed(1)
    fit()
    assert torch.equal(torch.random.get_rng_state(), state)


def test_zero_weights_on_every_validation_sample_are_an_error(regression_data):
    X, y = regression_data
    steps = []
    est = NeuralRegressor(
        max_epochs=1,
        validation_fraction=0.1,
        random_state=0,
        callbacks=[LambdaCallback(on_after_step=steps.append)],
    )
    with pytest.raises(ValueError, match="Every sample held out for validation has zero weight"):
        # one weighted sample, which the split (random_state=0) keeps for training
        est.fit(X, y, sample_weight=np.r_[1.0, np.zeros(119)])
    assert steps == []


def test_zero_weights_on_every_training_sample_are_an_error(regression_data):
    X, y = regression_data
    with pytest.raises(ValueError, match="Every sample left for training has zero weight"):
        NeuralRegressor(max_epochs=1, validation_fraction=0.9, random_state=0).fit(
            X, y, sample_weight=np.r_[np.ones(11), np.zeros(109)]
        )


def test_float64_training_handles_losses_beyond_float32(regression_data):
    X, y = regression_data
    est = NeuralRegressor(precision="64", max_epochs=1, random_state=0).fit(X, y * 1e22)
    assert np.isfinite(est.history_[-1]["train_loss"]) and est.history_[-1]["train_loss"] > 1e40


def test_a_second_fit_of_an_estimator_that_is_fitting_is_a_clear_error(regression_data):
    X, y = regression_data
    started, release = threading.Event(), threading.Event()

    class Hold(Callback):
        def on_epoch_begin(self, ctx):
            started.set()
            release.wait(10)

    est = NeuralRegressor(max_epochs=1, callbacks=[Hold()], random_state=0)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(est.fit, X, y)
        assert started.wait(10)
        try:
            with pytest.raises(RuntimeError, match=r"already fitting .*clone"):
                est.fit(X, y)
            with pytest.raises(RuntimeError, match="already fitting"):
                est.partial_fit(X, y)
        finally:
            release.set()
        assert first.result() is est
    # The refused fits changed nothing, and the estimator fits again afterwards.
    assert est.n_iter_ == 1
    assert est.set_params(callbacks=None).fit(X, y).n_iter_ == 1


def test_a_callback_fitting_its_own_estimator_is_refused(regression_data):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=1, random_state=0)
    est.set_params(callbacks=[LambdaCallback(on_fit_begin=lambda ctx: est.fit(X, y))])
    with pytest.raises(RuntimeError, match="already fitting"):
        est.fit(X, y)
    assert not hasattr(est, "module_")


@pytest.mark.parametrize(("fitted", "later"), [("32", "64"), ("64", "32"), ("64", "16-mixed")])
def test_predict_uses_the_fitted_modules_dtype_after_set_params(fitted, later, regression_data):
    # A fitted model predicts as fitted: a precision set afterwards applies
    # to the next fit (it failed with a raw torch dtype error).
    X, y = regression_data
    est = NeuralRegressor(max_epochs=1, precision=fitted, random_state=0).fit(X, y)
    expected = est.predict(X)
    est.set_params(precision=later)
    np.testing.assert_array_equal(est.predict(X), expected)


def test_validate_every_validates_every_kth_epoch_and_the_last(regression_data):
    X, y = regression_data
    validated = []
    spy = LambdaCallback(name="spy", on_valid_begin=lambda ctx: validated.append(ctx.epoch))
    est = NeuralRegressor(validate_every=3, max_epochs=7, callbacks=[spy]).fit(X, y)
    assert validated == [3, 6, 7]
    assert [epoch for epoch, loss in enumerate(est.history_.get("valid_loss"), 1) if loss] == [
        3,
        6,
        7,
    ]
    assert "valid_loss" not in est.history_[0]  # no key on epochs that did not validate


def test_validate_every_validates_an_epoch_in_which_training_was_stopped(regression_data):
    X, y = regression_data

    def stop_in_epoch_2(ctx):
        if ctx.epoch == 2:
            ctx.request_stop("enough")

    stopper = LambdaCallback(name="stopper", on_train_end=stop_in_epoch_2)
    est = NeuralRegressor(validate_every=5, max_epochs=10, callbacks=[stopper]).fit(X, y)
    assert est.n_iter_ == 2 and est.history_.get("valid_loss")[1] is not None


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_validate_every_must_be_a_positive_int(regression_data, bad):
    with pytest.raises(ValueError, match=r"'validate_every' parameter .* an int >= 1"):
        NeuralRegressor(validate_every=bad, max_epochs=1).fit(*regression_data)
