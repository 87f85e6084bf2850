"""The package a user installs: ``python -m build`` makes an sdist holding
what the tests and docs need, and from it a wheel holding only the package,
with complete metadata. (``make wheel-check`` installs that wheel in a fresh
environment and runs the quick start there.)"""

import email
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import skcallback

ROOT = Path(__file__).resolve().parent.parent


# Not copied: setuptools adds the files a stale *.egg-info lists to the sdist.
_LEFT_OUT = shutil.ignore_patterns(
    ".*", "*.egg-info", "build", "dist", "site", "__pycache__", "latest*"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    pytest.importorskip("build")
    tree = tmp_path_factory.mktemp("tree") / "skcallback"
    shutil.copytree(ROOT, tree, ignore=_LEFT_OUT)
    shutil.copytree(ROOT / ".ci", tree / ".ci")
    out = tmp_path_factory.mktemp("dist")
    # No isolation: the environment's setuptools, so no download.
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(tree)],
        check=True,
        capture_output=True,
    )
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def test_the_wheel_holds_the_package_and_its_license_only(built):
    names = zipfile.ZipFile(built[1]).namelist()
    info = f"skcallback-{skcallback.__version__}.dist-info/"
    assert [n for n in names if not n.startswith(("skcallback/", info))] == []
    assert "skcallback/py.typed" in names and f"{info}licenses/LICENSE" in names
    assert "skcallback/callbacks/_logging.py" in names


def test_the_metadata_is_complete_and_claims_no_public_home(built):
    with zipfile.ZipFile(built[1]) as wheel:
        metadata = email.message_from_bytes(
            wheel.read(f"skcallback-{skcallback.__version__}.dist-info/METADATA")
        )
    assert metadata["Version"] == skcallback.__version__
    assert metadata["License-Expression"] == "BSD-3-Clause"
    classifiers = metadata.get_all("Classifier")
    for prefix in ("Development Status", "Intended Audience", "Operating System", "Typing"):
        assert any(c.startswith(prefix) for c in classifiers), prefix
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert "skcallback is not on PyPI yet" in metadata.get_payload()  # the README
    assert metadata.get_all("Project-URL") is None  # none exists yet


def test_the_sdist_holds_what_the_tests_and_docs_need(built):
    sdist, _ = built
    root = sdist.name.removesuffix(".tar.gz")
    with tarfile.open(sdist) as archive:
        names = set(archive.getnames())
    needed = [
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        "Makefile",
        "constraints.txt",
        "mkdocs.yml",
        "tests/conftest.py",
        "tests/data/model-format-1.skc",
        "docs/getting-started.md",
        "examples/quickstart.py",
        "benchmarks/run.py",
        ".ci/run",
    ]
    assert [name for name in needed if f"{root}/{name}" not in names] == []
