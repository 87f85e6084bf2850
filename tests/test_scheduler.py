"""LRScheduler: any torch scheduler, per epoch or per batch."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skcallback import NeuralRegressor
from skcallback.callbacks import (
    LambdaCallback,
    LRScheduler,
)


def _halving(epoch):
    return 0.5**epoch


def test_lr_scheduler_steps_per_epoch_and_records_lr(regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[LRScheduler("StepLR", step_size=2, gamma=0.5)], lr=0.1, max_epochs=5
    ).fit(X, y)
    assert est.history_.get("lr") == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])


def test_lr_scheduler_kwargs_are_tunable(regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[LRScheduler("StepLR", step_size=1, gamma=0.5)],
        cb__lr_scheduler__gamma=0.1,
        lr=1.0,
        max_epochs=2,
    )
    assert est.get_params()["cb__lr_scheduler__gamma"] == 0.1
    est.fit(X, y)
    assert est.history_.get("lr") == pytest.approx([1.0, 0.1])
    search = GridSearchCV(est, {"cb__lr_scheduler__gamma": [0.5, 0.9]}, cv=2)
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 2


def test_one_cycle_gets_its_total_steps_and_steps_per_batch(regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[LRScheduler("OneCycleLR", step_every="batch", max_lr=0.1)],
        batch_size=20,
        max_epochs=3,
    ).fit(X, y)
    lrs = est.history_.get("lr")
    assert lrs[0] < 0.1 and len(lrs) == 3  # warm-up starts low; no error at the last step


def test_reduce_on_plateau_reads_the_monitored_metric(regression_data, scripted):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[
            scripted([1.0] * 5),
            LRScheduler("ReduceLROnPlateau", patience=0, factor=0.5),
        ],
        lr=0.1,
        max_epochs=4,
    ).fit(X, y)
    assert est.history_.get("lr") == pytest.approx([0.1, 0.1, 0.05, 0.025])


def test_unknown_scheduler_is_a_clear_error(regression_data):
    X, y = regression_data
    with pytest.raises(ValueError, match=r"policy.*StepLR.*got 'StepLRR'"):
        NeuralRegressor(callbacks=[LRScheduler("StepLRR")]).fit(X, y)


@pytest.mark.parametrize(
    ("policy", "kwargs", "step_every"),
    [
        ("StepLR", {"step_size": 0}, "epoch"),
        ("CosineAnnealingLR", {"T_max": 0}, "epoch"),
        ("CosineAnnealingLR", {"T_max": 0}, "batch"),
    ],
)
def test_a_policy_that_fails_at_its_first_step_is_refused_before_training(
    regression_data, policy, kwargs, step_every
):
    X, y = regression_data
    started = []
    est = NeuralRegressor(
        max_epochs=2,
        callbacks=[
            LRScheduler(policy, step_every=step_every, **kwargs),
            LambdaCallback(on_fit_begin=lambda ctx: started.append(True)),
        ],
    )
    name, value = next(iter(kwargs.items()))
    message = rf"LRScheduler\({policy!r}, {name}={value}\) fails at its first step: ZeroDivision"
    with pytest.raises(ValueError, match=message):
        est.fit(X, y)
    assert not started


def test_reduce_on_plateau_maximises_scores_by_default(regression_data, scripted):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[
            scripted([0.5, 0.6, 0.7, 0.8], key="valid_accuracy", lower_is_better=False),
            LRScheduler("ReduceLROnPlateau", monitor="valid_accuracy", patience=0, factor=0.5),
        ],
        lr=0.1,
        max_epochs=4,
    ).fit(X, y)
    assert est.history_.get("lr") == pytest.approx([0.1] * 4)  # improving: never reduced


def test_lr_schedule_continues_across_warm_start(regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[LRScheduler("StepLR", step_size=2, gamma=0.5)],
        lr=0.1,
        max_epochs=3,
        warm_start=True,
    )
    est.fit(X, y).fit(X, y)
    assert est.history_.get("lr") == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


def test_policy_may_be_a_torch_scheduler_class(regression_data):
    X, y = regression_data
    policy = torch.optim.lr_scheduler.StepLR
    est = NeuralRegressor(
        callbacks=[LRScheduler(policy, step_size=1, gamma=0.5)], lr=0.1, max_epochs=3
    ).fit(X, y)
    assert est.history_.get("lr") == pytest.approx([0.1, 0.05, 0.025])


@pytest.mark.parametrize(("step_every", "n_steps"), [("epoch", 2), ("batch", 6)])
def test_step_every_epoch_or_batch(regression_data, step_every, n_steps):
    X, y = regression_data  # 120 rows, batches of 40: 3 optimizer steps per epoch
    est = NeuralRegressor(
        callbacks=[LRScheduler("StepLR", step_every=step_every, step_size=1, gamma=0.5)],
        lr=0.1,
        batch_size=40,
        validation_fraction=None,
        max_epochs=2,
    ).fit(X, y)
    assert est.optimizer_.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**n_steps)
    assert est.history_.get("lr") == pytest.approx([0.1, 0.1 * 0.5 ** (n_steps // 2)])


def test_defaults_and_policy_kwargs_survive_clone():
    scheduler = LRScheduler("CosineAnnealingLR", T_max=7, eta_min=0.01)
    params = clone(scheduler).get_params()
    assert params == {
        "policy": "CosineAnnealingLR",
        "step_every": "epoch",
        "monitor": "valid_loss",
        "T_max": 7,
        "eta_min": 0.01,
    }


@pytest.mark.parametrize(
    ("policy", "kwargs"),
    [
        ("LinearLR", {"start_factor": 0.2, "total_iters": 5}),
        ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2}),
        ("LambdaLR", {"lr_lambda": _halving}),
    ],
)
def test_a_schedule_continues_across_warm_starts_as_in_one_fit(regression_data, policy, kwargs):
    X, y = regression_data

    def make(max_epochs, **params):
        scheduler = LRScheduler(policy, **kwargs)
        return NeuralRegressor(max_epochs=max_epochs, lr=0.1, random_state=0, **params).set_params(
            callbacks=[scheduler]
        )

    one = make(6).fit(X, y).history_.get("lr")
    warm = make(3, warm_start=True).fit(X, y)
    assert warm.fit(X, y).history_.get("lr") == pytest.approx(one)


def test_a_one_cycle_exhausted_by_a_warm_start_is_an_error_before_training(regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        max_epochs=3, warm_start=True, callbacks=[LRScheduler("OneCycleLR", max_lr=0.1)]
    ).fit(X, y)
    before = est.predict(X)
    with pytest.raises(ValueError, match=r"OneCycleLR's cycle of 3 steps would be exceeded"):
        est.fit(X, y)
    np.testing.assert_array_equal(est.predict(X), before)


@pytest.mark.parametrize("policy", [("StepLR", {"step_size": 1}), ("OneCycleLR", {"max_lr": 0.1})])
def test_the_check_of_a_policys_first_step_warns_nothing(regression_data, policy):
    # setup tries the policy's first step on a throwaway optimizer; torch
    # warns when a scheduler steps before its optimizer unless told it did.
    import warnings

    X, y = regression_data
    name, kwargs = policy
    est = NeuralRegressor(max_epochs=2, callbacks=[LRScheduler(name, **kwargs)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X, y)
    assert not [w for w in caught if "lr_scheduler.step()" in str(w.message)]


def test_reduce_on_plateau_steps_only_in_epochs_that_validate(regression_data, scripted):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[
            scripted([1.0] * 6),
            LRScheduler("ReduceLROnPlateau", patience=0, factor=0.5),
        ],
        lr=0.1,
        validate_every=2,
        max_epochs=6,
    ).fit(X, y)
    # epochs 2, 4 and 6 read the metric: the plateau shows at epoch 4 (seen at epoch 5)
    assert est.history_.get("lr") == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.05, 0.05])
