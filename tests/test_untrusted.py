"""Files carry data, never authority: crafted files (their checksums
recomputed, so only the checks of their values stand between them and the
estimator) are refused, in every format, before anything they hold is used
or allocated."""

import datetime
import io
import json
import math
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, safe_open, save_file
from sklearn.base import clone

import skcallback
from skcallback import Callback, NeuralClassifier, NeuralRegressor, _persistence, _snapshot
from skcallback._fitted_state import _plain_data
from skcallback._saving import _checksum, _Decoder, _Encoder
from skcallback.callbacks import Checkpoint, EarlyStopping, LRScheduler, read_checkpoint

# ----------------------------------------------------------------------
# One crafted file per format: the fitted state changed by `change`, and
# written by the format's own writer (a valid checksum).
# ----------------------------------------------------------------------


def craft_checkpoint(est, change, tmp_path):
    state = read_checkpoint(est.callbacks_.checkpoint.saved_paths_[-1])
    state["data"] = {key: _plain_data(value) for key, value in state["data"].items()}  # as saved
    change(state)
    path = _snapshot.write(state, tmp_path / "crafted.pt")
    return lambda: clone(est).load_checkpoint(path)


def craft_pickle(est, change, tmp_path):
    state = est.__getstate__()
    fitted = torch.load(io.BytesIO(state["_torch_state"]), weights_only=True)
    change(fitted)
    buffer = io.BytesIO()
    torch.save(fitted, buffer)
    state["_torch_state"] = buffer.getvalue()
    del state["_checksum"]
    state["_checksum"] = _persistence._checksum(state)

    def load():
        loaded = type(est).__new__(type(est))
        loaded.__setstate__(state)
        return loaded

    return load


def write_model(path, document, tensors):
    text = json.dumps(document)
    save_file(
        tensors,
        str(path),
        metadata={"skcallback": text, "skcallback-checksum": _checksum(text, tensors)},
    )


def read_model(path):
    with safe_open(str(path), framework="pt") as file:
        document = json.loads(file.metadata()["skcallback"])
    return document, load_file(str(path))


def craft_model_file(est, change, tmp_path):
    document, tensors = read_model(skcallback.save(est, tmp_path / "saved.skc"))
    decode = _Decoder(tensors)
    fitted = decode({k: v for k, v in document["fitted"].items() if k != "callbacks"})
    fitted["callbacks"] = {k: decode(v) for k, v in document["fitted"]["callbacks"].items()}
    change(fitted)
    tensors = {}
    encode = _Encoder(tensors)
    callbacks = {k: encode(v, k) for k, v in fitted.pop("callbacks").items()}
    document["fitted"] = encode(fitted, "fitted") | {"callbacks": callbacks}
    write_model(tmp_path / "crafted.skc", document, tensors)
    return lambda: skcallback.load(tmp_path / "crafted.skc")


FORMATS = {"checkpoint": craft_checkpoint, "pickle": craft_pickle, "model file": craft_model_file}


@pytest.fixture(params=sorted(FORMATS))
def craft(request, tmp_path):
    return lambda est, change: FORMATS[request.param](est, change, tmp_path)


@pytest.fixture
def regressor(regression_data, tmp_path):
    X, y = regression_data
    return NeuralRegressor(
        max_epochs=3,
        random_state=0,
        callbacks=[EarlyStopping(patience=5), Checkpoint(dirname=tmp_path / "ck")],
    ).fit(X, y)


def set_group(key, value):
    def change(state):
        state["optimizer"]["param_groups"][0][key] = value

    return change


# ----------------------------------------------------------------------
# 1. Optimizer options are the estimator's
# ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [("maximize", True), ("lr", math.nan), ("lr", 1e30), ("weight_decay", 0.5), ("amsgrad", True)],
)
def test_optimizer_options_from_a_file_are_refused(regressor, craft, key, value):
    load = craft(regressor, set_group(key, value))
    with pytest.raises(ValueError, match=f"option {key}="):
        load()


def test_an_unknown_optimizer_option_is_refused(regressor, craft):
    with pytest.raises(ValueError, match="unknown optimizer options"):
        craft(regressor, set_group("initial_lr", 0.1))()


