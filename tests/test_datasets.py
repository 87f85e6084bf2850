# ruff: noqa: NPY002  (Datasets draw augmentation from the global generators: the point here)
"""torch Datasets, SliceDataset and lists of variable-length samples:
loaded by a DataLoader, reproducible whatever the number of workers, and
resumed bit for bit."""

from __future__ import annotations

import contextlib
import functools
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from dataset_child import FileItems, make, write_items
from sklearn.model_selection import GridSearchCV, cross_val_score
from torch import nn
from torch.utils.data import Dataset, IterableDataset, TensorDataset

import skcallback
from skcallback import Callback, NeuralClassifier, NeuralRegressor, SliceDataset, pad_sequences


class Noisy(Dataset):
    """In-memory items with random augmentation from NumPy's global
    generator, returned as float64 arrays."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i] + np.random.normal(0, 0.01, size=self.X[i].shape), self.y[i]


@pytest.fixture(scope="module")
def table():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 6)).astype(np.float32)
    return X, (X[:, 0] + X[:, 1] > 0).astype(np.int64)


def mlp(n_outputs):
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, n_outputs))


def weights(est):
    return [p.detach().clone() for p in est.module_.parameters()]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_a_dataset_trains_and_predicts(table):
    X, y = table
    clf = NeuralClassifier(module=mlp, max_epochs=15, lr=1e-2, random_state=0)
    clf.fit(Noisy(X, y))
    assert list(clf.classes_) == [0, 1]
    assert clf.history_[-1]["valid_loss"] > 0  # a stratified share was held out
    assert (clf.predict(Noisy(X, y)) == y).mean() > 0.85
    # arrays of the items' shape predict too
    assert (clf.predict(X) == y).mean() > 0.85
    assert clf.predict_proba(Noisy(X, y)).shape == (300, 2)


def test_workers_change_nothing_but_speed(table):
    X, y = table
    alone = NeuralClassifier(module=mlp, max_epochs=3, random_state=0).fit(Noisy(X, y))
    params = {"dataloader__num_workers": 2, "dataloader__persistent_workers": True}
    workers = NeuralClassifier(module=mlp, max_epochs=3, random_state=0, **params)
    workers.fit(Noisy(X, y))
    assert same(weights(alone), weights(workers))
    np.testing.assert_array_equal(alone.predict_proba(X), workers.predict_proba(X))


def test_loading_leaves_the_global_generators_alone(table):
    X, y = table
    np.random.seed(5)
    expected = np.random.random()
    np.random.seed(5)
    NeuralClassifier(module=mlp, max_epochs=1, random_state=0).fit(Noisy(X, y))
    assert np.random.random() == expected


def test_fits_loading_in_threads_take_turns_with_the_global_generators(table):
    # NumPy's global generator is the process's: two fits loading items in
    # threads at once must neither mix their draws nor leave the loading
    # generator in place of the user's.
    from concurrent.futures import ThreadPoolExecutor

    X, y = table

    def plain(n_outputs):
        return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, n_outputs))

    import threading

    meeting = threading.Barrier(2, timeout=0.5)

    class Meeting(Noisy):
        """Both fits loading at once, if the loading lets them (else the
        meeting times out and the fits go on in turn)."""

        def __getitem__(self, i):
            if not meeting.broken:
                with contextlib.suppress(threading.BrokenBarrierError):
                    meeting.wait()
            return super().__getitem__(i)

    def fit(seed):
        est = NeuralClassifier(module=plain, max_epochs=2, batch_size=8, random_state=seed)
        return weights(est.fit(Meeting(X[:120], y[:120])))

    meeting.abort()
    alone = [fit(0), fit(1)]
    meeting.reset()
    users = np.random.get_bit_generator()
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(fit, [0, 1]))
    assert np.random.get_bit_generator() is users
    for i, result in enumerate(together):
        assert same(alone[i % 2], result)


@pytest.mark.parametrize("cached_gaussian", [False, True])
def test_numpy_draws_between_batches_do_not_depend_on_loading(table, cached_gaussian):
    # The draws a callback makes from NumPy's global generator during a fit
    # (a Gaussian each batch: the legacy generator caches every other one)
    # are those it makes when the items load in worker processes, and the
    # generator ends where those draws leave it.
    X, y = table
    draws: dict[int, list[float]] = {}
    record: list[float] = []

    class OddDraws(Noisy):  # 7 Gaussians an item: a batch of 25 leaves one cached
        def __getitem__(self, i):
            x, target = super().__getitem__(i)
            return x + np.random.normal(), target

    class Draw(Callback):
        def on_train_batch_begin(self, ctx):
            record.append(np.random.normal())

    for workers in (0, 2):
        np.random.seed(7)
        if cached_gaussian:
            np.random.normal()
        record.clear()
        NeuralClassifier(
            module=mlp,
            max_epochs=2,
            random_state=0,
            batch_size=25,
            dataloader__num_workers=workers,
            callbacks=[Draw()],
        ).fit(OddDraws(X, y))
        draws[workers] = [*record, np.random.random()]
    np.random.seed(7)
    expected = [np.random.normal() for _ in range(cached_gaussian + len(draws[0]) - 1)]
    expected = [*expected[cached_gaussian:], np.random.random()]
    assert len(draws[0]) > 4 and draws[0] == draws[2] == expected


def test_a_tensor_dataset_trains_exactly_as_its_arrays(table):
    X, y = table
    arrays = NeuralClassifier(module=mlp, max_epochs=2, random_state=0).fit(X, y)
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    tensors = NeuralClassifier(module=mlp, max_epochs=2, random_state=0).fit(dataset)
    assert same(weights(arrays), weights(tensors))


def test_slicedataset_goes_through_model_selection(table):
    X, y = table
    ds = Noisy(X, y)
    est = NeuralClassifier(module=mlp, max_epochs=8, lr=1e-2, random_state=0)
    scores = cross_val_score(est, SliceDataset(ds), SliceDataset(ds, idx=1), cv=3)
    assert scores.mean() > 0.8
    search = GridSearchCV(est, {"dataloader__num_workers": [0, 1], "lr": [1e-2]}, cv=2)
    search.fit(SliceDataset(ds), SliceDataset(ds, idx=1))
    assert search.best_estimator_.get_params()["dataloader__num_workers"] in (0, 1)


def test_sample_weights_and_a_validation_dataset(table):
    X, y = table
    w = np.where(y == 1, 3.0, 1.0)
    clf = NeuralClassifier(module=mlp, max_epochs=2, random_state=0)
    clf.fit(Noisy(X[:200], y[:200]), sample_weight=w[:200], X_val=Noisy(X[200:], y[200:]))
    plain = NeuralClassifier(module=mlp, max_epochs=2, random_state=0)
    plain.fit(Noisy(X[:200], y[:200]), X_val=Noisy(X[200:], y[200:]))
    assert not same(weights(clf), weights(plain))
    assert np.isfinite(clf.history_[-1]["valid_loss"])


def test_a_regressor_reads_float_targets(table):
    X, _ = table
    reg = NeuralRegressor(module=lambda n_outputs: nn.Linear(6, n_outputs), max_epochs=2)
    reg.fit(Noisy(X, X[:, 0] * 2.0))
    assert reg.predict(X).shape == (300,)


class Stream(IterableDataset):
    def __iter__(self):
        yield from ()


class Triples(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return np.zeros(6, np.float32), 0, "extra"


class Empty(Dataset):
    def __len__(self):
        return 0

    def __getitem__(self, i):
        raise IndexError(i)


class Ragged(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return np.zeros(i + 1, np.float32), i % 2


@pytest.mark.parametrize(
    ("X", "params", "message"),
    [
        (Stream(), {}, "IterableDataset"),
        (Empty(), {}, "has no samples"),
        (Triples(), {}, "must be .x, y. pairs; one is a 3-tuple"),
        (Ragged(), {}, "pad_sequences"),
        (None, {"dataloader__num_workers": -1}, "dataloader__num_workers must be an int >= 0"),
        (None, {"dataloader__persistent_workers": True}, "needs worker processes"),
        (None, {"dataloader__shuffle": False}, "Unknown DataLoader option"),
        (None, {"dataloader__collate_fn": 3}, "must be a callable"),
        (None, {"dataloader__prefetch_factor": 0}, "prefetch_factor must be an int >= 1"),
        (None, {"dataloader__prefetch_factor": 4}, "needs worker processes"),
    ],
)
def test_bad_datasets_and_options_fail_before_training(table, X, params, message):
    X_table, y = table
    X = Noisy(X_table, y) if X is None else X
    started = []

    class Watch(Callback):
        def on_train_batch_begin(self, ctx):
            started.append(True)

    clf = NeuralClassifier(module=mlp, max_epochs=1, callbacks=[Watch()], **params)
    with pytest.raises(ValueError, match=message):
        clf.fit(X)
    assert not started and not hasattr(clf, "module_")


@pytest.mark.parametrize("other", ["array", "dataset"])
def test_a_validation_set_the_module_cannot_take_fails_before_training(table, other):
    # Items have no recorded shape: the validation set is tried as the items are.
    X, y = table
    X_val = X[:20, :4] if other == "array" else Noisy(X[:20, :4], y[:20])
    started = []

    class Watch(Callback):
        def on_train_batch_begin(self, ctx):
            started.append(True)

    clf = NeuralClassifier(module=mlp, max_epochs=1, callbacks=[Watch()])
    y_val = y[:20] if other == "array" else None
    failed = r"module Sequential failed on a batch of shape \(\d+, 4\)"
    with pytest.raises(ValueError, match=failed):
        clf.fit(Noisy(X, y), X_val=X_val, y_val=y_val)
    assert not started and not hasattr(clf, "module_")


def test_a_prediction_the_module_cannot_take_fails_in_our_words(table):
    X, y = table
    clf = NeuralClassifier(module=mlp, max_epochs=1).fit(Noisy(X, y))
    for X_bad in (Noisy(X[:, :4], y), X[:, :4]):
        with pytest.raises(ValueError, match=r"module Sequential failed on a batch of shape"):
            clf.predict(X_bad)


class OneOddItem(Dataset):
    """Items of shape (6,), but the last one (4,)."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return (self.X[i, :4] if i == len(self.X) - 1 else self.X[i]), self.y[i]


