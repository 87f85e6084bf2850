"""Fit once in a fresh process and print the peak RSS in MiB.

``raw`` imports only numpy and torch; ``skcallback`` imports the library.
"""

import resource
import sys

import numpy as np
import torch


def main(kind: str, rows: int) -> None:
    rng = np.random.RandomState(0)
    X = rng.normal(size=(rows, 50)).astype(np.float32)
    y = (X @ rng.normal(size=50)).astype(np.float32)
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
        from skcallback import NeuralRegressor

        NeuralRegressor(hidden_layer_sizes=(64, 64), batch_size=256, max_epochs=1).fit(X, y)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