def scheduled_fit(data, folder, **params):
    X, y = data
    callbacks = [LRScheduler("OneCycleLR", max_lr=0.05, total_steps=20), Checkpoint(dirname=folder)]
    params = {"max_epochs": 3, "random_state": 0} | params
    return NeuralRegressor(callbacks=callbacks, **params).fit(X, y)


def test_a_scheduled_learning_rate_loads_but_not_a_nan_one(regression_data, craft, tmp_path):
    est = scheduled_fit(regression_data, tmp_path / "ck")
    loaded = craft(est, lambda state: None)()
    assert loaded.optimizer_.param_groups[0]["lr"] == est.optimizer_.param_groups[0]["lr"]
    with pytest.raises(ValueError, match="max_lr=nan is not a finite rate"):
        craft(est, set_group("max_lr", math.nan))()
    with pytest.raises(ValueError, match="option maximize="):
        craft(est, set_group("maximize", True))()


# ----------------------------------------------------------------------
# 2. A scheduler's saved state is progress, of a fresh scheduler's types
# ----------------------------------------------------------------------


def set_scheduler(key, value):
    def change(state):
        state["callbacks"]["lr_scheduler"]["scheduler"][key] = value

    return change


@pytest.mark.parametrize(
    ("key", "value"), [("step", 1), ("last_epoch", "3"), ("_last_lr", [math.nan])]
)
def test_a_crafted_scheduler_state_is_refused_before_training(
    regression_data, craft, tmp_path, key, value
):
    X, y = regression_data
    est = scheduled_fit(regression_data, tmp_path / "ck", warm_start=True)
    loaded = craft(est, set_scheduler(key, value))()
    weights = {k: v.clone() for k, v in loaded.module_.state_dict().items()}
    with pytest.raises(ValueError, match="saved OneCycleLR state"):
        loaded.fit(X, y)
    for name, tensor in loaded.module_.state_dict().items():
        assert torch.equal(tensor, weights[name])


def test_a_scheduler_setting_comes_from_the_parameters_not_the_file(regression_data, tmp_path):
    X, y = regression_data
    est = scheduled_fit(regression_data, tmp_path / "ck", warm_start=True, max_epochs=1)
    loaded = skcallback.load(skcallback.save(est, tmp_path / "m.skc"))
    state = loaded.callbacks_.lr_scheduler.state_dict()["scheduler"]
    state["_anneal_func_type"] = "linear"  # a setting: the parameters say "cos"
    loaded.callbacks_.lr_scheduler.load_state_dict({"scheduler": state})
    loaded.fit(X, y)
    assert loaded.callbacks_.lr_scheduler.state_dict()["scheduler"]["_anneal_func_type"] == "cos"


# ----------------------------------------------------------------------
# 3. Weights are finite, of the module's shapes
# ----------------------------------------------------------------------


def with_best_weights(state):
    """A fitted model holds no copy of EarlyStopping's best weights (the
    module holds them), but a file may carry one (a partial_fit's state, or
    a crafted file): put one in where the format left it out."""
    stopping = state["callbacks"]["early_stopping"]
    if stopping["best_weights"] is None:
        stopping["best_weights"] = {k: v.clone() for k, v in state["module"].items()}
    return stopping["best_weights"]


def nan_in(*keys):
    def change(state):
        if keys[:3] == ("callbacks", "early_stopping", "best_weights"):
            with_best_weights(state)
        target = state
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = torch.full_like(target[keys[-1]], math.nan)

    return change


@pytest.mark.parametrize(
    "keys",
    [
        ("callbacks", "early_stopping", "best_weights", "layers.0.weight"),
        ("module", "layers.0.weight"),
        ("optimizer", "state", 0, "exp_avg"),
    ],
    ids=["best weights", "module", "optimizer state"],
)
def test_weights_that_are_not_finite_are_refused(regressor, craft, keys):
    with pytest.raises(ValueError, match="finite"):
        craft(regressor, nan_in(*keys))()


