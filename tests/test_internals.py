"""The door to private names (``_internals``): every private name of torch,
scikit-learn and MLflow that skcallback uses is found in the installed
versions, and where one is missing (renamed away here, as a newer library
might), a fit takes the public path: it works, slower, with the same
result. The direct Adam step's names are tested in ``test_direct_adam.py``."""

import re
import sys
import types

import numpy as np
import pytest
import sklearn.utils.validation
import torch
import torch.nn.modules.module as torch_module
import torch.optim.optimizer as torch_optimizer
from sklearn.base import clone

from skcallback import NeuralRegressor, _internals
from skcallback._mlp_backprop import HandwrittenMLPStep


def test_every_private_name_is_found_in_the_installed_libraries():
    """Where this fails, a newer library has renamed a name: fits still
    work, on the slower public path; the door needs updating."""
    assert all(hasattr(torch, name) for name in _internals.ADAM_KERNELS.values())
    assert hasattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported")
    parameter = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.Adam([parameter])
    assert all(isinstance(getattr(optimizer, n), dict) for n in _internals.OPTIMIZER_HOOKS)
    assert all(
        isinstance(getattr(torch_optimizer, n), dict) for n in _internals.GLOBAL_OPTIMIZER_HOOKS
    )
    torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    assert _internals.instance_step_is_schedulers(optimizer) is True
    parameter.grad = torch.ones(2)
    optimizer.step()
    assert getattr(optimizer, _internals.SCHEDULER_RECORD) is True  # what the wrapper records
    assert all(isinstance(getattr(torch_module, n), dict) for n in _internals.GLOBAL_MODULE_HOOKS)
    layer = torch.nn.Linear(2, 1)
    assert _internals.ModuleWatch(layer, [(layer, "weight", layer.weight.detach())]).known
    assert _internals._takes(
        sklearn.utils.validation._check_sample_weight, ("dtype", "ensure_non_negative")
    )
    assert _internals._sklearn_version() <= _internals.SHORTCUT_CHECKED_UP_TO


#: A private torch name the hand-written MLP step relies on, renamed as a
#: newer torch might: (the door's table, its stand-in).
MODULE_NAMES = {
    "children": ("MODULE_SLOTS", ("_gone", "_parameters")),
    "parameters": ("MODULE_SLOTS", ("_modules", "_gone")),
    "a module's hooks": ("MODULE_HOOKS", ("_forward_hooks", "_gone", "_backward_hooks")),
    "global module hooks": ("GLOBAL_MODULE_HOOKS", ("_global_forward_hooks", "_gone")),
    "a tensor's gradient hooks": ("TENSOR_HOOKS", ("_backward_hooks", "_gone")),
}


@pytest.mark.parametrize("name", list(MODULE_NAMES))
def test_a_missing_private_module_name_leaves_every_batch_to_autograd(
    regression_data, monkeypatch, name
):
    """Where the step cannot tell whether a callback added a hook or
    changed the module, it assumes so: autograd trains every batch, and the
    model is exactly that of fast_path=False."""
    X, y = regression_data
    steps = []
    step = HandwrittenMLPStep.step
    monkeypatch.setattr(
        HandwrittenMLPStep, "step", lambda self, *a, **k: steps.append(1) or step(self, *a, **k)
    )
    monkeypatch.setattr(_internals, *MODULE_NAMES[name])
    params = dict(hidden_layer_sizes=(8,), batch_size=32, max_epochs=2, random_state=0)
    fast = NeuralRegressor(**params).fit(X, y)
    slow = NeuralRegressor(fast_path=False, **params).fit(X, y)
    assert fast.fast_path_ and not steps
    np.testing.assert_array_equal(fast.predict(X), slow.predict(X))


def test_without_onednns_query_a_cpu_counts_as_without_bf16(monkeypatch):
    assert isinstance(_internals.cpu_has_bf16(), bool)
    monkeypatch.setattr(torch, "ops", types.SimpleNamespace(mkldnn=types.SimpleNamespace()))
    assert _internals.cpu_has_bf16() is False


def _weight_errors(X, y):
    """The message of each invalid sample_weight, numbers masked."""
    bad = [
        -np.ones(len(X)),
        np.ones(len(X) - 1),
        np.ones((len(X), 2)),
        np.zeros(len(X)),
        np.array(["heavy"] * len(X)),
        0.0,
    ]
    messages = []
    for weights in bad:
        with pytest.raises(ValueError) as raised:
            NeuralRegressor(max_epochs=1).fit(X, y, sample_weight=weights)
        messages.append(re.sub(r"\d+", "#", str(raised.value)))
    return messages


