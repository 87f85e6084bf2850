"""The supported versions written in pyproject.toml, the README and the
compatibility page agree, and every floor is one the matrix installs."""

import json
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


class _FakeSession:
    """Stands for a nox session: records installs, answers the versions
    script, and writes a JUnit report with ``failures`` failed tests."""

    posargs: list[str] = []

    def __init__(self, failures):
        self.failures, self.installed, self.errors = failures, [], []

    def install(self, *args):
        self.installed.append(args)

    def log(self, message):
        pass

    def error(self, message):
        self.errors.append(message)
        raise RuntimeError(message)

    def run(self, *args, **kwargs):
        if "-c" in args:
            return '{"python": "3.11.7", "torch": "2.4.0"}'
        report = next(a.split("=", 1)[1] for a in args if a.startswith("--junitxml="))
        Path(report).write_text(
            f'<testsuites><testsuite tests="10" failures="{self.failures}" errors="0" '
            'skipped="1"></testsuite></testsuites>'
        )


@pytest.mark.parametrize("failures", [0, 2])
def test_a_leg_records_its_result_and_a_failure_names_the_leg(tmp_path, monkeypatch, failures):
    monkeypatch.setattr(noxfile, "RESULTS", tmp_path)
    session = _FakeSession(failures)
    if failures:
        with pytest.raises(RuntimeError, match="leg floor: 2 tests failed"):
            noxfile.floor.func(session)
    else:
        noxfile.floor.func(session)
    constraints = (tmp_path / "floor-constraints.txt").read_text().split()
    assert session.installed == [
        ("-c", str(tmp_path / "floor-constraints.txt"), "-e", ".[test,all,dask-ml]")
    ]
    assert constraints == noxfile.floor_constraints()
    record = json.loads((tmp_path / "floor.json").read_text())
    assert (record["leg"], record["torch"], record["failures"]) == ("floor", "2.4.0", failures)
    row = noxfile.compatibility_page([record]).splitlines()[-1]
    assert f"| {9 - failures} passed, {failures} failed, 1 skipped |" in row