def test_best_weights_of_another_shape_are_refused_before_training(
    regressor, craft, regression_data
):
    X, y = regression_data

    def change(state):
        weights = with_best_weights(state)
        weights["layers.0.weight"] = weights["layers.0.weight"][:1]

    loaded = craft(regressor, change)()
    loaded.set_params(warm_start=True)
    with pytest.raises(
        ValueError, match=r"best weights.*not a finite tensor of the module's shape"
    ):
        loaded.fit(X, y)


# ----------------------------------------------------------------------
# 4. classes_ are the module's outputs
# ----------------------------------------------------------------------


@pytest.fixture
def classifier(classification_data, tmp_path):
    X, y = classification_data
    return NeuralClassifier(
        max_epochs=2, random_state=0, callbacks=[Checkpoint(dirname=tmp_path / "ck")]
    ).fit(X, y)


@pytest.mark.parametrize(
    "classes",
    [
        {"values": ["a", "b"], "dtype": "<U1"},
        {"values": ["a", "a", "b"], "dtype": "<U1"},
        torch.tensor([0.0, math.nan, 1.0]),
    ],
    ids=["too few", "repeated", "nan"],
)
def test_classes_that_do_not_match_the_outputs_are_refused(classifier, craft, classes):
    def change(state):
        state["data"]["classes_"] = classes

    with pytest.raises(ValueError, match="'classes_' must be unique finite labels"):
        craft(classifier, change)()


@pytest.mark.parametrize("y_ndim", [3, 2], ids=["unknown kind", "multi-label"])
def test_a_file_cannot_change_the_kind_of_targets(classifier, craft, y_ndim):
    """The kind of targets decides the loss and the predictions: a file of a
    classifier of string labels that claims a multi-label fit (or a kind
    that does not exist) is refused."""

    def change(state):
        state["data"]["_y_ndim"] = y_ndim

    with pytest.raises(ValueError, match=r"malformed: .*(_y_ndim|multi-label)"):
        craft(classifier, change)()


# ----------------------------------------------------------------------
# 5. Nothing is allocated beyond what the file holds
# ----------------------------------------------------------------------


def test_a_stride_0_tensor_is_refused_before_it_is_expanded(regressor, craft, request):
    if "model file" in request.node.callspec.id:
        pytest.skip("safetensors stores every element")

    def change(state):
        # 64 MB once expanded (and cast); the file holds 8 bytes of it.
        state["optimizer"]["state"][0]["exp_avg"] = torch.zeros(1, dtype=torch.float64).expand(
            4000, 4000
        )

    with pytest.raises(ValueError, match="holds more elements than its 8 stored bytes"):
        craft(regressor, change)()


def test_a_declared_width_the_values_do_not_have_is_refused(classifier, tmp_path):
    document, tensors = read_model(skcallback.save(classifier, tmp_path / "m.skc"))
    text = json.dumps(document).replace('["dtype", "<U3"]', '["dtype", "<U20000000"]')
    assert text != json.dumps(document)
    write_model(tmp_path / "wide.skc", json.loads(text), tensors)
    with pytest.raises(ValueError, match="wider than its values"):
        skcallback.load(tmp_path / "wide.skc")
    document["params"]["__dict__"].append(["tag", {"__array__": ["x"], "dtype": "S20000000"}])
    write_model(tmp_path / "array.skc", document, tensors)
    with pytest.raises(ValueError, match="wider than its values"):
        skcallback.load(tmp_path / "array.skc", trusted=[])


def test_module_parameters_that_build_a_larger_module_are_refused(regression_data, tmp_path):
    X, y = regression_data
    est = NeuralRegressor(
        module=torch.nn.Linear, module__in_features=4, module__out_features=1, max_epochs=1
    ).fit(X, y)
    document, tensors = read_model(skcallback.save(est, tmp_path / "m.skc"))
    pairs = document["params"]["__dict__"]
    for pair in pairs:
        if pair[0] == "module__out_features":
            pair[1] = 10**12  # 4 TB of weights, from 20 bytes
    write_model(tmp_path / "big.skc", document, tensors)
    with pytest.raises(ValueError, match="module of 5000000000000 elements"):
        skcallback.load(tmp_path / "big.skc")


# ----------------------------------------------------------------------
# 6. A callback's state of any plain type survives every format
# ----------------------------------------------------------------------


