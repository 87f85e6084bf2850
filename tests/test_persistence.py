"""Pickle/joblib round trips, and GPU-fitted models on CPU-only machines."""

import datetime
import io
import pickle
import random
import warnings

import joblib
import numpy as np
import pytest
import torch

from skcallback import Callback, NeuralClassifier, NeuralRegressor, _persistence
from skcallback.callbacks import EarlyStopping, LambdaCallback


def _count(ctx):
    cb = ctx.callbacks["counter"]
    cb.seen_ = getattr(cb, "seen_", 0) + 1


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_round_trip_keeps_everything(classification_data, tmp_path, dump):
    X, y = classification_data
    clf = NeuralClassifier(
        max_epochs=3,
        random_state=0,
        callbacks=[LambdaCallback(name="counter", on_epoch_end=_count)],
    ).fit(X, y)
    if dump == "pickle":
        loaded = pickle.loads(pickle.dumps(clf))
    else:
        joblib.dump(clf, tmp_path / "model.joblib")
        loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.history_.records_ == clf.history_.records_
    assert loaded.history_ is loaded.callbacks_["history"]
    assert loaded.callbacks_["counter"].seen_ == 3
    assert (
        loaded.optimizer_.state_dict()["state"].keys()
        == clf.optimizer_.state_dict()["state"].keys()
    )
    # the optimizer still drives the loaded module's parameters
    assert loaded.optimizer_.param_groups[0]["params"][0] is next(loaded.module_.parameters())
    loaded.set_params(warm_start=True).fit(X, y)
    assert loaded.n_iter_ == 6 and loaded.callbacks_["counter"].seen_ == 6


def test_pickling_does_not_change_the_estimator(regression_data):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=1).fit(X, y)
    pickle.dumps(est)
    assert hasattr(est, "module_") and est.predict(X).shape == (120,)


def test_a_model_saved_on_cuda_loads_on_a_cpu_only_machine(regression_data, monkeypatch):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=2, random_state=0).fit(X, y)
    expected = est.predict(X)
    # Save as a GPU run would: the device is CUDA and storages carry a CUDA tag.
    est.device_ = torch.device("cuda:0")
    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    blob = pickle.dumps(est)
    torch_state = est.__getstate__()["_torch_state"]
    monkeypatch.undo()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA"):  # what a plain load would do
        torch.load(io.BytesIO(torch_state), weights_only=False)
    with pytest.warns(RuntimeWarning, match="loaded on the CPU"):
        loaded = pickle.loads(blob)
    assert loaded.device_ == torch.device("cpu")
    assert next(loaded.module_.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(loaded.predict(X), expected)


class _Payload:
    ran = []

    def __reduce__(self):
        return (_Payload.ran.append, ("payload ran",))


def test_the_embedded_torch_state_is_plain_data(regression_data):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=1, callbacks=[EarlyStopping()]).fit(X, y)
    blob = est.__getstate__()["_torch_state"]
    state = torch.load(io.BytesIO(blob), weights_only=True)  # no object inside
    assert {"module", "optimizer", "callbacks", "rng", "epoch", "step"} <= set(state)


def test_a_payload_hidden_in_the_torch_state_runs_no_code(regression_data):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=1).fit(X, y)
    state = est.__getstate__()
    buffer = io.BytesIO()
    torch.save({"module": _Payload()}, buffer)
    state["_torch_state"] = buffer.getvalue()
    del state["_checksum"]
    state["_checksum"] = _persistence._checksum(state)  # crafted, not corrupt
    tampered = NeuralRegressor.__new__(NeuralRegressor)
    with pytest.raises(ValueError, match="not plain data"):
        tampered.__setstate__(state)
    assert _Payload.ran == []


def test_every_flipped_bit_in_a_joblib_file_is_an_error_or_changes_nothing(regression_data):
    X, y = regression_data
    est = NeuralRegressor(hidden_layer_sizes=(4,), max_epochs=1, random_state=0).fit(X, y)
    expected = est.predict(X)
    buffer = io.BytesIO()
    joblib.dump(est, buffer)
    good = buffer.getvalue()
    blob = est.__getstate__()["_torch_state"]
    start = good.index(blob)
    rng = random.Random(0)
    outside = [*range(start * 8), *range((start + len(blob)) * 8, len(good) * 8)]
    positions = [*rng.sample(range(len(good) * 8), 300), *rng.sample(outside, 300)]
    for position in positions:
        damaged = bytearray(good)
        damaged[position // 8] ^= 1 << (position % 8)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                loaded = joblib.load(io.BytesIO(damaged))
        except ValueError:
            continue
        except Exception:  # the flip broke the pickle stream: the unpickler says so
            assert not start * 8 <= position < (start + len(blob)) * 8
            continue
        np.testing.assert_array_equal(loaded.predict(X), expected)


def test_a_pickle_made_before_checksums_is_refused_with_the_way_out(regression_data):
    X, y = regression_data
    state = NeuralRegressor(max_epochs=1).fit(X, y).__getstate__()
    del state["_checksum"]
    with pytest.raises(ValueError, match=r"earlier version.*skcallback.save\(estimator, path\)"):
        NeuralRegressor.__new__(NeuralRegressor).__setstate__(state)


def test_a_lambda_callback_round_trips_through_joblib(regression_data, tmp_path):
    X, y = regression_data
    log = LambdaCallback(on_epoch_end=lambda ctx: None)
    est = NeuralRegressor(max_epochs=1, callbacks=[log], random_state=0).fit(X, y)
    joblib.dump(est, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


class Stamped(Callback):
    """Keeps a state that is not plain data."""

    def on_fit_end(self, ctx):
        self.finished_at_ = datetime.datetime(2026, 11, 22, 6, 30)


def test_a_callback_state_that_is_not_plain_data_still_round_trips(regression_data):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=1, callbacks=[Stamped()]).fit(X, y)
    loaded = pickle.loads(pickle.dumps(est))
    assert loaded.callbacks_.stamped.finished_at_ == datetime.datetime(2026, 11, 22, 6, 30)
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