@pytest.mark.parametrize("how", ["missing", "without ensure_non_negative"])
def test_sample_weights_are_checked_alike_without_check_sample_weight(
    regression_data, monkeypatch, how
):
    X, y = regression_data
    weights = np.linspace(0.5, 2.0, len(X))
    params = dict(hidden_layer_sizes=(8,), max_epochs=2, random_state=0)

    def predictions():
        return [
            NeuralRegressor(**params).fit(X, y, sample_weight=w).predict(X)
            for w in (weights, list(weights), 2.0)
        ]

    expected, errors = predictions(), _weight_errors(X, y)
    if how == "missing":
        monkeypatch.delattr(sklearn.utils.validation, "_check_sample_weight")
    else:
        monkeypatch.setattr(
            sklearn.utils.validation, "_check_sample_weight", lambda w, X, dtype=None: 1 / 0
        )
    for ours, theirs in zip(predictions(), expected, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    # The same refusals, in scikit-learn's words of the version the fallback
    # follows (older versions end some sentences sooner).
    fallback = _weight_errors(X, y)
    assert len(fallback) == len(errors)
    for ours, theirs in zip(fallback, errors, strict=True):
        ours, theirs = ours.rstrip("."), theirs.rstrip(".")
        assert ours.startswith(theirs) or theirs.startswith(ours), (ours, theirs)


def test_predict_on_a_newer_scikit_learn_validates_with_validate_data(regression_data, monkeypatch):
    """The predict shortcut repeats validate_data's checks as the checked
    versions make them; on a newer scikit-learn, validate_data runs."""
    from skcallback import _base

    X, y = regression_data
    est = NeuralRegressor(max_epochs=1, random_state=0).fit(X, y)
    short = est.predict(X)
    calls = []
    validate = _base.validate_data
    monkeypatch.setattr(
        _base, "validate_data", lambda *a, **k: calls.append(1) or validate(*a, **k)
    )
    est.predict(X)
    assert calls == []
    monkeypatch.setattr(_internals, "SHORTCUT_CHECKED_UP_TO", (1, 5))
    np.testing.assert_array_equal(est.predict(X), short)
    assert calls == [1]


def test_the_mlflow_probe_is_skipped_where_mlflows_internals_changed(monkeypatch):
    """With MLflow's internal request helper, an unreachable server fails
    at once; without it (or with new arguments) nothing is asked, and
    MLflow's own client, with its retries, finds the server later."""
    pytest.importorskip("mlflow")
    import socket

    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(Exception, match="onnect"):
        _internals.probe_tracking_server(uri, "skcallback", timeout=5)
    from mlflow.utils import rest_utils

    monkeypatch.setattr(rest_utils, "http_request", lambda host_creds, endpoint, method: None)
    assert _internals.probe_tracking_server(uri, "skcallback", timeout=5) is None
    monkeypatch.setitem(sys.modules, "mlflow.utils.rest_utils", None)
    assert _internals.probe_tracking_server(uri, "skcallback", timeout=5) is None


def test_routing_reads_the_constructor_without_get_param_names(regression_data, monkeypatch):
    X, y = regression_data

    def outcome():
        with pytest.raises(TypeError) as raised:
            NeuralRegressor(max_epochs=1, optimiser__lr=0.1).fit(X, y)
        routed = NeuralRegressor(max_epochs=1, random_state=0, optimizer__weight_decay=0.1)
        return str(raised.value), routed.fit(X, y).predict(X)

    message, predictions = outcome()
    assert "optimiser__lr" in message and "'warm_start']" in message
    monkeypatch.setattr(_internals, "SKLEARN_PARAM_NAMES", "_gone")
    assert outcome()[0] == message
    np.testing.assert_array_equal(outcome()[1], predictions)


def test_the_estimators_parameter_reader_where_scikit_learns_is_gone(regression_data, monkeypatch):
    """Our estimators override scikit-learn's ``_get_param_names`` (to read
    the signature once): the override must reach the fallback too."""
    from sklearn.base import BaseEstimator

    from skcallback import _base

    X, y = regression_data
    params = NeuralRegressor().get_params(deep=False)
    monkeypatch.setattr(_base, "_PARAM_NAMES", {})
    monkeypatch.delattr(BaseEstimator, _internals.SKLEARN_PARAM_NAMES)
    assert NeuralRegressor().get_params(deep=False) == params
    with pytest.raises(TypeError, match="optimiser__lr"):
        NeuralRegressor(max_epochs=1, optimiser__lr=0.1).fit(X, y)
    assert clone(NeuralRegressor(max_epochs=1, lr=0.1)).fit(X, y).lr == 0.1


class _Tasks:
    """A scikit-learn FitCallback recording the tasks it hears of."""

    def __init__(self):
        self.heard = []

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        self.heard.append("teardown")

    def on_fit_task_begin(self, estimator, context):
        self.heard.append(context.task_name)

    def on_fit_task_end(self, estimator, context):
        pass


@pytest.mark.parametrize(
    ("table", "heard"),
    [
        ("SKLEARN_CALLBACKS", ["fit", "epoch", "epoch", "teardown"]),  # every fit reports
        ("SKLEARN_ROOT_TASK", []),  # no fit can: none does
    ],
)
def test_scikit_learn_callbacks_where_their_names_changed(
    regression_data, monkeypatch, table, heard
):
    pytest.importorskip("sklearn.callback")
    X, y = regression_data
    monkeypatch.setattr(_internals, table, "_gone")
    tasks = _Tasks()
    plain = NeuralRegressor(max_epochs=2, random_state=0).fit(X, y)
    with_tasks = NeuralRegressor(max_epochs=2, random_state=0).set_callbacks(tasks).fit(X, y)
    assert tasks.heard == heard
    np.testing.assert_array_equal(plain.predict(X), with_tasks.predict(X))
