"""Callbacks reporting to other tools (optional extras)."""

import sys

import numpy as np
import pytest

from skcallback import NeuralRegressor
from skcallback.callbacks import OptunaPruning

optuna = pytest.importorskip("optuna")
optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = rng.randn(150, 4)
    return X, X @ rng.randn(4)


def _objective(data, max_epochs=6, raise_pruned=True):
    def objective(trial):
        est = NeuralRegressor(max_epochs=max_epochs, random_state=0)
        est.set_params(callbacks=[OptunaPruning(trial, raise_pruned=raise_pruned)])
        try:
            est.fit(*data)
        finally:
            trial.set_user_attr("fitted", hasattr(est, "module_"))
        trial.set_user_attr("n_iter", est.n_iter_)
        trial.set_user_attr("stop_reason", est.stop_reason_)
        if trial.should_prune():
            raise optuna.TrialPruned()
        return est.history_[-1]["valid_loss"]

    return objective


def test_a_pruned_trial_raises_trial_pruned_from_the_fit_and_is_marked_pruned(data):
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=1e-9))
    study.optimize(_objective(data), n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.user_attrs == {"fitted": False}  # the fit raised: no code after it ran
    assert list(trial.intermediate_values) == [1]


def test_a_fit_that_raises_trial_pruned_leaves_the_estimator_as_it_was(data):
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=1e-9))
    est = NeuralRegressor(max_epochs=2, warm_start=True, random_state=0).fit(*data)
    before = est.predict(data[0])
    est.set_params(callbacks=[OptunaPruning(study.ask())])
    with pytest.raises(optuna.TrialPruned, match="Optuna pruned trial 0 after epoch 3") as info:
        est.fit(*data)
    assert "raised by callback 'optuna_pruning' in on_epoch_end" in info.value.__notes__
    assert est.n_iter_ == 2 and "optuna_pruning" not in est.callbacks_
    np.testing.assert_array_equal(est.predict(data[0]), before)


def test_with_raise_pruned_false_a_pruned_fit_stops_cleanly(data):
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=1e-9))
    study.optimize(_objective(data, raise_pruned=False), n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.user_attrs["n_iter"] == 1
    assert "Optuna pruned trial 0 after epoch 1" in trial.user_attrs["stop_reason"]
    assert list(trial.intermediate_values) == [1]
    with pytest.raises(ValueError, match="'raise_pruned' parameter of OptunaPruning"):
        NeuralRegressor(callbacks=[OptunaPruning(study.ask(), raise_pruned="yes")]).fit(*data)


def test_the_trial_is_shared_with_the_fit_not_copied(data):
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    study.optimize(_objective(data, max_epochs=4), n_trials=2)
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert sorted(trial.intermediate_values) == [1, 2, 3, 4]
        assert trial.intermediate_values[4] == pytest.approx(trial.value)


def test_configuration_errors_come_before_training(data):
    study = optuna.create_study()
    trial = study.ask()
    with pytest.raises(ValueError, match="'trial' parameter of OptunaPruning"):
        NeuralRegressor(max_epochs=1, callbacks=[OptunaPruning("trial")]).fit(*data)
    with pytest.raises(ValueError, match="valid_r2"):
        NeuralRegressor(max_epochs=1, callbacks=[OptunaPruning(trial, "valid_r2")]).fit(*data)
    assert trial.storage.get_trial(trial._trial_id).intermediate_values == {}


def test_mistaken_trials_and_directions_are_refused_before_training(data):
    study = optuna.create_study()
    done = study.ask()
    study.tell(done, 1.0)
    with pytest.raises(ValueError, match="trial 0, which has finished"):
        NeuralRegressor(max_epochs=1, callbacks=[OptunaPruning(done)]).fit(*data)
    maximizing = optuna.create_study(direction="maximize").ask()
    with pytest.raises(ValueError, match="to a study that maximizes"):
        NeuralRegressor(max_epochs=1, callbacks=[OptunaPruning(maximizing)]).fit(*data)
    two = optuna.create_study(directions=["minimize", "minimize"]).ask()
    with pytest.raises(ValueError, match="single-objective"):
        NeuralRegressor(max_epochs=1, callbacks=[OptunaPruning(two)]).fit(*data)
    for trial in (done, maximizing, two):
        assert trial.storage.get_trial(trial._trial_id).intermediate_values == {}


def test_a_warm_started_fit_of_a_pruned_trial_can_be_pruned_again(data):
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=1e-9))
    trial = study.ask()
    est = NeuralRegressor(
        max_epochs=3, warm_start=True, callbacks=[OptunaPruning(trial, raise_pruned=False)]
    )
    est.fit(*data)
    assert est.n_iter_ == 1 and est.callbacks_["optuna_pruning"].pruned_epoch_ == 1
    est.fit(*data)
    assert est.n_iter_ == 2 and est.callbacks_["optuna_pruning"].pruned_epoch_ == 2


