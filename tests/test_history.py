"""History: records, get, to_dataframe and plot, with their optional extras."""

import sys

import matplotlib
import numpy as np
import pytest

from skcallback import NeuralClassifier, NeuralRegressor
from skcallback.callbacks import EpochScoring

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


def test_plot_draws_the_losses_marks_their_best_epoch_and_puts_lr_apart(regression_data):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=4, lr=0.05, random_state=0).fit(X, y)
    ax = est.history_.plot()
    labels = [line.get_label() for line in ax.get_lines()]
    best = int(np.argmin(est.history_.get("valid_loss"))) + 1
    assert labels[0] == "train_loss" and "valid_loss" in labels
    assert f"best valid_loss (epoch {best})" in labels
    assert ax.get_ylabel() == "loss" and ax.get_xlabel() == "epoch"
    assert all(float(t).is_integer() for t in ax.get_xticks())
    ax = est.history_.plot(keys=["valid_loss", "lr"])
    (twin,) = [other for other in ax.figure.axes if other is not ax]
    assert [line.get_label() for line in twin.get_lines()] == ["lr"]
    assert twin.get_ylabel() == "lr"
    assert "lr" in [text.get_text() for text in ax.get_legend().get_texts()]
    ax = est.history_.plot(keys=["lr"])
    assert [line.get_label() for line in ax.get_lines()] == ["lr"]


@pytest.mark.parametrize(
    ("method", "module", "extra"),
    [("to_dataframe", "pandas", "pandas"), ("plot", "matplotlib", "plot")],
)
def test_missing_optional_dependency_names_the_extra(fitted, monkeypatch, method, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # what a missing package looks like to import
    monkeypatch.delitem(sys.modules, f"{module}.pyplot", raising=False)
    with pytest.raises(ImportError, match=rf"needs {module}, .*'{module}>=.*'\.\[{extra}\]'"):
        getattr(fitted.history_, method)()


def test_records_hold_the_documented_keys_plus_every_score(classification_data):
    X, y = classification_data
    clf = NeuralClassifier(
        callbacks=[EpochScoring("accuracy")], max_epochs=2, lr=0.01, random_state=0
    ).fit(X, y)
    for epoch, record in enumerate(clf.history_, start=1):
        assert set(record) == {"epoch", "train_loss", "valid_loss", "lr", "dur", "valid_accuracy"}
        assert record["epoch"] == epoch and record["lr"] == 0.01
        assert record["dur"] > 0 and np.isfinite(record["train_loss"])
        assert 0 <= record["valid_accuracy"] <= 1
    plain = NeuralClassifier(validation_fraction=None, max_epochs=1).fit(X, y)
    assert set(plain.history_[0]) == {"epoch", "train_loss", "lr", "dur"}


def test_to_dataframe_has_a_row_per_epoch_and_a_column_per_key(fitted):
    frame = fitted.history_.to_dataframe()
    assert len(frame) == 3
    assert set(frame.columns) == {"epoch", "train_loss", "valid_loss", "lr", "dur"}
    assert frame["train_loss"].tolist() == fitted.history_.get("train_loss")


def test_plot_draws_on_the_axes_given(fitted):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        assert fitted.history_.plot(keys=["train_loss"], ax=ax) is ax
        line, best = ax.get_lines()
        assert line.get_label() == "train_loss" and best.get_label().startswith("best train_loss")
        assert list(line.get_ydata()) == fitted.history_.get("train_loss")
        assert list(line.get_xdata()) == [1, 2, 3]
    finally:
        plt.close(fig)
