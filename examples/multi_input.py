"""A module with two inputs: numeric features, and a categorical code
through an embedding, given as a ``SliceDict`` to ``cross_val_score``.

The data: house prices of 30 neighbourhoods (made up here). A price is a
linear function of three numeric features plus an offset that depends on the
neighbourhood; the neighbourhood is a code 0..29, which the network learns
as an embedding (a vector of 4 numbers per neighbourhood).

1. ``X`` is a ``SliceDict(numbers=..., neighbourhood=...)``: a dict of
   arrays with one row per sample, which scikit-learn's splitters index by
   rows. The module is called as ``module(numbers=..., neighbourhood=...)``
   on each batch; the integer codes stay int64, as ``nn.Embedding`` wants.
2. The module class names ``input_shape``: the fit passes the shape of a
   sample of each array, ``{"numbers": (3,), "neighbourhood": ()}``.
3. ``cross_val_score`` compares it with the built-in MLP on the numeric
   features alone: without the neighbourhood, much of the price is
   unexplained.

Run ``python examples/multi_input.py``.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.model_selection import cross_val_score
from torch import nn

from skcallback import NeuralRegressor, SliceDict

N_NEIGHBOURHOODS = 30


class PriceModel(nn.Module):
    """A linear layer over the numeric features and the neighbourhood's
    embedding."""

    def __init__(self, input_shape: dict, n_outputs: int, embedding_dim: int = 4) -> None:
        super().__init__()
        (n_numbers,) = input_shape["numbers"]  # {"numbers": (3,), "neighbourhood": ()}
        self.embedding = nn.Embedding(N_NEIGHBOURHOODS, embedding_dim)
        self.head = nn.Sequential(
            nn.Linear(n_numbers + embedding_dim, 16), nn.ReLU(), nn.Linear(16, n_outputs)
        )

    def forward(self, numbers: torch.Tensor, neighbourhood: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([numbers, self.embedding(neighbourhood)], dim=1))


def load_data(n: int = 600, seed: int = 0) -> tuple[SliceDict, np.ndarray]:
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(n, 3)).astype(np.float32)
    neighbourhood = rng.integers(0, N_NEIGHBOURHOODS, size=n)  # int64 codes
    offsets = rng.normal(scale=2.0, size=N_NEIGHBOURHOODS)
    price = numbers @ np.array([1.0, -0.5, 0.3]) + offsets[neighbourhood]
    price += rng.normal(scale=0.1, size=n)
    return SliceDict(numbers=numbers, neighbourhood=neighbourhood), price


def compare(X: SliceDict, y: np.ndarray, cv: int = 3) -> dict:
    both = NeuralRegressor(module=PriceModel, lr=1e-2, max_epochs=40, random_state=0)
    numbers_only = NeuralRegressor(lr=1e-2, max_epochs=40, random_state=0)
    scores = {
        "numbers and neighbourhood": cross_val_score(both, X, y, cv=cv),
        "numbers only": cross_val_score(numbers_only, X["numbers"], y, cv=cv),
    }
    for name, values in scores.items():
        print(f"  {name}: R² {values.mean():.3f} (folds {np.round(values, 3).tolist()})")
    return scores


def main() -> dict:
    X, y = load_data()
    shapes = {key: array.shape for key, array in X.items()}
    print(f"X: a SliceDict of {X.shape[0]} samples, arrays of shapes {shapes}")
    print("\ncross_val_score, 3 folds")
    scores = compare(X, y)
    model = NeuralRegressor(module=PriceModel, lr=1e-2, max_epochs=40, random_state=0).fit(X, y)
    print(f"\npredictions for the first 3 rows: {np.round(model.predict(X[:3]), 2).tolist()}")
    print(f"their prices:                     {np.round(y[:3], 2).tolist()}")
    return {"data": (X, y), "scores": scores, "model": model}


if __name__ == "__main__":
    torch.set_num_threads(1)  # small networks: one thread is as fast, and shares the CPU well
    main()
