"""The fast path (``fast_path=True``): the built-in MLP trained with
hand-derived gradients gives the model autograd gives, and is used only
where it can."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from scipy import sparse
from torch import nn

import skcallback
from skcallback import NeuralClassifier, NeuralRegressor
from skcallback.callbacks import (
    Checkpoint,
    EpochScoring,
    GradientClipping,
    LambdaCallback,
)

ACTIVATIONS = [
    "relu",
    "tanh",
    "logistic",
    "sigmoid",
    "identity",
    "gelu",
    "silu",
    "elu",
    "leaky_relu",
]


def _data(kind, seed, n_rows=203):
    """203 rows: batches of 32 leave a last batch of 11."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_rows, 5)).astype(np.float32)
    if kind == "binary":
        return X, np.array(["no", "yes"])[(X[:, 0] + X[:, 1] > 0).astype(int)]
    if kind == "multiclass":
        return X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5) + 2 * (X[:, 2] > 1)
    if kind == "multilabel":
        return X, np.column_stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0.5, X[:, 3] > 1]).astype(int)
    coef = rng.normal(size=(5, 3 if kind == "multi_output" else 1))
    y = X @ coef + 0.1 * rng.normal(size=(n_rows, coef.shape[1]))
    return X, (y if kind == "multi_output" else y.ravel())


#: name -> (data kind, estimator parameters, fit with sample weights)
CASES = {
    **{f"activation={a}": ("regression", {"activation": a}, False) for a in ACTIVATIONS},
    **{
        f"activation={a}, dropout": ("regression", {"activation": a, "dropout": 0.3}, False)
        for a in ("relu", "tanh", "gelu", "silu")
    },
    "sample weights": ("regression", {}, True),
    "multi-output": ("multi_output", {"activation": "tanh"}, False),
    "multi-output, weighted, dropout": ("multi_output", {"dropout": 0.2}, True),
    "binary": ("binary", {}, False),
    "multiclass": ("multiclass", {"activation": "elu"}, False),
    "multiclass, weighted, dropout": ("multiclass", {"dropout": 0.25}, True),
    "multilabel": ("multilabel", {}, False),
    "multilabel, weighted, dropout": ("multilabel", {"activation": "tanh", "dropout": 0.2}, True),
    "multilabel, class_weight": ("multilabel", {"class_weight": "balanced"}, False),
    "multilabel, accumulate=2": ("multilabel", {"accumulate": 2}, True),
    "accumulate=3": ("regression", {"accumulate": 3}, False),
    "accumulate=3, classifier, weighted": ("multiclass", {"accumulate": 3}, True),
    "sgd": ("regression", {"optimizer": "sgd", "lr": 0.05}, False),
    "sgd, classifier, accumulate=2": ("binary", {"optimizer": "sgd", "accumulate": 2}, False),
    "gradient clipping": (
        "regression",
        {"lr": 0.05, "callbacks": [GradientClipping(max_norm=0.5)]},
        False,
    ),
    "linear model": ("multiclass", {"hidden_layer_sizes": ()}, False),
    "validation": ("binary", {"validation_fraction": 0.2, "activation": "silu"}, False),
    "class_weight": ("multiclass", {"class_weight": {0: 0.5, 3: 4.0}}, True),
}


