"""Every example runs as a script (with few epochs)."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

EXPECTED = {
    "quickstart": ["test accuracy", "identical predictions: True"],
    "mxnet_callbacks": ["Batch [5] Train-loss=", "diabetes-0001.pt", "logger valid:"],
    "luz_callbacks": ["Iteration 1", "Done!", "['history', 'print_callback', 'late']"],
    "mindspore_callbacks": ["epoch: 1 step: 10, loss is", "Train epoch time:", "keep_max=3"],
    "mlr3torch_callbacks": ["Epoch 3:", "state_dict(): "],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name, tmp_path):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--epochs", "3"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for text in EXPECTED[name]:
        assert text in result.stdout