def test_an_odd_item_after_the_first_batch_fails_in_our_words(table):
    X, y = table
    clf = NeuralClassifier(module=mlp, max_epochs=1, batch_size=1, validation_fraction=None)
    with pytest.raises(ValueError, match="module Sequential failed"):
        clf.fit(OneOddItem(X[:30], y[:30]))


def test_an_odd_item_after_the_first_batch_leaves_the_estimator_as_it_was(table):
    X, y = table
    clf = NeuralClassifier(module=mlp, max_epochs=1, batch_size=1, random_state=0)
    clf.fit(Noisy(X[:30], y[:30]))
    before = weights(clf), clf.n_steps_, len(clf.history_)
    with pytest.raises(ValueError, match="failed on a batch"):
        clf.fit(OneOddItem(X[:30], y[:30]))
    assert same(before[0], weights(clf)) and before[1:] == (clf.n_steps_, len(clf.history_))


class Draws(Dataset):
    """Item i: (i, then 5 values of noise from NumPy's global generator)."""

    def __len__(self):
        return 40

    def __getitem__(self, i):
        return np.concatenate([[i], np.random.normal(size=5)]).astype(np.float32), i % 2


def test_each_epoch_draws_other_augmentations():
    epochs = []

    class Record(Callback):
        def on_epoch_begin(self, ctx):
            epochs.append({})

        def on_train_batch_begin(self, ctx):
            for row in ctx.X_batch:
                epochs[-1][int(row[0])] = row[1:].clone()

    NeuralClassifier(
        module=mlp, max_epochs=2, batch_size=8, validation_fraction=None, callbacks=[Record()]
    ).fit(Draws())
    first, second = epochs
    assert sorted(first) == sorted(second) == list(range(40))
    # Not one draw repeats (an epoch's batches seeded as the last one's would
    # draw the same noise, given to other items).
    assert not any(torch.equal(a, b) for a in first.values() for b in second.values())