def _fit(kind, params, weighted, seed, fast_path):
    X, y = _data(kind, seed)
    cls = NeuralRegressor if kind in ("regression", "multi_output") else NeuralClassifier
    settings = {
        "hidden_layer_sizes": (12, 7),
        "batch_size": 32,
        "max_epochs": 3,
        "lr": 0.01,
        "validation_fraction": None,
        "random_state": seed,
        **params,
    }
    weights = np.random.RandomState(seed).uniform(0, 3, size=len(X)) if weighted else None
    est = cls(fast_path=fast_path, **settings).fit(X, y, sample_weight=weights)
    return est, X


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", list(CASES))
def test_the_fast_path_trains_the_model_autograd_trains(case, seed):
    kind, params, weighted = CASES[case]
    fast, X = _fit(kind, params, weighted, seed, fast_path=True)
    slow, _ = _fit(kind, params, weighted, seed, fast_path=False)
    assert fast.fast_path_ and not slow.fast_path_
    assert fast.n_steps_ == slow.n_steps_
    for a, b in zip(fast.module_.parameters(), slow.module_.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        fast.history_.get("train_loss"), slow.history_.get("train_loss"), rtol=1e-5
    )
    if isinstance(fast, NeuralClassifier):
        np.testing.assert_allclose(
            fast.predict_proba(X), slow.predict_proba(X), rtol=1e-4, atol=1e-5
        )
    else:
        np.testing.assert_allclose(fast.predict(X), slow.predict(X), rtol=1e-4, atol=1e-5)


def test_sparse_inputs_and_a_batch_larger_than_the_data(regression_data):
    X, y = regression_data

    def fit(fast_path, batch_size):
        return NeuralRegressor(
            batch_size=batch_size, max_epochs=3, random_state=0, fast_path=fast_path
        ).fit(sparse.csr_matrix(np.where(np.abs(X) > 1, X, 0)), y)

    for batch_size in (16, 10**7):
        fast, slow = fit(True, batch_size), fit(False, batch_size)
        assert fast.fast_path_
        np.testing.assert_allclose(fast.predict(X), slow.predict(X), rtol=1e-4, atol=1e-5)


def test_a_frozen_layer_stays_frozen(regression_data):
    X, y = regression_data
    initial = {}

    def freeze_first_layer(ctx):
        layer = ctx.module.layers[0]
        initial[ctx.estimator.fast_path] = layer.weight.detach().clone()
        layer.requires_grad_(False)

    def fit(fast_path):
        return NeuralRegressor(
            max_epochs=2,
            random_state=0,
            fast_path=fast_path,
            callbacks=[LambdaCallback(on_fit_begin=freeze_first_layer)],
        ).fit(X, y)

    fast, slow = fit(True), fit(False)
    assert fast.fast_path_
    for est in (fast, slow):
        assert torch.equal(est.module_.layers[0].weight, initial[est.fast_path])
    np.testing.assert_allclose(fast.predict(X), slow.predict(X), rtol=1e-4, atol=1e-5)


def _identity_compile(module, **kwargs):
    return module


def _hook(name):
    return LambdaCallback(name="graph_hook", **{name: lambda ctx: None})


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, True),
        ({"dropout": 0.5, "accumulate": 2}, True),
        ({"callbacks": [_hook("on_after_backward"), GradientClipping(1.0)]}, True),
        ({"callbacks": [EpochScoring("r2", on_train=True)]}, True),
        ({"fast_path": False}, False),
        ({"module": nn.Linear, "module__in_features": 4, "module__out_features": 1}, False),
        ({"activation": nn.ReLU}, False),
        ({"criterion": nn.MSELoss}, False),
        ({"criterion": nn.L1Loss}, False),
        ({"criterion__reduction": "mean"}, False),
        ({"precision": "bf16-mixed"}, False),
        ({"precision": "64"}, False),
        ({"compile": True}, False),
        ({"callbacks": [_hook("on_after_forward")]}, False),
        ({"callbacks": [_hook("on_after_loss")]}, False),
        ({"callbacks": [_hook("on_before_backward")]}, False),
    ],
    ids=lambda value: repr(value)[:60],
)
def test_the_fast_path_runs_only_where_it_gives_the_autograd_model(
    regression_data, monkeypatch, params, expected
):
    monkeypatch.setattr(torch, "compile", _identity_compile)
    X, y = regression_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # bf16 emulated on this CPU
        est = NeuralRegressor(max_epochs=1, random_state=0, **params).fit(X, y)
    assert est.fast_path_ is expected


