"""skcallback.lr_find: a learning-rate range test on a clone."""

import copy
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from torch.utils.data import TensorDataset

from skcallback import NeuralClassifier, NeuralRegressor, SliceDict, lr_find
from skcallback.callbacks import Checkpoint, EarlyStopping, LambdaCallback


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(256, 4)).astype(np.float32)
    return X, X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.normal(size=256)


def snapshot(est):
    """What a user sees of an estimator: its parameters, its attributes
    (the same objects), the history's records and the weights (by value)."""
    fitted = "module_" in vars(est)
    return (
        est.get_params(deep=False),
        dict(vars(est)),
        copy.deepcopy(est.history_.records_) if fitted else None,
        copy.deepcopy(est.module_.state_dict()) if fitted else None,
    )


@pytest.mark.parametrize("fitted", [False, True])
def test_the_estimator_is_left_untouched(data, fitted):
    X, y = data
    est = NeuralRegressor(
        batch_size=32,
        max_epochs=2,
        random_state=np.random.RandomState(0),
        callbacks=[EarlyStopping(patience=1)],
        cb__early_stopping__patience=3,
    )
    if fitted:
        est.fit(X, y)
    params, attributes, history, weights = snapshot(est)
    deep = est.get_params()
    drawn = est.random_state.get_state()[1].copy()
    lr_find(est, X, y, num_steps=20)
    params_after, attributes_after, history_after, weights_after = snapshot(est)
    assert repr(est.get_params()) == repr(deep)  # the callbacks' parameters too
    np.testing.assert_array_equal(est.random_state.get_state()[1], drawn)  # not drawn from
    assert params_after.keys() == params.keys()
    assert all(params_after[k] is params[k] for k in params)
    assert attributes_after.keys() == attributes.keys()
    assert all(attributes_after[k] is attributes[k] for k in attributes)
    assert history_after == history
    if fitted:
        assert all(torch.equal(weights[k], weights_after[k]) for k in weights)
        assert est.n_iter_ == 2


def test_the_sweep_is_exponential_and_ends_after_num_steps(data):
    X, y = data
    est = NeuralRegressor(batch_size=64, random_state=0)  # 4 batches an epoch
    result = lr_find(est, X, y, start_lr=1e-6, end_lr=1e-3, num_steps=10)
    assert result.stop_reason == "num_steps reached"
    assert len(result.lrs) == len(result.losses) == len(result.smoothed_losses) == 10
    np.testing.assert_allclose(result.lrs, np.geomspace(1e-6, 1e-3, 10))
    assert np.isfinite(result.losses).all()


def test_the_same_seed_gives_the_same_curve(data):
    X, y = data
    est = NeuralRegressor(batch_size=32, dropout=0.2, random_state=0)
    first, second = (lr_find(est, X, y, num_steps=30) for _ in range(2))
    np.testing.assert_array_equal(first.losses, second.losses)
    other = lr_find(est.set_params(random_state=1), X, y, num_steps=30)
    assert not np.array_equal(first.losses, other.losses)


def test_a_diverging_loss_ends_the_sweep_and_the_suggestion_is_before_it(data):
    X, y = data
    est = NeuralRegressor(batch_size=32, optimizer="sgd", random_state=0)
    result = lr_find(est, X, y, start_lr=1e-5, end_lr=100.0, num_steps=100)
    assert result.stop_reason == "the smoothed loss exceeded 4 times its minimum"
    smoothed = result.smoothed_losses
    assert smoothed[-1] > 4 * smoothed.min() and smoothed[-2] <= 4 * smoothed[:-1].min()
    skip = len(result.lrs) // 10
    best = skip + np.argmin(result.smoothed_losses[skip:])
    assert result.suggestion == pytest.approx(result.lrs[best] / 10)
    assert result.suggestion < result.lrs[-1]


def test_a_lucky_first_batch_is_not_taken_for_the_minimum():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(256, 4)).astype(np.float32)
    y = X @ np.array([1.0, -2.0, 0.5, 0.0])
    result = lr_find(NeuralRegressor(batch_size=32, random_state=0), X, y, num_steps=50)
    assert result.smoothed_losses.argmin() == 0  # the first batch's loss is the lowest
    assert result.suggestion is not None and result.suggestion > result.lrs[5] / 10


@pytest.mark.parametrize(
    ("scale", "start_lr"),
    [(1.0, 1e20), (10.0, 1e38)],  # the first step leaves the weights huge, or infinite
    ids=["finite-weights", "infinite-weights"],
)
def test_a_non_finite_loss_ends_the_sweep_with_what_it_measured(scale, start_lr):
    # The next loss is not finite: it is not stepped on, and the sweep ends
    # (with infinite weights, the fit then refuses them; the sweep keeps
    # what it measured).
    rng = np.random.RandomState(0)
    X = rng.normal(size=(64, 3)).astype(np.float32)
    est = NeuralRegressor(batch_size=8, optimizer="sgd", random_state=0)
    result = lr_find(est, X, X.sum(1) * scale, start_lr=start_lr, end_lr=3 * start_lr)
    assert result.stop_reason.startswith("the loss was")
    assert len(result.lrs) == 1 and np.isfinite(result.losses).all()
    assert result.suggestion is None


