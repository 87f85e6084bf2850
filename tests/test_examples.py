"""The examples run (with few epochs)."""

import importlib
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def examples(monkeypatch):
    # On sys.path (not loaded from a file path) so that the classes they
    # define can be pickled into grid-search worker processes.
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module


def test_quickstart_runs(examples, capsys):
    examples("quickstart").main(max_epochs=3)
    out = capsys.readouterr().out
    assert "test accuracy" in out
    assert "identical predictions: True" in out
