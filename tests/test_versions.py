"""The supported versions written in pyproject.toml, the README and the
compatibility page agree, and every floor is one the matrix installs."""

import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.version import Version

ROOT = Path(__file__).parents[1]
CORE = {"torch", "scikit-learn", "numpy", "scipy", "joblib", "safetensors"}

nox = pytest.importorskip("nox", reason="the matrix's noxfile needs nox (the dev extra)")
sys.path.insert(0, str(ROOT))
import noxfile  # noqa: E402

sys.path.pop(0)


def _floors() -> dict[str, Version]:
    pins = (line.split("==") for line in noxfile.floor_constraints())
    return {name: Version(version) for name, version in pins}


def test_every_dependency_has_a_floor_the_floor_leg_installs():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.match(r"[A-Za-z0-9_.-]+", r)[0].lower() for r in project["dependencies"]}
    assert names == CORE
    assert _floors().keys() >= CORE | {"pandas", "optuna", "mlflow-skinny", "tensorboard"}


def test_a_requirement_without_a_floor_is_refused(monkeypatch):
    monkeypatch.setattr(noxfile, "_requirements", lambda: ["torch", "numpy>=2.0"])
    with pytest.raises(ValueError, match="'torch' has no '>=' floor"):
        noxfile.floor_constraints()


def test_the_readme_table_states_the_declared_floors():
    readme = (ROOT / "README.md").read_text()
    pattern = r"^\| (torch|scikit-learn|numpy|scipy|joblib|safetensors) \| >= ([0-9.]+)"
    rows = dict(re.findall(pattern, readme, re.M))
    assert {name: Version(v) for name, v in rows.items()} == {n: _floors()[n] for n in CORE}


def test_the_compatibility_page_shows_a_floor_leg_on_the_declared_floors():
    page = (ROOT / "docs" / "compatibility.md").read_text()
    header = next(line for line in page.splitlines() if line.startswith("| leg |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    row = next(line for line in page.splitlines() if line.startswith("| floor |"))
    cells = dict(zip(columns, (c.strip() for c in row.strip("|").split("|"))))
    for name in CORE & set(columns):
        assert Version(cells[name]) == _floors()[name], f"{name}: rerun `make matrix`"
    assert cells["python"].startswith("3.11")
    assert ", 0 failed" in cells["result"]
