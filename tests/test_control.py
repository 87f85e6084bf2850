"""Callbacks that guard training: TerminateOnNaN, GradientClipping, TimeLimit."""

import time

import numpy as np
import torch

from skcallback import NeuralRegressor
from skcallback.callbacks import (
    GradientClipping,
    LambdaCallback,
    TerminateOnNaN,
    TimeLimit,
)


def test_terminate_on_nan_never_lets_the_bad_batch_reach_the_weights(regression_data):
    X, y = regression_data
    snapshot = {}

    def poison(ctx):
        if ctx.phase == "train" and ctx.step == 3:
            snapshot.update({k: v.clone() for k, v in ctx.module.state_dict().items()})
            ctx.loss = ctx.loss * float("nan")

    est = NeuralRegressor(
        callbacks=[LambdaCallback(name="poison", on_after_loss=poison), TerminateOnNaN()],
        batch_size=10,
        max_epochs=5,
    ).fit(X, y)
    assert est.callbacks_.terminate_on_nan.stopped_step_ == 3
    assert est.n_steps_ == 3 and est.n_iter_ == 1
    for key, value in est.module_.state_dict().items():
        assert torch.equal(value, snapshot[key])
    assert np.isfinite(est.predict(X)).all()


def test_gradient_clipping_bounds_the_norm(regression_data):
    X, y = regression_data
    norms = []

    def measure(ctx):
        grads = [p.grad.flatten() for p in ctx.module.parameters()]
        norms.append(float(torch.cat(grads).norm()))

    NeuralRegressor(
        callbacks=[GradientClipping(0.01), LambdaCallback(name="m", on_before_step=measure)],
        max_epochs=1,
    ).fit(X, y * 100)
    assert max(norms) <= 0.01 + 1e-6


def test_time_limit_stops_training(regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[
            TimeLimit(0.05),
            LambdaCallback(on_train_batch_end=lambda ctx: time.sleep(0.02)),
        ],
        batch_size=10,
        max_epochs=100,
    ).fit(X, y)
    assert est.n_iter_ == 1
    assert est.callbacks_.time_limit.stopped_epoch_ == 1


def test_terminate_on_nan_also_stops_on_an_infinite_loss(regression_data):
    X, y = regression_data
    snapshot = {}

    def blow_up(ctx):
        if ctx.phase == "train" and ctx.step == 2:
            snapshot.update({k: v.clone() for k, v in ctx.module.state_dict().items()})
            ctx.loss = ctx.loss * float("inf")

    est = NeuralRegressor(
        callbacks=[LambdaCallback(name="blow_up", on_after_loss=blow_up), TerminateOnNaN()],
        batch_size=10,
        max_epochs=5,
    ).fit(X, y)
    assert est.callbacks_["terminate_on_nan"].stopped_step_ == 2 and est.n_steps_ == 2
    assert est.stop_reason_.startswith("terminate_on_nan")
    state = est.module_.state_dict()
    assert all(torch.equal(value, snapshot[key]) for key, value in state.items())


def test_terminate_on_nan_leaves_a_finite_fit_alone(regression_data):
    X, y = regression_data
    est = NeuralRegressor(callbacks=[TerminateOnNaN()], max_epochs=3).fit(X, y)
    assert est.n_iter_ == 3 and est.stop_reason_ is None
    assert est.callbacks_["terminate_on_nan"].stopped_step_ is None


def test_terminate_on_nan_leaves_an_epoch_whose_batches_were_all_skipped_alone(regression_data):
    X, y = regression_data
    skip_all = LambdaCallback(on_train_batch_begin=lambda ctx: ctx.skip_batch())
    est = NeuralRegressor(callbacks=[skip_all, TerminateOnNaN()], max_epochs=2).fit(X, y)
    assert est.n_iter_ == 2 and est.stop_reason_ is None  # no loss: NaN, not diverged


def test_gradient_clipping_uses_the_norm_type(regression_data):
    X, y = regression_data
    norms = []

    def measure(ctx):
        grads = torch.cat([p.grad.flatten() for p in ctx.module.parameters()])
        norms.append((float(grads.abs().max()), float(grads.norm())))

    assert GradientClipping(1.0).norm_type == 2.0
    NeuralRegressor(
        callbacks=[
            GradientClipping(0.01, norm_type=float("inf")),
            LambdaCallback(name="m", on_before_step=measure),
        ],
        max_epochs=1,
    ).fit(X, y * 100)
    assert max(largest for largest, _ in norms) <= 0.01 + 1e-6
    assert max(two_norm for _, two_norm in norms) > 0.02  # not clipped in the 2-norm


def test_time_limit_leaves_a_fit_within_budget_alone(regression_data):
    X, y = regression_data
    est = NeuralRegressor(callbacks=[TimeLimit(60)], max_epochs=2).fit(X, y)
    assert est.n_iter_ == 2 and est.stop_reason_ is None
    assert est.callbacks_["time_limit"].stopped_epoch_ is None
