"""Every configuration error surfaces before the first batch, in the
estimator's words: the parameter, the value, what is allowed."""

import os
import stat
import sys
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from skcallback import Callback, NeuralClassifier, NeuralRegressor
from skcallback.callbacks import (
    Checkpoint,
    CSVLogger,
    EarlyStopping,
    EpochScoring,
    GradientClipping,
    LambdaCallback,
    LRScheduler,
    MetricLogger,
    PrintLog,
)


class Wide(nn.Module):
    """Always three outputs, whatever the targets."""

    def __init__(self, n_features_in):
        super().__init__()
        self.linear = nn.Linear(n_features_in, 3)

    def forward(self, X):
        return self.linear(X)


class Flat(nn.Module):
    """Returns (n,) instead of (n, 1): MSELoss would broadcast silently."""

    def __init__(self, n_features_in):
        super().__init__()
        self.linear = nn.Linear(n_features_in, 1)

    def forward(self, X):
        return self.linear(X).ravel()


class WrongInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(7, 1)

    def forward(self, X):
        return self.linear(X)


class PerSample(nn.Module):
    """A loss without a reduction attribute that returns per-sample values."""

    def forward(self, y_pred, y):
        return (y_pred - y) ** 2


class TwoArguments(Callback):
    def on_epoch_end(self, ctx, extra):
        pass


class NoParameters(nn.Module):
    def forward(self, X):
        return X[:, :1] * 2


REGRESSION_ERRORS = [
    ({"module__hidden": 10}, r"module__ parameters \['hidden'\].*built-in MLP.*hidden_layer_sizes"),
    ({"optimizer__lr": 0.5}, r"optimizer__lr=0.5 conflicts with lr=0.001"),
    ({"optimizer": torch.optim.LBFGS}, r"LBFGS needs a closure"),
    ({"optimizer": torch.optim.SparseAdam}, r"SparseAdam needs sparse gradients"),
    ({"optimizer__betas": (2.0, 0.5)}, r"Could not build the optimizer Adam.*betas"),
    ({"criterion": nn.NLLLoss}, r"criterion NLLLoss could not compute.*\(8, 1\).*0D or 1D"),
    (
        {"criterion__reduction": "none"},
        r"reduction must be 'mean'.*got criterion__reduction='none'",
    ),
    ({"criterion__beta": 2}, r"Could not build the criterion MSELoss.*beta"),
    ({"module": Wide}, r"must return a tensor of shape \(n_samples, 1\).*returned \(8, 3\)"),
    ({"module": Flat}, r"must return a tensor of shape \(n_samples, 1\).*returned \(8,\)"),
    ({"module": WrongInput}, r"module WrongInput failed on a batch of shape \(8, 4\)"),
    ({"module": NoParameters}, r"has no parameters to train"),
    ({"criterion": PerSample}, r"must return a scalar loss tensor; it returned \(8, 1\)"),
    ({"callbacks": [EarlyStopping(monitor="valid_acc")]}, r"monitors 'valid_acc'.*does not rec"),
    ({"callbacks": [EarlyStopping(patience=-1)]}, r"'patience' parameter.*>= 0; got -1"),
    ({"callbacks": [EpochScoring("neg_log_loss")]}, r"needs predicted probabilities"),
    ({"callbacks": [EpochScoring("acuracy")]}, r"'scoring' parameter.*got 'acuracy'"),
    ({"callbacks": [LRScheduler("StepLR", gama=0.5)]}, r"\['gama'\] are not arguments of StepLR"),
    ({"callbacks": [LRScheduler("StepLR")]}, r"Could not build StepLR.*step_size"),
    ({"callbacks": [LRScheduler("Nope")]}, r"'policy' parameter of LRScheduler"),
    ({"hidden_layer_sizes": (0,)}, r"'hidden_layer_sizes' parameter.*positive"),
    ({"lr": float("inf")}, r"'lr' parameter.*> 0"),
]


def fit_recording_batches(est, X, y, **kwargs):
    """Fit, recording whether any training batch started."""
    batches = []
    recorder = ("batch_recorder", LambdaCallback(on_train_batch_begin=batches.append))
    est.set_params(callbacks=[*(est.callbacks or []), recorder])
    try:
        est.fit(X, y, **kwargs)
    finally:
        assert batches == [], "the error came after training started"


@pytest.mark.parametrize(("params", "message"), REGRESSION_ERRORS)
def test_regressor_configuration_errors_before_the_first_batch(regression_data, params, message):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=2, random_state=0, **params)
    with pytest.raises((ValueError, TypeError), match=message):
        fit_recording_batches(est, X, y)


