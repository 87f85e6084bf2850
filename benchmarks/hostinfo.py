"""The host a benchmark ran on, recorded with every run: figures measured on
a busy machine or another BLAS build are not the same figures, and a reader
of a stored run must be able to tell which they are."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import os
import platform
import re
import subprocess
from pathlib import Path

import numpy as np
import sklearn
import threadpoolctl
import torch

# The lines of torch.__config__.show() that say which kernels its CPU
# operations run (the full text is stored too).
TORCH_BUILD_KEYS = ("BLAS_INFO", "LAPACK_INFO", "USE_MKL", "USE_MKLDNN", "USE_OPENMP")


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo``, else what ``platform``
    says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or None where the OS has none."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def usable_cores() -> int:
    """The cores this process may run on (its affinity), else all cores."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def torch_build() -> dict:
    """torch's BLAS/LAPACK, MKL, oneDNN and OpenMP build settings and the CPU
    kernels it dispatches to, with the full texts it prints."""
    shown = torch.__config__.show()
    found = dict(re.findall(r"(\w+)=([^,\s]*)", shown))
    settings = {key: found[key] for key in TORCH_BUILD_KEYS if key in found}
    libraries = [
        line.strip(" -")
        for line in shown.splitlines()
        if any(name in line for name in ("Math Kernel", "MKL-DNN", "oneDNN", "OpenMP "))
    ]
    return {
        "settings": settings,
        "libraries": libraries,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkl": torch.backends.mkl.is_available(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "show": shown,
        "parallel_info": torch.__config__.parallel_info(),
    }


def numpy_build() -> dict:
    """NumPy's BLAS/LAPACK and SIMD extensions (``np.show_config``)."""
    try:
        config = np.show_config(mode="dicts")
    except TypeError:  # NumPy < 1.26 prints only
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            np.show_config()
        return {"show": printed.getvalue()}
    dependencies = config.get("Build Dependencies", {})
    return {
        "blas": _library(dependencies.get("blas", {})),
        "lapack": _library(dependencies.get("lapack", {})),
        "simd": config.get("SIMD Extensions", {}),
    }


def _library(entry: dict) -> str:
    name = entry.get("name", "?")
    return f"{name} {entry.get('version', '')}".strip()


def thread_pools() -> list[dict]:
    """threadpoolctl's view of the loaded BLAS and OpenMP libraries: which
    library, version, kernel architecture and thread count."""
    keys = ("user_api", "internal_api", "version", "architecture", "num_threads", "prefix")
    return [{key: pool.get(key) for key in keys} for pool in threadpoolctl.threadpool_info()]


def git_commit() -> str | None:
    """The commit measured, with ``+dirty`` when the tree has changes."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return None
    return f"{commit}+dirty" if dirty else commit or None


def _skcallback() -> str:
    """The version of skcallback measured, and where it was imported from
    (a checkout on ``PYTHONPATH`` or the installed one)."""
    import skcallback

    return f"{skcallback.__version__} ({Path(skcallback.__file__).parent})"


def describe() -> dict:
    """Everything recorded about the host before a run (``finish`` adds the
    load after it)."""
    model = cpu_model()
    return {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        # A name for the host that does not publish its hostname.
        "host_id": hashlib.sha256(f"{platform.node()} {model}".encode()).hexdigest()[:8],
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores(),
        "load_before": load_average(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            "skcallback": _skcallback(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "threadpoolctl": threadpoolctl.__version__,
        },
        "torch_build": torch_build(),
        "numpy_build": numpy_build(),
        "thread_pools": thread_pools(),
        "commit": git_commit(),
    }


def finish(host: dict) -> dict:
    """``host`` with the load average and time at the end of the run."""
    return {
        **host,
        "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_after": load_average(),
    }


def summary(host: dict) -> list[str]:
    """The host as a few Markdown lines, for the table of a run."""
    build = host["torch_build"]
    settings = ", ".join(f"{key}={value}" for key, value in build["settings"].items())
    pools = "; ".join(
        f"{pool['internal_api']} {pool['version'] or ''} {pool['architecture'] or ''}".strip()
        + f" ({pool['prefix']})"
        for pool in host["thread_pools"]
    )
    versions = ", ".join(f"{name} {version}" for name, version in host["versions"].items())
    return [
        f"Host {host['host_id']}: {host['cpu_model']}, {host['cpu_count']} cores "
        f"({host['usable_cores']} usable), {host['platform']}, Python {host['python']}; "
        f"load average (1, 5, 15 min) {host['load_before']} before, "
        f"{host.get('load_after')} after; {host['started']} to {host.get('finished')}, "
        f"commit {host['commit']}.",
        f"Versions: {versions}.",
        f"torch build: {settings}; CPU kernels {build['cpu_capability']}; "
        f"{'; '.join(build['libraries'])}.",
        f"NumPy: BLAS {host['numpy_build'].get('blas')}, "
        f"LAPACK {host['numpy_build'].get('lapack')}; loaded pools: {pools}.",
    ]
