"""The grid-search workload, and its cold start measured in a fresh process.

``python grid_child.py search [--quick]`` times, in a process that has
imported nothing yet: importing skcallback (torch with it), a first
``GridSearchCV(n_jobs=2)`` (which starts the worker processes) and a second,
identical one (workers already running). ``python grid_child.py workers``
times starting two joblib workers that do nothing, importing skcallback in
them, then a first and a second fit in each (the difference is what a
process's first fit pays once). Each prints one JSON line of seconds.
"""

from __future__ import annotations

import json
import sys
import time


def search_setup(quick: bool):
    """``(X, y, estimator, grid)``: 8 candidates (x 3 folds) on 20,000 x 20."""
    from skcallback import NeuralRegressor

    from contenders import regression_data

    X, y = regression_data(20_000, 20)
    estimator = NeuralRegressor(
        hidden_layer_sizes=(64, 64), max_epochs=2 if quick else 4, random_state=0
    )
    grid = {
        "lr": [1e-3, 2e-3],
        "batch_size": [128, 256],
        "hidden_layer_sizes": [(64, 64), (32, 32)],
    }
    return X, y, estimator, grid


def sklearn_search_setup(quick: bool):
    """``(X, y, estimator, grid)``: the same search of scikit-learn's
    ``MLPRegressor`` (same data, network widths, epochs, learning rates and
    batch sizes), for its parallel speed-up."""
    from sklearn.neural_network import MLPRegressor

    X, y, estimator, grid = search_setup(quick)
    mlp = MLPRegressor(
        hidden_layer_sizes=(64, 64),
        max_iter=estimator.max_epochs,
        n_iter_no_change=estimator.max_epochs + 1,
        random_state=0,
    )
    mlp_grid = {
        "learning_rate_init": grid["lr"],
        "batch_size": grid["batch_size"],
        "hidden_layer_sizes": grid["hidden_layer_sizes"],
    }
    return X, y, mlp, mlp_grid


def _import_skcallback() -> None:
    import skcallback  # noqa: F401


def _fit_one() -> None:
    X, y, estimator, _ = search_setup(quick=True)
    estimator.fit(X, y)


def main(mode: str, quick: bool) -> dict[str, float]:
    started = time.perf_counter()
    if mode == "workers":
        from joblib import Parallel, delayed

        Parallel(n_jobs=2)(delayed(time.sleep)(0) for _ in range(2))
        spawned = time.perf_counter()
        Parallel(n_jobs=2)(delayed(_import_skcallback)() for _ in range(2))
        imported = time.perf_counter()
        Parallel(n_jobs=2)(delayed(_fit_one)() for _ in range(2))
        first = time.perf_counter()
        Parallel(n_jobs=2)(delayed(_fit_one)() for _ in range(2))
        return {
            "start": spawned - started,
            "import": imported - spawned,
            "first fit": first - imported,
            "second fit": time.perf_counter() - first,
        }
    from sklearn.model_selection import GridSearchCV

    import skcallback  # noqa: F401

    imported = time.perf_counter()
    X, y, estimator, grid = search_setup(quick)
    seconds = {"import": imported - started}
    for name in ("cold", "warm"):
        began = time.perf_counter()
        GridSearchCV(estimator, grid, cv=3, n_jobs=2).fit(X, y)
        seconds[name] = time.perf_counter() - began
    return seconds


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], "--quick" in sys.argv)))
