"""skcallback.save / skcallback.load: a whole estimator without pickle."""

import json
import os
import random
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import skcallback
from skcallback import NeuralClassifier, NeuralRegressor
from skcallback.callbacks import (
    Checkpoint,
    EarlyStopping,
    EpochScoring,
    LambdaCallback,
    LRScheduler,
)


class Net(nn.Module):
    def __init__(self, n_features_in, n_outputs, width=8):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(n_features_in, width), nn.Linear(width, n_outputs))

    def forward(self, X):
        return self.layers(X)


def write_model(path, document, tensors=None):
    """A crafted model file: hostile contents under a valid checksum."""
    from skcallback._saving import _checksum

    text = json.dumps(document)
    metadata = {"skcallback": text, "skcallback-checksum": _checksum(text, tensors or {})}
    save_file(tensors or {}, str(path), metadata=metadata)


def count_epochs(ctx):
    ctx.metrics["counted"] = ctx.epoch


def fitted_classifier(tmp_path, X, y):
    return NeuralClassifier(
        hidden_layer_sizes=(8,),
        max_epochs=3,
        random_state=0,
        callbacks=[
            EpochScoring("accuracy"),
            EarlyStopping(patience=5),
            LRScheduler("StepLR", step_size=1, gamma=0.5),
            Checkpoint(dirname=tmp_path / "ck"),
        ],
        cb__early_stopping__min_delta=0.001,
    ).fit(X, y)


def test_a_round_trip_keeps_parameters_state_and_predictions(classification_data, tmp_path):
    X, y = classification_data
    est = fitted_classifier(tmp_path, X, y)
    loaded = skcallback.load(skcallback.save(est, tmp_path / "model.skc"))
    assert type(loaded) is NeuralClassifier
    assert loaded.get_params()["cb__early_stopping__min_delta"] == 0.001
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(loaded.classes_, est.classes_)
    assert loaded.history_.records_ == est.history_.records_
    assert (loaded.n_iter_, loaded.n_steps_) == (est.n_iter_, est.n_steps_)
    assert loaded.callbacks_.early_stopping.best_score_ == est.callbacks_.early_stopping.best_score_
    # It trains on exactly as the original would.
    est.set_params(warm_start=True).fit(X, y)
    loaded.set_params(warm_start=True).fit(X, y)
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    assert loaded.history_.get("lr") == est.history_.get("lr")


def test_an_unfitted_estimator_round_trips_its_parameters(tmp_path):
    est = NeuralRegressor(hidden_layer_sizes=(3, 4), optimizer=torch.optim.SGD, lr=0.1)
    loaded = skcallback.load(skcallback.save(est, tmp_path / "model.skc"))
    assert loaded.get_params(deep=False) == est.get_params(deep=False)
    assert not loaded.__sklearn_is_fitted__()


def test_classes_outside_the_trusted_packages_need_trust(regression_data, tmp_path):
    X, y = regression_data
    est = NeuralRegressor(
        module=Net,
        module__width=4,
        max_epochs=2,
        random_state=0,
        callbacks=[LambdaCallback(on_epoch_end=count_epochs)],
    ).fit(X, y)
    path = skcallback.save(est, tmp_path / "model.skc")
    names = [f"{__name__}.Net", f"{__name__}.count_epochs"]
    with pytest.raises(ValueError, match="not trusted") as info:
        skcallback.load(path)
    assert all(name in str(info.value) for name in names)
    loaded = skcallback.load(path, trusted=names)
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


def test_what_cannot_be_stored_is_named_at_save(regression_data, tmp_path):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=1, callbacks=[LambdaCallback(on_epoch_end=lambda ctx: None)])
    with pytest.raises(TypeError, match="lambdas"):
        skcallback.save(est.fit(X, y), tmp_path / "model.skc")
    with pytest.raises(TypeError, match="module instance"):
        skcallback.save(NeuralRegressor(module=nn.Linear(4, 1)), tmp_path / "model.skc")
    assert not (tmp_path / "model.skc").exists()