CLASSIFIER_ERRORS = [
    ({"criterion": nn.L1Loss}, r"L1Loss compares output and targets element.*class indices"),
    ({"criterion": nn.MSELoss}, r"MSELoss compares output and targets element by element"),
    ({"module": Flat}, r"must return a tensor of shape \(n_samples, 3\)"),
]


@pytest.mark.parametrize(("params", "message"), CLASSIFIER_ERRORS)
def test_classifier_configuration_errors_before_the_first_batch(
    classification_data, params, message
):
    X, y = classification_data
    est = NeuralClassifier(max_epochs=2, random_state=0, **params)
    with pytest.raises(ValueError, match=message):
        fit_recording_batches(est, X, y)


def test_nll_loss_on_a_2d_target_is_explained(regression_data):
    X, y = regression_data
    est = NeuralRegressor(criterion=nn.NLLLoss, max_epochs=1)
    with pytest.raises(ValueError, match=r"NLLLoss.*targets y of shape \(8, 2\)"):
        fit_recording_batches(est, X, np.c_[y, y])


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root can write anywhere")
def test_a_read_only_checkpoint_folder_fails_before_training(regression_data, tmp_path):
    X, y = regression_data
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    est = NeuralRegressor(callbacks=[Checkpoint(dirname=folder)], max_epochs=2)
    with pytest.raises(OSError, match=r"Checkpoint cannot write.*choose a writable dirname"):
        fit_recording_batches(est, X, y)


def test_an_unwritable_checkpoint_folder_fails_before_training(regression_data, tmp_path):
    X, y = regression_data
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    est = NeuralRegressor(callbacks=[Checkpoint(dirname=blocker / "sub")], max_epochs=2)
    with pytest.raises(OSError, match=r"Checkpoint cannot write to the folder"):
        fit_recording_batches(est, X, y)
    est = NeuralRegressor(callbacks=[CSVLogger(blocker / "log.csv")], max_epochs=2)
    with pytest.raises(OSError, match=r"CSVLogger cannot write to the folder"):
        fit_recording_batches(est, X, y)
    est = NeuralRegressor(callbacks=[CSVLogger(f"{blocker}/")], max_epochs=2)
    with pytest.raises(OSError, match=r"CSVLogger cannot write to the folder"):
        fit_recording_batches(est, X, y)


def test_scheduler_arguments_are_tunable_without_being_passed_first(regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[LRScheduler("StepLR", step_size=1)], lr=0.1, max_epochs=3, random_state=0
    )
    est.set_params(cb__lr_scheduler__gamma=0.5)  # gamma was never passed
    est.fit(X, y)
    assert est.history_.get("lr") == pytest.approx([0.1, 0.05, 0.025])
    with pytest.raises(ValueError, match=r"Invalid parameter.*'gama'.*StepLR"):
        est.set_params(cb__lr_scheduler__gama=0.5)


def test_the_plan_is_what_callbacks_see(regression_data):
    X, y = regression_data
    seen = {}

    def setup(plan):
        seen.update(
            n_batches=plan.n_batches,
            has_validation=plan.has_validation,
            n_valid=plan.n_valid,
            metrics=dict(plan.metrics),
        )
        plan.declare_metric("valid_custom", lower_is_better=False)

    est = NeuralRegressor(
        batch_size=50,
        max_epochs=1,
        callbacks=[
            LambdaCallback(
                setup=setup, on_valid_end=lambda ctx: ctx.metrics.update(valid_custom=1)
            ),
            EarlyStopping(monitor="valid_custom"),
        ],
    ).fit(X, y)
    assert seen == {
        "n_batches": 3,
        "has_validation": True,
        "n_valid": 12,
        "metrics": {
            "epoch": None,
            "train_loss": True,
            "lr": None,
            "dur": None,
            "valid_loss": True,
        },
    }
    assert est.callbacks_["early_stopping"].best_score_ == 1


