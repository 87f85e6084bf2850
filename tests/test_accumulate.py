"""Gradient accumulation: ``accumulate=k`` steps once per k batches, as one
batch of k times the rows would."""

import numpy as np
import pytest
import torch

from skcallback import NeuralClassifier, NeuralRegressor
from skcallback.callbacks import Checkpoint, GradientClipping, LambdaCallback


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = rng.randn(500, 6)  # 500 rows: the last window and the last batch are short
    return X, X @ rng.randn(6) + 0.1 * rng.randn(500)


def _weights(est):
    return [p.detach().clone() for p in est.module_.parameters()]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_accumulating_k_batches_equals_one_batch_k_times_larger(data, optimizer):
    X, y = data
    common = dict(max_epochs=3, validation_fraction=None, random_state=0, optimizer=optimizer)
    big = NeuralRegressor(batch_size=128, lr=0.01, **common).fit(X, y)
    small = NeuralRegressor(batch_size=32, accumulate=4, lr=0.01, **common).fit(X, y)
    assert small.n_steps_ == big.n_steps_ == 3 * 4  # ceil(500 / 128) steps per epoch
    for a, b in zip(_weights(small), _weights(big), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        small.history_.get("train_loss"), big.history_.get("train_loss"), rtol=1e-4
    )


def test_hooks_see_one_step_per_window_and_clipping_acts_on_the_sum(data):
    X, y = data
    seen = []
    record = LambdaCallback(
        on_after_backward=lambda ctx: seen.append(("backward", ctx.batch)),
        on_after_step=lambda ctx: seen.append(("step", ctx.step)),
    )
    est = NeuralRegressor(
        max_epochs=1,
        batch_size=100,
        accumulate=2,
        validation_fraction=None,
        callbacks=[record, GradientClipping(max_norm=1.0)],
    ).fit(X, y)  # 5 batches: windows (1, 2), (3, 4), (5)
    assert seen == [
        ("backward", 1),
        ("backward", 2),
        ("step", 1),
        ("backward", 3),
        ("backward", 4),
        ("step", 2),
        ("backward", 5),
        ("step", 3),
    ]
    assert est.n_steps_ == 3


def test_a_stop_within_a_window_steps_on_what_it_gathered(data):
    X, y = data
    stop = LambdaCallback(on_after_backward=lambda ctx: ctx.batch < 3)  # stop after batch 3
    est = NeuralRegressor(
        max_epochs=5, batch_size=50, accumulate=4, validation_fraction=None, callbacks=[stop]
    ).fit(X, y)
    assert est.n_iter_ == 1 and est.n_steps_ == 1


def test_a_resumed_fit_with_accumulation_ends_as_the_uninterrupted_one(data, tmp_path):
    X, y = data
    crash = [True]

    def fail(ctx):
        if crash[0] and ctx.epoch == 2 and ctx.batch == 7:  # mid-window
            raise RuntimeError("killed")

    def make():
        return NeuralClassifier(
            max_epochs=3,
            batch_size=32,
            accumulate=3,
            random_state=0,
            dropout=0.2,
            callbacks=[
                LambdaCallback(on_train_batch_end=fail),
                Checkpoint(tmp_path, every_n_steps=1, resume=True),
            ],
        )

    labels = (y > 0).astype(int)
    with pytest.raises(RuntimeError, match="killed"):
        make().fit(X, labels)
    crash[0] = False
    resumed = make().fit(X, labels)
    assert resumed.callbacks_.checkpoint.resumed_from_ is not None
    whole = make().set_params(cb__checkpoint__dirname=tmp_path / "whole").fit(X, labels)
    for a, b in zip(_weights(resumed), _weights(whole), strict=True):
        assert torch.equal(a, b)
    assert resumed.n_steps_ == whole.n_steps_


def test_accumulate_is_checked_before_training(data):
    X, y = data
    for bad in (0, 1.5, "2", True):
        with pytest.raises(ValueError, match="'accumulate' parameter"):
            NeuralRegressor(accumulate=bad).fit(X, y)
