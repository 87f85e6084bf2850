"""Every ```python block of README.md and docs/ runs as written."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# scaling-out.md runs in test_scaling.py, which also checks no worker outlives it.
PAGES = [
    ROOT / "README.md",
    *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "scaling-out.md"),
]
# Integrations, and scikit-learn's own callbacks (scikit-learn >= 1.9).
OPTIONAL = {
    "optuna",
    "tensorboard",
    "mlflow",
    "dask",
    "distributed",
    "dask_ml",
    "pandas",
    "skops",
    "sklearn.callback",
    "onnx",
    "onnxruntime",
    "skl2onnx",
}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_snippet_runs_as_written(page, tmp_path, monkeypatch):
    blocks = [block.split("```")[0] for block in page.read_text().split("```python\n")[1:]]
    if not blocks:
        pytest.skip(f"{page.name} has no python snippets")
    monkeypatch.chdir(tmp_path)  # files the snippets write stay out of the checkout
    for number, block in enumerate(blocks, start=1):
        try:
            # run as a script is: process pools re-import guarded __main__ code
            exec(compile(block, f"{page.name}, snippet {number}", "exec"), {"__name__": "__main__"})
        except ModuleNotFoundError as exc:
            if exc.name not in OPTIONAL:
                raise
            pytest.skip(f"{page.name} needs {exc.name}, not installed")
