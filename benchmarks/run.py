"""skcallback benchmarks: every contender on the same workload, in one process,
interleaved over several rounds; medians and ratios are printed as a table and
saved as JSON (``benchmarks/results/latest.json``).

Run ``make bench`` (or ``python benchmarks/run.py --quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import contenders as c
import hostinfo
from contenders import regression_data

HERE = Path(__file__).resolve().parent
# Every full run is kept here (tracked): the README and docs/performance.md
# quote ranges over these runs, made by benchmarks/readme_figures.py.
RUNS = HERE / "results" / "runs"


def interleaved(
    runs: dict[str, Callable[[], object]],
    rounds: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median seconds of each run (by ``clock``: wall time unless told);
    every round runs each contender once, in turn, so drifts in machine
    speed hit all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            started = clock()
            run()
            times[name].append(clock() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


class Report:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, section, name, value, unit, target=None, passed=None):
        self.rows.append(
            {
                "section": section,
                "name": name,
                "value": value,
                "unit": unit,
                "target": target,
                "passed": passed,
            }
        )
        mark = "" if passed is None else ("  ok" if passed else "  MISSED")
        target_text = f"  (target {target})" if target else ""
        print(f"  {name:<48} {value:>10.3f} {unit:<8}{target_text}{mark}", flush=True)


def classification_data(n_rows: int, n_features: int, n_classes: int, seed: int = 0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_rows, n_features)).astype(np.float32)
    scores = X @ rng.normal(size=(n_features, n_classes)) + rng.gumbel(size=(n_rows, n_classes))
    return X, scores.argmax(axis=1).astype(np.int64)


def bench_small(report: Report, rounds: int, device: str, quick: bool) -> None:
    """S: MLP 64-64, batch 128, Adam 1e-3, 10 epochs, one thread (torch's
    and the BLAS scikit-learn's MLP uses): regression on 20,000 x 20, then
    10-class classification on 20,000 x 64."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        _bench_small(report, rounds, device, quick)
        _bench_small_classification(report, rounds, device, quick)
    torch.set_num_threads(os.cpu_count() or 1)


def _bench_small(report: Report, rounds: int, device: str, quick: bool) -> None:
    section = f"S overhead-bound ({device})"
    print(f"\n{section}: 20,000 x 20, MLP 64-64, batch 128, 10 epochs, 1 thread")
    torch.set_num_threads(1)
    X, y = regression_data(20_000, 20)
    shape = {"hidden": (64, 64), "batch_size": 128, "epochs": 2 if quick else 10, "device": device}
    no_valid = {"validation_fraction": None, **shape}
    runs = {
        "naive loop": lambda: c.naive_loop(X, y, **shape),
        "naive loop (fused Adam)": lambda: c.naive_loop(X, y, fused=True, **shape),
        "DataLoader loop": lambda: c.dataloader_loop(X, y, **shape),
        "skcallback (defaults)": lambda: c.skcallback_fit(X, y, **shape),
        "skcallback (no validation)": lambda: c.skcallback_fit(X, y, **no_valid),
        "skcallback (no validation, fast_path=False)": lambda: c.skcallback_fit(
            X, y, fast_path=False, **no_valid
        ),
        "skcallback (no validation) + 10 callbacks": lambda: c.skcallback_fit(
            X, y, callbacks=c.with_noop_callbacks(10), **no_valid
        ),
    }
    if installed("skorch"):
        runs["skorch (no validation)"] = lambda: c.skorch_fit(X, y, **shape)
    if device == "cpu":
        runs["scikit-learn MLPRegressor"] = lambda: c.sklearn_fit(X, y, **shape)
    c.skcallback_fit(X, y, **{**shape, "epochs": 1})  # warm-up: imports, allocator
    c.naive_loop(X, y, **{**shape, "epochs": 1})
    medians = interleaved(runs, rounds)
    naive = medians["naive loop"]
    for name, seconds in medians.items():
        report.add(section, f"{name} [s]", seconds, "s")
    ours = medians["skcallback (defaults)"]
    ours_same_work = medians["skcallback (no validation)"]
    # Same work: every row trains, no validation pass, the same (fused) Adam.
    report.add(
        section,
        "skcallback / naive fused Adam (same work)",
        ours_same_work / medians["naive loop (fused Adam)"],
        "ratio",
    )
    report.add(section, "skcallback no-validation / naive", ours_same_work / naive, "ratio")
    report.add(section, "skcallback defaults (10% validation) / naive", ours / naive, "ratio")
    report.add(section, "DataLoader / naive", medians["DataLoader loop"] / naive, "ratio")
    _fast_path_ratios(report, section, medians, "scikit-learn MLPRegressor")
    extra = medians["skcallback (no validation) + 10 callbacks"] / ours_same_work - 1
    report.add(
        section, "10 per-batch callbacks: slowdown", 100 * extra, "%", "<= 5 %", extra <= 0.05
    )
    if "skorch (no validation)" in medians:
        ratio = medians["skorch (no validation)"] / ours_same_work
        report.add(
            section, "skorch / skcallback (same work)", ratio, "ratio", ">= 2.5", ratio >= 2.5
        )
    if "scikit-learn MLPRegressor" in medians:
        report.add(
            section, "MLPRegressor / naive", medians["scikit-learn MLPRegressor"] / naive, "ratio"
        )


def _bench_small_classification(report: Report, rounds: int, device: str, quick: bool) -> None:
    """S, classification: 20,000 x 64, 10 classes, the same MLP and schedule."""
    section = f"S classification ({device})"
    print(f"\n{section}: 20,000 x 64, 10 classes, MLP 64-64, batch 128, 10 epochs, 1 thread")
    X, y = classification_data(20_000, 64, 10)
    shape = {"hidden": (64, 64), "batch_size": 128, "epochs": 2 if quick else 10, "device": device}
    no_valid = {"validation_fraction": None, **shape}
    runs = {
        "naive loop": lambda: c.naive_loop(X, y, **shape),
        "naive loop (fused Adam)": lambda: c.naive_loop(X, y, fused=True, **shape),
        "skcallback (no validation)": lambda: c.skcallback_fit(X, y, **no_valid),
        "skcallback (no validation, fast_path=False)": lambda: c.skcallback_fit(
            X, y, fast_path=False, **no_valid
        ),
    }
    if device == "cpu":
        runs["scikit-learn MLPClassifier"] = lambda: c.sklearn_fit(X, y, **shape)
    c.skcallback_fit(X, y, **{**no_valid, "epochs": 1})  # warm-up
    medians = interleaved(runs, rounds)
    for name, seconds in medians.items():
        report.add(section, f"{name} [s]", seconds, "s")
    _fast_path_ratios(report, section, medians, "scikit-learn MLPClassifier")


#: The contenders of an S section that train with autograd.
_AUTOGRAD = (
    "naive loop",
    "naive loop (fused Adam)",
    "DataLoader loop",
    "skcallback (no validation, fast_path=False)",
)


def bench_fixed(report: Report, rounds: int, quick: bool) -> None:
    """The fixed cost of a fit: one epoch on 100 x 20 rows (MLP 100, batch
    100: one step), CPU time, one thread; what every fit of a search, a
    cross_val_score on small data and every partial_fit pays."""
    from threadpoolctl import threadpool_limits

    section = "Fixed cost (cpu)"
    print(f"\n{section}: a 1-epoch fit on 100 x 20, MLP 100, batch 100, 1 thread, CPU time")
    X, y = regression_data(100, 20)
    shape = {"hidden": (100,), "batch_size": 100, "epochs": 1}
    repeats = 20 if quick else 200
    runs = {
        "skcallback (defaults)": _repeat(lambda: c.skcallback_fit(X, y, **shape), repeats),
        "skcallback (no validation)": _repeat(
            lambda: c.skcallback_fit(X, y, validation_fraction=None, **shape), repeats
        ),
        "naive loop (fused Adam)": _repeat(
            lambda: c.naive_loop(X, y, fused=True, **shape), repeats
        ),
        "scikit-learn MLPRegressor": _repeat(lambda: c.sklearn_fit(X, y, **shape), repeats),
    }
    if installed("skorch"):
        runs["skorch"] = _repeat(lambda: c.skorch_fit(X, y, **shape), repeats)
    with threadpool_limits(1):
        torch.set_num_threads(1)
        for run in runs.values():  # warm-up: imports, first-call caches
            run()
        medians = interleaved(runs, rounds, clock=time.process_time)
    torch.set_num_threads(os.cpu_count() or 1)
    for name, seconds in medians.items():
        report.add(section, f"{name} [ms]", 1e3 * seconds / repeats, "ms")
    # The defaults hold out 10% and validate them; MLPRegressor's do not.
    mlp = medians["scikit-learn MLPRegressor"]
    same_work = medians["skcallback (no validation)"] / mlp
    report.add(section, "skcallback no-validation / MLPRegressor", same_work, "ratio")
    ratio = medians["skcallback (defaults)"] / mlp
    target = ("<= 1.5", ratio <= 1.5)
    report.add(section, "skcallback defaults / MLPRegressor", ratio, "ratio", *target)


def _fast_path_ratios(report: Report, section: str, medians: dict, sklearn: str) -> None:
    """The fast path (skcallback's default, no validation) against the best
    autograd loop, its own autograd path and scikit-learn's MLP."""
    ours = medians["skcallback (no validation)"]
    best = min(medians[name] for name in _AUTOGRAD if name in medians)
    ratio = ours / best
    report.add(section, "skcallback / best autograd loop", ratio, "ratio", "<= 0.60", ratio <= 0.6)
    own = ours / medians["skcallback (no validation, fast_path=False)"]
    report.add(section, "skcallback fast path / fast_path=False", own, "ratio")
    if sklearn in medians:
        ratio = ours / medians[sklearn]
        name = sklearn.removeprefix("scikit-learn ")
        report.add(
            section, f"skcallback / {name} (same work)", ratio, "ratio", "<= 0.60", ratio <= 0.6
        )


def bench_floor(report: Report, rounds: int, quick: bool) -> None:
    """The built-in MLP's step against the floor of its approach: a loop
    with the same hand-derived gradients and fused Adam kernel and nothing
    else (``contenders.floor_loop``), on the S workloads with every row
    trained on; CPU time, one thread, interleaved rounds."""
    from threadpoolctl import threadpool_limits

    section = "Floor (cpu)"
    print(f"\n{section}: S regression and classification, no validation, 1 thread, CPU time")
    epochs = 2 if quick else 10
    shape = {"hidden": (64, 64), "batch_size": 128, "epochs": epochs}
    workloads = {
        "S regression": regression_data(20_000, 20),
        "S classification": classification_data(20_000, 64, 10),
    }
    with threadpool_limits(1):
        torch.set_num_threads(1)
        for name, (X, y) in workloads.items():
            runs = {
                "floor": lambda X=X, y=y: c.floor_loop(X, y, **shape),
                "skcallback": lambda X=X, y=y: c.skcallback_fit(
                    X, y, validation_fraction=None, **shape
                ),
            }
            for run in runs.values():  # warm-up
                run()
            medians = interleaved(runs, max(rounds, 3), clock=time.process_time)
            steps = epochs * -(-len(y) // shape["batch_size"])
            for contender, seconds in medians.items():
                report.add(section, f"{name}: {contender} [us/step]", 1e6 * seconds / steps, "us")
            ratio = medians["skcallback"] / medians["floor"]
            target = ("<= 1.25", ratio <= 1.25)
            report.add(section, f"{name}: skcallback step / floor", ratio, "ratio", *target)
    torch.set_num_threads(os.cpu_count() or 1)


def sparse_regression_data(n_rows: int, n_features: int, density: float, seed: int = 0):
    """A CSR matrix with ``density`` non-zeros and a linear target."""
    import scipy.sparse as sp

    rng = np.random.RandomState(seed)
    X = sp.random(n_rows, n_features, density=density, format="csr", random_state=rng)
    X = X.astype(np.float32)
    y = (X @ rng.normal(size=n_features) + 0.1 * rng.normal(size=n_rows)).astype(np.float32)
    return X, y


def bench_sparse(report: Report, rounds: int, quick: bool) -> None:
    """Sparse X: 50,000 x 10,000 at 0.1% density, MLP 64, batch 128, 3
    epochs, no validation, one thread; skcallback on the CSR matrix (sparse
    batches, a sparse first layer) against the same data densified. Timed
    in process CPU seconds, steadier than wall time on a busy machine (one
    thread: about the same when the machine is quiet)."""
    from threadpoolctl import threadpool_limits

    section = "Sparse (cpu)"
    rows = 5_000 if quick else 50_000
    print(f"\n{section}: {rows:,} x 10,000 at 0.1%, MLP 64, batch 128, 3 epochs, 1 thread")
    X, y = sparse_regression_data(rows, 10_000, 0.001)
    dense = X.toarray()
    shape = {
        "hidden": (64,),
        "batch_size": 128,
        "epochs": 1 if quick else 3,
        "validation_fraction": None,
    }
    runs = {
        "skcallback, sparse X [CPU s]": lambda: c.skcallback_fit(X, y, **shape),
        "skcallback, the same X dense [CPU s]": lambda: c.skcallback_fit(dense, y, **shape),
    }
    with threadpool_limits(1):
        torch.set_num_threads(1)
        c.skcallback_fit(X[:2000], y[:2000], **{**shape, "epochs": 1})  # warm-up
        medians = interleaved(runs, rounds, clock=time.process_time)
    torch.set_num_threads(os.cpu_count() or 1)
    for name, seconds in medians.items():
        report.add(section, name, seconds, "s")
    ratio = (
        medians["skcallback, sparse X [CPU s]"] / medians["skcallback, the same X dense [CPU s]"]
    )
    report.add(section, "sparse / dense", ratio, "ratio")


def bench_large(report: Report, rounds: int, device: str, quick: bool) -> None:
    """L: 200,000 x 100, MLP 512-512, batch 256, 2 epochs (compute-bound)."""
    section = f"L compute-bound ({device})"
    rows = 20_000 if quick else 200_000
    print(f"\n{section}: {rows:,} x 100, MLP 512-512, batch 256, 2 epochs, all threads")
    X, y = regression_data(rows, 100)
    shape = {"hidden": (512, 512), "batch_size": 256, "epochs": 2, "device": device}
    runs = {
        "naive loop": lambda: c.naive_loop(X, y, **shape),
        "skcallback (no validation)": lambda: c.skcallback_fit(
            X, y, validation_fraction=None, **shape
        ),
    }
    medians = interleaved(runs, rounds)
    for name, seconds in medians.items():
        report.add(section, f"{name} [s]", seconds, "s")
    ratio = medians["skcallback (no validation)"] / medians["naive loop"]
    report.add(section, "skcallback / naive", ratio, "ratio", "<= 1.02", ratio <= 1.02)


def _workload(rows: int, n_features: int, hidden, batch_size: int, epochs: int):
    """``(X, y, shape)``: regression data and the fit's settings, every row
    trained on (no validation)."""
    X, y = regression_data(rows, n_features)
    shape = {
        "hidden": hidden,
        "batch_size": batch_size,
        "epochs": epochs,
        "validation_fraction": None,
    }
    return X, y, shape


def bench_options(report: Report, rounds: int, device: str, quick: bool) -> None:
    """What compile=True and mixed precision change, on S and L (one thread
    for S). The compiled rows are later fits in a process: its first fit
    compiles the network (reported apart), the next ones reuse the compiled
    code, whatever estimator instance fits it."""
    section = f"Options ({device})"
    print(f"\n{section}: compile=True and precision='bf16-mixed' against the defaults")
    for label, rows, n_features, hidden, batch_size, epochs, threads in (
        ("S", 20_000, 20, (64, 64), 128, 10, 1),
        ("L", 20_000 if quick else 100_000, 100, (512, 512), 256, 2, os.cpu_count() or 1),
    ):
        torch.set_num_threads(threads)
        X, y, shape = _workload(rows, n_features, hidden, batch_size, 2 if quick else epochs)
        shape["device"] = device
        runs = {
            f"{label}: defaults [s]": lambda shape=shape, X=X, y=y: c.skcallback_fit(X, y, **shape),
            f"{label}: compile=True [s]": lambda shape=shape, X=X, y=y: c.skcallback_fit(
                X, y, compile=True, **shape
            ),
            f"{label}: bf16-mixed [s]": lambda shape=shape, X=X, y=y: c.skcallback_fit(
                X, y, precision="bf16-mixed", **shape
            ),
        }
        c.skcallback_fit(X, y, **{**shape, "epochs": 1})  # warm-up
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # A process's first compiled fit compiles (from torch's on-disk
            # cache when an earlier process left one); later fits of the same
            # network reuse it. Reported apart, so the medians are later fits.
            started = time.perf_counter()
            c.skcallback_fit(X, y, compile=True, **shape)
            first_compiled = time.perf_counter() - started
            medians = interleaved(runs, rounds)
        base = medians[f"{label}: defaults [s]"]
        report.add(
            section, f"{label}: compile=True, the process's first fit [s]", first_compiled, "s"
        )
        for name, seconds in medians.items():
            report.add(section, name, seconds, "s")
        for option in ("compile=True", "bf16-mixed"):
            report.add(
                section,
                f"{label}: {option} / defaults",
                medians[f"{label}: {option} [s]"] / base,
                "ratio",
            )
    torch.set_num_threads(os.cpu_count() or 1)


def bench_threads(report: Report, rounds: int, quick: bool) -> None:
    """What ``threads="auto"`` chooses, against one and all threads, on
    networks below, near and above its threshold (5e7 floating-point
    operations a step): S's 64-64 MLP (about 4e6), a 256-256 one (6e7) and
    L's 512-512 (5e8). Wall time: more threads are meant to finish sooner."""
    section = "Threads (cpu)"
    cores = os.cpu_count() or 1
    print(f"\n{section}: threads='auto' against 1 and {cores} threads")
    torch.set_num_threads(cores)
    for label, rows, n_features, hidden, batch_size, epochs in (
        ("S 64-64", 20_000, 20, (64, 64), 128, 3),
        ("M 256-256", 20_000, 20, (256, 256), 128, 3),
        ("L 512-512", 20_000 if quick else 100_000, 100, (512, 512), 256, 1),
    ):
        X, y, shape = _workload(rows, n_features, hidden, batch_size, 1 if quick else epochs)
        runs = {
            f"{label}: threads={threads!r} [s]": lambda threads=threads, shape=shape, X=X, y=y: (
                c.skcallback_fit(X, y, threads=threads, **shape)
            )
            for threads in ("auto", 1, cores)
        }
        c.skcallback_fit(X, y, **{**shape, "epochs": 1})  # warm-up
        medians = interleaved(runs, rounds)
        for name, seconds in medians.items():
            report.add(section, name, seconds, "s")
        auto = medians[f"{label}: threads='auto' [s]"]
        best = min(medians[f"{label}: threads={n} [s]"] for n in (1, cores))
        ratio = auto / best
        report.add(
            section,
            f"{label}: auto / the faster fixed count",
            ratio,
            "ratio",
            "<= 1.1",
            ratio <= 1.1,
        )
    _bench_threads_loaded(report, rounds, quick)


def _bench_threads_loaded(report: Report, rounds: int, quick: bool) -> None:
    """``threads="auto"`` against one and all threads on a busy machine: one
    busy-loop process per core, started here (a second before timing) and
    stopped here, while the 256-256 network trains (wall time)."""
    section = "Threads, loaded machine (cpu)"
    cores = os.cpu_count() or 1
    print(f"\n{section}: {cores} busy-loop processes; threads='auto' against 1 and {cores}")
    X, y, shape = _workload(20_000, 20, (256, 256), 128, 1)
    if quick:
        X, y = X[:5000], y[:5000]
    runs = {
        f"M 256-256: threads={threads!r} [s]": lambda threads=threads: c.skcallback_fit(
            X, y, threads=threads, **shape
        )
        for threads in ("auto", 1, cores)
    }
    c.skcallback_fit(X[:1000], y[:1000], **shape)  # warm-up (a process's first fit)
    code = "import time\nend = time.time() + 600\nwhile time.time() < end: pass"
    load = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(cores)]
    try:
        time.sleep(1.0)
        medians = interleaved(runs, rounds)
    finally:
        for process in load:
            process.kill()
            process.wait()
    for name, seconds in medians.items():
        report.add(section, name, seconds, "s")
    auto = medians["M 256-256: threads='auto' [s]"]
    best = min(medians[f"M 256-256: threads={n} [s]"] for n in (1, cores))
    ratio = auto / best
    report.add(
        section, "M 256-256: auto / the faster fixed count", ratio, "ratio", "<= 1.1", ratio <= 1.1
    )


def bench_predict(report: Report, rounds: int, quick: bool) -> None:
    section = "Predict (cpu)"
    rows = 100_000 if quick else 1_000_000
    threads = torch.get_num_threads()
    print(f"\n{section}: {rows:,} x 20 rows, MLP 64-64, every contender with {threads} threads")
    X, y = regression_data(20_000, 20)
    est = c.skcallback_fit(X, y, hidden=(64, 64), batch_size=128, epochs=1)
    X_big, _ = regression_data(rows, 20, seed=1)
    runs = {
        "raw inference_mode loop": lambda: c.raw_predict(est.module_, X_big),
        "skcallback predict": lambda: est.predict(X_big),
    }
    # A call takes about 0.12 s, and one in ten takes twice that on this
    # shared box (either contender): after a warm-up call of each, three
    # times the rounds keep the medians apart from those stalls.
    for run in runs.values():
        run()
    medians = interleaved(runs, 3 * rounds)
    for name, seconds in medians.items():
        report.add(section, f"{name} [s]", seconds, "s")
    ratio = medians["skcallback predict"] / medians["raw inference_mode loop"]
    report.add(section, "skcallback / raw", ratio, "ratio", "<= 1.10", ratio <= 1.10)

    # One row at a time, validation included: online serving.
    mlp = c.sklearn_fit(X, y, hidden=(64, 64), batch_size=128, epochs=1)
    calls = 200 if quick else 2000
    _one_row(report, section, "predict", est, mlp, X[:1], rounds, calls)
    X_c, y_c = classification_data(20_000, 20, 10)
    clf = c.skcallback_fit(X_c, y_c, hidden=(64, 64), batch_size=128, epochs=1)
    mlp_c = c.sklearn_fit(X_c, y_c, hidden=(64, 64), batch_size=128, epochs=1)
    _one_row(report, section, "predict_proba", clf, mlp_c, X_c[:1], rounds, calls)
    row = X[:1]

    # The same row as a list (a JSON request), and as a DataFrame for models
    # fitted on a DataFrame (feature names checked at every call).
    rows = {"list": (est, mlp, row.tolist())}
    if installed("pandas"):
        import pandas as pd

        columns = [f"x{i}" for i in range(X.shape[1])]
        frame = pd.DataFrame(X, columns=columns)
        rows["DataFrame"] = (
            c.skcallback_fit(frame, y, hidden=(64, 64), batch_size=128, epochs=1),
            c.sklearn_fit(frame, y, hidden=(64, 64), batch_size=128, epochs=1),
            frame.iloc[:1],
        )
    for kind, (ours, theirs, data) in rows.items():
        latency = interleaved(
            {
                "skcallback": _repeat(lambda ours=ours, data=data: ours.predict(data), calls),
                "MLPRegressor": _repeat(
                    lambda theirs=theirs, data=data: theirs.predict(data), calls
                ),
            },
            rounds,
        )
        for name, seconds in latency.items():
            report.add(section, f"one row, {kind}: {name} [us]", seconds / calls * 1e6, "us")
        ratio = latency["skcallback"] / latency["MLPRegressor"]
        met = ratio <= 1.0
        report.add(
            section, f"one row, {kind}: skcallback / MLPRegressor", ratio, "ratio", "<= 1.0", met
        )


def _one_row(report: Report, section: str, method: str, est, mlp, row, rounds: int, calls: int):
    """One row's ``method`` (validation and checks included) against the
    bare module call on it (``torch.from_numpy``, the module under
    ``inference_mode``) and scikit-learn's MLP; CPU time, interleaved."""
    module = est.module_

    def bare() -> object:
        with torch.inference_mode():
            return module(torch.from_numpy(row))

    mlp_name = type(mlp).__name__
    one_row = {
        "bare module call": bare,
        "raw inference_mode loop": lambda: c.raw_predict(module, row),
        "skcallback": lambda: getattr(est, method)(row),
        mlp_name: lambda: getattr(mlp, method)(row),
    }
    runs = {name: _repeat(run, calls) for name, run in one_row.items()}
    latency = interleaved(runs, 3 * rounds, clock=time.process_time)
    label = "one row" if method == "predict" else f"one row, {method}"
    for name, seconds in latency.items():
        report.add(section, f"{label}: {name} [us]", seconds / calls * 1e6, "us")
    for baseline, target in (("bare module call", 1.5), (mlp_name, 0.6)):
        ratio = latency["skcallback"] / latency[baseline]
        name = f"{label}: skcallback / {baseline}"
        report.add(section, name, ratio, "ratio", f"<= {target}", ratio <= target)


def _repeat(run: Callable[[], object], times: int) -> Callable[[], None]:
    def repeated() -> None:
        for _ in range(times):
            run()

    return repeated


def bench_memory(report: Report, quick: bool) -> None:
    section = "Memory (cpu)"
    rows = 100_000 if quick else 1_000_000
    data_mib = rows * 51 * 4 / 2**20
    print(f"\n{section}: fitting {rows:,} x 50 float32 ({data_mib:.0f} MiB), in separate processes")
    # Each child resets its own high-water mark (VmHWM) after making the
    # data and reads it after the fit: its figures do not depend on this
    # process's memory (getrusage's ru_maxrss would: Linux carries it over
    # exec, so both children reported this process's peak).
    costs = {}
    for kind in ("raw", "skcallback"):
        before, peak = map(float, _child_output("memory_child.py", kind, str(rows)).split())
        costs[kind] = peak - before
        report.add(section, f"{kind}: resident before the fit [MiB]", before, "MiB")
        report.add(section, f"{kind}: the fit's peak above that [MiB]", costs[kind], "MiB")
    extra = costs["skcallback"] - costs["raw"]
    report.add(section, "skcallback's fit above raw's [MiB]", extra, "MiB")
    share = extra / data_mib
    report.add(section, "... as a share of the data", 100 * share, "%", "<= 25 %", share <= 0.25)

    X, y = regression_data(10_000, 20)
    rss = {}

    def sample(ctx):
        if ctx.epoch in (10, 200 if not quick else 20):
            rss[ctx.epoch] = _current_rss_mib()

    from skcallback.callbacks import LambdaCallback

    epochs = 20 if quick else 200
    c.skcallback_fit(
        X,
        y,
        hidden=(64, 64),
        batch_size=128,
        epochs=epochs,
        callbacks=[LambdaCallback(on_epoch_end=sample)],
    )
    growth = rss[epochs] - rss[10]
    report.add(
        section, f"RSS growth epoch 10 -> {epochs}", growth, "MiB", "<= 1 MiB", growth <= 1.0
    )


def _child_output(script: str, *args: str) -> str:
    """The last line a benchmark script of this folder prints, run in a
    fresh process."""
    command = [sys.executable, str(HERE / script), *args]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=HERE)
    return done.stdout.strip().splitlines()[-1]


