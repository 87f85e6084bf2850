"""The speed figures README.md and docs/performance.md quote, made from every
recorded run of ``make bench`` (``benchmarks/results/runs/*.json``): each a
range over the runs, lowest to highest, never one run's figure, said with
how many runs and hosts it comes from and how loaded the hosts were.

Each file holds its figures between two markers; this script writes them
there, and a test (tests/test_benchmarks.py) keeps them equal to what the
recorded runs give. After a ``make bench``, commit its run and run::

    python benchmarks/readme_figures.py --write   # or --check, or no flag to print
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RUNS = HERE / "results" / "runs"

#: The quoted figures: name -> (section, row of ``make bench``, format of a value).
FIGURES: dict[str, tuple[str, str, str]] = {
    "s_fused": ("S overhead-bound (cpu)", "skcallback / naive fused Adam (same work)", "{:.2f}x"),
    "s_mlp": ("S overhead-bound (cpu)", "skcallback / MLPRegressor (same work)", "{:.2f}x"),
    "c_best": ("S classification (cpu)", "skcallback / best autograd loop", "{:.2f}x"),
    "c_mlp": ("S classification (cpu)", "skcallback / MLPClassifier (same work)", "{:.2f}x"),
    "skorch": ("S overhead-bound (cpu)", "skorch / skcallback (same work)", "{:.1f}x"),
    "callbacks": ("S overhead-bound (cpu)", "10 per-batch callbacks: slowdown", "{:.0f}%"),
    "large": ("L compute-bound (cpu)", "skcallback / naive", "{:.2f}x"),
    "row": ("Predict (cpu)", "one row: skcallback [us]", "{:.0f} us"),
    "row_mlp": ("Predict (cpu)", "one row: MLPRegressor [us]", "{:.0f} us"),
    "frame": ("Predict (cpu)", "one row, DataFrame: skcallback [us]", "{:.0f} us"),
    "frame_mlp": ("Predict (cpu)", "one row, DataFrame: MLPRegressor [us]", "{:.0f} us"),
    "big_predict": ("Predict (cpu)", "skcallback / raw", "{:.2f}x"),
    "memory": ("Memory (cpu)", "skcallback's fit above raw's [MiB]", "{:.0f} MiB"),
    "memory_share": ("Memory (cpu)", "... as a share of the data", "{:.0f}%"),
}

README = """\
- **Faster than a good hand-written loop**: on small tabular data (20,000 x
  20, MLP 64-64, 10 epochs, one thread), at equal work a fit takes {s_fused}
  the time of a plain PyTorch loop with fused Adam and {s_mlp} scikit-learn's
  `MLPRegressor` ({c_best} the best autograd loop and {c_mlp} `MLPClassifier`
  on 10-class classification): the built-in MLP trains with hand-derived
  gradients, the same model as autograd to float rounding. skorch takes
  {skorch} as long, and 10 per-batch callbacks change a fit's time by
  {callbacks}. On a compute-bound model it takes {large} the plain loop. A
  one-row `predict` takes {row}, against {row_mlp} for `MLPRegressor` (from a
  DataFrame: {frame} against {frame_mlp}); a 1M-row `predict` takes
  {big_predict} a raw `inference_mode` loop (it validates the input and
  returns float64). A 1M-row fit holds {memory} ({memory_share} of the data)
  more than the raw loop at its peak. Each figure is the range, lowest to
  highest, over {where}; see `docs/performance.md`.
