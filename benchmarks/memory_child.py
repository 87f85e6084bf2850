"""Fit once in a fresh process; print the resident memory before the fit
and the peak during it, in MiB (the difference is what the fit costs).

``raw`` imports only numpy and torch; ``skcallback`` imports the library
before the data is made, so both baselines include their imports. The data
is generated in float32 chunks, so making it never peaks above holding it.
"""

import resource
import sys

import numpy as np
import torch


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def main(kind: str, rows: int) -> None:
    if kind != "raw":
        from skcallback import NeuralRegressor
    rng = np.random.default_rng(0)
    X = np.empty((rows, 50), dtype=np.float32)
    for start in range(0, rows, 65536):
        X[start : start + 65536] = rng.standard_normal(
            (min(65536, rows - start), 50), dtype=np.float32
        )
    y = X @ rng.standard_normal(50, dtype=np.float32)
    before = _rss_mib()
    if kind == "raw":
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
        order = torch.randperm(rows)
        for start in range(0, rows, 256):
            idx = order[start : start + 256]
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(Xt[idx]), yt[idx]).backward()
            optimizer.step()
    else:
        NeuralRegressor(hidden_layer_sizes=(64, 64), batch_size=256, max_epochs=1).fit(X, y)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(before, peak)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