class MovingLoss(Callback):
    """mlr3torch's custom logger: its state is a bare number."""

    def on_train_batch_end(self, ctx):
        self.moving = ctx.loss.item()

    def state_dict(self):
        return getattr(self, "moving", None)

    def load_state_dict(self, state):
        self.moving = state


def test_a_callback_state_of_any_plain_type_survives_every_format(regression_data, tmp_path):
    X, y = regression_data
    est = NeuralRegressor(
        max_epochs=2,
        random_state=0,
        callbacks=[MovingLoss(), Checkpoint(dirname=tmp_path / "ck", resume=True)],
    ).fit(X, y)
    moving = est.callbacks_.moving_loss.state_dict()
    assert isinstance(moving, float)
    from_checkpoint = clone(est).load_checkpoint(est.callbacks_.checkpoint.saved_paths_[-1])
    from_pickle = pickle.loads(pickle.dumps(est))
    from_file = skcallback.load(
        skcallback.save(est, tmp_path / "m.skc"), trusted=[f"{__name__}.MovingLoss"]
    )
    for loaded in (from_checkpoint, from_pickle, from_file):
        assert loaded.callbacks_.moving_loss.state_dict() == moving
    resumed = clone(est).fit(X, y)  # from the checkpoint of its last epoch
    assert resumed.callbacks_.checkpoint.resumed_from_ is not None
    assert resumed.callbacks_.moving_loss.state_dict() == moving


class Stamped(Callback):
    def on_epoch_end(self, ctx):
        self.at_ = datetime.datetime(2026, 11, 22)


def test_a_checkpoint_refuses_a_state_it_could_not_read_back(regression_data, tmp_path):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=1, callbacks=[Stamped(), Checkpoint(dirname=tmp_path)])
    with pytest.raises(ValueError, match="cannot store the state of callback 'stamped'"):
        est.fit(X, y)
    assert not list(tmp_path.rglob("*.pt"))


@pytest.mark.parametrize("device", ["", "meta", "x", 0])
def test_a_pickle_naming_no_fitting_device_is_refused(regressor, device):
    def change(state):
        state["device"] = device

    with pytest.raises(ValueError, match="names no device"):
        craft_pickle(regressor, change, None)()


@pytest.mark.parametrize("key", ["n_features_in_", "classes_"])
def test_a_state_without_what_the_fit_learned_about_its_data_is_refused(classifier, craft, key):
    with pytest.raises(ValueError, match=r"missing data attributes|without 'classes_'"):
        craft(classifier, lambda state: state["data"].pop(key))()


def test_a_checkpoint_without_a_history_loads_with_an_empty_one(regressor):
    def change(state):
        del state["callbacks"]["history"]

    loaded = craft_checkpoint(regressor, change, Path(regressor.callbacks_.checkpoint.run_dir_))()
    assert loaded.history_.get("train_loss") == []


def test_a_scheduled_option_of_another_type_is_refused(regression_data, craft, tmp_path):
    est = scheduled_fit(regression_data, tmp_path / "ck")
    with pytest.raises(ValueError, match="betas=5 is not a finite rate"):
        craft(est, set_group("betas", 5))()


def test_a_warm_start_takes_the_new_options_and_its_model_loads(regression_data, tmp_path):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=1, warm_start=True, random_state=0).fit(X, y)
    est.set_params(lr=0.01, optimizer__weight_decay=0.1).fit(X, y)
    assert est.optimizer_.param_groups[0]["lr"] == 0.01
    assert est.optimizer_.param_groups[0]["weight_decay"] == 0.1
    for loaded in (
        pickle.loads(pickle.dumps(est)),
        skcallback.load(skcallback.save(est, tmp_path / "m.skc")),
    ):
        assert loaded.optimizer_.param_groups[0]["lr"] == 0.01


class _HalveTheRate(Callback):
    """A rate schedule of the user's own: halves the rate after each epoch."""

    schedules_optimizer = True

    def on_epoch_end(self, ctx):
        for group in ctx.optimizer.param_groups:
            group["lr"] /= 2


class _HalveTheRateUndeclared(_HalveTheRate):
    schedules_optimizer = False


