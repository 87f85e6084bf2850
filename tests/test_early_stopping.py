"""EarlyStopping and the shared monitor helper."""

import numpy as np
import pytest
import torch

from skcallback import NeuralRegressor
from skcallback.callbacks import EarlyStopping, LambdaCallback, Monitor


@pytest.mark.parametrize("patience", [1, 3])
def test_stops_after_exactly_patience_epochs_without_improvement(
    regression_data, scripted, patience
):
    X, y = regression_data
    losses = [5.0, 4.0, 3.0] + [3.5] * 10
    est = NeuralRegressor(
        callbacks=[scripted(losses), EarlyStopping(patience=patience, restore_best=False)],
        max_epochs=13,
    ).fit(X, y)
    es = est.callbacks_.early_stopping
    assert est.n_iter_ == 3 + patience
    assert es.best_epoch_ == 3 and es.best_score_ == 3.0
    assert es.stopped_epoch_ == 3 + patience


def test_min_delta_and_max_mode(regression_data, scripted):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[
            scripted([0.5, 0.505, 0.509, 0.6, 0.6], key="valid_acc"),
            EarlyStopping(monitor="valid_acc", mode="max", patience=2, min_delta=0.01),
        ],
        max_epochs=5,
    ).fit(X, y)
    assert est.n_iter_ == 3  # 0.505 and 0.509 are not improvements by more than 0.01


def test_threshold_stops_once_passed_like_mxnet(regression_data, scripted):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[scripted([9.0, 5.0, 0.5, 0.4]), EarlyStopping(threshold=1.0)], max_epochs=4
    ).fit(X, y)
    assert est.n_iter_ == 3
    assert est.callbacks_.early_stopping.stopped_epoch_ == 3


def test_restore_best_puts_back_the_best_weights(regression_data, scripted):
    X, y = regression_data
    snapshots = {}

    def remember(ctx):
        snapshots[ctx.epoch] = {k: v.clone() for k, v in ctx.module.state_dict().items()}

    est = NeuralRegressor(
        callbacks=[
            scripted([3.0, 1.0, 2.0, 2.5]),
            LambdaCallback(name="spy", on_epoch_end=remember),
            EarlyStopping(patience=2),
        ],
        max_epochs=10,
        random_state=0,
    ).fit(X, y)
    assert est.n_iter_ == 4
    for key, value in est.module_.state_dict().items():
        assert torch.equal(value, snapshots[2][key])


def test_without_validation_falls_back_to_train_loss_with_a_warning(regression_data):
    X, y = regression_data
    with pytest.warns(UserWarning, match="monitors 'train_loss' instead"):
        est = NeuralRegressor(
            callbacks=[EarlyStopping(patience=1)], validation_fraction=None, max_epochs=3
        ).fit(X, y)
    assert est.callbacks_.early_stopping.best_score_ is not None


def test_an_unknown_metric_is_a_clear_error(regression_data):
    X, y = regression_data
    seen = []
    est = NeuralRegressor(
        callbacks=[
            EarlyStopping(monitor="valid_f1"),
            LambdaCallback(on_train_batch_begin=seen.append),
        ],
        max_epochs=2,
    )
    with pytest.raises(ValueError, match=r"monitors 'valid_f1'.*does not record.*EpochScoring"):
        est.fit(X, y)
    assert seen == []  # before the first batch


def test_state_survives_warm_start(regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[EarlyStopping(patience=100)], max_epochs=2, warm_start=True, random_state=0
    ).fit(X, y)
    first_best = est.callbacks_.early_stopping.best_score_
    est.fit(X, y)
    assert est.callbacks_.early_stopping.best_score_ <= first_best


def test_monitor_helper():
    lower = Monitor("valid_loss", "min", min_delta=0.1)
    assert lower.is_improvement(1.0, None)
    assert lower.is_improvement(0.8, 1.0) and not lower.is_improvement(0.95, 1.0)
    higher = Monitor("valid_accuracy", "max")
    assert higher.is_improvement(0.9, 0.8) and not higher.is_improvement(0.7, 0.8)
    assert not higher.is_improvement(float("nan"), 0.8)
    assert higher.passes(0.95, 0.9) and lower.passes(0.5, 0.6)
    with pytest.raises(ValueError, match="mode"):
        Monitor("x", mode="down")
    assert np.isfinite(lower.value({"valid_loss": np.float32(0.5)}))