def test_an_item_that_fails_to_load_stops_the_fit_at_its_batch(table):
    # Fast items are fetched a few batches ahead: the batches before the
    # failing one still train, and the failure is said in our words.
    X, y = table
    X = np.column_stack([np.arange(len(X)), X[:, 1:]]).astype(np.float32)
    trained: list[list[int]] = []

    class Missing(Noisy):
        broken = False

        def __getitem__(self, i):
            if i == 123 and self.broken:
                raise KeyError("item 123's file is missing")
            return super().__getitem__(i)

    class Record(Callback):
        def __init__(self, break_item=False):
            self.break_item = break_item

        def on_train_begin(self, ctx):  # after the targets were read
            Missing.broken = self.break_item

        def on_train_batch_begin(self, ctx):
            trained.append(ctx.X_batch[:, 0].round().int().tolist())

    params = {"max_epochs": 1, "batch_size": 10, "validation_fraction": None, "random_state": 0}
    NeuralClassifier(module=mlp, callbacks=[Record()], **params).fit(Missing(X, y))
    reference, trained[:] = list(trained), []
    failing = next(n for n, rows in enumerate(reference) if 123 in rows)
    with pytest.raises(ValueError, match="Loading the Dataset's items failed: KeyError"):
        NeuralClassifier(module=mlp, callbacks=[Record(True)], **params).fit(Missing(X, y))
    assert failing >= 2 and trained == reference[:failing]