@pytest.mark.parametrize("callback", [_HalveTheRate, _HalveTheRateUndeclared])
def test_a_custom_callback_that_changes_the_rate_declares_it(callback):
    # A saved rate other than the parameters' loads only where a callback
    # of the estimator declares that it changes rates during a fit.
    X = torch.randn(60, 3, generator=torch.Generator().manual_seed(0)).numpy()
    est = NeuralRegressor(max_epochs=2, callbacks=[callback()], random_state=0)
    est.fit(X, X.sum(1))
    if callback.schedules_optimizer:
        loaded = pickle.loads(pickle.dumps(est))
        assert loaded.optimizer_.param_groups[0]["lr"] == est.lr / 4
    else:
        with pytest.raises(ValueError, match=r"optimizer option lr=.*schedules_optimizer = True"):
            pickle.loads(pickle.dumps(est))


# ----------------------------------------------------------------------
# A model file's document: nesting and device strings
# ----------------------------------------------------------------------


def set_param(document, name, value):
    """Set a parameter in a document (a dict is stored as key-value pairs)."""
    pairs = document["params"]["__dict__"]
    pairs[[key for key, _ in pairs].index(name)][1] = value


def write_model_text(path, text, tensors):
    save_file(
        tensors,
        str(path),
        metadata={"skcallback": text, "skcallback-checksum": _checksum(text, tensors)},
    )


@pytest.mark.parametrize("fitted", [False, True])
@pytest.mark.parametrize("depth", [200, 100_000])
@pytest.mark.parametrize("container", ["[", '{"a":'])
def test_a_deeply_nested_model_file_is_refused_by_name(
    regression_data, tmp_path, fitted, depth, container
):
    est = NeuralRegressor(max_epochs=1, random_state=0, device="cpu")
    if fitted:
        est.fit(*regression_data)
    document, tensors = read_model(skcallback.save(est, tmp_path / "saved.skc"))
    set_param(document, "verbose", "DEEP")
    close = "]" if container == "[" else "}"
    text = json.dumps(document).replace('"DEEP"', container * depth + "1" + close * depth)
    path = tmp_path / "deep.skc"
    write_model_text(path, text, tensors)
    with pytest.raises(ValueError, match=r"deep\.skc.*nest"):
        skcallback.load(path)


@pytest.mark.parametrize("fitted", [False, True])
@pytest.mark.parametrize("device", ["nonsense", {"__device__": "nonsense"}, "cuda:-1", 3])
def test_a_model_file_with_a_bad_device_is_refused_by_name(
    regression_data, tmp_path, fitted, device
):
    est = NeuralRegressor(max_epochs=1, random_state=0, device="cpu")
    if fitted:
        est.fit(*regression_data)
    document, tensors = read_model(skcallback.save(est, tmp_path / "saved.skc"))
    set_param(document, "device", device)
    write_model(tmp_path / "device.skc", document, tensors)
    with pytest.raises(ValueError, match=r"device\.skc.*device"):
        skcallback.load(tmp_path / "device.skc")


def test_an_option_this_torch_does_not_know_is_dropped(regressor, craft):
    # A model saved with a newer torch (Adam's decoupled_weight_decay came
    # in 2.5) loads on an older one: the option is not adopted.
    est = craft(regressor, set_group("an_option_of_a_newer_torch", False))()
    assert all("an_option_of_a_newer_torch" not in g for g in est.optimizer_.param_groups)


# ----------------------------------------------------------------------
# 9. The description of the inputs a model takes (arrays of any rank, a
#    dict of arrays, a Dataset's items) is data, checked
# ----------------------------------------------------------------------
class ShapedLinear(torch.nn.Module):
    """A linear layer sized from the shape of a sample."""

    def __init__(self, n_outputs, input_shape):
        super().__init__()
        self.linear = torch.nn.Linear(math.prod(input_shape), n_outputs)

    def forward(self, x):
        return self.linear(x.flatten(1))


class FlatLinear(ShapedLinear):
    """The same for items of shape (2, 3), whose shape is not recorded."""

    def __init__(self, n_outputs):
        super().__init__(n_outputs, (2, 3))


