"""Prediction hooks: on_predict_begin, on_predict_batch_begin/end and
on_predict_end run on the fitted callbacks for predict, predict_proba and score."""

import pickle

import numpy as np
import pytest
import torch

from skcallback import Callback, NeuralClassifier, NeuralRegressor
from skcallback.callbacks import LambdaCallback


class Recorder(Callback):
    def on_predict_begin(self, ctx):
        self.calls_ = [("begin", ctx.phase, ctx.n_batches, ctx.epoch)]

    def on_predict_batch_begin(self, ctx):
        self.calls_.append(("batch_begin", ctx.batch, len(ctx.X_batch)))

    def on_predict_batch_end(self, ctx):
        self.calls_.append(("batch_end", ctx.batch, tuple(ctx.y_pred.shape)))

    def on_predict_end(self, ctx):
        self.calls_.append(("end", tuple(ctx.y_pred.shape)))


def test_prediction_hooks_fire_in_order_on_the_fitted_callbacks():
    rng = np.random.RandomState(0)
    X, y = rng.randn(300, 4), rng.randn(300)
    est = NeuralRegressor(max_epochs=2, batch_size=128, callbacks=[Recorder()]).fit(X, y)
    rows = np.vstack([X] * 120)  # 36,000 rows: 3 prediction batches of up to 16,384
    plain = NeuralRegressor(max_epochs=2, batch_size=128).fit(X, y)
    assert est.predict(rows).shape == (36000,)
    calls = est.callbacks_["recorder"].calls_
    n_batches = calls[0][2]
    assert calls[0] == ("begin", "predict", 3, 2)
    assert [c[0] for c in calls[1:-1]] == ["batch_begin", "batch_end"] * n_batches
    assert sum(c[2] for c in calls[1:-1] if c[0] == "batch_begin") == 36000
    assert calls[-1] == ("end", (36000, 1))
    assert "recorder" not in plain.callbacks_


def test_a_hook_may_replace_the_output_and_every_prediction_method_sees_it():
    rng = np.random.RandomState(0)
    X = rng.randn(200, 3)
    y = np.where(X[:, 0] > 0, "yes", "no")

    def flip(ctx):  # swap the two classes' logits
        ctx.y_pred = ctx.y_pred.flip(-1)

    clf = NeuralClassifier(max_epochs=5, lr=0.05, random_state=0).fit(X, y)
    flipped = NeuralClassifier(
        max_epochs=5, lr=0.05, random_state=0, callbacks=[LambdaCallback(on_predict_end=flip)]
    ).fit(X, y)
    np.testing.assert_allclose(flipped.predict_proba(X), clf.predict_proba(X)[:, ::-1])
    assert (flipped.predict(X) != clf.predict(X)).all()
    assert flipped.score(X, y) == pytest.approx(1 - clf.score(X, y))

    shift = LambdaCallback(on_predict_batch_end=lambda ctx: setattr(ctx, "y_pred", ctx.y_pred + 1))
    reg = NeuralRegressor(max_epochs=2, random_state=0).fit(X, X[:, 0])
    shifted = NeuralRegressor(max_epochs=2, random_state=0, callbacks=[shift]).fit(X, X[:, 0])
    np.testing.assert_allclose(shifted.predict(X), reg.predict(X) + 1, rtol=1e-6)


def test_prediction_hooks_survive_pickling_and_keep_per_fit_state():
    rng = np.random.RandomState(0)
    X, y = rng.randn(100, 3), rng.randn(100)

    def count(ctx, state):
        state["predictions"] = state.get("predictions", 0) + 1

    est = NeuralRegressor(
        max_epochs=1, callbacks=[LambdaCallback(name="counter", on_predict_end=count)]
    ).fit(X, y)
    est.predict(X)
    copy = pickle.loads(pickle.dumps(est))
    copy.predict(X)
    assert copy.callbacks_["counter"].state_ == {"predictions": 2}
    assert est.callbacks_["counter"].state_ == {"predictions": 1}


def test_an_error_in_a_prediction_hook_names_it_and_leaves_the_model_as_it_was():
    rng = np.random.RandomState(0)
    X, y = rng.randn(100, 3), rng.randn(100)

    def boom(ctx):
        raise RuntimeError("bad batch")

    est = NeuralRegressor(
        max_epochs=1, callbacks=[LambdaCallback(name="bad", on_predict_batch_begin=boom)]
    ).fit(X, y)
    weights = {k: v.clone() for k, v in est.module_.state_dict().items()}
    mode = est.module_.training
    with pytest.raises(RuntimeError, match="bad batch") as info:
        est.predict(X)
    assert any(
        "'bad'" in note and "on_predict_batch_begin" in note for note in info.value.__notes__
    )
    assert est.module_.training == mode  # back in the mode it was in
    for key, value in est.module_.state_dict().items():
        assert torch.equal(value, weights[key])


class HooksAsParameters(Callback):
    """A third-party callback taking hook functions as parameters: they are
    stored on the instance under the hooks' names (None: no hook)."""

    def __init__(self, on_epoch_end=None, on_predict_end=None):
        self.on_epoch_end = on_epoch_end
        self.on_predict_end = on_predict_end


def test_hooks_set_on_the_instance_run_in_fit_and_in_predict_alike():
    rng = np.random.RandomState(0)
    X, y = rng.randn(60, 3), rng.randn(60)
    calls = []
    cb = HooksAsParameters(
        on_epoch_end=lambda ctx: calls.append(("epoch", ctx.epoch)),
        on_predict_end=lambda ctx: calls.append(("predict", tuple(ctx.y_pred.shape))),
    )
    est = NeuralRegressor(max_epochs=2, callbacks=[cb]).fit(X, y)
    est.predict(X[:5])
    assert calls == [("epoch", 1), ("epoch", 2), ("predict", (5, 1))]
    # None on the instance disables the hook: nothing to call, in fit or predict.
    calls.clear()
    NeuralRegressor(max_epochs=2, callbacks=[HooksAsParameters()]).fit(X, y).predict(X[:5])
    assert calls == []


def test_prediction_hooks_follow_the_callbacks_of_each_fit():
    rng = np.random.RandomState(0)
    X, y = rng.randn(60, 3), rng.randn(60)
    calls = []
    counter = LambdaCallback(name="counter", on_predict_end=lambda ctx: calls.append(1))
    est = NeuralRegressor(max_epochs=1, callbacks=[counter]).fit(X, y)
    est.predict(X[:1])
    est.predict(X[:1])
    assert len(calls) == 2
    est.set_params(callbacks=None).fit(X, y)
    est.predict(X[:1])
    assert len(calls) == 2  # the refit has no prediction hook
    est.set_params(callbacks=[counter]).fit(X, y)
    est.predict(X[:1])
    assert len(calls) == 3
