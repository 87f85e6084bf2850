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


# ----------------------------------------------------------------------
# Inputs beyond a table: images, variable-length sequences, Datasets
# ----------------------------------------------------------------------
def digits_images():
    """scikit-learn's digits as float32 images ``(1797, 1, 8, 8)`` in [0, 1]
    and int64 labels."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32).reshape(-1, 1, 8, 8), y.astype(np.int64)


class CNN(torch.nn.Module):
    """Two 3x3 convolutions and a linear head, for 8 x 8 images."""

    def __init__(self, n_outputs: int = 10):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, 32, 3),
            torch.nn.ReLU(),
            torch.nn.Flatten(),
            torch.nn.Linear(32 * 4 * 4, n_outputs),
        )

    def forward(self, x):
        return self.net(x)


def sequences(n: int, n_features: int = 8, seed: int = 0):
    """``n`` float32 sequences of 5 to 50 steps and a binary label each
    (whether the first feature's mean is positive)."""
    rng = np.random.RandomState(seed)
    samples = [
        rng.normal(size=(rng.randint(5, 51), n_features)).astype(np.float32) for _ in range(n)
    ]
    return samples, np.array([int(s[:, 0].mean() > 0) for s in samples], dtype=np.int64)


class GRU(torch.nn.Module):
    """A GRU over a padded batch, packed by its lengths, and a linear head
    on the last hidden state."""

    def __init__(self, n_outputs: int = 2, n_features: int = 8, hidden: int = 32):
        super().__init__()
        self.gru = torch.nn.GRU(n_features, hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden, n_outputs)

    def forward(self, padded, lengths):
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            padded, lengths, batch_first=True, enforce_sorted=False
        )
        return self.head(self.gru(packed)[1][-1])


def hand_loop(module, X, y, *, batch_size, epochs, lr=1e-3, fused=True):
    """The loop a user writes for a custom module on arrays: shuffled
    indices, sliced tensors, (fused) Adam, cross-entropy."""
    torch.manual_seed(0)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    model = module()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=fused or None)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(epochs):
        order = torch.randperm(len(Xt))
        for start in range(0, len(Xt), batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad()
            loss_fn(model(Xt[idx]), yt[idx]).backward()
            optimizer.step()
    return model


def hand_sequence_loop(samples, y, *, batch_size, epochs, lr=1e-3, fused=True, batches=None):
    """The same loop for variable-length sequences: each batch's
    sequences padded (``pad_sequence``) with their lengths, to ``GRU``.
    ``batches`` (the rows of every batch of every epoch) replaces the
    loop's own shuffling, for a comparison at equal work (same padding)."""
    torch.manual_seed(0)
    tensors = [torch.from_numpy(s) for s in samples]
    yt = torch.from_numpy(y)
    model = GRU()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=fused or None)
    loss_fn = torch.nn.CrossEntropyLoss()
    if batches is None:
        batches = []
        for _ in range(epochs):
            order = torch.randperm(len(tensors)).tolist()
            starts = range(0, len(order), batch_size)
            batches += [order[start : start + batch_size] for start in starts]
    for idx in batches:
        batch = [tensors[i] for i in idx]
        lengths = torch.tensor([len(s) for s in batch])
        padded = torch.nn.utils.rnn.pad_sequence(batch, batch_first=True)
        optimizer.zero_grad()
        loss_fn(model(padded, lengths), yt[idx]).backward()
        optimizer.step()
    return model


def skcallback_batches(samples, y, *, batch_size, epochs, **params):
    """The rows of every training batch that ``skcallback_module_fit``
    trains on for a list of ``samples`` padded by ``pad_sequences``
    (recorded, untimed, by a collate function that pads alike)."""
    from skcallback import Callback, pad_sequences

    index = {id(sample): i for i, sample in enumerate(samples)}
    batches = []

    def record(items):
        batches.append([index[id(x)] for x, _ in items])
        return pad_sequences(items)

    class Training(Callback):
        def on_fit_begin(self, ctx):  # the dry run before it collates a batch too
            batches.clear()

    skcallback_module_fit(
        GRU,
        samples,
        y,
        batch_size=batch_size,
        epochs=epochs,
        dataloader__collate_fn=record,
        callbacks=[Training()],
        **params,
    )
    return batches


def skcallback_module_fit(module, X, y, *, batch_size, epochs, lr=1e-3, **params):
    """NeuralClassifier with a custom module, every row trained on."""
    return NeuralClassifier(
        module=module,
        batch_size=batch_size,
        max_epochs=epochs,
        lr=lr,
        validation_fraction=None,
        random_state=0,
        **params,
    ).fit(X, y)


