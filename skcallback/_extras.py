"""skcallback's optional extras: how to install one, and importing a package
that one provides.

skcallback is not on PyPI, so a hint to install it from there would fail
(or install whatever someone registered under the name): every hint names
the packages themselves, and the extra for a clone. The packages come
from the installed package's metadata, which ``pyproject.toml`` writes, so
a hint cannot drift from the extras it names.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import re
import shlex
from typing import Any

_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")
_SELF = re.compile(r"^skcallback\[([^\]]+)\]")


def extra_requirements(extra: str) -> list[str]:
    """The requirements (``name>=floor``) that skcallback's ``extra``
    installs, extras it names expanded; empty when the installed metadata
    does not know the extra (an install older than the extra)."""
    try:
        requires = importlib.metadata.requires("skcallback") or []
    except importlib.metadata.PackageNotFoundError:
        return []
    by_extra: dict[str, list[str]] = {}
    for line in requires:
        requirement, _, marker = line.partition(";")
        found = _EXTRA_MARKER.search(marker)
        if found is not None:
            by_extra.setdefault(found.group(1), []).append(requirement.strip())
    return _expand(extra, by_extra, set())


def _expand(extra: str, by_extra: dict[str, list[str]], seen: set[str]) -> list[str]:
    seen.add(extra)
    out: list[str] = []
    for requirement in by_extra.get(extra, []):
        nested = _SELF.match(requirement)
        if nested is None:
            out.append(requirement)
            continue
        for name in nested.group(1).split(","):
            if name.strip() not in seen:
                out += _expand(name.strip(), by_extra, seen)
    return out


def install_hint(extra: str, package: str | None = None) -> str:
    """How to install skcallback's ``extra``, in the wording every message
    uses: ``pip install`` of its packages (which works for any install),
    or of the extra in a clone of skcallback (it is not on PyPI).

    Parameters
    ----------
    extra : str
        The extra's name in ``pyproject.toml``.
    package : str, optional
        What to install when the installed metadata does not list the extra.
    """
    requirements = extra_requirements(extra) or [package or extra]
    packages = " ".join(shlex.quote(requirement) for requirement in requirements)
    return f"pip install {packages} (or, in a clone of skcallback, pip install '.[{extra}]')"


def import_extra(module: str, extra: str, owner: str, package: str | None = None) -> Any:
    """Import an optional dependency, or raise an ImportError naming the
    package that is missing and the extra that installs it.

    Parameters
    ----------
    module : str
        The module to import, e.g. ``"torch.utils.tensorboard"``.
    extra : str
        The extra that provides it, e.g. ``"tensorboard"``.
    owner : str
        What needs it, for the message, e.g. ``"TensorBoardLogger"``.
    package : str, optional
        The package the extra provides, when it is not the first part of
        ``module`` (``torch.utils.tensorboard`` needs ``tensorboard``).
    """
    needed = package or module.partition(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint = install_hint(extra, needed)
        if exc.name == needed or importlib.util.find_spec(needed) is None:
            raise ModuleNotFoundError(
                f"{owner} needs {needed}, from skcallback's {extra!r} extra: {hint}.", name=needed
            ) from exc
        # Installed, but broken or too old: say what failed.
        raise ImportError(
            f"{owner} cannot import {module} ({exc}); reinstall {extra!r}: {hint}.", name=needed
        ) from exc
