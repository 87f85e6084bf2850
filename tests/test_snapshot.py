"""The checkpoint format: checksummed, plain data, no authority."""

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from skcallback import NeuralRegressor, _snapshot
from skcallback.callbacks import Checkpoint, EarlyStopping, checkpoint_files, read_checkpoint


@pytest.fixture
def saved(regression_data, tmp_path):
    X, y = regression_data
    est = NeuralRegressor(
        max_epochs=2, random_state=0, callbacks=[Checkpoint(dirname=tmp_path), EarlyStopping()]
    ).fit(X, y)
    return est, est.callbacks_.checkpoint.saved_paths_[-1]


def test_every_single_bit_flip_is_caught(saved, tmp_path, regression_data):
    X, _ = regression_data
    est, path = saved
    good = Path(path).read_bytes()
    before = est.predict(X)
    rng = random.Random(0)
    for trial in range(200):
        damaged = bytearray(good)
        position = rng.randrange(len(damaged) * 8)
        damaged[position // 8] ^= 1 << (position % 8)
        target = tmp_path / f"flip{trial}.pt"
        target.write_bytes(bytes(damaged))
        with pytest.raises(ValueError, match=r"corrupt|not a skcallback checkpoint"):
            est.load_checkpoint(target)
    np.testing.assert_array_equal(est.predict(X), before)  # untouched by every failure


def test_saved_state_holds_no_path(saved):
    _, path = saved
    state = read_checkpoint(path)

    def strings(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, list | tuple):
            for item in value:
                yield from strings(item)

    folder = str(Path(path).parent)
    assert not [text for text in strings(state) if folder in text or "/" in text]


def test_a_crafted_checkpoint_cannot_steer_writes_or_deletions(regression_data, tmp_path):
    X, y = regression_data
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    params = dict(max_epochs=3, random_state=0)
    first = NeuralRegressor(
        **params, callbacks=[Checkpoint(dirname=tmp_path / "ck", resume=True, keep_max=1)]
    ).fit(X, y)
    folder = Path(first.callbacks_.checkpoint.run_dir_)
    newest = checkpoint_files(folder, "model")[-1]
    state = read_checkpoint(newest)
    state["callbacks"]["checkpoint"] = {
        "best_score": 0.0,
        "best_name": "../../victim.txt",
        "saved_paths_": [str(victim)],
        "run_dir_": str(tmp_path),
    }
    state["epoch"] = 1  # so that the resumed fit trains and saves (and prunes)
    _snapshot.write(state, newest)  # a valid checksum: crafted, not corrupt
    est = NeuralRegressor(
        **params, callbacks=[Checkpoint(dirname=tmp_path / "ck", resume=True, keep_max=1)]
    )
    with pytest.raises(ValueError, match="best_name must be a file name"):
        est.fit(X, y)
    assert victim.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck", "victim.txt"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("epoch", -1, "negative"),
        ("epoch", "3", "'epoch' is not a int"),
        ("callbacks", {"history": [1, 2]}, "state of callback 'history' does not load"),
        ("stop_reason", 5, "'stop_reason' is missing or of the wrong type"),
        ("rng", ["MT19937"], "'rng' is not a NumPy generator state"),
        ("format", 1, "not a skcallback checkpoint of format 2"),
    ],
)
def test_malformed_fields_are_value_errors(saved, tmp_path, field, value, message):
    _, path = saved
    state = read_checkpoint(path)
    state[field] = value
    _snapshot.write(state, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=message):
        NeuralRegressor().load_checkpoint(tmp_path / "bad.pt")


def test_a_checkpoint_with_more_losses_than_batches_is_refused(saved, tmp_path):
    _, path = saved
    state = read_checkpoint(path)
    state.update(batches_done=1, epoch_losses=[torch.tensor(1.0)] * 2, epoch_sizes=[10, 10])
    _snapshot.write(state, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="malformed: the losses of the unfinished epoch"):
        NeuralRegressor(callbacks=[Checkpoint(), EarlyStopping()]).load_checkpoint(
            tmp_path / "bad.pt"
        )


def test_an_optimizer_state_of_the_wrong_shape_is_refused(saved, tmp_path):
    _, path = saved
    state = read_checkpoint(path)
    first = next(iter(state["optimizer"]["state"].values()))
    first["exp_avg"] = torch.zeros(3)
    _snapshot.write(state, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="optimizer state 'exp_avg' has shape"):
        NeuralRegressor(callbacks=[Checkpoint(), EarlyStopping()]).load_checkpoint(
            tmp_path / "bad.pt"
        )


def test_a_disk_error_names_the_path(saved, tmp_path, monkeypatch):
    _, path = saved
    state = read_checkpoint(path)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", full)
    with pytest.raises(OSError, match=r"Could not write the checkpoint '.*out\.pt': No space"):
        _snapshot.write(state, tmp_path / "out.pt")
    assert not list(tmp_path.glob(".out.pt*"))  # no temporary file left behind


def test_a_scalar_where_a_tensor_belongs_is_refused(saved, tmp_path):
    _, path = saved
    state = read_checkpoint(path)
    first = next(iter(state["optimizer"]["state"].values()))
    first["exp_avg"] = torch.tensor(1.0)  # fused Adam would overrun its buffers
    _snapshot.write(state, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="optimizer state 'exp_avg' has shape"):
        NeuralRegressor(callbacks=[Checkpoint(), EarlyStopping()]).load_checkpoint(
            tmp_path / "bad.pt"
        )


def test_a_saved_state_cannot_set_callback_parameters(regression_data, tmp_path):
    from skcallback.callbacks import CSVLogger

    X, y = regression_data
    outside = tmp_path / "outside" / "where.csv"

    def make():
        return NeuralRegressor(
            max_epochs=3,
            random_state=0,
            callbacks=[
                Checkpoint(dirname=tmp_path / "ck", resume=True),
                CSVLogger(tmp_path / "log.csv"),
            ],
        )

    folder = Path(make().fit(X, y).callbacks_.checkpoint.run_dir_)
    newest = checkpoint_files(folder, "model")[-1]
    state = read_checkpoint(newest)
    state["callbacks"]["csv_logger"] = {"path": str(outside)}
    state["epoch"] = 1
    _snapshot.write(state, newest)
    with pytest.raises(ValueError, match=r"takes learned attributes.*refused \['path'\]"):
        make().fit(X, y)
    assert not outside.parent.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["data"].update(predict=torch.zeros(3)), "unknown or missing data attributes"),
        (lambda s: s["data"].update(n_features_in_=-1), "'n_features_in_' is not a count"),
        (lambda s: s["data"].update(n_outputs_=True), "'n_outputs_' is not a count"),
        (lambda s: s.update(fast_path="yes"), "'fast_path' is not a bool"),
        (lambda s: s.update(step=-1), "negative"),
    ],
)
def test_a_crafted_fitted_state_sets_no_other_attribute(saved, tmp_path, change, message):
    est, path = saved
    state = read_checkpoint(path)
    change(state)
    _snapshot.write(state, tmp_path / "bad.pt")  # a valid checksum: crafted, not corrupt
    with pytest.raises(ValueError, match=message):
        est.load_checkpoint(tmp_path / "bad.pt")
    assert callable(est.predict) and est.n_features_in_ == 4
