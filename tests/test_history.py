"""History: records, get, to_dataframe and plot, with their optional extras."""

import builtins

import matplotlib
import pytest

from skcallback import NeuralRegressor

matplotlib.use("Agg")


@pytest.fixture
def fitted(regression_data):
    X, y = regression_data
    return NeuralRegressor(max_epochs=3, random_state=0).fit(X, y)


def test_history_is_a_sequence_of_records(fitted):
    history = fitted.history_
    assert len(history) == 3 and history[-1]["epoch"] == 3
    assert [record["epoch"] for record in history] == [1, 2, 3]
    assert history.get("train_loss") == [record["train_loss"] for record in history]


def test_plot_draws_the_losses(fitted):
    ax = fitted.history_.plot()
    assert sorted(line.get_label() for line in ax.get_lines()) == ["train_loss", "valid_loss"]
    ax = fitted.history_.plot(keys=["lr"])
    assert [line.get_label() for line in ax.get_lines()] == ["lr"]


@pytest.mark.parametrize(
    ("method", "module", "extra"),
    [("to_dataframe", "pandas", "pandas"), ("plot", "matplotlib.pyplot", "plot")],
)
def test_missing_optional_dependency_names_the_extra(fitted, monkeypatch, method, module, extra):
    real_import = builtins.__import__

    def blocked(name, *args, **kwargs):
        if name == module:
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", blocked)
    with pytest.raises(ImportError, match=rf"skcallback\[{extra}\]"):
        getattr(fitted.history_, method)()
