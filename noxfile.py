"""The version matrix: the test suite on each supported combination of
Python, torch and the scientific stack.

``make matrix`` runs every leg and writes docs/compatibility.md from the
results; ``.venv/bin/nox -s floor`` runs one. The legs:

- ``pinned``: Python 3.11 and constraints.txt, the versions of development
  and of ``make test``.
- ``floor``: the oldest Python and the lowest version that pyproject.toml
  declares of every dependency and extra (each ``>=X`` installed as ``==X``).
- ``newest``: the newest Python of the machine image (3.13) and the newest
  release of everything else the package registries serve, torch within
  pyproject.toml's cap (and this machine's, 2.14.1).
- ``python3.12``, ``python3.13``: the pinned versions on the other Python
  versions of the machine image.

Each leg records its versions and its test counts in ``.nox/matrix/``.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import date
from pathlib import Path

import nox

ROOT = Path(__file__).parent
RESULTS = ROOT / ".nox" / "matrix"
TABLE = ROOT / "docs" / "compatibility.md"
#: The packages whose versions the compatibility table shows.
REPORTED = (
    "torch",
    "scikit-learn",
    "numpy",
    "scipy",
    "joblib",
    "pandas",
    "optuna",
    "mlflow-skinny",
)
#: The extras every leg installs: the integrations are tested in each leg.
EXTRAS = "test,all,dask-ml"
#: Prints the leg's Python and REPORTED versions as JSON.
VERSIONS = f"""
import importlib.metadata as metadata, json, platform
found = {{"python": platform.python_version()}}
for name in {REPORTED!r}:
    try:
        found[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        pass
print(json.dumps(found))
"""

nox.options.default_venv_backend = "venv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["pinned", "floor", "newest", "python3.12", "python3.13"]


def _interpreter(version: str) -> str:
    """The path of a CPython ``version`` ("3.12"): on PATH, else under pyenv
    (whose shims answer only for the versions selected in pyenv)."""
    candidate = shutil.which(f"python{version}")
    if candidate and subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
        return candidate
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(pyenv.glob(f"{version}.*/bin/python{version}"))
    return str(found[-1]) if found else f"python{version}"  # nox then reports it missing


#: ``name[extras]>=floor`` with an optional ``,<cap``.
FLOORED = r"([A-Za-z0-9_.-]+)(?:\[[^]]*\])?>=([0-9.]+)(?:,<[0-9.]+)?"
#: Extras of the project's own tools, not of its users: no floor tested.
TOOL_EXTRAS = ("test", "dev", "docs", "bench")


def _requirements() -> list[str]:
    """The requirements a user installs: dependencies and integration extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    chosen = (group for name, group in extras.items() if name not in TOOL_EXTRAS)
    return [*project["dependencies"], *(r for group in chosen for r in group)]


def floor_constraints() -> list[str]:
    """``name==X`` for each ``name>=X`` of pyproject.toml (extras included,
    the package's own extras skipped)."""
    pins = {}
    for requirement in _requirements():
        if requirement.startswith("skcallback"):
            continue
        match = re.fullmatch(FLOORED, requirement)
        if match is None:
            raise ValueError(f"pyproject.toml: {requirement!r} has no '>=' floor to test")
        name = match[1].lower()
        if name in pins and pins[name] != match[2]:
            raise ValueError(f"pyproject.toml: two floors for {name}: {pins[name]}, {match[2]}")
        pins[name] = match[2]
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def _run_tests(session: nox.Session, leg: str, started: float) -> None:
    """Run the suite but the slow tests; record the leg's versions, counts
    and minutes (from ``started``, so the install counts) in RESULTS."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = RESULTS / f"{leg}.xml"
    versions = session.run("python", "-c", VERSIONS, silent=True)
    session.log(f"leg {leg}: {versions.strip()}")
    report.unlink(missing_ok=True)
    session.run(
        *("python", "-m", "pytest", "-m", "not slow", "-q", "-p", "no:cacheprovider"),
        f"--junitxml={report}",
        *session.posargs,
        success_codes=[0, 1],  # failures are recorded, then fail the leg
    )
    if not report.exists():
        session.error(f"leg {leg}: pytest did not run the tests")
    minutes = (time.monotonic() - started) / 60
    record = leg_record(leg, json.loads(versions), report, minutes)
    (RESULTS / f"{leg}.json").write_text(json.dumps(record, indent=1))
    if record["failures"] or record["errors"]:
        session.error(f"leg {leg}: {record['failures'] + record['errors']} tests failed")


def leg_record(leg: str, versions: dict, report: Path, minutes: float) -> dict:
    """What the table shows of a leg: its versions, pytest's counts from the
    JUnit ``report``, the date and the minutes it took."""
    suite = ET.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    today = date.today().isoformat()
    return {"leg": leg, "date": today, **versions, **counts, "minutes": round(minutes, 1)}


def leg(python: str, name: str | None = None) -> Callable[[Callable], Callable]:
    """Register the decorated install function as a leg: a nox session on
    CPython ``python`` that installs, then runs the tests, timed from the
    start of the install."""

    def register(install: Callable[[nox.Session], None]) -> Callable:
        @functools.wraps(install)
        def run(session: nox.Session) -> None:
            started = time.monotonic()
            install(session)
            _run_tests(session, name or install.__name__, started)

        return nox.session(name=name, python=_interpreter(python))(run)

    return register


def _install_pinned(session: nox.Session) -> None:
    session.install("-c", "constraints.txt", "-e", f".[{EXTRAS}]")


@leg("3.11")
def pinned(session: nox.Session) -> None:
    """The versions of constraints.txt (development and ``make test``)."""
    _install_pinned(session)


@leg("3.11")
def floor(session: nox.Session) -> None:
    """The lowest declared version of every dependency."""
    floors = floor_constraints()
    session.log("floors: " + ", ".join(floors))
    constraints = RESULTS / "floor-constraints.txt"
    constraints.parent.mkdir(parents=True, exist_ok=True)
    constraints.write_text("\n".join(floors) + "\n")
    session.install("-c", str(constraints), "-e", f".[{EXTRAS}]")


@leg("3.13")
def newest(session: nox.Session) -> None:
    """The newest Python of the image and the newest release of everything
    else (torch within pyproject's cap and this machine's)."""
    session.install("--upgrade", "--upgrade-strategy", "eager", "-e", f".[{EXTRAS}]")


@leg("3.12", name="python3.12")
def python312(session: nox.Session) -> None:
    """The pinned versions on Python 3.12."""
    _install_pinned(session)


@leg("3.13", name="python3.13")
def python313(session: nox.Session) -> None:
    """The pinned versions on Python 3.13."""
    _install_pinned(session)


@nox.session(python=False)
def table(session: nox.Session) -> None:
    """Write docs/compatibility.md from the legs' last results."""
    records = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    if not records:
        session.error("no results in .nox/matrix: run the legs first")
    TABLE.write_text(compatibility_page(records))
    session.log(f"wrote {TABLE.relative_to(ROOT)} from {len(records)} legs")


def compatibility_page(records: list[dict]) -> str:
    order = {name: i for i, name in enumerate(nox.options.sessions)}
    records = sorted(records, key=lambda r: order.get(r["leg"], len(order)))
    columns = ["leg", "date", "python", *REPORTED, "result", "minutes"]
    lines = [
        "| " + " | ".join(columns) + " |",
        "| " + " | ".join("---" for _ in columns) + " |",
    ]
    for record in records:
        failed = record["failures"] + record["errors"]
        passed = record["tests"] - failed - record["skipped"]
        record = {
            **record,
            "result": f"{passed} passed, {failed} failed, {record['skipped']} skipped",
        }
        lines.append("| " + " | ".join(str(record.get(c, "-")) for c in columns) + " |")
    return HEADER + "\n".join(lines) + "\n"


HEADER = """# Compatibility

Generated by `make matrix` (noxfile.py) from the last run of each leg; do
not edit by hand.

## What is supported

Python 3.11 to 3.13, and for each dependency the range in `pyproject.toml`:
at least [SPEC 0](https://scientific-python.org/specs/spec-0000/)'s window
(the minor releases of the last 24 months), lower where a leg proves it,
and torch capped above the newest release tested. The README's installation
section gives the reason for each floor.

## The legs

- **pinned**: Python 3.11 and `constraints.txt`, the versions of
  development and of `make test`.
- **floor**: Python 3.11 and the lowest version `pyproject.toml` declares of
  every dependency and integration, all at once (each `>=X` installed as
  `==X`).
- **newest**: Python 3.13 and the newest release of everything, torch
  within the cap.
- **python3.12**, **python3.13**: the pinned versions on the other Pythons.

Each leg installs every integration (`.[test,all,dask-ml]`) into a fresh
environment and runs the test suite except the slow tests. CI runs `make
test` (the pinned versions), the slow tests, then the floor and newest legs
(`make matrix-ci`) on every change. The Python 3.12 and 3.13 legs run in
`make matrix` only: each downloads a CUDA build of torch (about 3 GB with
its libraries) for versions the newest leg already covers in part.
`minutes` is the leg's wall time on a cold package cache, installation
included, on the 2-core development machine.

## The last run

A dash: not installed in that leg. Skipped tests include those expected to
fail (`xfail`, with their reasons in the tests) and those needing a GPU.

"""

if __name__ == "__main__":  # pragma: no cover
    sys.exit("run the matrix with `make matrix` or `.venv/bin/nox`")