def _inputs_of(kind):
    images = torch.randn(24, 2, 3, generator=torch.Generator().manual_seed(0))
    y = images.sum((1, 2))
    if kind == "dict":
        return {"input1": images[:, 0], "input2": images[:, 1, :2]}, y, torch.nn.Bilinear
    if kind == "dataset":
        return torch.utils.data.StackDataset(images, y), None, FlatLinear
    return images.numpy(), y, ShapedLinear


@pytest.fixture(params=["array", "dict", "dataset"])
def shaped(request, tmp_path):
    X, y, module = _inputs_of(request.param)
    est = NeuralRegressor(
        module=module, max_epochs=2, random_state=0, callbacks=[Checkpoint(dirname=tmp_path)]
    )
    if request.param == "dict":
        est.set_params(module__in1_features=3, module__in2_features=2, module__out_features=1)
    return est.fit(X, y)


def load_crafted(craft, est, change, tmp_path):
    """``craft``'s loader; a model file loaded trusting the test's module."""
    load = craft(est, change)
    crafted = tmp_path / "crafted.skc"
    if not crafted.exists():
        return load, "crafted|pickle|estimator"
    trusted = [f"{cls.__module__}.{cls.__qualname__}" for cls in (ShapedLinear, FlatLinear)]
    return lambda: skcallback.load(crafted, trusted=trusted), r"crafted\.skc"


def set_spec(**change):
    def apply(state):
        spec = state["data"]["_input_spec"]
        for key, value in change.items():
            if value is None:
                spec.pop(key, None)
            else:
                spec[key] = value

    return apply


SPECS = {
    "an unknown kind": set_spec(kind="table"),
    "a kind that is not a str": set_spec(kind=["array"]),
    "an extra key": set_spec(extra=1),
    "no kind": set_spec(kind=None),
    "a dimension as text": set_spec(kind="array", shape=[2, "3"], fields=None),
    "a float dimension": set_spec(kind="array", shape=[2, 3.0], fields=None),
    "a negative dimension": set_spec(kind="array", shape=[-2, -3], fields=None),
    "a bool dimension": set_spec(kind="array", shape=[True, 6], fields=None),
    "a 2-D shape": set_spec(kind="array", shape=[6], fields=None),
    "too many dimensions": set_spec(kind="array", shape=[1] * 40, fields=None),
    "a shape that is not a list": set_spec(kind="array", shape="2x3", fields=None),
    "no fields": set_spec(kind="dict", fields={}, shape=None),
    "a field of an unknown kind": set_spec(
        kind="dict", fields={"a": {"shape": [3], "kind": "complex"}}, shape=None
    ),
    "a field with an extra key": set_spec(
        kind="dict", fields={"a": {"shape": [3], "kind": "float", "x": 1}}, shape=None
    ),
    "fields that are a list": set_spec(kind="dict", fields=[["a", [3]]], shape=None),
    "a dataset with a bad shape": set_spec(kind="dataset", shape=[2, -3], fields=None),
    "a dataset with fields": set_spec(kind="dataset", shape=None, fields={}),
}


@pytest.mark.parametrize("malformed", sorted(SPECS))
def test_a_malformed_input_description_is_refused_by_name(shaped, craft, tmp_path, malformed):
    load, name = load_crafted(craft, shaped, SPECS[malformed], tmp_path)
    with pytest.raises(ValueError, match=rf"(?s)({name}).*'_input_spec' does not describe"):
        load()


@pytest.mark.parametrize("shape", [[10**6, 10**6], [4, 4]])
def test_a_module_sized_from_a_crafted_shape_is_refused(craft, tmp_path, shape):
    X, y, module = _inputs_of("array")
    est = NeuralRegressor(
        module=module, max_epochs=1, random_state=0, callbacks=[Checkpoint(dirname=tmp_path)]
    ).fit(X, y)
    load, _ = load_crafted(craft, est, set_spec(shape=shape), tmp_path)
    with pytest.raises(ValueError, match=r"elements|malformed|shape"):
        load()


def test_an_input_description_beside_n_features_in_is_refused(regressor, craft, tmp_path):
    load, _ = load_crafted(
        craft, regressor, lambda s: s["data"].update(_input_spec={"kind": "dataset"}), tmp_path
    )
    with pytest.raises(ValueError, match="missing data attributes"):
        load()