def _current_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def bench_growth(report: Report, quick: bool) -> None:
    section = "Growth (cpu)"
    sizes = (10_000, 100_000) if quick else (10_000, 100_000, 1_000_000)
    print(f"\n{section}: one epoch of S's model on {', '.join(f'{n:,}' for n in sizes)} rows")
    torch.set_num_threads(1)
    per_row = {}
    for n in sizes:
        X, y = regression_data(n, 20)
        started = time.perf_counter()
        c.skcallback_fit(X, y, hidden=(64, 64), batch_size=128, epochs=1, validation_fraction=None)
        per_row[n] = (time.perf_counter() - started) / n * 1e6
        report.add(section, f"{n:>9,} rows: cost per row", per_row[n], "us")
    spread = max(per_row.values()) / min(per_row.values())
    report.add(
        section,
        "largest / smallest per-row cost",
        spread,
        "ratio",
        "<= 1.5 (linear)",
        spread <= 1.5,
    )
    torch.set_num_threads(os.cpu_count() or 1)


def bench_grid_search(report: Report, rounds: int, quick: bool) -> None:
    """A typical small search: 8 candidates x 3 folds, then the refit.

    Every fit trains with one torch thread whatever ``n_jobs`` is:
    ``threads="auto"`` picks one for these small steps, and joblib gives each
    worker one. The refit on all the data runs alone whatever ``n_jobs`` is,
    which caps the speed-up (Amdahl); the search without it is reported too,
    and so is scikit-learn's ``MLPRegressor`` on the same grid, whose
    speed-up meets the same caps (joblib's dispatch, the refit, two cores
    shared with the parent process). The timed searches run with the
    workers started; a cold search, in a fresh process, adds their start-up,
    which is reported by part.
    """
    from grid_child import search_setup, sklearn_search_setup
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV
    from threadpoolctl import threadpool_limits

    section = "GridSearchCV (cpu)"
    print(f"\n{section}: 8 candidates x 3 folds + refit, n_jobs=1 vs n_jobs=2, one thread per fit")
    X, y, base, grid = search_setup(quick)
    _, _, mlp, mlp_grid = sklearn_search_setup(quick)
    GridSearchCV(base, grid, cv=3, n_jobs=2).fit(X, y)  # start the worker processes

    def search(estimator, candidates, n_jobs: int, refit: bool) -> Callable[[], object]:
        def run() -> object:
            search = GridSearchCV(estimator, candidates, cv=3, n_jobs=n_jobs, refit=refit)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                return search.fit(X, y)

        return run

    runs = {
        "n_jobs=1 [s]": search(base, grid, 1, True),
        "n_jobs=2 [s]": search(base, grid, 2, True),
        "n_jobs=1, no refit [s]": search(base, grid, 1, False),
        "n_jobs=2, no refit [s]": search(base, grid, 2, False),
        "MLPRegressor, n_jobs=1 [s]": search(mlp, mlp_grid, 1, True),
        "MLPRegressor, n_jobs=2 [s]": search(mlp, mlp_grid, 2, True),
    }
    # One BLAS thread in this process too (joblib gives each worker one).
    with threadpool_limits(1):
        medians = interleaved(runs, rounds)
    for name, seconds in medians.items():
        report.add(section, name, seconds, "s")
    speedup = medians["n_jobs=1 [s]"] / medians["n_jobs=2 [s]"]
    report.add(section, "speed-up of n_jobs=2", speedup, "x")
    search_only = medians["n_jobs=1, no refit [s]"] / medians["n_jobs=2, no refit [s]"]
    report.add(section, "speed-up of n_jobs=2, search without refit", search_only, "x")
    theirs = medians["MLPRegressor, n_jobs=1 [s]"] / medians["MLPRegressor, n_jobs=2 [s]"]
    report.add(section, "MLPRegressor: speed-up of n_jobs=2", theirs, "x")
    # Parallel search scales as well as scikit-learn's own MLP does (within
    # the run-to-run noise), whose fits carry no torch or callback machinery.
    relative = speedup / theirs
    report.add(
        section,
        "speed-up / MLPRegressor's speed-up",
        relative,
        "ratio",
        ">= 0.95",
        relative >= 0.95,
    )

    cold = json.loads(_child_output("grid_child.py", "search", *(["--quick"] if quick else [])))
    workers = json.loads(_child_output("grid_child.py", "workers"))
    report.add(section, "cold start: imports in the parent [s]", cold["import"], "s")
    report.add(section, "cold start: first n_jobs=2 search [s]", cold["cold"], "s")
    report.add(section, "cold start: second n_jobs=2 search [s]", cold["warm"], "s")
    report.add(section, "cold start: two idle workers [s]", workers["start"], "s")
    report.add(section, "cold start: imports in the workers [s]", workers["import"], "s")
    report.add(section, "cold start: first fit in each worker [s]", workers["first fit"], "s")
    report.add(section, "cold start: second fit in each worker [s]", workers["second fit"], "s")


