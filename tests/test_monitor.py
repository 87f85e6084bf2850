"""One rule for "best so far": Monitor, and every callback that shows a best
epoch (EarlyStopping, Checkpoint's best-only files, PrintLog's marker,
History.plot's dot) agrees with it on ties, NaN, infinities and min_delta."""

import itertools
import math
import re

import matplotlib
import numpy as np
import pytest

from skcallback import NeuralRegressor
from skcallback.callbacks import Checkpoint, EarlyStopping, LRScheduler, Monitor, PrintLog

matplotlib.use("Agg")

NAN, INF = float("nan"), float("inf")

#: (values per epoch, lower is better, the best epoch (1-based) or None)
CASES = [
    pytest.param([3.0, 1.0, 1.0, 2.0], True, 2, id="a tie keeps the first epoch"),
    pytest.param([1.0, 3.0, 3.0], False, 2, id="a tie keeps the first epoch (max)"),
    pytest.param([NAN, 2.0, NAN, 1.0], True, 4, id="NaN is never best"),
    pytest.param([2.0, NAN, NAN], True, 1, id="NaN does not beat a number"),
    pytest.param([INF, 5.0, 6.0], True, 2, id="an infinity is never best"),
    pytest.param([-INF, 5.0, 4.0], True, 3, id="nor minus infinity"),
    pytest.param([NAN, INF], True, None, id="no finite value, no best"),
]


def _fit(scripted, values, lower, *callbacks, **params):
    return NeuralRegressor(
        callbacks=[scripted(values, key="valid_score", lower_is_better=lower), *callbacks],
        max_epochs=len(values),
        **params,
    ).fit(*_data())


def _data():
    X = np.random.RandomState(0).normal(size=(40, 3)).astype(np.float32)
    return X, X.sum(axis=1)


@pytest.mark.parametrize(("values", "lower", "best"), CASES)
def test_monitor_best_index_follows_the_rule(values, lower, best):
    monitor = Monitor("valid_score", "min" if lower else "max")
    assert monitor.best_index(values) == (None if best is None else best - 1)


def test_monitor_best_index_skips_what_is_not_a_number():
    assert Monitor("x", "min").best_index([None, "n/a", 2.0, True, 1.5]) == 4


@pytest.mark.parametrize(
    ("values", "min_delta", "best"),
    [
        # 0.5 is exactly best - min_delta: equality is no improvement.
        pytest.param([1.0, 0.75, 0.5], 0.5, 1, id="equal to best - min_delta"),
        pytest.param([1.0, 0.25], 0.5, 2, id="beyond min_delta"),
        # Small steps never add up: each is compared with the first best.
        pytest.param([1.0, 0.8, 0.6, 0.55], 0.5, 1, id="small steps"),
    ],
)
def test_min_delta_is_strict_for_monitor_and_early_stopping(scripted, values, min_delta, best):
    assert Monitor("x", "min", min_delta=min_delta).best_index(values) == best - 1
    stopper = EarlyStopping(
        monitor="valid_score", min_delta=min_delta, patience=10, restore_best=False
    )
    es = _fit(scripted, values, True, stopper).callbacks_.early_stopping
    assert es.best_epoch_ == best and es.best_score_ == values[best - 1]


@pytest.mark.parametrize(("values", "lower", "best"), CASES)
def test_early_stopping_best_epoch(scripted, values, lower, best):
    stopper = EarlyStopping(monitor="valid_score", patience=10, restore_best=False)
    es = _fit(scripted, values, lower, stopper).callbacks_.early_stopping
    if best is None:
        assert es.best_score_ is None
    else:
        assert (es.best_epoch_, es.best_score_) == (best, values[best - 1])


@pytest.mark.parametrize(("values", "lower", "best"), CASES)
def test_checkpoint_best_path(scripted, values, lower, best, tmp_path):
    checkpoint = Checkpoint(dirname=tmp_path, monitor="valid_score", save_best_only=True)
    cp = _fit(scripted, values, lower, checkpoint).callbacks_.checkpoint
    if best is None:
        assert cp.best_path_ is None
    else:
        assert cp.best_path_.endswith(f"model-{best:04d}.pt")


@pytest.mark.parametrize(("values", "lower", "best"), CASES)
def test_print_log_marks_each_new_best(scripted, values, lower, best):
    lines = []
    _fit(scripted, values, lower, PrintLog(keys=["epoch", "valid_score"], sink=lines.append))
    marked = [int(line.split()[0]) for line in lines[2:] if line.endswith("*")]
    monitor = Monitor("valid_score", "min" if lower else "max")
    # Every marked epoch is a new best, and the last marked one is the best.
    expected = [
        epoch
        for epoch in range(1, len(values) + 1)
        if monitor.best_index(values[:epoch]) == epoch - 1
    ]
    assert marked == expected
    assert (marked[-1] if marked else None) == best


@pytest.mark.parametrize(("values", "lower", "best"), CASES)
def test_history_plot_marks_the_best_epoch(scripted, values, lower, best):
    est = _fit(scripted, values, lower)
    labels = [line.get_label() for line in est.history_.plot(keys=["valid_score"]).get_lines()]
    marks = [label for label in labels if label.startswith("best")]
    assert marks == ([] if best is None else [f"best valid_score (epoch {best})"])


def test_every_consumer_agrees_on_one_fit(scripted, tmp_path):
    values = [2.0, NAN, 1.0, 1.0, INF, 1.0]
    lines = []
    est = _fit(
        scripted,
        values,
        True,
        EarlyStopping(monitor="valid_score", patience=10, restore_best=False),
        Checkpoint(dirname=tmp_path, monitor="valid_score", save_best_only=True),
        PrintLog(keys=["epoch", "valid_score"], sink=lines.append),
    )
    best = est.callbacks_.early_stopping.best_epoch_
    assert best == 3
    assert est.callbacks_.checkpoint.best_path_.endswith(f"model-{best:04d}.pt")
    assert [int(line.split()[0]) for line in lines[2:] if line.endswith("*")][-1] == best
    labels = [line.get_label() for line in est.history_.plot(keys=["valid_score"]).get_lines()]
    assert f"best valid_score (epoch {best})" in labels
    assert math.isnan(est.history_[1]["valid_score"])
    assert re.search(r"\bnan\b", lines[3])


def test_reduce_lr_on_plateau_with_an_absolute_threshold_follows_the_rule(scripted):
    """LRScheduler documents torch's rule: threshold_mode="abs" with
    threshold=d decides as Monitor with min_delta=d (ties, NaN, equality)."""
    values = [1.0, NAN, 0.5, 0.5, 0.25, 0.1]
    scheduler = LRScheduler(
        "ReduceLROnPlateau",
        monitor="valid_score",
        patience=0,
        factor=0.5,
        threshold_mode="abs",
        threshold=0.25,
    )
    lrs = _fit(scripted, values, True, scheduler, lr=0.1).history_.get("lr")
    reduced = [later < earlier for earlier, later in itertools.pairwise(lrs)]
    monitor = Monitor("valid_score", "min", min_delta=0.25)
    not_improved = []
    best = None
    for value in values[:-1]:
        improved = monitor.is_improvement(value, best)
        best = value if improved else best
        not_improved.append(not improved)
    assert reduced == not_improved == [False, True, False, True, True]


def test_a_nan_best_is_beaten_by_any_finite_value():
    for mode in ("min", "max"):
        monitor = Monitor("m", mode, min_delta=0.5)
        assert monitor.is_improvement(3.0, best=float("nan"))
        assert not monitor.is_improvement(float("nan"), best=float("nan"))
