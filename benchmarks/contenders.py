"""The training loops compared in the benchmarks, each a function of the data."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from skcallback import Callback, NeuralClassifier, NeuralRegressor


def regression_data(n_rows: int, n_features: int, seed: int = 0):
    """A linear target with noise: float32 ``(X, y)``."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_rows, n_features)).astype(np.float32)
    y = (X @ rng.normal(size=n_features) + 0.1 * rng.normal(size=n_rows)).astype(np.float32)
    return X, y


def mlp(n_features: int, hidden: tuple[int, ...], n_outputs: int = 1) -> torch.nn.Module:
    layers: list[torch.nn.Module] = []
    width = n_features
    for size in hidden:
        layers += [torch.nn.Linear(width, size), torch.nn.ReLU()]
        width = size
    layers.append(torch.nn.Linear(width, n_outputs))
    return torch.nn.Sequential(*layers)


def _targets(y: np.ndarray, device: str) -> tuple[torch.Tensor, int, torch.nn.Module]:
    """Targets, output width and loss: class indices and cross-entropy for
    integer ``y``, a column and the mean squared error otherwise."""
    if y.dtype.kind in "iu":
        return torch.from_numpy(y).long().to(device), int(y.max()) + 1, torch.nn.CrossEntropyLoss()
    return torch.from_numpy(y).reshape(-1, 1).to(device), 1, torch.nn.MSELoss()


def naive_loop(X, y, *, hidden, batch_size, epochs, lr=1e-3, device="cpu", fused=False):
    """The loop a user writes: shuffle indices, slice tensors, default Adam
    (``fused=True``: PyTorch's fused Adam kernel, as skcallback uses);
    cross-entropy for integer ``y``, the mean squared error otherwise."""
    torch.manual_seed(0)
    Xt = torch.from_numpy(X).to(device)
    yt, n_outputs, loss_fn = _targets(y, device)
    model = mlp(X.shape[1], hidden, n_outputs).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=fused or None)
    for _ in range(epochs):
        order = torch.randperm(len(Xt), device=device)
        for start in range(0, len(Xt), batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            optimizer.step()
    if device != "cpu":
        torch.cuda.synchronize()
    return model


def dataloader_loop(X, y, *, hidden, batch_size, epochs, lr=1e-3, device="cpu"):
    """The same loop fed by a DataLoader over a TensorDataset."""
    torch.manual_seed(0)
    yt, n_outputs, loss_fn = _targets(y, "cpu")
    data = torch.utils.data.TensorDataset(torch.from_numpy(X), yt)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True)
    model = mlp(X.shape[1], hidden, n_outputs).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
    return model


class Noop(Callback):
    """A callback that overrides a per-batch hook and does nothing."""

    def on_train_batch_end(self, ctx):
        pass


def skcallback_fit(X, y, *, hidden, batch_size, epochs, lr=1e-3, device="cpu", **params):
    """NeuralClassifier for integer ``y``, NeuralRegressor otherwise."""
    cls = NeuralClassifier if y.dtype.kind in "iu" else NeuralRegressor
    est = cls(
        hidden_layer_sizes=hidden,
        batch_size=batch_size,
        max_epochs=epochs,
        lr=lr,
        device=device,
        random_state=0,
        **params,
    )
    est.fit(X, y)
    if device != "cpu":
        torch.cuda.synchronize()
    return est


def with_noop_callbacks(n: int) -> list:
    return [(f"noop_{i}", Noop()) for i in range(n)]


def skorch_fit(X, y, *, hidden, batch_size, epochs, lr=1e-3, device="cpu"):
    from skorch import NeuralNetRegressor

    net = NeuralNetRegressor(
        mlp(X.shape[1], hidden),
        max_epochs=epochs,
        lr=lr,
        optimizer=torch.optim.Adam,
        batch_size=batch_size,
        train_split=None,
        verbose=0,
        device=device,
    )
    return net.fit(X, y.reshape(-1, 1))


def sklearn_fit(X, y, *, hidden, batch_size, epochs, lr=1e-3, device="cpu"):
    """MLPClassifier for integer ``y``, MLPRegressor otherwise."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    cls = MLPClassifier if y.dtype.kind in "iu" else MLPRegressor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cls(
            hidden_layer_sizes=hidden,
            batch_size=batch_size,
            learning_rate_init=lr,
            max_iter=epochs,
            n_iter_no_change=epochs + 1,
            random_state=0,
        ).fit(X, y)


def raw_predict(model: torch.nn.Module, X: np.ndarray, batch_size: int = 16384) -> np.ndarray:
    """A plain inference_mode loop over a fitted module."""
    model.eval()
    Xt = torch.from_numpy(X)
    with torch.inference_mode():
        out = [model(Xt[i : i + batch_size]) for i in range(0, len(Xt), batch_size)]
    return torch.cat(out).numpy().ravel()