def test_loading_a_hostile_file_imports_and_runs_nothing(tmp_path):
    document = {
        "format": "skcallback-model-2",
        "class": "skcallback.NeuralRegressor",
        "params": {"__dict__": [["module", {"__class__": "this.Anything"}]]},
        "fitted": None,
    }
    payload = torch.frombuffer(
        bytearray(b"cos\nsystem\n(S'touch /tmp/owned'\ntR."), dtype=torch.uint8
    )
    path = tmp_path / "hostile.skc"
    write_model(path, document, {"t0": payload})
    sys.modules.pop("this", None)
    with pytest.raises(ValueError, match=r"not trusted: \['this.Anything'\]"):
        skcallback.load(path)
    assert "this" not in sys.modules  # importing `this` prints: nothing was imported
    (tmp_path / "other.skc").write_bytes(b"\x80\x04not a model")
    with pytest.raises(ValueError, match="not a readable skcallback model"):
        skcallback.load(tmp_path / "other.skc")


def test_a_round_trip_through_a_fresh_process(classification_data, tmp_path):
    X, y = classification_data
    est = fitted_classifier(tmp_path, X, y)
    path = skcallback.save(est, tmp_path / "model.skc")
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "expected.npy", est.predict_proba(X))
    script = textwrap.dedent(
        f"""
        import numpy as np, skcallback
        est = skcallback.load({str(path)!r})
        X = np.load({str(tmp_path / "X.npy")!r})
        assert np.array_equal(est.predict_proba(X), np.load({str(tmp_path / "expected.npy")!r}))
        print("same")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert result.stdout.strip() == "same", result.stderr


def test_a_path_reached_through_another_module_is_refused(tmp_path):
    est = NeuralRegressor()
    path = skcallback.save(est, tmp_path / "model.skc")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as file:
        document = json.loads(file.metadata()["skcallback"])
    document["params"]["__dict__"] += [
        ["module", {"__function__": "sklearn.os.system"}],
        ["module__command", "touch /tmp/skcallback-owned"],
    ]
    hostile = tmp_path / "hostile.skc"
    write_model(hostile, document)
    with pytest.raises(ValueError, match=r"not trusted: \['sklearn.os.system'\]"):
        skcallback.load(hostile)
    with pytest.raises(ValueError, match="does not import as a function"):
        skcallback.load(hostile, trusted=["sklearn.os.system"])
    assert not os.path.exists("/tmp/skcallback-owned")
    document["params"]["__dict__"][-2] = ["module", {"__dtype__": "save"}]
    write_model(hostile, document)
    with pytest.raises(ValueError, match="unknown dtype 'save'"):
        skcallback.load(hostile)


def test_a_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model file"):
        skcallback.load(tmp_path / "nothing.skc")


def flipped_bits(data, positions):
    """``data`` with each of the bit ``positions`` flipped, one at a time."""
    for position in positions:
        damaged = bytearray(data)
        damaged[position // 8] ^= 1 << (position % 8)
        yield bytes(damaged)


def test_every_flipped_bit_in_a_model_file_is_a_value_error(regression_data, tmp_path):
    X, y = regression_data
    est = NeuralRegressor(hidden_layer_sizes=(4,), max_epochs=1, random_state=0).fit(X, y)
    good = skcallback.save(est, tmp_path / "model.skc").read_bytes()
    header = 8 + int.from_bytes(good[:8], "little")  # safetensors: length, JSON header, data
    rng = random.Random(0)
    positions = [
        *range(16 * 8),  # the header's length and its start
        *rng.sample(range(16 * 8, header * 8), 300),  # the header: the document, the checksum
        *rng.sample(range(header * 8, len(good) * 8), 100),  # the tensors
    ]
    target = tmp_path / "flipped.skc"
    for damaged in flipped_bits(good, positions):
        target.write_bytes(damaged)
        with pytest.raises(ValueError, match=r"corrupt|not a readable|not an skcallback model"):
            skcallback.load(target)


def test_a_file_of_the_first_format_loads_with_a_warning(tmp_path):
    # Saved by skcallback before files carried a checksum (format 1).
    saved = np.load(os.path.join(os.path.dirname(__file__), "data", "model-format-1.npz"))
    path = os.path.join(os.path.dirname(__file__), "data", "model-format-1.skc")
    with pytest.warns(UserWarning, match=r"no checksum.*skcallback.save\(skcallback.load"):
        est = skcallback.load(path)
    np.testing.assert_array_equal(est.predict_proba(saved["X"]), saved["proba"])
    assert est.classes_.dtype == object and est.n_iter_ == saved["n_iter"]
    again = skcallback.load(skcallback.save(est, tmp_path / "model.skc"))  # no warning now
    np.testing.assert_array_equal(again.predict_proba(saved["X"]), saved["proba"])


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("epoch", -1, "negative"), ("stop_reason", 3, "'stop_reason'"), ("fast_path", 1, "bool")],
)
def test_a_malformed_fitted_state_is_a_value_error(
    regression_data, tmp_path, field, value, message
):
    from safetensors.torch import load_file, safe_open

    X, y = regression_data
    path = skcallback.save(NeuralRegressor(max_epochs=1).fit(X, y), tmp_path / "model.skc")
    with safe_open(str(path), framework="pt") as file:
        document = json.loads(file.metadata()["skcallback"])
    pairs = document["fitted"]["__dict__"]
    pairs[[key for key, _ in pairs].index(field)][1] = value
    write_model(path, document, load_file(str(path)))
    with pytest.raises(ValueError, match=message):
        skcallback.load(path)


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_leaves_no_file_and_no_temporary(tmp_path, monkeypatch, error):
    def fail(*args):
        raise error

    monkeypatch.setattr("os.fsync", fail)
    expected = OSError if isinstance(error, OSError) else type(error)
    with pytest.raises(expected) as info:
        skcallback.save(NeuralRegressor(), tmp_path / "model.skc")
    if isinstance(error, OSError):
        assert "model.skc" in str(info.value) and "No space" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_save_over_a_file_leaves_the_old_one_whole(tmp_path, monkeypatch):
    # Written beside it and renamed: a failure (a full disk, a kill) midway
    # never leaves a truncated or half-new file under the path.
    X = np.random.RandomState(0).normal(size=(40, 3))
    fitted = NeuralRegressor(max_epochs=1, random_state=0).fit(X, X[:, 0])
    path = skcallback.save(fitted, tmp_path / "m.skc")
    before = path.read_bytes()

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", fail)
    with pytest.raises(OSError, match="No space"):
        skcallback.save(NeuralRegressor(max_epochs=2, random_state=1).fit(X, X[:, 1]), path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.skc"]


def _leftover(folder, name, *, age_s, pid=None):
    """A temporary file as a save killed mid-write leaves it (before the
    writer's id was in the name: pid=None)."""
    middle = f"k3x9q_{age_s}" if pid is None else f"{pid}.k3x9q_{age_s}"
    path = folder / f".{name}.{middle}.tmp"
    path.write_bytes(b"half a model")
    os.utime(path, (time.time() - age_s, time.time() - age_s))
    return path


def test_a_save_removes_the_leftovers_of_killed_saves_of_the_same_file(tmp_path):
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead_pid = int(gone.stdout)
    stale = [
        _leftover(tmp_path, "model.skc", age_s=3600),
        _leftover(tmp_path, "model.skc", age_s=3600, pid=dead_pid),
    ]
    kept = [
        _leftover(tmp_path, "model.skc", age_s=1),  # a concurrent save, writing now
        _leftover(tmp_path, "model.skc", age_s=3600, pid=os.getpid()),  # its writer lives
        _leftover(tmp_path, "other.skc", age_s=3600),  # another file's
    ]
    skcallback.save(NeuralRegressor(), tmp_path / "model.skc")
    assert not [path.name for path in stale if path.exists()]
    assert all(path.exists() for path in kept)
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".tmp")
    assert leftovers == sorted(path.name for path in kept)  # the save's own is renamed
