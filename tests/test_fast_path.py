"""The fast path computes what a straightforward PyTorch loop computes, and
the precision/compile options work."""

import copy
import warnings

import numpy as np
import pytest
import torch

from skcallback import NeuralClassifier, NeuralRegressor
from skcallback.callbacks import GradientClipping, LambdaCallback


def _record(store):
    def at_begin(ctx):
        store["init"] = copy.deepcopy(ctx.module.state_dict())
        store["batches"] = []

    def at_batch(ctx):
        store["batches"].append((ctx.X_batch.clone(), ctx.y_batch.clone()))

    return LambdaCallback(name="recorder", on_fit_begin=at_begin, on_train_batch_begin=at_batch)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_fast_path_matches_a_reference_loop(regression_data, optimizer):
    X, y = regression_data
    store = {}
    est = NeuralRegressor(
        hidden_layer_sizes=(16, 16),
        optimizer=optimizer,
        lr=1e-2,
        batch_size=16,
        max_epochs=4,
        validation_fraction=None,
        callbacks=[_record(store)],
        random_state=0,
    ).fit(X, y)
    assert est.optimizer_.defaults.get("fused") is True  # the fast optimizer was used

    reference = copy.deepcopy(est.module_)
    reference.load_state_dict(store["init"])
    cls = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}[optimizer]
    opt = cls(reference.parameters(), lr=1e-2, foreach=False)  # plain per-tensor loop
    loss_fn = torch.nn.MSELoss()
    for xb, yb in store["batches"]:
        opt.zero_grad()
        loss_fn(reference(xb), yb).backward()
        opt.step()

    assert len(store["batches"]) == 4 * 8
    for ours, theirs in zip(est.module_.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_every_row_is_seen_once_per_epoch(regression_data):
    X, y = regression_data
    seen = []
    NeuralRegressor(
        batch_size=25,
        max_epochs=2,
        validation_fraction=None,
        callbacks=[LambdaCallback(on_train_batch_begin=lambda ctx: seen.append(ctx.X_batch))],
    ).fit(X, y)
    first_epoch = torch.cat(seen[:5]).numpy()
    assert sorted(map(tuple, first_epoch)) == sorted(map(tuple, X))
    assert not np.array_equal(torch.cat(seen[5:]).numpy(), first_epoch)  # reshuffled


def test_explicit_optimizer_choices_are_respected(regression_data):
    X, y = regression_data
    est = NeuralRegressor(optimizer__foreach=True, max_epochs=1).fit(X, y)
    assert est.optimizer_.defaults.get("fused") in (None, False)
    assert est.optimizer_.defaults["foreach"] is True


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_mixed_precision_trains_and_predicts(classification_data, precision):
    X, y = classification_data
    clf = NeuralClassifier(
        precision=precision,
        lr=1e-2,
        max_epochs=20,
        random_state=0,
        callbacks=[GradientClipping(1.0)],
    ).fit(X, y)
    assert clf.score(X, y) > 0.8
    assert np.isfinite(clf.predict_proba(X)).all()
    assert all(p.dtype == torch.float32 for p in clf.module_.parameters())


def test_unknown_precision_is_rejected(regression_data):
    X, y = regression_data
    with pytest.raises(ValueError, match=r"'precision' .* one of \['32', '64', 'bf16-mixed'"):
        NeuralRegressor(precision="16").fit(X, y)


def test_precision_64_trains_a_float64_model(regression_data):
    X, y = regression_data
    est = NeuralRegressor(precision="64", max_epochs=2, random_state=0).fit(X, y)
    assert all(p.dtype == torch.float64 for p in est.module_.parameters())
    assert est.predict(X).dtype == np.float64 and np.isfinite(est.predict(X)).all()


def test_compile_falls_back_to_eager_with_a_warning(regression_data, monkeypatch):
    X, y = regression_data

    def broken_compile(module, **kwargs):
        def fail(*args):
            raise RuntimeError("no backend")

        return fail

    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.warns(RuntimeWarning, match="runs the module eagerly"):
        est = NeuralRegressor(compile=True, max_epochs=2, random_state=0).fit(X, y)
    plain = NeuralRegressor(max_epochs=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(est.predict(X), plain.predict(X))


@pytest.mark.slow
def test_compile_gives_the_same_model(regression_data):
    X, y = regression_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = NeuralRegressor(compile=True, max_epochs=2, random_state=0).fit(X, y)
    plain = NeuralRegressor(max_epochs=2, random_state=0).fit(X, y)
    np.testing.assert_allclose(compiled.predict(X), plain.predict(X), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_a_second_compiled_fit_reuses_the_compiled_network(regression_data):
    """Compiling is paid once per process and network shape, not per fit:
    another estimator fitting the same network compiles nothing new."""
    from torch._dynamo.utils import counters

    X, y = regression_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        NeuralRegressor(compile=True, max_epochs=2, random_state=0).fit(X, y)
        compiled = counters["stats"]["unique_graphs"]
        assert compiled > 0
        NeuralRegressor(compile=True, max_epochs=2, random_state=1).fit(X, y)
    assert counters["stats"]["unique_graphs"] == compiled


def test_validation_gives_the_losses_of_the_modules_call(regression_data, monkeypatch):
    """With the hand-derived step, validation batches run the MLP's layers
    without nn.Module's call: the losses of the module's call, bit for bit;
    a hook a callback registers on the module is called as ever."""
    from skcallback._mlp_backprop import HandwrittenMLPStep

    X, y = regression_data
    params = dict(max_epochs=3, batch_size=32, validation_fraction=0.3, random_state=0)
    lean = NeuralRegressor(**params).fit(X, y)
    monkeypatch.setattr(HandwrittenMLPStep, "forward", lambda self, X_b: self.module(X_b))
    called = NeuralRegressor(**params).fit(X, y)
    assert lean.fast_path_ and called.fast_path_
    losses = [[record["valid_loss"] for record in est.history_] for est in (lean, called)]
    assert losses[0] == losses[1]
    monkeypatch.undo()
    seen = []

    def hook(ctx):
        if ctx.epoch == 1:
            ctx.module.register_forward_hook(lambda *args: seen.append(ctx.phase))

    NeuralRegressor(callbacks=[LambdaCallback(name="hook", on_valid_begin=hook)], **params).fit(
        X, y
    )
    assert seen.count("valid") == 3  # a batch an epoch