def test_without_optuna_the_error_names_the_extra(data, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ImportError, match=r"needs optuna, .*'optuna>=.*'\.\[optuna\]'"):
        NeuralRegressor(max_epochs=1, callbacks=[OptunaPruning(object())]).fit(*data)


def _scalars(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {
        tag: [(s.step, s.value) for s in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def test_tensorboard_writes_each_epochs_metrics_in_a_run_folder_per_fit(data, tmp_path):
    pytest.importorskip("tensorboard")
    from sklearn.model_selection import GridSearchCV

    from skcallback.callbacks import TensorBoardLogger

    est = NeuralRegressor(
        max_epochs=3, random_state=0, warm_start=True, callbacks=[TensorBoardLogger(tmp_path)]
    )
    est.fit(*data)
    run = est.callbacks_["tensor_board_logger"].run_dir_
    scalars = _scalars(run)
    assert {"train_loss", "valid_loss", "lr", "dur"} <= set(scalars)
    losses = [value for _, value in scalars["valid_loss"]]
    assert [step for step, _ in scalars["valid_loss"]] == [1, 2, 3]
    assert losses == pytest.approx(est.history_.get("valid_loss"))

    # a warm start on the same data continues the run
    est.fit(*data)
    assert est.callbacks_["tensor_board_logger"].run_dir_ == run
    assert [step for step, _ in _scalars(run)["valid_loss"]] == [1, 2, 3, 4, 5, 6]

    search = GridSearchCV(est, {"lr": [1e-2, 1e-1]}, cv=2)
    search.fit(*data)
    runs = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(runs) == 1 + 2 * 2 + 1  # the first fit, 4 fits of the search, the refit
    assert search.best_estimator_.callbacks_["tensor_board_logger"].run_dir_ != run


def test_tensorboard_logger_checks_its_folder_and_keys_before_training(data, tmp_path):
    pytest.importorskip("tensorboard")
    from skcallback.callbacks import TensorBoardLogger

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match="log_dir"):
        NeuralRegressor(max_epochs=1, callbacks=[TensorBoardLogger(blocker / "runs")]).fit(*data)
    with pytest.raises(ValueError, match="valid_r2"):
        NeuralRegressor(
            max_epochs=1, callbacks=[TensorBoardLogger(tmp_path, keys=["valid_r2"])]
        ).fit(*data)
    est = NeuralRegressor(
        max_epochs=2,
        validation_fraction=None,
        callbacks=[TensorBoardLogger(tmp_path, ["valid_loss"])],
    )
    with pytest.warns(UserWarning, match="monitors 'train_loss' instead"):
        est.fit(*data)
    assert list(_scalars(est.callbacks_["tensor_board_logger"].run_dir_)) == ["train_loss"]


def test_without_tensorboard_the_error_names_tensorboard_and_the_extra(data, monkeypatch, tmp_path):
    from skcallback.callbacks import TensorBoardLogger

    # torch is there, the tensorboard package is not: torch.utils.tensorboard
    # imports it first thing.
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.delitem(sys.modules, "torch.utils.tensorboard", raising=False)
    message = r"TensorBoardLogger needs tensorboard, .*'tensorboard>=.*'\.\[tensorboard\]'"
    with pytest.raises(ImportError, match=message):
        NeuralRegressor(max_epochs=1, callbacks=[TensorBoardLogger(tmp_path)]).fit(*data)
