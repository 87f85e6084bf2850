"""Each example shows what its tutorial shows.

Every example's ``main()`` runs once per module (fixtures below), returning
its fitted models; the tests check the effects the example claims: files
written, when and why training stopped, the order callbacks ran in, the
value a search selected, the split used, what pickles.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone

try:  # the pickler of joblib's worker processes: vendored before joblib 1.5
    from joblib.externals import cloudpickle
except ImportError:
    import cloudpickle

from skcallback.callbacks import read_checkpoint

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def example(name: str):
    """Import ``examples/<name>.py`` as the module ``name``."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # so pickle finds its classes and functions
        spec.loader.exec_module(module)
        # joblib's worker processes cannot import a module loaded from a file
        # path: its classes travel by value, as a script's (__main__) do.
        cloudpickle.register_pickle_by_value(module)
    return sys.modules[name]


def run_main(name: str, **kwargs) -> tuple[dict, str]:
    """``main(**kwargs)`` of an example: its results and what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        results = example(name).main(**kwargs)
    return results, out.getvalue()


def section(out: str, title: str) -> str:
    """The printed lines after the ``== <title>...`` line, up to the next one."""
    return out.split(f"== {title}", 1)[1].split("\n== ", 1)[0]


def names(paths) -> list[str]:
    return [Path(p).name for p in paths]


# --- quickstart: the fit, the search, callback state, resume, reload -------


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    return run_main("quickstart", folder=str(tmp_path_factory.mktemp("quickstart")))


def test_quickstart_prints_a_table_line_per_epoch_and_the_stop_reason(quickstart):
    results, out = quickstart
    model = results["model"]
    assert model.n_iter_ < model.max_epochs
    assert model.stop_reason_.startswith("early_stopping: no improvement of valid_loss")
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["epoch"])
    assert lines[header].split() == [
        "epoch",
        "train_loss",
        "valid_loss",
        "valid_accuracy",
        "lr",
        "dur",
    ]
    rows = lines[header + 2 : header + 2 + model.n_iter_]
    assert [int(row.split()[0]) for row in rows] == list(range(1, model.n_iter_ + 1))
    assert lines[header + 2 + model.n_iter_] == (
        f"Stopped after epoch {model.n_iter_}: {model.stop_reason_}"
    )
    best_epoch = model.callbacks_.early_stopping.best_epoch_
    assert "*" in rows[best_epoch - 1].split()[2]  # the best valid_loss is marked


def test_quickstart_search_over_a_callback_parameter_tells_candidates_apart(quickstart):
    search = quickstart[0]["search"]
    scores = dict(
        zip(
            [p["cb__lr_scheduler__gamma"] for p in search.cv_results_["params"]],
            search.cv_results_["mean_test_score"],
            strict=True,
        )
    )
    assert scores[0.9] - scores[0.5] > 0.03  # a difference, not a tie
    assert search.best_params_ == {"cb__lr_scheduler__gamma": 0.9}
    best = search.best_estimator_
    assert best.callbacks_.lr_scheduler.gamma == 0.9
    lrs = best.history_.get("lr")
    assert lrs[1] / lrs[0] == pytest.approx(0.9)


def test_quickstart_best_estimator_keeps_what_callbacks_learned(quickstart):
    best = quickstart[0]["search"].best_estimator_
    assert list(best.callbacks_) == ["history", "valid_accuracy", "lr_scheduler", "early_stopping"]
    stopper = best.callbacks_.early_stopping
    losses = best.history_.get("valid_loss")
    assert stopper.best_score_ == pytest.approx(min(losses))
    assert stopper.best_epoch_ == int(np.argmin(losses)) + 1
    assert stopper.stopped_epoch_ == best.n_iter_


def test_quickstart_resumed_fit_ends_exactly_as_the_uninterrupted_one(quickstart):
    results = quickstart[0]
    full, resumed = results["full"], results["resumed"]
    assert Path(resumed.callbacks_.checkpoint.resumed_from_).name == "model-0004.pt"
    X_test = results["data"][1]
    np.testing.assert_array_equal(resumed.predict_proba(X_test), full.predict_proba(X_test))
    drop_dur = [{k: v for k, v in row.items() if k != "dur"} for row in full.history_]
    assert [{k: v for k, v in row.items() if k != "dur"} for row in resumed.history_] == drop_dur


def test_quickstart_model_loads_in_another_process(quickstart):
    assert quickstart[0]["reloaded_same"] is True


# --- MindSpore: checkpoints, monitors, the two custom callbacks ------------


@pytest.fixture(scope="module")
def mindspore(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mindspore")
    results, out = run_main("mindspore_callbacks", folder=str(folder))
    return results, out, folder


def test_mindspore_step_period_longer_than_training_saves_the_end(mindspore):
    results = mindspore[0]
    model = results["one_epoch"]
    (path,) = model.callbacks_.checkpoint.saved_paths_
    assert Path(path).name == "mnist-0001.pt"
    # The file holds the final model.
    X, _ = example("mindspore_callbacks").load_data()
    restored = clone(model).load_checkpoint(path)
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
    # Over 3 epochs: global step 58 mid-run, then the end of training.
    three = results["three_epochs"].callbacks_.checkpoint.saved_paths_
    assert names(three) == ["mnist-0002-000000058.pt", "mnist-0003.pt"]


def test_mindspore_loss_and_time_monitors(mindspore):
    results, out, _ = mindspore
    printed = section(out, "LossMonitor")
    assert re.findall(r"^epoch: 1 step: (\d+), loss is \d", printed, re.M) == ["9", "18", "27"]
    times = results["time_monitor"].callbacks_.time_monitor.epoch_times_
    assert len(times) == 1
    assert len(re.findall(r"^Train epoch time: [\d.]+ ms, per step time: [\d.]+ ms$", out, re.M))


def test_mindspore_stop_time_monitor_stops_once_its_budget_is_spent(mindspore):
    results, out, _ = mindspore
    model = results["stop_time_monitor"]
    assert model.stop_reason_ == "time budget of 0.5 s spent"
    assert model.n_iter_ < model.max_epochs
    assert model.callbacks_.stop_time_monitor.stopped_after_ > 0.5
    assert "Begin training, time is: " in out
    end = re.search(r"End training, time: [\d.]+, epoch: (\d+), step: (\d+), loss: ", out)
    assert (int(end[1]), int(end[2])) == (model.n_iter_, model.n_steps_)


def test_mindspore_save_ckpt_monitor_saves_each_low_loss_step(mindspore):
    results, out, folder = mindspore
    saved = results["save_ckpt_monitor"].callbacks_.save_ckpt_monitor.saved_
    files = sorted((folder / "checkpoint").glob("*.pt"))
    printed = re.findall(
        r"^Saved checkpoint, loss:([\d.]+), current step num: *(\d+)\.$", out, re.M
    )
    assert 1 <= len(saved) == len(files) == len(printed)
    # 7 files as in the tutorial here; two of those losses are within 0.5% of
    # the threshold, so another CPU's rounding may move one across it.
    assert abs(len(saved) - 7) <= 2
    for (path, loss), (shown, step) in zip(saved, printed, strict=True):
        assert loss < 0.05 and float(shown) == pytest.approx(loss, abs=1e-7)
        epoch, file_step = map(int, Path(path).stem.split("_"))
        assert file_step == int(step) == read_checkpoint(path)["step"]
        assert epoch == math.ceil(file_step / 29)  # 29 steps per epoch


# --- MXNet: fixed split, logged metrics, checkpoints, early stop, pickling -


@pytest.fixture(scope="module")
def mxnet(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mxnet")
    results, out = run_main("mxnet_callbacks", folder=str(folder))
    return results, out


def test_mxnet_trains_and_evaluates_on_the_fixed_split(mxnet):
    X_train, _, X_eval, y_eval = example("mxnet_callbacks").load_data()
    assert (len(X_train), len(X_eval)) == (148, 294)  # rows 1, 4, 7, ... train
    model = mxnet[0]["logged"]
    assert model.n_steps_ == model.n_iter_ * math.ceil(148 / 20)  # all 148 rows train
    last_rmse = math.sqrt(np.mean((model.predict(X_eval) - y_eval) ** 2))
    assert model.history_[-1]["valid_rmse"] == pytest.approx(last_rmse, rel=1e-4)


def test_mxnet_logs_rmse_per_batch_and_epoch_and_saves_every_epoch(mxnet):
    results, out = mxnet
    model = results["logged"]
    rmse = [math.sqrt(row["train_loss"]) for row in model.history_]
    logger = model.callbacks_.metric_logger
    assert logger.train_ == pytest.approx(rmse)
    assert logger.valid_ == pytest.approx([math.sqrt(r["valid_loss"]) for r in model.history_])
    assert len(re.findall(r"^Batch \[5\] Train-rmse=[\d.]+$", out, re.M)) == model.n_iter_
    for epoch in range(1, model.n_iter_ + 1):
        assert f"[{epoch}] Train-rmse=" in out and f"[{epoch}] Validation-rmse=" in out
    assert names(model.callbacks_.checkpoint.saved_paths_) == [
        f"diabetes-{epoch:04d}.pt" for epoch in range(1, 11)
    ]


def test_mxnet_early_stop_stops_when_the_threshold_is_passed(mxnet):
    model = mxnet[0]["stopped"]
    valid = model.history_.get("valid_rmse")
    assert model.n_iter_ == 3 < model.max_epochs
    assert all(v >= 84 for v in valid[:-1]) and valid[-1] < 84
    assert model.stop_reason_ == "early_stop.on_epoch_end returned False"
    assert model.callbacks_.early_stop.state_ == {
        "best_score": min(valid),
        "best_iteration": 3,
        "bad": 0,
    }


def test_mxnet_model_round_trips_through_joblib_and_its_functions_still_work(mxnet, tmp_path):
    results = mxnet[0]
    model, loaded = results["stopped"], results["loaded"]
    assert loaded.callbacks_.early_stop.state_ == model.callbacks_.early_stop.state_
    joblib.dump(loaded, tmp_path / "again.joblib")  # loaded functions dump again
    X_train, y_train, X_eval, y_eval = example("mxnet_callbacks").load_data()
    refit = clone(joblib.load(tmp_path / "again.joblib")).fit(
        X_train, y_train, X_val=X_eval, y_val=y_eval
    )
    assert refit.n_iter_ == 3  # the unpickled early stop stops as before, from a fresh state
    assert refit.callbacks_.early_stop.state_ == model.callbacks_.early_stop.state_


def test_mxnet_early_stop_counts_bad_steps_in_the_fit_state():
    on_epoch_end = example("mxnet_callbacks").early_stop(bad_steps=2)
    state: dict = {}
    decisions = [
        on_epoch_end(SimpleNamespace(epoch=epoch, metrics={"valid_rmse": value}), state)
        for epoch, value in enumerate([10.0, 9.0, 9.5, 8.5, 8.7, 8.6], start=1)
    ]
    assert decisions == [True, True, True, True, True, False]
    assert state == {"best_score": 8.5, "best_iteration": 4, "bad": 2}


# --- luz: ordering by weight, values shared through ctx --------------------


@pytest.fixture(scope="module")
def luz():
    return run_main("luz_callbacks")


def test_luz_orders_callbacks_by_weight_not_by_list_position(luz):
    results, out = luz
    weighted, swapped = results["weighted"], results["swapped"]
    assert list(weighted.callbacks_) == [
        "history",
        "batch_accuracy",
        "print_callback",
        "early_stopping",
    ]
    assert list(swapped.callbacks_) == [
        "history",
        "print_callback",
        "batch_accuracy",
        "early_stopping",
    ]
    n_batches = math.ceil(135 / 50)  # iris less a 10% validation split, batches of 50
    assert out.count("Iteration ") == (weighted.n_iter_ + swapped.n_iter_) * n_batches
    assert out.count("Done!\n") == weighted.n_iter_ + swapped.n_iter_


def test_luz_callbacks_share_values_through_ctx_in_order(luz):
    results = luz[0]
    # Accuracy computed first: every line shows its own batch's value.
    weighted = results["weighted"].callbacks_
    assert weighted.print_callback.seen_ == weighted.batch_accuracy.values_
    # Printer first: it reads what was left by the previous batch.
    swapped = results["swapped"].callbacks_
    seen = [value for _, _, value in swapped.print_callback.seen_]
    computed = [value for _, _, value in swapped.batch_accuracy.values_]
    assert seen == [None, *computed[:-1]]


# --- mlr3torch: a logger's alpha on the estimator and in GridSearchCV ------


@pytest.fixture(scope="module")
def mlr3torch():
    return run_main("mlr3torch_callbacks")


def test_mlr3torch_logger_prints_and_exposes_its_state(mlr3torch):
    results, out = mlr3torch
    learner = results["learner"]
    assert learner.get_params()["cb__custom_logger__alpha"] == 0.05
    printed = re.findall(r"^Epoch (\d): ([\d.]+)$", out, re.M)
    assert [int(epoch) for epoch, _ in printed] == [1, 2, 3, 4, 5]
    # mlr3torch's on_before_valid runs every epoch, validating or not
    assert learner.get_params()["validation_fraction"] is None
    assert "valid_loss" not in learner.history_[-1]
    state = learner.callbacks_.custom_logger.state_dict()
    assert isinstance(state, float)
    assert state == learner.history_[-1]["moving_loss"]


def test_mlr3torch_logger_state_survives_save_load_and_pickle(mlr3torch):
    results, out = mlr3torch
    state = results["learner"].callbacks_.custom_logger.state_dict()
    for loaded in results["reloaded"].values():
        assert loaded.callbacks_.custom_logger.state_dict() == state
    assert section(out, "saved and loaded again").count(f"state_dict() = {state}") == 2


def test_mlr3torch_search_selects_alpha_and_keeps_the_logger_state(mlr3torch):
    search = mlr3torch[0]["search"]
    results = search.cv_results_
    alphas = [p["cb__custom_logger__alpha"] for p in results["params"]]
    assert alphas == [0.05, 0.3, 0.9]
    accuracy, epochs = results["mean_test_accuracy"], results["mean_test_epochs"]
    assert search.best_params_ == {"cb__custom_logger__alpha": 0.05}
    assert accuracy[0] - max(accuracy[1:]) > 0.05
    assert epochs[0] > epochs[1] > epochs[2]  # a larger alpha stops earlier
    logger = search.best_estimator_.callbacks_.custom_logger
    assert logger.alpha == 0.05
    assert logger.state_dict() == search.best_estimator_.history_[-1]["moving_loss"]


# --- inputs: images, two inputs, variable-length sequences, a file Dataset --


@pytest.fixture(scope="module")
def images_cnn():
    return run_main("images_cnn")


def test_images_cnn_search_tunes_the_convolution_on_4d_images(images_cnn):
    results = images_cnn[0]
    search = results["search"]
    X_train, X_test, _, y_test = results["data"]
    assert X_train.shape[1:] == (1, 8, 8)
    scores = search.cv_results_["mean_test_score"]
    assert scores[1] - scores[0] > 0.05  # 6 filters beat 1: the search tells them apart
    assert search.best_params_ == {"module__channels": 6}
    best = search.best_estimator_
    assert best.module_.net[0].in_channels == 1  # sized from input_shape (1, 8, 8)
    assert best.score(X_test, y_test) > 0.9
    assert not hasattr(best, "n_features_in_")  # as scikit-learn: for 2-D X only


def test_images_cnn_predict_refuses_flat_pixels_naming_both_shapes(images_cnn):
    message = images_cnn[0]["message"]
    assert "2-D array of 64 features" in message
    assert "(n_samples, 1, 8, 8)" in message


@pytest.fixture(scope="module")
def multi_input():
    return run_main("multi_input")


def test_multi_input_embedding_explains_what_numbers_alone_cannot(multi_input):
    scores = multi_input[0]["scores"]
    assert scores["numbers and neighbourhood"].min() > 0.9
    assert scores["numbers only"].mean() < 0.5


def test_multi_input_module_takes_the_dict_by_keyword(multi_input):
    results = multi_input[0]
    X = results["data"][0]
    model = results["model"]
    assert model.module_.embedding.num_embeddings == 30
    assert model.module_.head[0].in_features == 3 + 4  # input_shape["numbers"] == (3,)
    assert model.predict(X[:5]).shape == (5,)
    with pytest.raises(ValueError, match="fitted on a dict of arrays"):
        model.predict(X["numbers"])


@pytest.fixture(scope="module")
def sequences():
    return run_main("variable_length_sequences")


def test_sequences_gru_learns_from_variable_lengths(sequences):
    results = sequences[0]
    X, y = results["data"]
    assert len({len(s) for s in X}) > 10
    assert results["model"].score(X[300:], y[300:]) > 0.9


def test_sequences_packing_makes_padding_irrelevant(sequences):
    results = sequences[0]
    short, longest = results["lengths"]
    assert short < longest
    np.testing.assert_allclose(results["alone"], results["padded"], rtol=1e-6, atol=1e-7)


@pytest.fixture(scope="module")
def lazy_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lazy")
    results, out = run_main("lazy_file_dataset", folder=str(folder))
    return results, out, folder


def test_lazy_file_dataset_resumes_a_crashed_fit_bit_for_bit(lazy_files):
    results, out, _ = lazy_files
    full, resumed = results["full"], results["resumed"]
    assert results["same"] is True
    assert Path(resumed.callbacks_.checkpoint.resumed_from_).name == "model-0003-000000020.pt"
    assert resumed.n_steps_ == full.n_steps_ == 45
    assert resumed.history_.get("train_loss")[-1] == full.history_.get("train_loss")[-1]
    assert "crashed after step 21" in out


def test_lazy_file_dataset_reads_its_files_in_two_workers(lazy_files):
    results, _, folder = lazy_files
    model = results["full"]
    assert model.get_params()["dataloader__num_workers"] == 2
    assert len(list((folder / "images").glob("*/*.f32"))) == 160
    assert results["accuracy"] > 0.75


@pytest.fixture(scope="module")
def multilabel():
    return run_main("multilabel")


def test_multilabel_follows_mlpclassifier_conventions(multilabel):
    results = multilabel[0]
    X_test, Y_test = results["data"]
    ours, theirs = results["ours"], results["sklearn"]
    np.testing.assert_array_equal(ours[-1].classes_, theirs[-1].classes_)
    assert ours.predict(X_test).shape == theirs.predict(X_test).shape == Y_test.shape
    assert set(np.unique(ours.predict(X_test))) <= {0, 1}
    assert ours.predict_proba(X_test).shape == Y_test.shape
    scores = results["results"]
    assert scores["skcallback"]["macro_f1"] > scores["sklearn"]["macro_f1"] - 0.05


def test_multilabel_balanced_weights_raise_the_rarest_labels_recall(multilabel):
    scores = multilabel[0]["results"]
    assert scores["balanced"]["rarest_recall"] > scores["skcallback"]["rarest_recall"]


# --- fine-tuning: a saved backbone, frozen then unfrozen; weight averaging ---


@pytest.fixture(scope="module")
def finetune(tmp_path_factory):
    return run_main("finetune", folder=str(tmp_path_factory.mktemp("finetune")))


def test_finetune_saves_a_backbone_the_new_classifier_starts_from(finetune):
    results, out = finetune
    saved = torch.load(results["path"], weights_only=True)
    tuned = results["tuned"]
    assert sorted(k for k in saved if k.startswith("backbone.")) == sorted(
        k for k in tuned.module_.state_dict() if k.startswith("backbone.")
    )
    assert saved["head.weight"].shape[0] == 5 == len(tuned.classes_)
    assert list(tuned.classes_) == [5, 6, 7, 8, 9]
    # The backbone trains at a tenth of the head's rate, and is unfrozen at the end.
    assert [group["lr"] for group in tuned.optimizer_.param_groups] == [0.01, 0.001]
    assert all(p.requires_grad for p in tuned.module_.parameters())
    assert results["accuracy"] > 0.8
    assert f"test accuracy: {results['accuracy']:.3f}" in section(out, "Fine-tuning")


def test_finetune_moving_average_lowers_the_test_error(finetune):
    results, out = finetune
    last, ema = results["mse"]
    assert ema < 0.8 * last
    assert f"averaged weights: {ema:.4f}" in section(out, "A moving average")


def test_weight_averaging_curve_is_lower_and_steadier_and_drawn(tmp_path):
    image = tmp_path / "curve.png"
    with contextlib.redirect_stdout(io.StringIO()):
        curves = example("weight_averaging_curve").main(image)
    last, ema = (np.array(curves[key]) for key in ("last weights", "EMA"))
    assert len(last) == len(ema) == 20
    assert ema[-10:].mean() < last[-10:].mean() and ema[-10:].std() < last[-10:].std()
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