def test_each_item_keeps_its_own_sample_weight(table):
    # Item i carries i in its first value and weighs i + 1 (normalised to a
    # mean of 1 over the training rows): a held-out share must not shift them.
    X, y = table
    X = np.column_stack([np.arange(len(X)), X[:, 1:]]).astype(np.float32)
    seen = {}

    class Record(Callback):
        def on_train_batch_begin(self, ctx):
            for row, w in zip(ctx.X_batch, ctx.sample_weight_batch, strict=True):
                seen[round(float(row[0]))] = float(w)

    clf = NeuralClassifier(module=mlp, max_epochs=1, validation_fraction=0.3, callbacks=[Record()])
    clf.fit(Noisy(X, y), sample_weight=np.arange(len(X)) + 1.0)
    rows = np.array(sorted(seen))
    assert len(rows) == 210
    ratio = np.array([seen[i] for i in rows]) / (rows + 1.0)
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-5)


def test_a_dataset_with_separate_targets_is_refused(table):
    X, y = table
    with pytest.raises(ValueError, match="pass y=None"):
        NeuralClassifier(module=mlp).fit(Noisy(X, y), y)


class GRUClassifier(nn.Module):
    def __init__(self, n_outputs):
        super().__init__()
        self.gru = nn.GRU(2, 16, batch_first=True)
        self.head = nn.Linear(16, n_outputs)

    def forward(self, padded, lengths):
        packed = nn.utils.rnn.pack_padded_sequence(
            padded, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        return self.head(self.gru(packed)[1][-1])


def test_variable_length_sequences_train_a_packed_gru():
    rng = np.random.RandomState(0)
    sequences = [rng.normal(size=(rng.randint(2, 12), 2)).astype(np.float32) for _ in range(240)]
    y = np.array([int(s[:, 0].mean() > 0) for s in sequences])
    clf = NeuralClassifier(
        module=GRUClassifier,
        max_epochs=25,
        lr=1e-2,
        random_state=0,
        dataloader__collate_fn=pad_sequences,
    ).fit(sequences, y)
    assert clf.score(sequences, y) > 0.85
    with pytest.raises(ValueError, match="y must be given"):
        clf.set_params(warm_start=False).fit(sequences)


def _own_padding(items):  # a user's collate function: loaded item by item
    return pad_sequences(items, padding_value=-1.0)


class PaddedSum(nn.Module):
    """Reads every padded value and the lengths (a packed GRU ignores the
    padding)."""

    def __init__(self, n_outputs):
        super().__init__()
        self.head = nn.Linear(3, n_outputs)

    def forward(self, padded, lengths):
        return self.head(torch.cat([padded.sum(1), lengths[:, None].to(padded.dtype)], 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_list_padded_by_pad_sequences_trains_as_item_by_item_loading(dtype):
    # pad_sequences' batches are padded from samples converted once; the
    # same items loaded one by one through a user's collate give every
    # batch, hence the model and its predictions, bit for bit.
    rng = np.random.RandomState(1)
    sequences = [rng.normal(size=(rng.randint(1, 9), 2)).astype(dtype) for _ in range(70)]
    y = np.arange(70) % 2
    fits = [
        NeuralClassifier(
            module=PaddedSum,
            max_epochs=2,
            batch_size=16,
            random_state=0,
            dataloader__collate_fn=collate,
        ).fit(sequences, y)
        for collate in (functools.partial(pad_sequences, padding_value=-1.0), _own_padding)
    ]
    assert same(weights(fits[0]), weights(fits[1]))
    probabilities = [fit.predict_proba(sequences) for fit in fits]
    np.testing.assert_array_equal(*probabilities)


def test_ragged_lists_without_a_collate_function_are_told_of_one():
    with pytest.raises(ValueError, match=r"collate_fn=skcallback\.pad_sequences"):
        NeuralRegressor(module=nn.Linear(3, 1)).fit([np.ones(3), np.ones(2)], [1.0, 2.0])


def test_pad_sequences_pads_and_counts():
    (padded, lengths), y = pad_sequences([(np.ones((3, 2)), 1), (np.ones((1, 2)), 0)], -1.0)
    assert padded.shape == (2, 3, 2) and lengths.tolist() == [3, 1] and y.tolist() == [1, 0]
    assert padded[1, 1:].eq(-1).all()


def test_a_dataset_fit_pickles_and_saves(table, tmp_path):
    X, y = table
    clf = NeuralClassifier(module=mlp, max_epochs=2, random_state=0).fit(Noisy(X, y))
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_proba(X), clf.predict_proba(X))
    skcallback.save(clf, tmp_path / "m.skc")
    loaded = skcallback.load(tmp_path / "m.skc", trusted=[f"{__name__}.mlp"])
    np.testing.assert_array_equal(loaded.predict_proba(Noisy(X, y)), clf.predict_proba(Noisy(X, y)))


CRASH_AT = [None]


class Crash(Callback):
    def on_after_step(self, ctx):
        if ctx.step == CRASH_AT[0]:
            raise RuntimeError("simulated crash")


def test_a_crashed_file_dataset_fit_with_workers_resumes_bit_for_bit(tmp_path):
    write_items(tmp_path / "items", n=96)
    items = FileItems(tmp_path / "items")
    reference = make(tmp_path / "reference", cb__crash=None).set_params(
        callbacks=[*make(tmp_path / "reference").callbacks, Crash()]
    )
    reference.fit(items)
    CRASH_AT[0] = 13  # mid-epoch: 6 steps an epoch
    run = make(tmp_path / "run").set_params(callbacks=[*make(tmp_path / "run").callbacks, Crash()])
    try:
        with pytest.raises(RuntimeError, match="simulated crash"):
            run.fit(items)
    finally:
        CRASH_AT[0] = None
    resumed = make(tmp_path / "run").set_params(
        callbacks=[*make(tmp_path / "run").callbacks, Crash()]
    )
    resumed.fit(items)
    assert resumed.callbacks_.checkpoint.resumed_from_ is not None
    assert same(weights(resumed), weights(reference))
    assert resumed.history_.get("train_loss") == reference.history_.get("train_loss")


CHILD = Path(__file__).with_name("dataset_child.py")


def _child(folder, out):
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(folder), str(out)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def _kill_and_resume(tmp_path, kill_after):
    write_items(tmp_path / "items")
    ref = _child(tmp_path / "reference", tmp_path / "reference.pt")
    assert ref.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    ref.communicate(timeout=120)
    seconds = time.perf_counter() - started
    killed = []
    for i, share in enumerate(kill_after):
        folder, out = tmp_path / f"run{i}", tmp_path / f"run{i}.pt"
        process = _child(folder, out)
        assert process.stdout.readline().strip() == "ready"
        time.sleep(share * seconds)
        killed.append(process.poll() is None)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=120)
        again = _child(folder, out)
        again.communicate(timeout=120)
        assert again.returncode == 0
        result = torch.load(out, weights_only=True)
        expected = torch.load(tmp_path / "reference.pt", weights_only=True)
        assert all(
            torch.equal(a, b)
            for a, b in zip(result["weights"].values(), expected["weights"].values())
        ), i
        assert result["n_steps"] == expected["n_steps"]
    return killed


def test_a_killed_dataset_fit_with_workers_resumes_bit_for_bit(tmp_path):
    assert _kill_and_resume(tmp_path, [0.5]) == [True]


@pytest.mark.slow
@pytest.mark.timeout(900)  # four fits and three resumes: 5 minutes on 2 busy cores
def test_kills_at_many_moments_of_a_dataset_fit_all_resume(tmp_path):
    assert any(_kill_and_resume(tmp_path, [0.15, 0.55, 0.9]))


def test_a_factory_naming_input_shape_gets_the_items_shape(table):
    X, y = table
    seen = []

    def factory(input_shape, n_outputs):
        seen.append(input_shape)
        return nn.Linear(6, n_outputs)

    NeuralClassifier(module=factory, max_epochs=1).fit(Noisy(X, y))
    assert seen == [(6,)]


class Inputs(Dataset):
    """Items without targets, as a test set often comes."""

    def __init__(self, X):
        self.X = X

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i]