def _enlarge_batches(ctx):
    """Augmentation that doubles each batch: more rows than batch_size."""
    ctx.X_batch = torch.cat([ctx.X_batch, ctx.X_batch + 0.01])
    ctx.y_batch = torch.cat([ctx.y_batch, ctx.y_batch])


def _soft_targets(ctx):
    """Label smoothing done by a callback: class probabilities as targets."""
    n_classes = [m for m in ctx.module.modules() if isinstance(m, nn.Linear)][-1].out_features
    one_hot = nn.functional.one_hot(ctx.y_batch, n_classes).to(ctx.X_batch.dtype)
    ctx.y_batch = one_hot * 0.9 + 0.1 / n_classes


def _soft_labels(ctx):
    """Label smoothing of a multi-label batch: targets in (0, 1)."""
    ctx.y_batch = ctx.y_batch * 0.8 + 0.1


def _evaluate_mode(ctx):
    ctx.module.eval()


def _zero_first_gradient(ctx):
    """(Halving it would not do: Adam's step does not see a gradient's scale.)"""
    next(ctx.module.parameters()).register_hook(lambda grad: grad * 0)


def _double_output(ctx):
    last = [m for m in ctx.module.modules() if isinstance(m, nn.Linear)][-1]
    last.register_forward_hook(lambda module, inputs, output: output * 2)


def _replace_first_weight(ctx):
    weight = next(ctx.module.parameters())
    weight.data = weight.data.clone()


def _linears(ctx):
    return [m for m in ctx.module.modules() if isinstance(m, nn.Linear)]


def _freeze_first_weight_at_epoch_2(ctx):
    if ctx.epoch == 2:
        _linears(ctx)[0].weight.requires_grad_(False)


def _new_first_weight(ctx):
    layer = _linears(ctx)[0]
    layer.weight = nn.Parameter(layer.weight.detach().clone())


def _new_last_layer(ctx):
    for parent in ctx.module.modules():
        for name, child in parent.named_children():
            if child is _linears(ctx)[-1]:
                layer = nn.Linear(child.in_features, child.out_features)
                nn.init.constant_(layer.weight, 0.1)  # the same in both fits
                nn.init.zeros_(layer.bias)
                setattr(parent, name, layer)


def _parametrize_first_weight(ctx):
    from torch.nn.utils import parametrize

    class Doubled(nn.Module):
        def forward(self, weight):
            return 2 * weight

    parametrize.register_parametrization(_linears(ctx)[0], "weight", Doubled())


def _dropout_layers_evaluate(ctx):
    for layer in ctx.module.modules():
        if isinstance(layer, nn.Dropout):
            layer.eval()


def _inputs_need_gradients(ctx):
    ctx.X_batch = ctx.X_batch.clone().requires_grad_()


def _float64_weights(ctx):
    ctx.sample_weight_batch = ctx.sample_weight_batch.double()


def _weights_added(ctx):
    ctx.sample_weight_batch = torch.linspace(0.5, 1.5, len(ctx.X_batch))


def _ignored_targets(ctx):
    ctx.y_batch = ctx.y_batch.clone()
    ctx.y_batch[0] = -100  # cross-entropy's ignore_index


CHANGED_BY_CALLBACKS = {
    "batches enlarged": ("regression", {"on_train_batch_begin": _enlarge_batches}, {}),
    "soft targets": ("multiclass", {"on_train_batch_begin": _soft_targets}, {}),
    "soft multi-label targets": ("multilabel", {"on_train_batch_begin": _soft_labels}, {}),
    "eval mode, dropout": ("multiclass", {"on_train_begin": _evaluate_mode}, {"dropout": 0.3}),
    "gradient hook": ("regression", {"on_fit_begin": _zero_first_gradient}, {}),
    "forward hook": ("binary", {"on_fit_begin": _double_output}, {}),
    "weight storage replaced": ("regression", {"on_train_begin": _replace_first_weight}, {}),
    "weight frozen mid-fit": (
        "regression",
        {"on_epoch_begin": _freeze_first_weight_at_epoch_2},
        {},
    ),
    "weight parameter replaced": ("regression", {"on_fit_begin": _new_first_weight}, {}),
    "layer replaced": ("regression", {"on_fit_begin": _new_last_layer}, {}),
    "weight parametrized": ("regression", {"on_fit_begin": _parametrize_first_weight}, {}),
    "dropout layers in eval mode": (
        "regression",
        {"on_train_begin": _dropout_layers_evaluate},
        {"dropout": 0.3},
    ),
    "inputs need gradients": ("regression", {"on_train_batch_begin": _inputs_need_gradients}, {}),
    "float64 weights": (
        "multiclass",
        {"on_train_batch_begin": _float64_weights},
        {"weighted": True},
    ),
    "ignored targets": ("multiclass", {"on_train_batch_begin": _ignored_targets}, {}),
    "weights added to an unweighted fit": (
        "regression",
        {"on_train_batch_begin": _weights_added},
        {},
    ),
}


