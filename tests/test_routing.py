"""Routed parameters through get/set_params, clone, Pipeline and searches."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skcallback import Callback, InvalidParameterError, NeuralClassifier, NeuralRegressor
from skcallback.callbacks import LambdaCallback


class Scale(Callback):
    """Multiplies the loss; records the fits it saw."""

    def __init__(self, factor=1.0):
        self.factor = factor

    def on_fit_begin(self, ctx):
        self.fits_ = getattr(self, "fits_", 0) + 1

    def on_after_loss(self, ctx):
        ctx.loss = ctx.loss * self.factor


def test_cb_params_in_the_constructor_reach_the_fitted_callback(regression_data):
    X, y = regression_data
    est = NeuralRegressor(callbacks=[Scale()], cb__scale__factor=0.0, max_epochs=2, random_state=0)
    est.fit(X, y)
    assert est.callbacks_["scale"].factor == 0.0
    # a zero loss trains nothing: same as an unfitted-but-initialised model
    reference = NeuralRegressor(
        max_epochs=1,
        random_state=0,
        callbacks=[LambdaCallback(on_fit_begin=lambda ctx: ctx.request_stop())],
    ).fit(X, y)
    np.testing.assert_allclose(est.predict(X), reference.predict(X))


def test_get_params_shallow_and_deep():
    est = NeuralRegressor(
        callbacks=[Scale(2.0)], cb__scale__factor=3.0, optimizer__weight_decay=0.1
    )
    shallow = est.get_params(deep=False)
    assert shallow["cb__scale__factor"] == 3.0
    assert shallow["optimizer__weight_decay"] == 0.1
    assert "cb__history" not in shallow
    deep = est.get_params(deep=True)
    assert deep["cb__scale__factor"] == 3.0  # the routed value wins over the instance's
    assert isinstance(deep["cb__scale"], Scale)
    assert "cb__history" in deep
    assert all(deep[key] is value for key, value in shallow.items())


def test_clone_keeps_routed_params():
    est = NeuralRegressor(callbacks=[Scale()], cb__scale__factor=3.0, module__bias=False)
    cloned = clone(est)
    assert cloned.get_params(deep=False)["cb__scale__factor"] == 3.0
    assert cloned.get_params(deep=False)["module__bias"] is False
    assert cloned.callbacks[0] is not est.callbacks[0]


def test_set_params_replaces_list_then_item_then_param():
    est = NeuralRegressor(callbacks=[Scale()])
    est.set_params(
        cb__other__factor=5.0, callbacks=[("other", Scale())], cb__other=Scale(factor=2.0)
    )
    fitted = dict(est.get_params(deep=True))
    assert fitted["cb__other__factor"] == 5.0
    assert isinstance(fitted["cb__other"], Scale)


def test_unknown_callback_names_and_params_list_what_is_valid(regression_data):
    X, y = regression_data
    est = NeuralRegressor(callbacks=[Scale()])
    with pytest.raises(ValueError, match=r"No callback named 'scal'.*\['history', 'scale'\]"):
        est.set_params(cb__scal__factor=1.0)
    with pytest.raises(ValueError, match=r"Invalid parameter 'factr'.*\['factor'\]"):
        est.set_params(cb__scale__factr=1.0)
    assert "cb__scal__factor" not in est.get_params()
    with pytest.raises(ValueError, match=r"No callback named 'nope'.*\['history', 'scale'\]"):
        NeuralRegressor(callbacks=[Scale()], cb__nope__x=1).fit(X, y)


@pytest.mark.parametrize(
    "key, value",
    [("cb__scale__factr", 1.0), ("cb__scal__factor", 1.0), ("cb__scale__factor__x", 1.0)],
)
def test_a_misspelled_callback_parameter_reads_the_same_at_fit_and_in_set_params(
    regression_data, key, value
):
    X, y = regression_data
    with pytest.raises(ValueError) as at_fit:
        NeuralRegressor(callbacks=[Scale()], max_epochs=1, **{key: value}).fit(X, y)
    with pytest.raises(ValueError) as in_set_params:  # as a grid search sets it
        NeuralRegressor(callbacks=[Scale()]).set_params(**{key: value})
    assert str(at_fit.value) == str(in_set_params.value)
    assert key.split("__")[1] in str(at_fit.value)


def test_a_callback_can_be_replaced_or_disabled_by_name(regression_data):
    X, y = regression_data
    est = NeuralRegressor(callbacks=[Scale()], cb__scale=None, max_epochs=1).fit(X, y)
    assert list(est.callbacks_) == ["history"]
    est.set_params(cb__scale=Scale(factor=7.0)).fit(X, y)
    assert est.callbacks_["scale"].factor == 7.0
    with pytest.raises(ValueError, match="cannot be disabled"):
        NeuralRegressor(cb__history=None).fit(X, y)
    with pytest.raises(TypeError, match="must be a Callback"):
        NeuralRegressor(callbacks=[Scale()], cb__scale="x").fit(X, y)


def test_module_optimizer_and_criterion_params_are_routed(regression_data):
    X, y = regression_data

    class Tiny(torch.nn.Module):
        def __init__(self, n_features_in, n_outputs, width=3):
            super().__init__()
            self.net = torch.nn.Linear(n_features_in, width)
            self.out = torch.nn.Linear(width, n_outputs)

        def forward(self, X):
            return self.out(self.net(X))

    est = NeuralRegressor(
        module=Tiny,
        module__width=7,
        optimizer="sgd",
        optimizer__momentum=0.9,
        criterion=torch.nn.HuberLoss,
        criterion__delta=0.5,
        max_epochs=1,
    ).fit(X, y)
    assert est.module_.net.out_features == 7
    assert est.optimizer_.param_groups[0]["momentum"] == 0.9
    assert est.criterion_.delta == 0.5
    with pytest.raises(ValueError, match=r"optimizer__ parameters.*momentm"):
        NeuralRegressor(optimizer="sgd", optimizer__momentm=0.9).fit(X, y)


def test_typos_in_keyword_arguments_fail_at_fit_with_the_allowed_prefixes(regression_data):
    X, y = regression_data
    est = NeuralRegressor(lerning_rate=0.1)  # stored, like every parameter
    with pytest.raises(TypeError, match=r"lerning_rate.*cb__"):
        est.fit(X, y)


class StepsBySteps(torch.optim.SGD):
    """An SGD whose step divides by a hyperparameter only its step reads."""

    def __init__(self, params, lr=0.1, steps=1):
        super().__init__(params, lr=lr)
        self.steps = steps

    def step(self, closure=None):
        for group in self.param_groups:
            group["lr"] = group["lr"] / self.steps
        return super().step(closure)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        # Torch's fused Adam is built with betas=(0.9,) and fails at its first
        # step; its default implementation refuses it when built.
        ({"optimizer__betas": (0.9,)}, r"Adam with lr=0.001 and optimizer__ parameters "),
        (
            {"optimizer": StepsBySteps, "optimizer__steps": 0},
            r"StepsBySteps with lr=0.001 and optimizer__ parameters \{'steps': 0\} fails at "
            r"its first step: ZeroDivisionError",
        ),
    ],
)
def test_optimizer_parameters_that_fail_at_the_first_step_are_refused_before_training(
    regression_data, params, message
):
    X, y = regression_data
    started = []
    est = NeuralRegressor(
        max_epochs=1, callbacks=[LambdaCallback(on_fit_begin=lambda ctx: started.append(1))]
    )
    with pytest.raises(InvalidParameterError, match=message):
        est.set_params(**params).fit(X, y)
    assert not started


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"lr_": 3}, TypeError, r"unexpected parameter\(s\) \['lr_'\].*cb__"),
        ({"module__size_": 7}, ValueError, r"module__ parameters \['size_'\]"),
        ({"optimizer__momentum_": 0.9}, ValueError, r"optimizer__ parameters.*momentum_"),
    ],
)
def test_keyword_arguments_ending_in_an_underscore_are_parameters_too(
    regression_data, params, error, message
):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=1, optimizer="sgd", **params)
    assert est.get_params().items() >= params.items()
    for candidate in (est, clone(est)):  # a search fits clones
        with pytest.raises(error, match=message):
            candidate.fit(X, y)


def test_a_callback_and_its_parameter_set_in_one_call_as_grid_search_does(regression_data):
    from skcallback.callbacks import EarlyStopping, TimeLimit

    X, y = regression_data
    # The new callback's parameter is unknown to the one it replaces, and comes
    # first in the call: the callback is replaced first all the same.
    est = NeuralRegressor(max_epochs=2, callbacks=[("stop", TimeLimit(seconds=100))])
    est.set_params(cb__stop__patience=1, cb__stop=EarlyStopping(monitor="train_loss"))
    params = est.get_params()
    assert params["cb__stop__patience"] == 1 and params["cb__stop__monitor"] == "train_loss"
    stop = est.fit(X, y).callbacks_["stop"]
    assert (type(stop), stop.patience, stop.monitor) == (EarlyStopping, 1, "train_loss")
    search = GridSearchCV(
        NeuralRegressor(max_epochs=1, callbacks=[("stop", TimeLimit(seconds=100))]),
        {"cb__stop": [EarlyStopping(monitor="train_loss")], "cb__stop__patience": [2, 3]},
        cv=2,
    ).fit(X, y)
    stop = search.best_estimator_.callbacks_["stop"]
    assert type(stop) is EarlyStopping and stop.patience in (2, 3)


def test_pipeline_routes_nested_callback_params(classification_data):
    X, y = classification_data
    pipe = make_pipeline(
        StandardScaler(), NeuralClassifier(callbacks=[Scale()], max_epochs=20, lr=1e-2)
    )
    pipe.set_params(neuralclassifier__cb__scale__factor=0.5)
    assert pipe.get_params()["neuralclassifier__cb__scale__factor"] == 0.5
    pipe.fit(X, y)
    assert pipe[-1].callbacks_["scale"].factor == 0.5
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.6)


def test_grid_search_over_a_callback_param_in_parallel(classification_data):
    X, y = classification_data
    base = NeuralClassifier(callbacks=[Scale()], max_epochs=3, random_state=0)
    search = GridSearchCV(base, {"cb__scale__factor": [0.0, 1.0]}, cv=2, n_jobs=2, refit=True)
    search.fit(X, y)
    assert [p["cb__scale__factor"] for p in search.cv_results_["params"]] == [0.0, 1.0]
    # a zero factor cannot learn: candidates really differ
    assert search.best_params_ == {"cb__scale__factor": 1.0}
    fitted = search.best_estimator_.callbacks_["scale"]
    assert fitted.factor == 1.0
    assert fitted.fits_ == 1  # no state shared between candidates or with the refit
    assert not hasattr(base.callbacks[0], "fits_")


class Width(torch.nn.Module):
    """A module with a tunable width."""

    def __init__(self, n_features_in, n_outputs, width=3):
        super().__init__()
        self.hidden = torch.nn.Linear(n_features_in, width)
        self.out = torch.nn.Linear(width, n_outputs)

    def forward(self, X):
        return self.out(torch.relu(self.hidden(X)))


def test_module_optimizer_and_criterion_params_through_set_get_params_and_clone(regression_data):
    X, y = regression_data
    est = NeuralRegressor(module=Width, optimizer="sgd", criterion=torch.nn.HuberLoss, max_epochs=1)
    assert est.set_params(module__width=5, optimizer__momentum=0.5, criterion__delta=2.0) is est
    for params in (est.get_params(deep=False), est.get_params(deep=True)):
        assert params["module__width"] == 5
        assert params["optimizer__momentum"] == 0.5
        assert params["criterion__delta"] == 2.0
    cloned = clone(est)
    assert cloned.get_params(deep=False)["module__width"] == 5
    cloned.fit(X, y)
    assert cloned.module_.hidden.out_features == 5
    assert cloned.optimizer_.param_groups[0]["momentum"] == 0.5
    assert cloned.criterion_.delta == 2.0
    est.set_params(module__width=2).fit(X, y)  # a second set_params replaces the value
    assert est.module_.hidden.out_features == 2


def test_module_optimizer_and_criterion_params_in_a_param_grid(regression_data):
    X, y = regression_data
    seen = []

    def record(ctx):
        seen.append(
            (
                ctx.module.hidden.out_features,
                ctx.optimizer.param_groups[0]["weight_decay"],
                ctx.criterion.delta,
            )
        )

    base = NeuralRegressor(
        module=Width,
        criterion=torch.nn.HuberLoss,
        max_epochs=1,
        callbacks=[LambdaCallback(on_fit_begin=record)],
    )
    grid = {"module__width": [2, 6], "optimizer__weight_decay": [0.25], "criterion__delta": [3.0]}
    search = GridSearchCV(base, grid, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 2
    assert sorted(set(seen)) == [(2, 0.25, 3.0), (6, 0.25, 3.0)]
    best = search.best_estimator_
    assert best.module_.hidden.out_features == search.best_params_["module__width"]