"""

PERFORMANCE_INTRO = """\
Every figure below is the range, lowest to highest, over {where}, as the
README quotes them; every recorded run and its host follow. Only quiet runs
are quoted: a 1-minute load average, at the run's start and end, of at
most the cores it could use plus one (its own process). A busy host slows
every contender, and not by one factor, so its ratios move too.
"""


def load_runs(folder: Path = RUNS) -> list[dict]:
    """The recorded full runs (quick runs are never recorded), oldest first."""
    runs = [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
    return [run for run in runs if not run["machine"].get("quick")]


def quiet(run: dict) -> bool:
    """Whether ``run`` had its host to itself: a 1-minute load average, at
    its start and its end, of at most the cores it could use plus one (its
    own process). A busier host slows every contender, not by one factor,
    so its ratios say more about the load than about the code."""
    host = run["host"]
    loads = [load[0] for load in (host["load_before"], host["load_after"]) if load]
    return bool(loads) and max(loads) <= host["usable_cores"] + 1


def quoted_runs(runs: list[dict]) -> list[dict]:
    """The runs the figures are quoted from: the quiet ones that measured at
    least one quoted row (a run of other sections adds nothing to them)."""
    chosen = [
        run
        for run in runs
        if quiet(run) and any(values([run], section, name) for section, name, _ in FIGURES.values())
    ]
    if not chosen:
        raise SystemExit(
            f"No quiet recorded run in {RUNS} (of {len(runs)}): run `make bench` on a host "
            "with no other work, commit its run, then run this script."
        )
    return chosen


def values(runs: list[dict], section: str, name: str) -> list[float]:
    """The value of row ``name`` of ``section`` in each run that has it."""
    return [
        row["value"]
        for run in runs
        for row in run["results"]
        if row["section"] == section and row["name"] == name
    ]


def span(found: list[float], form: str) -> str:
    """``found`` as ``lowest-highest`` (one figure where they print alike),
    in ``form``: ``0.43-0.49x``, ``-1% to 3%``."""
    low, high = (form.format(value) for value in (min(found), max(found)))
    if low == high:
        return low
    unit = form[form.index("}") + 1 :]
    if min(found) >= 0:
        return f"{low.removesuffix(unit)}-{high}"
    return f"{low} to {high}"


def figures(runs: list[dict]) -> dict[str, str]:
    """Each quoted figure's range over the quiet ``runs``; a figure no run
    has is an error naming its row (a renamed row must be renamed here too)."""
    runs = quoted_runs(runs)
    quoted = {}
    for key, (section, name, form) in FIGURES.items():
        found = values(runs, section, name)
        if not found:
            raise SystemExit(f"No recorded run has the row {name!r} of {section!r} ({RUNS}).")
        quoted[key] = span(found, form)
    return quoted


def provenance(runs: list[dict]) -> str:
    """Which runs, hosts, dates and loads the figures come from."""
    loaded = sum(not quiet(run) for run in runs)
    runs = quoted_runs(runs)
    hosts = {run["host"]["host_id"] for run in runs}
    days = sorted({run["host"]["started"][:10] for run in runs})
    dates = " to ".join(dict.fromkeys([days[0], days[-1]]))
    loads = [
        load[0]
        for run in runs
        for load in (run["host"]["load_before"], run["host"]["load_after"])
        if load
    ]
    cores = sorted({run["host"]["usable_cores"] for run in runs})
    return (
        f"{len(runs)} recorded run{'s' * (len(runs) != 1)} of `make bench` on "
        f"{len(hosts)} host{'s' * (len(hosts) != 1)} ({dates}; "
        f"{'/'.join(map(str, cores))} cores, 1-minute load average "
        f"{span(loads, '{:.1f}')} at the runs' starts and ends"
        + (f"; {loaded} run{'s' * (loaded != 1)} on a busy host left out)" if loaded else ")")
    )


def run_table(runs: list[dict]) -> list[str]:
    """One row per recorded run: when, which host and commit, its load."""
    lines = [
        "| run | host | cores | load before, after (1/5/15 min) | quoted | torch, BLAS | commit |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        host = run["host"]
        build = host["torch_build"]["settings"]
        blas = f"torch {host['versions']['torch']} ({build.get('BLAS_INFO', '?')})"
        blas += f", NumPy {host['numpy_build'].get('blas', '?')}"
        loads = f"{host['load_before']}, {host['load_after']}"
        lines.append(
            f"| {host['started']} | {host['host_id']}: {host['cpu_model']} "
            f"({host['torch_build']['cpu_capability']}) | {host['usable_cores']} of "
            f"{host['cpu_count']} | {loads} | {'yes' if quiet(run) else 'no: busy'} | {blas} "
            f"| {host['commit']} |"
        )
    return lines


def readme_block(runs: list[dict]) -> str:
    """The README's bullet on speed, wrapped as the README's text is."""
    text = " ".join(README.format(where=provenance(runs), **figures(runs)).split())
    wrapped = textwrap.fill(
        text.removeprefix("- "),
        width=78,
        initial_indent="- ",
        subsequent_indent="  ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    return wrapped + "\n"


def performance_block(runs: list[dict]) -> str:
    quoted = figures(runs)
    lines = [PERFORMANCE_INTRO.format(where=provenance(runs)), "| figure | range | runs |"]
    lines.append("| --- | --- | --- |")
    for key, (section, name, _) in FIGURES.items():
        count = len(values(quoted_runs(runs), section, name))
        lines.append(f"| {section.removesuffix(' (cpu)')}: {name} | {quoted[key]} | {count} |")
    return "\n".join([*lines, "", *run_table(runs)]) + "\n"


#: The files that quote the figures, and what each quotes.
FILES: dict[str, Callable[[list[dict]], str]] = {
    "README.md": readme_block,
    "docs/performance.md": performance_block,
}


#: The lines that enclose the generated figures in each file.
BEGIN = (
    "<!-- figures begin: made by benchmarks/readme_figures.py from "
    "benchmarks/results/runs; do not edit -->\n"
)
END = "<!-- figures end -->\n"


def replaced(text: str, block: str, name: str) -> str:
    """``text`` with its figures block (between the markers) made ``block``."""
    if BEGIN not in text or END not in text:
        raise SystemExit(
            f"{name} has no figures block: put the lines {BEGIN.strip()!r} and "
            f"{END.strip()!r} where its figures go, then run {Path(__file__).name} --write."
        )
    head, rest = text.split(BEGIN, 1)
    return head + BEGIN + block + END + rest.split(END, 1)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="rewrite the blocks in the files")
    action.add_argument("--check", action="store_true", help="exit 1 where a block differs")
    args = parser.parse_args()
    runs = load_runs()
    stale = []
    for name, make in FILES.items():
        block = make(runs)
        if not (args.write or args.check):
            print(f"{name}:\n{BEGIN}{block}{END}")
            continue
        path = ROOT / name
        text = path.read_text()
        new = replaced(text, block, name)
        if new != text:
            stale.append(name)
            if args.write:
                path.write_text(new)
    if args.check and stale:
        sys.exit(f"figures out of date in {', '.join(stale)}: run {Path(__file__).name} --write")


if __name__ == "__main__":
    main()
