import numpy as np
import pytest
import torch

from skcallback.callbacks import LambdaCallback

torch.set_num_threads(1)


@pytest.fixture
def regression_data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 4)).astype(np.float32)
    y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.normal(size=120)
    return X, y


@pytest.fixture
def classification_data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 4))
    y = np.array(["cat", "dog", "emu"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1).astype(int)]
    return X, y


@pytest.fixture
def scripted():
    """``scripted(values, key="valid_loss", lower_is_better=None)``: a
    callback that overwrites a metric with ``values[epoch - 1]`` at the end
    of validation (declaring it, if new), so callbacks that watch it can be
    tested against a known sequence."""

    def make(values, key="valid_loss", lower_is_better=None):
        def declare(plan):
            if key not in plan.metrics:
                plan.declare_metric(key, lower_is_better=lower_is_better)

        def write(ctx):
            ctx.metrics[key] = values[ctx.epoch - 1]

        return LambdaCallback(name=f"script_{key}", declare=declare, on_valid_end=write)

    return make