def test_a_metric_without_a_direction_needs_a_mode(regression_data, scripted):
    X, y = regression_data
    est = NeuralRegressor(
        max_epochs=1, callbacks=[scripted([1.0], key="valid_odd"), EarlyStopping("valid_odd")]
    )
    with pytest.raises(ValueError, match=r"cannot tell whether 'valid_odd'.*mode='min'"):
        fit_recording_batches(est, X, y)
    est.set_params(cb__early_stopping__mode="min", callbacks=est.callbacks[:2]).fit(X, y)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"random_state": -1}, r"'random_state' parameter.*\[0, 2\*\*32 - 1\]"),
        ({"callbacks": [GradientClipping(1.0, norm_type="l2")]}, r"'norm_type' parameter"),
        ({"callbacks": [EarlyStopping(threshold="0.5")]}, r"'threshold' parameter"),
        ({"callbacks": [PrintLog(keys="train_loss")]}, r"'keys' parameter.*list of metric"),
        ({"callbacks": [PrintLog(sink=None)]}, r"'sink' parameter.*callable"),
        ({"callbacks": [MetricLogger(train="nope")]}, r"'train' parameter.*metric of the fit"),
        ({"callbacks": [TwoArguments()]}, r"on_epoch_end must take one argument, the context"),
    ],
)
def test_callback_parameters_are_checked_before_training(regression_data, params, message):
    X, y = regression_data
    with pytest.raises((ValueError, TypeError), match=message):
        fit_recording_batches(NeuralRegressor(max_epochs=1, **params), X, y)


def test_numpy_numbers_are_valid_callback_parameters(regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        max_epochs=2,
        callbacks=[EarlyStopping(patience=np.int64(3)), GradientClipping(np.float32(1.0))],
    )
    est.fit(X, y)
    assert est.n_iter_ == 2


def test_a_scheduler_policy_and_its_arguments_are_set_together(regression_data):
    X, y = regression_data
    est = NeuralRegressor(callbacks=[LRScheduler()], lr=0.1, max_epochs=2)
    est.set_params(cb__lr_scheduler__policy="CosineAnnealingLR", cb__lr_scheduler__T_max=2)
    assert est.fit(X, y).history_.get("lr") == pytest.approx([0.1, 0.05])


def test_no_warning_filter_leaks_out_of_fits_in_threads(regression_data):
    from concurrent.futures import ThreadPoolExecutor

    X, y = regression_data
    before = list(warnings.filters)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda s: NeuralRegressor(max_epochs=1, random_state=s).fit(X, y), range(8)))
    assert warnings.filters == before


@pytest.mark.parametrize(
    ("task", "scoring", "message"),
    [
        ("binary strings", "f1", r"pos_label=1 is not a valid label"),
        ("three classes", "roc_auc", r"multi_class"),
        ("regression", "accuracy", r"continuous is not supported"),
        ("binary strings", "r2", r"could not convert string to float"),
    ],
)
def test_a_scorer_that_cannot_score_the_task_fails_before_training(task, scoring, message):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(90, 3))
    if task == "regression":
        est, y = NeuralRegressor(max_epochs=1), X.sum(axis=1)
    elif task == "three classes":
        est, y = NeuralClassifier(max_epochs=1), rng.randint(0, 3, 90)
    else:
        est, y = NeuralClassifier(max_epochs=1), np.where(X[:, 0] > 0, "yes", "no")
    est.set_params(callbacks=[EpochScoring(scoring)])
    with pytest.raises(ValueError, match=rf"EpochScoring\('{scoring}'\) cannot score.*{message}"):
        fit_recording_batches(est, X, y)


@pytest.mark.parametrize("scoring", ["roc_auc", "f1", "neg_log_loss", "balanced_accuracy"])
def test_scorers_that_suit_the_task_pass_the_check(scoring):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3))
    clf = NeuralClassifier(max_epochs=1, callbacks=[EpochScoring(scoring)])
    clf.fit(X, (X[:, 0] > 0).astype(int))
    assert f"valid_{scoring}" in clf.history_[-1]


def test_fit_names_work_for_a_random_state_over_any_generator(regression_data, tmp_path):
    X, y = regression_data

    def name(random_state):
        est = NeuralRegressor(max_epochs=1, random_state=random_state)
        est.set_params(callbacks=[CSVLogger(f"{tmp_path}/")]).fit(X, y)
        return est.callbacks_["csv_logger"].path_

    pcg = name(np.random.RandomState(np.random.PCG64(0)))
    assert pcg == name(np.random.RandomState(np.random.PCG64(0)))  # same state, same name
    assert pcg != name(np.random.RandomState(np.random.PCG64(1)))
    assert name(np.random.RandomState(0)) != name(np.random.RandomState(1))


