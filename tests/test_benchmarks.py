"""`make bench` keeps working: its quick mode runs every section end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.slow
def test_the_quick_benchmark_runs_every_section_and_reports_finite_figures(tmp_path):
    output = tmp_path / "quick.json"
    command = [sys.executable, "run.py", "--quick", "--output", str(output)]
    done = subprocess.run(command, cwd=BENCHMARKS, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    rows = json.loads(output.read_text())["results"]
    sections = {row["section"].removesuffix(" (cpu)") for row in rows}
    assert sections >= {
        "S overhead-bound",
        "S classification",
        "Floor",
        "L compute-bound",
        "Predict",
        "Threads",
        "Options",
        "Memory",
        "Growth",
        "GridSearchCV",
        "Sparse",
        "Inputs",
        "Inference",
    }
    assert all(math.isfinite(row["value"]) for row in rows)
    names = {row["name"] for row in rows}
    # The rows the README and docs/performance.md quote.
    assert {
        "skcallback / best autograd loop",
        "skcallback / MLPRegressor (same work)",
        "skcallback / MLPClassifier (same work)",
        "S regression: skcallback step / floor",
        "S classification: skcallback step / floor",
        "one row: skcallback / MLPRegressor",
        "one row, list: skcallback / MLPRegressor",
        "one row, DataFrame: skcallback / MLPRegressor",
        "speed-up / MLPRegressor's speed-up",
        "S: compile=True, the process's first fit [s]",
        "CNN: skcallback / best hand loop",
        "map-style Dataset / arrays",
        "1 ms items: speed-up of num_workers=2",
    } <= names
    table = output.with_suffix(".md").read_text()
    assert "| skcallback / best autograd loop |" in table