def test_a_dataset_of_inputs_alone_predicts(table):
    X, y = table
    clf = NeuralClassifier(module=mlp, max_epochs=1, random_state=0).fit(Noisy(X, y))
    np.testing.assert_array_equal(clf.predict(Inputs(X)), clf.predict(X))


def test_persistent_workers_end_with_the_fit_even_a_failed_one(table):
    import psutil

    X, y = table

    class Fail(Callback):
        def on_epoch_end(self, ctx):
            raise RuntimeError("late failure")

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    params = {"dataloader__num_workers": 2, "dataloader__persistent_workers": True}
    clf = NeuralClassifier(module=mlp, max_epochs=2, callbacks=[Fail()], **params)
    with pytest.raises(RuntimeError, match="late failure") as info:
        clf.fit(Noisy(X, y))
    # the traceback (kept by ``info``) still references the fit's frames
    started = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    _, alive = psutil.wait_procs(started, timeout=30)
    assert not alive and info.value is not None


def test_a_model_with_pad_sequences_saves_and_loads_without_trusting_it(tmp_path):
    rng = np.random.RandomState(0)
    sequences = [rng.normal(size=(rng.randint(2, 6), 2)).astype(np.float32) for _ in range(40)]
    y = np.arange(40) % 2
    clf = NeuralClassifier(
        module=GRUClassifier, max_epochs=1, dataloader__collate_fn=pad_sequences
    ).fit(sequences, y)
    skcallback.save(clf, tmp_path / "gru.skc")
    loaded = skcallback.load(tmp_path / "gru.skc", trusted=[f"{__name__}.GRUClassifier"])
    assert loaded.get_params()["dataloader__collate_fn"] is pad_sequences
    np.testing.assert_array_equal(loaded.predict_proba(sequences), clf.predict_proba(sequences))
