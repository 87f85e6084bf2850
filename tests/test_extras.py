"""Optional extras: every install hint in the repository works today (the
package is not on PyPI), and a missing package is reported by its name with
the extra that installs it."""

import itertools
import re
import sys
import tomllib
from pathlib import Path

import pytest

from skcallback._extras import extra_requirements, import_extra, install_hint

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = PYPROJECT["optional-dependencies"]
# Where a user reads an install hint. This file is left out: it spells the
# hints it forbids.
SCANNED = ["README.md", "CHANGELOG.md", "Makefile", ".ci/run", "noxfile.py"] + [
    str(path.relative_to(ROOT))
    for folder in ("docs", "skcallback", "examples", "tests", "benchmarks")
    for path in sorted((ROOT / folder).rglob("*"))
    if path.suffix in (".md", ".py") and path.name != Path(__file__).name
]
# A quoted argument, or a bare one (which prose ends: a comma, a parenthesis,
# a comment's #), with its [extras] whole.
_BARE = r"""[^\s`'"(),#\[][^\s`'"(),\[]*(?:\[[^\]\s]*\][^\s`'"(),]*)?"""
_TOKEN = rf"""(?:'[^'\n]*'|"[^"\n]*"|{_BARE})"""
_HINT = re.compile(rf"pip install((?:[ \t]+(?:\\\n)?{_TOKEN}|\n[ \t]*{_TOKEN})*)")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_OPTIONS_WITH_VALUE = {"-c", "-r", "--constraint", "--index-url", "--extra-index-url", "-i"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _specifier(requirement: str) -> str:
    """``>=2.4,<2.15`` of ``torch>=2.4,<2.15``; ``>=1`` of ``dask[distributed]>=1``."""
    return re.sub(r"^\[[^\]]*\]", "", requirement[_NAME.match(requirement).end() :])


def _requirements() -> dict[str, str]:
    """Every package pyproject.toml names (dependencies and extras), by
    normalised name: its version specifier."""
    return {
        _normal(_NAME.match(requirement).group()): _specifier(requirement)
        for requirement in [*PYPROJECT["dependencies"], *itertools.chain(*EXTRAS.values())]
    }


def _hints() -> list[tuple[str, str]]:
    """(file, what follows ``pip install``) for every install command the
    repository shows a user."""
    return [
        (name, match.group(1))
        for name in SCANNED
        if (ROOT / name).is_file()
        for match in _HINT.finditer((ROOT / name).read_text())
    ]


def _problems(arguments: str) -> list[str]:
    """What is wrong with the arguments of one ``pip install`` hint."""
    tokens = [token.strip("'\"") for token in re.findall(_TOKEN, arguments)]
    known, problems, skip = _requirements(), [], False
    for token in tokens:
        if skip or token.startswith(("-", "$", "\\", "<")) or "{" in token:  # options, templates
            skip = token in _OPTIONS_WITH_VALUE
            continue
        if token.startswith("."):  # a clone: '.', '.[extra,...]'
            extras = re.fullmatch(r"\.(?:\[([^\]]*)\])?", token)
            names = extras.group(1).split(",") if extras and extras.group(1) else []
            problems += [f"no extra {name!r}" for name in names if name not in EXTRAS]
            continue
        name = _NAME.match(token)
        if name is None or _normal(name.group()) == "skcallback":
            problems.append(f"{token!r} is not on PyPI")
        elif _normal(name.group()) not in known:
            problems.append(f"{token!r} is in no requirement of pyproject.toml")
        elif _specifier(token) not in ("", known[_normal(name.group())]):
            problems.append(f"{token!r} differs from pyproject.toml's range")
    return problems


def test_the_scan_finds_the_hints_it_guards():
    hints = dict(_hints())
    # The places a user meets first: the README, the docs, the docstrings.
    assert {"README.md", "docs/getting-started.md", "skcallback/callbacks/_integrations.py"} <= set(
        hints
    )
    assert _problems(" skcallback") == ["'skcallback' is not on PyPI"]
    assert _problems(" 'skcallback[optuna]'") == ["'skcallback[optuna]' is not on PyPI"]
    assert _problems(" -e '.[optuna,nope]'") == ["no extra 'nope'"]
    assert _problems(" 'torch>=2.0' --index-url https://x") == [
        "'torch>=2.0' differs from pyproject.toml's range"
    ]


def test_every_install_hint_in_the_repository_works_from_a_clone():
    problems = [
        f"{name}: pip install{arguments!r}: {problem}"
        for name, arguments in _hints()
        for problem in _problems(arguments)
    ]
    assert problems == []


def test_every_lazy_import_names_an_extra_of_pyproject():
    calls = [
        (path.name, match.group(1))
        for path in (ROOT / "skcallback").rglob("*.py")
        for match in re.finditer(r"import_extra\(\s*\"[^\"]+\",\s*\"([^\"]+)\"", path.read_text())
    ]
    assert len(calls) >= 6  # optuna (2), tensorboard, mlflow (2), pandas, matplotlib (2)
    assert [(name, extra) for name, extra in calls if extra not in EXTRAS] == []


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_the_hint_names_the_extra_and_its_packages(extra):
    hint = install_hint(extra)
    assert f"pip install '.[{extra}]'" in hint
    assert [problem for m in _HINT.finditer(hint) for problem in _problems(m.group(1))] == []
    for requirement in extra_requirements(extra):
        assert requirement in hint


def test_nested_extras_are_expanded_to_packages():
    assert "dask-ml>=2025.1.0" in extra_requirements("dask-ml")
    assert any(r.startswith("dask[distributed]") for r in extra_requirements("dask-ml"))
    assert not any(r.startswith("skcallback") for r in extra_requirements("all"))


def test_a_missing_package_is_named_with_its_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ModuleNotFoundError, match=r"^Owner needs optuna, from sk") as info:
        import_extra("optuna", "optuna", "Owner")
    assert info.value.name == "optuna"  # what a caller checks, as for any missing module


def test_an_installed_but_broken_package_is_not_called_missing(monkeypatch):
    # numpy is installed; a submodule that fails to import is not "needs numpy".
    monkeypatch.setitem(sys.modules, "numpy.nothing_here", None)
    with pytest.raises(ImportError, match=r"Owner cannot import numpy\.nothing_here \(") as info:
        import_extra("numpy.nothing_here", "pandas", "Owner")
    assert "reinstall 'pandas'" in str(info.value)