@pytest.mark.parametrize("case", list(CHANGED_BY_CALLBACKS))
def test_batches_a_callback_changed_train_as_autograd_trains_them(case):
    """What the fast path relies on, a callback may change mid-fit: the
    batch's shape or targets, the module's mode, hooks, the parameters'
    storage. Such batches train with autograd: the same model as
    fast_path=False, never an error of the fast path."""
    kind, hooks, params = CHANGED_BY_CALLBACKS[case]
    params = dict(params)
    weighted = params.pop("weighted", False)
    params = {**params, "callbacks": [LambdaCallback(name="change", **hooks)]}
    fast, _ = _fit(kind, params, weighted, 0, fast_path=True)
    slow, _ = _fit(kind, params, weighted, 0, fast_path=False)
    assert fast.fast_path_ and not slow.fast_path_
    for a, b in zip(fast.module_.parameters(), slow.module_.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        fast.history_.get("train_loss"), slow.history_.get("train_loss"), rtol=1e-5
    )


def test_batches_left_as_they_are_keep_the_fast_step(regression_data, monkeypatch):
    """A callback reading every batch does not cost the fast path."""
    from skcallback._mlp_backprop import HandwrittenMLPStep

    steps = []
    step = HandwrittenMLPStep.step
    monkeypatch.setattr(
        HandwrittenMLPStep, "step", lambda self, *a, **k: steps.append(1) or step(self, *a, **k)
    )
    X, y = regression_data
    seen = LambdaCallback(name="seen", on_train_batch_begin=lambda ctx: ctx.X_batch.sum())
    est = NeuralRegressor(
        max_epochs=2, batch_size=32, validation_fraction=None, callbacks=[seen], random_state=0
    ).fit(X, y)
    assert len(steps) == est.n_steps_ > 0


@pytest.mark.parametrize("params", [{}, {"criterion__label_smoothing": 0.1}])
def test_the_classifier_chooses_by_the_same_rules(classification_data, params):
    X, y = classification_data
    est = NeuralClassifier(max_epochs=1, random_state=0, **params).fit(X, y)
    assert est.fast_path_ is (not params)


def test_hooks_see_gradients_predictions_and_losses_on_the_fast_path(regression_data):
    X, y = regression_data
    seen = []

    def after_backward(ctx):
        seen.append([p.grad is not None for p in ctx.module.parameters()])

    def batch_end(ctx):
        assert ctx.y_pred.shape == (len(ctx.X_batch), 1)
        assert isinstance(ctx.loss, torch.Tensor) and ctx.loss.ndim == 0
        torch.testing.assert_close(
            ctx.loss, nn.functional.mse_loss(ctx.y_pred, ctx.y_batch), rtol=1e-5, atol=1e-7
        )

    est = NeuralRegressor(
        max_epochs=2,
        batch_size=50,
        validation_fraction=None,
        callbacks=[LambdaCallback(on_after_backward=after_backward, on_train_batch_end=batch_end)],
    ).fit(X, y)
    assert est.fast_path_
    assert len(seen) == 2 * 3 and all(all(row) for row in seen)


