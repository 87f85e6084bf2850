"""Fit once in a fresh process; print the resident memory just before the
fit and the process's peak during it, in MiB (the difference is what the fit
costs).

``raw`` imports only numpy and torch; ``skcallback`` imports the library
before the data is made, so both baselines include their imports. The data
is generated in float32 chunks, then the high-water mark is reset, so
neither the imports nor making the data count towards the fit's peak.

The peak is the process's own: ``VmHWM`` of ``/proc/self/status``, reset to
the current resident size by writing "5" to ``/proc/self/clear_refs``
right before the fit. Not ``getrusage``'s ``ru_maxrss``: Linux carries it
over ``exec``, so a child reports its parent's peak whenever that is the
larger (both children then printed the benchmark's own peak).
"""

import gc
import sys

import numpy as np
import torch


def _status_mib(field: str) -> float:
    """A ``kB`` line of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field} line (Linux only)")


def reset_peak() -> float:
    """Reset the high-water mark to the resident size; return that size in
    MiB."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    before = _status_mib("VmRSS")
    if _status_mib("VmHWM") > before + 1:  # kernels before 4.0 ignore "5"
        raise RuntimeError("could not reset VmHWM through /proc/self/clear_refs")
    return before


def make_data(rows: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = np.empty((rows, 50), dtype=np.float32)
    for start in range(0, rows, 65536):
        X[start : start + 65536] = rng.standard_normal(
            (min(65536, rows - start), 50), dtype=np.float32
        )
    y = X @ rng.standard_normal(50, dtype=np.float32)
    return X, y


def fit_raw(X: np.ndarray, y: np.ndarray) -> None:
    torch.manual_seed(0)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y).reshape(-1, 1)
    model = torch.nn.Sequential(
        torch.nn.Linear(50, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 1),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(len(X))
    for start in range(0, len(X), 256):
        idx = order[start : start + 256]
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(Xt[idx]), yt[idx]).backward()
        optimizer.step()


def main(kind: str, rows: int) -> None:
    if kind != "raw":
        from skcallback import NeuralRegressor
    X, y = make_data(rows)
    before = reset_peak()
    if kind == "raw":
        fit_raw(X, y)
    else:
        NeuralRegressor(hidden_layer_sizes=(64, 64), batch_size=256, max_epochs=1).fit(X, y)
    peak = _status_mib("VmHWM")
    print(before, peak)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