def test_early_stopping_runs_after_ordinary_callbacks_and_before_checkpoint():
    from skcallback.callbacks import Checkpoint, History, PrintLog

    assert History.order < 0 < PrintLog.order < EarlyStopping.order < Checkpoint.order


def test_it_sees_metrics_written_by_later_listed_callbacks(regression_data, scripted):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[EarlyStopping(patience=1), scripted([3.0, 2.0, 2.5, 1.0])], max_epochs=4
    ).fit(X, y)
    assert est.n_iter_ == 3  # it read the scripted values although listed first


def test_partial_fit_counts_patience_across_calls_and_trains_on(regression_data, scripted):
    X, y = regression_data
    losses = [3.0, 1.0, 2.0, 2.5, 0.5, 0.6]
    est = NeuralRegressor(callbacks=[scripted(losses), EarlyStopping(patience=2)], random_state=0)
    stops, weights = [], []
    for _ in range(6):
        est.partial_fit(X, y, X_val=X[:20], y_val=y[:20])
        stops.append(est.stop_reason_ is not None)
        weights.append(est.predict(X[:5]))
    # Epochs 3 and 4 do not improve on epoch 2: the 4th call stops and
    # restores epoch 2's weights; later calls train on from them.
    assert stops == [False, False, False, True, False, False]
    np.testing.assert_array_equal(weights[3], weights[1])
    assert not np.array_equal(weights[4], weights[3])
    assert est.callbacks_["early_stopping"].best_epoch_ == 5


def test_warm_start_keeps_the_best_and_gives_patience_anew(regression_data, scripted):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[scripted([1.0, 2.0, 3.0, 4.0, 0.5, 5.0]), EarlyStopping(patience=2)],
        max_epochs=3,
        warm_start=True,
        random_state=0,
    ).fit(X, y)
    assert est.n_iter_ == 3 and est.stop_reason_.startswith("early_stopping")
    est.fit(X, y)  # epochs 4..6: a fresh patience, the old best kept
    stopping = est.callbacks_["early_stopping"]
    assert est.n_iter_ == 6 and (stopping.best_score_, stopping.best_epoch_) == (0.5, 5)


def test_defaults_watch_valid_loss_with_a_patience_of_5(regression_data, scripted):
    X, y = regression_data
    assert EarlyStopping().get_params() == {
        "monitor": "valid_loss",
        "mode": "auto",
        "patience": 5,
        "min_delta": 0.0,
        "threshold": None,
        "restore_best": True,
    }
    est = NeuralRegressor(
        callbacks=[scripted([2.0, 1.0] + [1.5] * 10), EarlyStopping()], max_epochs=12
    ).fit(X, y)
    stopping = est.callbacks_["early_stopping"]
    assert est.n_iter_ == 7 and stopping.stopped_epoch_ == 7
    assert (stopping.best_score_, stopping.best_epoch_) == (1.0, 2)
    assert est.stop_reason_.startswith("early_stopping")


def test_restore_best_false_keeps_the_last_weights(regression_data, scripted):
    X, y = regression_data
    snapshots = {}

    def remember(ctx):
        snapshots[ctx.epoch] = {k: v.clone() for k, v in ctx.module.state_dict().items()}

    est = NeuralRegressor(
        callbacks=[
            scripted([3.0, 1.0, 2.0, 2.5]),
            LambdaCallback(name="spy", on_epoch_end=remember),
            EarlyStopping(patience=2, restore_best=False),
        ],
        max_epochs=10,
        random_state=0,
    ).fit(X, y)
    assert est.n_iter_ == 4 and est.callbacks_["early_stopping"].best_epoch_ == 2
    state = est.module_.state_dict()
    assert all(torch.equal(value, snapshots[4][key]) for key, value in state.items())
    assert not all(torch.equal(value, snapshots[2][key]) for key, value in state.items())