def test_training_scores_are_those_of_autograd(classification_data):
    X, y = classification_data

    def fit(fast_path):
        return NeuralClassifier(
            max_epochs=3,
            batch_size=16,
            random_state=0,
            fast_path=fast_path,
            callbacks=[EpochScoring("accuracy", on_train=True)],
        ).fit(X, y)

    fast, slow = fit(True), fit(False)
    assert fast.fast_path_
    assert fast.history_.get("train_accuracy") == slow.history_.get("train_accuracy")


@pytest.mark.parametrize("bad", ["yes", 1, None, 0.0])
def test_an_invalid_fast_path_is_refused_before_training(regression_data, bad):
    X, y = regression_data
    began = []
    est = NeuralRegressor(fast_path=bad, callbacks=[LambdaCallback(on_fit_begin=began.append)])
    with pytest.raises(ValueError, match=r"'fast_path' parameter .* must be a bool; got"):
        est.fit(X, y)
    assert not began and not hasattr(est, "fast_path_")


def test_each_fit_decides_again(regression_data):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=1, warm_start=True, random_state=0).fit(X, y)
    assert est.fast_path_
    est.set_params(callbacks=[_hook("on_after_loss")]).fit(X, y)
    assert not est.fast_path_ and est.n_iter_ == 2
    est.set_params(callbacks=None).partial_fit(X, y)
    assert est.fast_path_ and est.n_iter_ == 3


CRASH = [False]


def _crash(ctx):
    if CRASH[0] and ctx.epoch == 2 and ctx.batch == 4:  # mid-epoch, mid-window
        raise RuntimeError("killed")


def test_a_resumed_fast_fit_ends_exactly_as_the_uninterrupted_one(tmp_path):
    X, y = _data("multiclass", 0)

    def make(folder):
        return NeuralClassifier(
            hidden_layer_sizes=(8,),
            dropout=0.3,
            batch_size=32,
            accumulate=3,
            max_epochs=3,
            random_state=0,
            callbacks=[
                LambdaCallback(name="crash", on_train_batch_end=_crash),
                Checkpoint(folder, every_n_steps=1, resume=True),
            ],
        )

    CRASH[0] = True
    try:
        with pytest.raises(RuntimeError, match="killed"):
            make(tmp_path / "run").fit(X, y)
    finally:
        CRASH[0] = False
    resumed = make(tmp_path / "run").fit(X, y)
    whole = make(tmp_path / "whole").fit(X, y)
    assert resumed.callbacks_.checkpoint.resumed_from_ is not None
    assert resumed.fast_path_ and whole.fast_path_
    for a, b in zip(resumed.module_.parameters(), whole.module_.parameters(), strict=True):
        assert torch.equal(a, b)
    assert resumed.history_.get("train_loss") == whole.history_.get("train_loss")


def test_fast_path_survives_pickle_save_and_load(regression_data, tmp_path):
    X, y = regression_data
    fast = NeuralRegressor(max_epochs=1, random_state=0).fit(X, y)
    slow = NeuralRegressor(max_epochs=1, random_state=0, fast_path=False).fit(X, y)
    for est in (fast, slow):
        copy = pickle.loads(pickle.dumps(est))
        loaded = skcallback.load(skcallback.save(est, tmp_path / "model.skc"))
        assert copy.fast_path_ is loaded.fast_path_ is est.fast_path_
        assert loaded.fast_path is est.fast_path
        np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    # A checkpoint restores a model without training it.
    folder = tmp_path / "checkpoints"
    trained = NeuralRegressor(max_epochs=1, random_state=0, callbacks=[Checkpoint(folder)])
    path = sorted(trained.fit(X, y).callbacks_.checkpoint.saved_paths_)[-1]
    restored = NeuralRegressor(max_epochs=1, random_state=0)
    assert restored.load_checkpoint(path).fast_path_ is False
    np.testing.assert_array_equal(restored.predict(X), trained.predict(X))
