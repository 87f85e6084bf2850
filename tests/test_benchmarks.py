"""`make bench` keeps working: its quick mode runs every section end to end."""

from __future__ import annotations

import importlib.util
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


def _figures_script():
    """benchmarks/readme_figures.py, imported from its folder."""
    spec = importlib.util.spec_from_file_location(
        "readme_figures", BENCHMARKS / "readme_figures.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(figures, scale, *, quick=False, load=(1.0, 1.0, 1.0), host_id="aaaa0000"):
    """A recorded run with every quoted row, each at ``scale`` times 1."""
    host = {
        "host_id": host_id,
        "started": "2026-12-07T12:00:00+00:00",
        "cpu_model": "Some CPU",
        "cpu_count": 2,
        "usable_cores": 2,
        "load_before": list(load),
        "load_after": list(load),
        "versions": {"torch": "2.13.0"},
        "torch_build": {"settings": {"BLAS_INFO": "mkl"}, "cpu_capability": "AVX2"},
        "numpy_build": {"blas": "openblas"},
        "commit": "abc1234",
    }
    rows = [
        {"section": section, "name": name, "value": scale}
        for section, name, _ in figures.FIGURES.values()
    ]
    return {"machine": {"quick": quick}, "host": host, "results": rows}


def test_quoted_figures_are_ranges_over_every_recorded_full_run(tmp_path):
    figures = _figures_script()
    runs = [
        _run(figures, 0.5, load=(0.5, 0.7, 0.9)),
        _run(figures, 0.4, load=(2.9, 2.0, 1.0), host_id="bbbb1111"),
        _run(figures, 0.9, load=(11.0, 9.0, 8.0)),  # a busy host: recorded, not quoted
        _run(figures, 0.1, quick=True),  # a smoke run is never recorded
    ]
    for number, run in enumerate(runs):
        (tmp_path / f"{number}.json").write_text(json.dumps(run))

    recorded = figures.load_runs(tmp_path)
    quoted = figures.figures(recorded)
    block = " ".join(figures.readme_block(recorded).split())

    assert len(recorded) == 3
    assert quoted["s_fused"] == "0.40-0.50x"  # the range, not the better run
    assert "0.40-0.50x the time of a plain PyTorch loop" in block
    assert "2 recorded runs of `make bench` on 2 hosts" in block
    assert "load average 0.5-2.9 at the runs' starts and ends; 1 run on a busy host left out" in (
        block
    )
    table = figures.performance_block(recorded)
    assert "| 2026-12-07T12:00:00+00:00 | bbbb1111: Some CPU (AVX2) |" in table
    assert "| [11.0, 9.0, 8.0], [11.0, 9.0, 8.0] | no: busy |" in table


def test_figures_are_not_quoted_from_busy_hosts_alone():
    figures = _figures_script()
    with pytest.raises(SystemExit, match="No quiet recorded run"):
        figures.figures([_run(figures, 0.5, load=(3.5, 3.0, 3.0))])


def test_a_quoted_row_that_no_run_has_is_an_error_naming_it():
    figures = _figures_script()
    run = _run(figures, 0.5)
    run["results"] = [row for row in run["results"] if row["name"] != "skcallback / naive"]
    with pytest.raises(SystemExit, match="'skcallback / naive' of 'L compute-bound"):
        figures.figures([run])


@pytest.mark.parametrize("name", ["README.md", "docs/performance.md"])
def test_the_figures_in_the_readme_and_docs_are_those_of_the_recorded_runs(name):
    # benchmarks/readme_figures.py --write makes them after a recorded run.
    figures = _figures_script()
    text = (BENCHMARKS.parent / name).read_text()
    block = figures.FILES[name](figures.load_runs())
    assert figures.replaced(text, block, name) == text