def test_threshold_in_max_mode_and_min_delta_in_min_mode(regression_data, scripted):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[
            scripted([0.5, 0.8, 0.95, 0.99], key="valid_acc"),
            EarlyStopping(monitor="valid_acc", mode="max", threshold=0.9),
        ],
        max_epochs=4,
    ).fit(X, y)
    assert est.n_iter_ == 3 and est.callbacks_["early_stopping"].stopped_epoch_ == 3
    est = NeuralRegressor(
        callbacks=[scripted([1.0, 0.95, 0.92, 0.5]), EarlyStopping(patience=2, min_delta=0.1)],
        max_epochs=4,
    ).fit(X, y)
    assert est.n_iter_ == 3  # 0.95 and 0.92 improve on 1.0 by less than 0.1
    assert est.callbacks_["early_stopping"].best_score_ == 1.0


def test_patience_0_stops_at_the_first_epoch_without_improvement(regression_data, scripted):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[scripted([3.0, 2.0, 1.0, 1.5, 0.5]), EarlyStopping(patience=0)], max_epochs=5
    ).fit(X, y)
    assert est.n_iter_ == 4


def test_a_fit_then_partial_fit_without_validation_starts_a_new_best(regression_data):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=3, lr=0.01, callbacks=[EarlyStopping(patience=2)])
    est.fit(X, y)
    with pytest.warns(UserWarning, match="monitors 'train_loss' instead"):
        est.partial_fit(X, y)
    stopping = est.callbacks_.early_stopping
    assert stopping.best_key_ == "train_loss" and stopping.best_epoch_ == 4


def _best_of_four(restore_best, scripted, X, y):
    return NeuralRegressor(
        hidden_layer_sizes=(256,),
        callbacks=[scripted([3.0, 1.0, 2.0, 2.5]), EarlyStopping(restore_best=restore_best)],
        max_epochs=4,
        random_state=0,
    ).fit(X, y)


def test_the_fitted_model_keeps_no_copy_of_the_best_weights(regression_data, scripted):
    import pickle  # joblib's format; skcallback.save stores the same state_dict()

    X, y = regression_data
    restored = _best_of_four(True, scripted, X, y)
    plain = _best_of_four(False, scripted, X, y)
    weights = sum(v.numel() * v.element_size() for v in plain.module_.state_dict().values())
    assert restored.callbacks_.early_stopping.state_dict()["best_weights"] is None
    assert len(pickle.dumps(restored)) < len(pickle.dumps(plain)) + weights / 4


def test_a_warm_start_without_improvement_ends_on_the_earlier_best(regression_data, scripted):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[scripted([3.0, 1.0, 2.0, 2.0, 2.0, 2.0]), EarlyStopping(patience=5)],
        max_epochs=3,
        warm_start=True,
        random_state=0,
    ).fit(X, y)
    best = {k: v.clone() for k, v in est.module_.state_dict().items()}  # epoch 2's
    est.fit(X, y)  # epochs 4..6 never beat epoch 2
    assert est.n_iter_ == 6 and est.callbacks_.early_stopping.best_epoch_ == 2
    assert all(torch.equal(v, best[k]) for k, v in est.module_.state_dict().items())
    assert est.callbacks_.early_stopping.state_dict()["best_weights"] is None


def test_epochs_that_do_not_validate_do_not_count_to_patience(regression_data, scripted):
    X, y = regression_data
    losses = [9.0, 1.0, 9.0, 2.0, 9.0, 2.0, 9.0, 0.5]  # read only in validated epochs
    est = NeuralRegressor(
        callbacks=[scripted(losses), EarlyStopping(patience=2, restore_best=False)],
        validate_every=2,
        max_epochs=8,
    ).fit(X, y)
    stopping = est.callbacks_.early_stopping
    # validated epochs 2, 4, 6: two without improvement after epoch 2
    assert est.n_iter_ == 6 and stopping.wait_ == 2 and stopping.best_epoch_ == 2