def test_the_estimators_callbacks_do_not_run(data, tmp_path):
    X, y = data
    calls = []
    est = NeuralRegressor(
        batch_size=32,
        random_state=0,
        callbacks=[
            Checkpoint(dirname=tmp_path / "ckpt"),
            EarlyStopping(patience=1),
            LambdaCallback(name="spy", on_train_batch_end=lambda ctx: calls.append(1)),
        ],
        cb__early_stopping__patience=2,
        verbose=1,
    )
    result = lr_find(est, X, y, num_steps=12)
    assert len(result.lrs) == 12
    assert calls == []
    assert not (tmp_path / "ckpt").exists()


def test_a_pipeline_is_swept_on_its_transformed_data(data):
    X, y = data
    pipe = make_pipeline(StandardScaler(), NeuralRegressor(batch_size=32, random_state=0))
    result = lr_find(pipe, X * 100 + 5, y, num_steps=15)
    direct = lr_find(
        NeuralRegressor(batch_size=32, random_state=0),
        StandardScaler().fit_transform(X * 100 + 5),
        y,
        num_steps=15,
    )
    np.testing.assert_allclose(result.losses, direct.losses, rtol=1e-5)
    assert not hasattr(pipe[0], "mean_")  # the pipeline's steps stay unfitted
    alone = Pipeline([("net", NeuralRegressor(batch_size=32, random_state=0))])
    bare = NeuralRegressor(batch_size=32, random_state=0)
    np.testing.assert_array_equal(
        lr_find(alone, X, y, num_steps=3).losses, lr_find(bare, X, y, num_steps=3).losses
    )


def test_every_input_kind_the_estimator_takes(data):
    X, y = data
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y.astype(np.float32)))
    assert len(lr_find(NeuralRegressor(batch_size=32), dataset, None, num_steps=5).lrs) == 5

    class TwoInputs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)

        def forward(self, left, right):
            return self.a(left) + self.b(right)

    inputs = SliceDict(left=X[:, :2], right=X[:, 2:])
    result = lr_find(NeuralRegressor(module=TwoInputs, batch_size=32), inputs, y, num_steps=5)
    assert len(result.lrs) == 5
    labels = (X[:, 0] > 0).astype(int)
    result = lr_find(NeuralClassifier(batch_size=32), X, labels, num_steps=5)
    assert len(result.lrs) == 5


@pytest.mark.parametrize(
    ("estimator", "kwargs", "error", "match"),
    [
        (NeuralRegressor(), {"start_lr": 1.0, "end_lr": 1.0}, ValueError, "'end_lr' argument"),
        (NeuralRegressor(), {"start_lr": 0.0}, ValueError, "'start_lr' argument"),
        (NeuralRegressor(), {"num_steps": 1}, ValueError, "'num_steps' argument"),
        (NeuralRegressor(), {"num_steps": 2.5}, ValueError, "an int >= 2"),
        (Ridge(), {}, TypeError, "got Ridge"),
        (make_pipeline(StandardScaler(), Ridge()), {}, TypeError, "ending in Ridge"),
        (NeuralRegressor(lr=-1.0), {}, ValueError, "'lr' parameter"),
    ],
)
def test_bad_arguments_are_refused_before_training(data, estimator, kwargs, error, match):
    X, y = data
    with pytest.raises(error, match=match):
        lr_find(estimator, X, y, **kwargs)


def test_plot_draws_the_curve_and_marks_the_suggestion(data):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    X, y = data
    result = lr_find(NeuralRegressor(batch_size=32, random_state=0), X, y)
    ax = result.plot()
    assert ax.get_xscale() == "log"
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(lines["smoothed loss"].get_xdata(), result.lrs)
    assert any(label.startswith("suggestion") for label in lines)
    assert "steps=" in repr(result)


def test_plot_without_matplotlib_names_the_extra(data, monkeypatch):
    X, y = data
    result = lr_find(NeuralRegressor(batch_size=32, random_state=0), X, y, num_steps=5)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    monkeypatch.delitem(sys.modules, "matplotlib.pyplot", raising=False)
    with pytest.raises(ImportError, match=r"needs matplotlib, .*'matplotlib>=.*'\.\[plot\]'"):
        result.plot()


def test_the_example_draws_the_curve_and_the_suggestion_trains_better(tmp_path):
    pytest.importorskip("matplotlib")
    path = Path(__file__).resolve().parents[1] / "examples" / "lr_find.py"
    spec = importlib.util.spec_from_file_location("lr_find_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    image = tmp_path / "lr_find.png"
    out = example.main(image)
    assert image.read_bytes().startswith(b"\x89PNG")
    assert not hasattr(out["clf"], "module_")
    assert out["scores"]["suggested"] > out["scores"]["default"]