class ItemTensors(torch.utils.data.Dataset):
    """A map-style Dataset of in-memory tensors: item ``i`` is
    ``(X[i], y[i])`` (torch's generic loading path: one ``__getitem__`` a
    row and a collate step a batch)."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor) -> None:
        self.X, self.y = X, y

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i: int):
        return self.X[i], self.y[i]


class SlowItems(ItemTensors):
    """Items that each take 1 ms to load (a file read, a decode: I/O-bound)."""

    def __getitem__(self, i: int):
        import time

        time.sleep(0.001)
        return self.X[i], self.y[i]


def padded_dict(items):
    """skorch calls ``module(**X)`` for a dict batch (``module(X)``
    otherwise): the padded batch and its lengths by name."""
    from skcallback import pad_sequences

    (padded, lengths), y = pad_sequences(items)
    return {"padded": padded, "lengths": lengths}, y


def skorch_module_fit(module, X, y=None, *, batch_size, epochs, lr=1e-3, **params):
    """skorch's NeuralNetClassifier with the same module, fused Adam,
    cross-entropy and no validation split."""
    from skorch import NeuralNetClassifier

    torch.manual_seed(0)
    net = NeuralNetClassifier(
        module,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        optimizer__fused=True,
        lr=lr,
        batch_size=batch_size,
        max_epochs=epochs,
        train_split=None,
        verbose=0,
        **params,
    )
    return net.fit(X, y)


class Pairs(torch.utils.data.Dataset):
    """A list of samples with their targets, as ``(x, y)`` items."""

    def __init__(self, samples, y) -> None:
        self.samples, self.y = samples, y

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        return self.samples[i], self.y[i]


# ----------------------------------------------------------------------
# The floor: the built-in MLP's step written by hand, nothing around it
# ----------------------------------------------------------------------
def floor_loop(X, y, *, hidden, batch_size, epochs, lr=1e-3, device="cpu", model=None):
    """The least a Python loop can do for the step skcallback's built-in MLP
    takes: the gradients derived by hand (as ``skcallback._mlp_backprop``
    computes them, which autograd's equal; cross-entropy classes by rows,
    as there), torch's fused Adam kernel
    called on lists built once, one step counter shared by every parameter,
    the epoch's rows gathered at once and each batch a view of them. ReLU,
    the mean squared error for float ``y``, cross-entropy for integer
    ``y``; ``model`` (an ``mlp``) is trained in place when given."""
    torch.manual_seed(0)
    Xt = torch.from_numpy(X).to(device)
    yt, n_outputs, _ = _targets(y, device)
    if model is None:
        model = mlp(X.shape[1], hidden, n_outputs).to(device)
    linears = [layer for layer in model if isinstance(layer, torch.nn.Linear)]
    params = [p for layer in linears for p in (layer.weight, layer.bias)]
    weights = [layer.weight.detach() for layer in linears]
    biases = [layer.bias.detach() for layer in linears]
    data = [p.detach() for p in params]
    avgs = [torch.zeros_like(p) for p in data]
    squares = [torch.zeros_like(p) for p in data]
    step = torch.zeros((), dtype=torch.float32, device=device)
    steps = [step] * len(params)
    minus_one = torch.full((1, batch_size), -1.0, device=device)
    bias_column = biases[-1].unsqueeze(1)
    for _ in range(epochs):
        order = torch.randperm(len(Xt), device=device)
        X_epoch, y_epoch = Xt[order], yt[order]
        for start in range(0, len(Xt), batch_size):
            xb, yb = X_epoch[start : start + batch_size], y_epoch[start : start + batch_size]
            inputs = [xb]
            for weight, bias in zip(weights[:-1], biases[:-1], strict=True):
                inputs.append(torch.addmm(bias, inputs[-1], weight.t()).clamp_min_(0))
            if n_outputs > 1:  # classes by rows: a faster softmax
                logits = torch.addmm(bias_column, weights[-1], inputs[-1].t())
                _loss, delta = _floor_cross_entropy(logits, yb, minus_one)
            else:
                _loss, delta = _floor_mse(torch.addmm(biases[-1], inputs[-1], weights[-1].t()), yb)
            grads = _floor_backward(weights, inputs, delta)
            step.add_(1)
            torch._fused_adam_(
                data, grads, avgs, squares, [], steps, lr=lr, beta1=0.9, beta2=0.999,
                weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False,
            )  # fmt: skip
    if device != "cpu":
        torch.cuda.synchronize()
    return model


def _floor_backward(weights, inputs, delta):
    """The parameters' gradients, in ``params`` order, from ``delta`` (the
    loss's gradient wrt the output) and each layer's input."""
    grads = []
    for i in reversed(range(len(weights))):
        grads[:0] = [delta.t().mm(inputs[i]), delta.sum(0)]
        if i:
            delta = delta.mm(weights[i]).mul_(inputs[i].sign())  # ReLU's derivative
    return grads


def _floor_mse(out, yb):
    diff = out - yb
    return diff.pow(2).mean(), diff.mul_(2.0 / diff.numel())


def _floor_cross_entropy(logits, yb, minus_one):
    """Loss and gradient of classes-by-rows ``logits``: softmax minus the
    one-hot targets, over the rows."""
    n = yb.shape[0]
    log_p = torch.log_softmax(logits, 0)
    target = yb.unsqueeze(0)
    loss = log_p.gather(0, target).sum().div_(-n)
    delta = log_p.exp_().scatter_add_(0, target, minus_one[:, :n])
    return loss, delta.mul_(1.0 / n).t()
