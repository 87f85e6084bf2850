"""A continued fit (warm_start, partial_fit) applies changed optimizer and
criterion settings and refuses a changed module."""

import pickle

import pytest
import torch

import skcallback
from skcallback import NeuralClassifier, NeuralRegressor
from skcallback.callbacks import Checkpoint, checkpoint_files


def _fitted(X, y, **params):
    return NeuralRegressor(max_epochs=2, warm_start=True, random_state=0, **params).fit(X, y)


class Net(torch.nn.Module):
    def __init__(self, n_features_in, n_outputs, width=8):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(n_features_in, width), torch.nn.Linear(width, n_outputs)
        )

    def forward(self, X):
        return self.layers(X)


class OtherNet(Net):
    pass


def test_a_warm_start_trains_with_a_changed_learning_rate(regression_data):
    X, y = regression_data
    est = _fitted(X, y, lr=1e-3)
    step_before = max(s["step"] for s in est.optimizer_.state.values())
    est.set_params(lr=0.05).fit(X, y)
    assert [record["lr"] for record in est.history_] == [1e-3, 1e-3, 0.05, 0.05]
    # the optimizer's state goes on: Adam's step counts continue
    assert max(s["step"] for s in est.optimizer_.state.values()) > step_before


def test_partial_fit_trains_with_a_changed_learning_rate(regression_data):
    X, y = regression_data
    est = NeuralRegressor(lr=1e-3, random_state=0).partial_fit(X, y)
    est.set_params(lr=0.02).partial_fit(X, y)
    assert est.history_[-1]["lr"] == 0.02


def test_a_warm_start_applies_changed_optimizer_options(regression_data):
    X, y = regression_data
    est = _fitted(X, y, optimizer="sgd", optimizer__momentum=0.5)
    est.set_params(optimizer__momentum=0.9, optimizer__weight_decay=1e-4).fit(X, y)
    assert all(g["momentum"] == 0.9 for g in est.optimizer_.param_groups)
    assert all(g["weight_decay"] == 1e-4 for g in est.optimizer_.param_groups)
    delattr(est, "optimizer__weight_decay")  # back to SGD's default
    est.fit(X, y)
    assert all(g["weight_decay"] == 0 for g in est.optimizer_.param_groups)


def test_a_warm_start_checks_a_changed_optimizer_option(regression_data):
    X, y = regression_data
    est = _fitted(X, y)
    before = est.module_.state_dict()["layers.0.weight"].clone()
    with pytest.raises(ValueError, match="betas"):
        est.set_params(optimizer__betas=(0.9,)).fit(X, y)
    assert torch.equal(est.module_.state_dict()["layers.0.weight"], before)


def test_a_warm_start_with_another_optimizer_builds_it(regression_data):
    X, y = regression_data
    est = _fitted(X, y)
    est.set_params(optimizer="sgd", lr=0.01).fit(X, y)
    assert isinstance(est.optimizer_, torch.optim.SGD)
    assert est.history_[-1]["lr"] == 0.01
    est.fit(X, y)  # and goes on with it
    assert est.n_iter_ == 6


def test_a_warm_start_with_another_criterion_uses_it(regression_data):
    X, y = regression_data
    est = _fitted(X, y)
    est.set_params(criterion=torch.nn.HuberLoss, criterion__delta=0.5).fit(X, y)
    assert isinstance(est.criterion_, torch.nn.HuberLoss) and est.criterion_.delta == 0.5


@pytest.mark.parametrize(
    "param, value, fitted, shown",
    [
        ("hidden_layer_sizes", (50,), "[100]", "[50]"),
        ("dropout", 0.2, "0.0", "0.2"),
        ("activation", "tanh", "'relu'", "'tanh'"),
        ("precision", "64", "'32'", "'64'"),
        ("module__width", 4, "(not set)", "4"),
        ("module", OtherNet, f"{Net.__module__}.Net", f"{Net.__module__}.OtherNet"),
    ],
)
@pytest.mark.parametrize("partial", [False, True])
def test_a_continued_fit_refuses_a_changed_module(
    regression_data, param, value, fitted, shown, partial
):
    X, y = regression_data
    est = _fitted(X, y, module=Net if param.startswith("module") else None)
    before = est.predict(X)
    est.set_params(**{param: value})
    with pytest.raises(ValueError) as info:
        est.partial_fit(X, y) if partial else est.fit(X, y)
    message = str(info.value)
    assert f"built with {param}={fitted}; {param} is now {shown}" in message
    assert "warm_start=False" in message
    assert est.n_iter_ == 2 and (est.predict(X) == before).all()
    est.set_params(warm_start=False).fit(X, y)  # the way out


def test_a_warm_start_without_changes_is_allowed(regression_data):
    X, y = regression_data
    est = _fitted(X, y, hidden_layer_sizes=[8], dropout=0, optimizer="Adam")
    est.set_params(hidden_layer_sizes=(8,), dropout=0.0, optimizer="adam").fit(X, y)
    assert est.n_iter_ == 4


def _pickled(est, tmp_path):
    return pickle.loads(pickle.dumps(est))


def _saved(est, tmp_path):
    skcallback.save(est, tmp_path / "model.skc")
    return skcallback.load(tmp_path / "model.skc")


@pytest.mark.parametrize("reload", [_pickled, _saved])
def test_a_reloaded_estimator_refuses_a_changed_module(regression_data, tmp_path, reload):
    X, y = regression_data
    est = reload(_fitted(X, y, hidden_layer_sizes=(8,)), tmp_path)
    with pytest.raises(ValueError, match=r"built with hidden_layer_sizes=\[8\]"):
        est.set_params(hidden_layer_sizes=(9,)).fit(X, y)
    est.set_params(hidden_layer_sizes=(8,), lr=0.05).fit(X, y)
    assert est.history_[-1]["lr"] == 0.05


def test_an_estimator_loaded_from_a_checkpoint_continues_with_a_changed_lr(
    classification_data, tmp_path
):
    X, y = classification_data
    NeuralClassifier(max_epochs=2, callbacks=[Checkpoint(dirname=tmp_path)]).fit(X, y)
    (folder,) = tmp_path.iterdir()
    est = NeuralClassifier(max_epochs=1, warm_start=True)
    est.load_checkpoint(checkpoint_files(folder, "model")[-1])
    est.set_params(lr=0.05).fit(X, y)
    assert est.history_[-1]["lr"] == 0.05
    with pytest.raises(ValueError, match=r"built with dropout=0\.0; dropout is now 0\.5"):
        est.set_params(dropout=0.5).fit(X, y)