def bench_inputs(report: Report, rounds: int, quick: bool) -> None:
    """Inputs beyond a table, each against the hand-written loop or the
    array path at equal work (same module, data, batch size, Adam, epochs;
    no validation anywhere), CPU time with one thread:

    - a user CNN on digits images (n, 1, 8, 8), from arrays, a plain
      ``TensorDataset`` (unwrapped to the arrays) and a map-style Dataset of
      the same tensors (loaded item by item, ``num_workers=0``);
    - a user GRU on variable-length sequences, padded per batch
      (``pad_sequences``; the hand loop pads with ``pad_sequence``), the
      hand loop on our batches (recorded from one fit: same rows, so the
      same padding); skorch shuffles its own, of the same sizes;
    - a Dataset of the digits whose items take 1 ms each to load
      (I/O-bound), 2 epochs, with ``num_workers=2`` (and persistent
      workers) against 0, in wall time (the workers' time is not this
      process's CPU time). Each pass over the items starts its workers: the
      pass that reads the targets, then each epoch unless persistent.
    """
    from threadpoolctl import threadpool_limits

    from skcallback import pad_sequences

    section = "Inputs (cpu)"
    epochs = 2 if quick else 10
    print(f"\n{section}: CNN on digits images, GRU on sequences, Datasets; 1 thread, CPU time")
    X, y = c.digits_images()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    cnn = {"batch_size": 64, "epochs": epochs}
    images = {
        "CNN: hand loop [CPU s]": lambda: c.hand_loop(c.CNN, X, y, fused=False, **cnn),
        "CNN: hand loop (fused Adam) [CPU s]": lambda: c.hand_loop(c.CNN, X, y, **cnn),
        "CNN: skcallback, arrays [CPU s]": lambda: c.skcallback_module_fit(c.CNN, X, y, **cnn),
        "CNN: skcallback, TensorDataset [CPU s]": lambda: c.skcallback_module_fit(
            c.CNN, torch.utils.data.TensorDataset(Xt, yt), None, **cnn
        ),
        "CNN: skcallback, map-style Dataset [CPU s]": lambda: c.skcallback_module_fit(
            c.CNN, c.ItemTensors(Xt, yt), None, **cnn
        ),
    }
    samples, labels = c.sequences(200 if quick else 1000)
    gru = {"batch_size": 64, "epochs": 1 if quick else 3}
    ours = c.skcallback_batches(samples, labels, **gru)
    sequences = {
        "GRU: hand loop (fused Adam) [CPU s]": lambda: c.hand_sequence_loop(
            samples, labels, batches=ours, **gru
        ),
        "GRU: skcallback [CPU s]": lambda: c.skcallback_module_fit(
            c.GRU, samples, labels, dataloader__collate_fn=pad_sequences, **gru
        ),
    }
    if installed("skorch"):
        images["CNN: skorch [CPU s]"] = lambda: c.skorch_module_fit(c.CNN, X, y, **cnn)
        sequences["GRU: skorch [CPU s]"] = lambda: c.skorch_module_fit(
            c.GRU, c.Pairs(samples, labels), None, iterator_train__collate_fn=c.padded_dict, **gru
        )
    with threadpool_limits(1):
        torch.set_num_threads(1)
        medians = {}
        for runs in (images, sequences):
            for run in runs.values():  # warm-up: imports, first-call caches
                run()
            medians.update(interleaved(runs, rounds, clock=time.process_time))
        n_slow = 128 if quick else len(X)
        slow = c.SlowItems(Xt[:n_slow], yt[:n_slow])
        loading = {
            f"1 ms items, {name} [s]": lambda options=options: c.skcallback_module_fit(
                c.CNN, slow, None, batch_size=64, epochs=1 if quick else 2, **options
            )
            for name, options in (
                ("num_workers=0", {}),
                ("num_workers=2", {"dataloader__num_workers": 2}),
                (
                    "num_workers=2, persistent",
                    {"dataloader__num_workers": 2, "dataloader__persistent_workers": True},
                ),
            )
        }
        medians.update(interleaved(loading, max(1, rounds // 2 + 1)))
    torch.set_num_threads(os.cpu_count() or 1)
    for name, seconds in medians.items():
        report.add(section, name, seconds, "s")
    _inputs_ratios(report, section, medians)


def _inputs_ratios(report: Report, section: str, medians: dict) -> None:
    """The ratios of ``bench_inputs`` and their targets."""
    for model, hand in (
        ("CNN", ("CNN: hand loop", "CNN: hand loop (fused Adam)")),
        ("GRU", ("GRU: hand loop (fused Adam)",)),
    ):
        ours = medians[f"{model}: skcallback{', arrays' if model == 'CNN' else ''} [CPU s]"]
        best = min(medians[f"{name} [CPU s]"] for name in hand)
        ratio = ours / best
        report.add(
            section,
            f"{model}: skcallback / best hand loop",
            ratio,
            "ratio",
            "<= 1.05",
            ratio <= 1.05,
        )
        if f"{model}: skorch [CPU s]" in medians:
            ratio = medians[f"{model}: skorch [CPU s]"] / ours
            report.add(section, f"{model}: skorch / skcallback", ratio, "ratio", "> 1", ratio > 1)
    arrays = medians["CNN: skcallback, arrays [CPU s]"]
    for kind in ("TensorDataset", "map-style Dataset"):
        ratio = medians[f"CNN: skcallback, {kind} [CPU s]"] / arrays
        report.add(section, f"{kind} / arrays", ratio, "ratio", "<= 1.15", ratio <= 1.15)
    alone = medians["1 ms items, num_workers=0 [s]"]
    speedup = alone / medians["1 ms items, num_workers=2 [s]"]
    report.add(
        section, "1 ms items: speed-up of num_workers=2", speedup, "x", ">= 1.6", speedup >= 1.6
    )
    speedup = alone / medians["1 ms items, num_workers=2, persistent [s]"]
    report.add(section, "1 ms items: speed-up of num_workers=2, persistent", speedup, "x")


def bench_inference(report: Report, rounds: int, quick: bool) -> None:
    """predict_proba of a classifier against its exports (skcallback.export):
    ONNX Runtime on the ONNX file, the TorchScript file; one row (online
    serving, per call) and 10,000 rows (a batch)."""
    section = "Inference (cpu)"
    threads = torch.get_num_threads()
    print(f"\n{section}: MLP 64-64 on 20 features, 5 classes, {threads} threads each")
    from skcallback import NeuralClassifier, export

    X, y = classification_data(20_000, 20, 5)
    clf = NeuralClassifier(hidden_layer_sizes=(64, 64), max_epochs=1, random_state=0).fit(X, y)
    runners = {"skcallback predict_proba": clf.predict_proba}
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit's, a contender here
        if installed("onnxruntime") and installed("onnx"):
            runners["ONNX Runtime"] = _onnx_session(export(clf, Path(folder, "m.onnx")), threads)
        script = torch.jit.load(str(export(clf, Path(folder, "m.pt"), "torchscript")))
        runners["TorchScript"] = lambda rows: _no_grad_call(script, rows)
        for n_rows, calls in ((1, 50 if quick else 1000), (10_000, 1 if quick else 20)):
            rows, label = X[:n_rows], "one row" if n_rows == 1 else f"{n_rows:,} rows"
            runs = {
                name: _repeat(lambda f=f, rows=rows: f(rows), calls) for name, f in runners.items()
            }
            for run in runs.values():
                run()  # warm-up
            medians = interleaved(runs, rounds)
            unit, scale = ("us", 1e6) if n_rows == 1 else ("ms", 1e3)
            for name, seconds in medians.items():
                report.add(section, f"{label}: {name} [{unit}]", seconds / calls * scale, unit)
            ours = medians["skcallback predict_proba"]
            for name in list(runners)[1:]:
                report.add(section, f"{label}: skcallback / {name}", ours / medians[name], "ratio")


def _onnx_session(path: Path, threads: int) -> Callable[[np.ndarray], object]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # as torch's, for a fair comparison
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda rows: session.run(["probabilities"], {"X": rows})[0]


def _no_grad_call(module: Callable, rows: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return module(torch.from_numpy(rows))[1].numpy()


def bench_ddp(report: Report, rounds: int, quick: bool) -> None:
    """strategy="ddp": the L workload (MLP 512-512, 2 epochs, no
    validation) on two torchrun processes of one thread each, 128 rows per
    rank and step, against one process of one thread with batch 256 (the
    same steps); wall time (the processes run in parallel), interleaved."""
    section = "DDP, 2 processes x 1 thread (cpu, gloo)"
    rows = 20_000 if quick else 200_000
    print(f"\n{section}: L workload, {rows:,} x 100, MLP 512-512, 2 epochs")
    X, y = regression_data(rows, 100)
    shape = {"hidden": (512, 512), "batch_size": 256, "epochs": 2, "validation_fraction": None}
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone"]
    launch += [str(HERE / "ddp_child.py"), str(rows), "128"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent)}
    measured: dict[str, list[float]] = {"one": [], "ddp": [], "allreduce": []}
    torch.set_num_threads(1)
    c.skcallback_fit(X[:256], y[:256], threads=1, **shape)  # warm, as each rank is
    for _ in range(rounds):
        started = time.perf_counter()
        c.skcallback_fit(X, y, threads=1, **shape)
        measured["one"].append(time.perf_counter() - started)
        done = subprocess.run(launch, capture_output=True, text=True, check=True, cwd=HERE, env=env)
        seconds, allreduce = (float(v) for v in done.stdout.strip().splitlines()[-1].split())
        measured["ddp"].append(seconds)
        measured["allreduce"].append(allreduce / seconds)
    torch.set_num_threads(os.cpu_count() or 1)
    one, ddp = statistics.median(measured["one"]), statistics.median(measured["ddp"])
    report.add(section, "one process [samples/s]", 2 * rows / one, "1/s")
    report.add(section, "2 ranks [samples/s]", 2 * rows / ddp, "1/s")
    share = statistics.median(measured["allreduce"])
    report.add(section, "all-reduce share of a step", share, "ratio")
    report.add(section, "speedup 2 ranks / one", one / ddp, "ratio", ">= 1.5", one / ddp >= 1.5)


def bench_import(report: Report, rounds: int, quick: bool) -> None:
    """Cold start: ``import skcallback`` in a new process against
    ``import sklearn.neural_network`` (scikit-learn's MLP) and ``import torch``
    alone; CPU time of the child (user and system), interleaved."""
    section = "Import (cpu)"
    print(f"\n{section}: a new Python process importing each, CPU time")
    statements = {
        "import torch": "import torch",
        "import sklearn.neural_network": "import sklearn.neural_network",
        "import skcallback": "import skcallback",
        "import torch, sklearn.neural_network": "import torch, sklearn.neural_network",
    }
    times: dict[str, list[float]] = {name: [] for name in statements}
    for _ in range(max(3, rounds)):
        for name, statement in statements.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([sys.executable, "-c", statement], check=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            times[name].append(cpu)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, seconds in medians.items():
        report.add(section, f"{name} [s]", seconds, "s")
    own = medians["import skcallback"] - medians["import torch, sklearn.neural_network"]
    report.add(section, "skcallback beyond torch and scikit-learn's MLP [s]", own, "s")


def markdown(machine: dict, rows: list[dict], host: dict | None = None) -> str:
    """The results as a Markdown table, one per section, after the host."""
    lines = [
        f"Machine: {machine['cpu_count']} CPU cores ({machine['processor']}), "
        f"{machine['platform']}, Python {machine['python']}, torch {machine['torch']}, "
        f"GPU: {machine['cuda'] or 'none'}; medians of {machine['rounds']} interleaved rounds.",
    ]
    if host is not None:
        lines += ["", *hostinfo.summary(host)]
    section = None
    for row in rows:
        if row["section"] != section:
            section = row["section"]
            lines += [
                "",
                f"**{section}**",
                "",
                "| measure | value | target | met |",
                "| --- | ---: | --- | --- |",
            ]
        met = "" if row["passed"] is None else ("yes" if row["passed"] else "**no**")
        lines.append(
            f"| {row['name']} | {row['value']:.3f} {row['unit']} | {row['target'] or ''} | {met} |"
        )
    return "\n".join(lines) + "\n"


def save(path: Path, machine: dict, host: dict, rows: list[dict]) -> None:
    """The run as JSON at ``path`` and as Markdown beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    run = {"machine": machine, "host": host, "results": rows}
    path.write_text(json.dumps(run, indent=2) + "\n")
    path.with_suffix(".md").write_text(markdown(machine, rows, host))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", default=str(HERE / "results" / "latest.json"))
    parser.add_argument(
        "--no-record",
        action="store_true",
        help=f"do not add this run to {RUNS.relative_to(HERE.parent)} (quick runs never are)",
    )
    parser.add_argument(
        "--sections",
        default="S,floor,fixed,L,predict,threads,options,memory,growth,grid,sparse,inputs,inference,ddp,import",
        help="comma-separated sections to run (default: all)",
    )
    args = parser.parse_args()
    sections = set(args.sections.split(","))

    rounds = 1 if args.quick else args.rounds
    machine = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "rounds": rounds,
        "quick": args.quick,
    }
    print("machine:", json.dumps(machine))
    host = hostinfo.describe()
    print("\n".join(hostinfo.summary(host)))
    report = Report()
    runs = {
        "S": lambda device: bench_small(report, rounds, device, args.quick),
        "floor": lambda device: bench_floor(report, rounds, args.quick),
        "fixed": lambda device: bench_fixed(report, rounds, args.quick),
        "L": lambda device: bench_large(report, max(1, rounds // 2 + 1), device, args.quick),
        "predict": lambda device: bench_predict(report, rounds, args.quick),
        "threads": lambda device: bench_threads(report, min(rounds, 3), args.quick),
        "options": lambda device: bench_options(report, 1 if args.quick else 2, device, args.quick),
        "memory": lambda device: bench_memory(report, args.quick),
        "growth": lambda device: bench_growth(report, args.quick),
        "grid": lambda device: bench_grid_search(report, rounds, args.quick),
        "sparse": lambda device: bench_sparse(report, min(rounds, 3), args.quick),
        "inputs": lambda device: bench_inputs(report, rounds, args.quick),
        "inference": lambda device: bench_inference(report, rounds, args.quick),
        "ddp": lambda device: bench_ddp(report, min(rounds, 3), args.quick),
        "import": lambda device: bench_import(report, rounds, args.quick),
    }
    for name, run in runs.items():
        if name in sections:
            run("cpu")
    if torch.cuda.is_available():
        for name in ("S", "L", "options"):
            if name in sections:
                runs[name]("cuda")
    else:
        print("\nno CUDA device: GPU rows skipped")
    host = hostinfo.finish(host)
    saved = [Path(args.output)]
    if not (args.quick or args.no_record):
        saved.append(RUNS / f"{host['started'].replace(':', '')}-{host['host_id']}.json")
    for path in saved:
        save(path, machine, host, report.rows)
    missed = [row["name"] for row in report.rows if row["passed"] is False]
    print(f"\nsaved {', '.join(map(str, saved))}; targets missed: {missed or 'none'}")


if __name__ == "__main__":
    main()