@pytest.mark.parametrize(
    "watcher",
    [
        EarlyStopping(monitor="valid_accuracy"),
        MetricLogger(valid="valid_accuracy"),
        LRScheduler("ReduceLROnPlateau", monitor="valid_accuracy", mode="max"),
        Checkpoint(monitor="valid_accuracy", save_best_only=True),
    ],
    ids=lambda cb: type(cb).__name__,
)
def test_a_watcher_listed_before_the_callback_recording_its_metric(
    watcher, classification_data, tmp_path
):
    # Every callback declares what it records before any checks what it
    # watches: the order of the list decides nothing.
    X, y = classification_data
    if isinstance(watcher, Checkpoint):
        watcher.set_params(dirname=tmp_path)
    est = NeuralClassifier(
        max_epochs=2, callbacks=[watcher, EpochScoring("accuracy")], random_state=0
    ).fit(X, y)
    assert "valid_accuracy" in est.history_[-1]


def test_declarations_come_before_every_setup(regression_data):
    X, y = regression_data
    calls = []

    class Recorder(Callback):
        def __init__(self, key="a"):
            self.key = key

        def declare(self, plan):
            calls.append(("declare", self.key))
            plan.declare_metric(f"valid_{self.key}", lower_is_better=True)

        def setup(self, plan):
            calls.append(("setup", self.key))
            assert {"valid_a", "valid_b"} <= set(plan.metrics)

    callbacks = [("a", Recorder("a")), ("b", Recorder("b"))]
    NeuralRegressor(max_epochs=1, callbacks=callbacks).fit(X, y)
    assert calls == [("declare", "a"), ("declare", "b"), ("setup", "a"), ("setup", "b")]


def test_a_fit_failing_in_setup_creates_no_file_or_folder(tmp_path, regression_data):
    # setup only checks: folders are made, and crash leftovers removed, once
    # every check has passed (a later callback's setup fails here).
    X, y = regression_data
    orphan_folder = tmp_path / "checkpoints"
    callbacks = [
        Checkpoint(dirname=orphan_folder),
        CSVLogger(tmp_path / "logs" / "fit.csv"),
        EarlyStopping(monitor="valid_nothing"),
    ]
    with pytest.raises(ValueError, match="valid_nothing"):
        NeuralRegressor(max_epochs=1, callbacks=callbacks, random_state=0).fit(X, y)
    assert list(tmp_path.iterdir()) == []


def test_setup_refuses_a_file_where_a_folder_should_be(tmp_path, regression_data):
    X, y = regression_data
    (tmp_path / "taken").write_text("")
    est = NeuralRegressor(max_epochs=1, callbacks=[Checkpoint(dirname=tmp_path / "taken" / "x")])
    with pytest.raises(NotADirectoryError, match="is a file; choose another dirname"):
        est.fit(X, y)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


@pytest.mark.parametrize("scale", ["X", "y"])
def test_data_too_large_for_float32_is_refused_before_training(scale):
    # The built-in MLP and loss skip the dry run's shape checks, not this one.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(50, 3)).astype(np.float32)
    y = X.sum(axis=1)
    X, y = (X * 1e30, y) if scale == "X" else (X, y * 1e30)
    steps = []
    est = NeuralRegressor(max_epochs=1, callbacks=[LambdaCallback(on_after_step=steps.append)])
    with pytest.raises(ValueError, match="too large for float32 arithmetic"):
        est.fit(X, y)
    assert steps == [] and not hasattr(est, "module_")


def test_setup_refuses_a_folder_it_may_not_write_in(tmp_path, regression_data, monkeypatch):
    # As root every folder is writable: the permission the check reads is
    # taken away instead.
    X, y = regression_data
    monkeypatch.setattr(os, "access", lambda path, mode: str(path) != str(tmp_path))
    est = NeuralRegressor(max_epochs=1, callbacks=[CSVLogger(tmp_path / "logs" / "fit.csv")])
    with pytest.raises(PermissionError, match="is not writable\\); choose a writable path"):
        est.fit(X, y)
    assert list(tmp_path.iterdir()) == []


def test_a_fits_generator_is_the_one_its_random_state_gives():
    """A new fit's NumPy generator, built without drawing entropy, is
    ``check_random_state(random_state)``: the same stream for an int."""
    from sklearn.utils import check_random_state

    from skcallback._fitted_state import new_rng

    for seed in (0, 1, 12345, 2**32 - 1, np.int64(7), True):
        ours, theirs = new_rng(seed).get_state(), np.random.RandomState(seed).get_state()
        assert ours[0] == theirs[0] and np.array_equal(ours[1], theirs[1])
        assert ours[2:] == theirs[2:]
    given = np.random.RandomState(3)
    assert new_rng(given) is given and new_rng(None) is check_random_state(None)
    with pytest.raises(ValueError, match="Seed must be between 0 and 2\\*\\*32 - 1"):
        new_rng(2**32)
