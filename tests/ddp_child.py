"""One rank of the two-process jobs of ``test_distributed.py``.

Usage: python ddp_child.py RANK WORLD_SIZE STORE_FILE OUT_FOLDER SCENARIO

Each rank joins a gloo process group through a file store, runs the
scenario's fits and saves what they gave (plain data) to
``OUT_FOLDER/SCENARIO-RANK.pt``.
"""

import pickle
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torch.distributed as dist

from skcallback import Callback, NeuralClassifier, NeuralRegressor, SliceDict
from skcallback.callbacks import EpochScoring

torch.set_num_threads(1)


def regression(n=97):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    return X, (X @ rng.normal(size=5) + 0.1 * rng.normal(size=n)).astype(np.float32)


#: Fits compared with one process (``batch_size`` doubled), by name.
CASES = {
    "fast": dict,
    "autograd": lambda: {
        "fast_path": False,
        "validation_fraction": 0.2,
        "callbacks": [EpochScoring("neg_mean_squared_error", on_train=True)],
    },
    "accumulate": lambda: {"accumulate": 2, "optimizer": "sgd", "lr": 0.05},
}


def fitted(est):
    """What a fit gave, as plain data."""
    return {
        "weights": {k: v.clone() for k, v in est.module_.state_dict().items()},
        "history": [dict(r, dur=None) for r in est.history_],
        "n_iter": est.n_iter_,
        "n_steps": est.n_steps_,
        "stop_reason": est.stop_reason_,
    }


class Record(Callback):
    """Records what every rank sees at the end of each epoch, and each
    epoch's loss in on_train_end."""

    def on_train_end(self, ctx):
        self.seen_ = [*getattr(self, "seen_", []), ("train_end", ctx.metrics["train_loss"])]

    def on_epoch_end(self, ctx):
        self.seen_ = [*getattr(self, "seen_", []), ("epoch_end", dict(ctx.metrics, dur=None))]


class Once(Callback):
    """A side effect that must happen once: counts its hooks' calls."""

    rank_zero_only = True

    def on_epoch_end(self, ctx):
        self.calls_ = getattr(self, "calls_", 0) + 1


class StopOn(Callback):
    """Requests a stop on one rank only, at a given training batch."""

    def __init__(self, rank=1, epoch=2, batch=3):
        self.rank, self.epoch, self.batch = rank, epoch, batch

    def on_train_batch_end(self, ctx):
        if dist.get_rank() == self.rank and (ctx.epoch, ctx.batch) == (self.epoch, self.batch):
            ctx.request_stop(f"asked on rank {self.rank}")


class FailOn(StopOn):
    """Raises on one rank only, at a given training batch."""

    def on_train_batch_end(self, ctx):
        if dist.get_rank() == self.rank and (ctx.epoch, ctx.batch) == (self.epoch, self.batch):
            raise ValueError(f"boom on rank {self.rank}")


class FailAtEnd(StopOn):
    """Raises on one rank only, in on_fit_end (after the last collective)."""

    def on_fit_end(self, ctx):
        if dist.get_rank() == self.rank:
            raise ValueError(f"late boom on rank {self.rank}")


def error_of(fit):
    try:
        fit()
    except Exception as exc:
        return type(exc).__name__, str(exc)
    return None


def ddp(**params):
    base = {"hidden_layer_sizes": (16,), "batch_size": 8, "max_epochs": 3, "random_state": 0}
    return NeuralRegressor(strategy="ddp", **{**base, **params})


def main_scenario(rank):
    X, y = regression()
    out = {}
    for name, params in CASES.items():
        out[name] = fitted(ddp(**params()).fit(X, y))
    for name, (X_in, y_in, params) in inputs(X, y).items():
        out[name] = fitted(ddp(max_epochs=2, **params).fit(X_in, y_in))
    dict_X = SliceDict(a=X[:, :2], b=X[:, 2:])
    clf = NeuralClassifier(
        module=DictNet, batch_size=8, max_epochs=2, random_state=0, strategy="ddp"
    )
    out["dict"] = fitted(clf.fit(dict_X, (y > 0).astype(int)))
    seen = ddp(callbacks=[Record(), Once()], validation_fraction=0.2).fit(X, y)
    out["seen"] = seen.callbacks_.record.seen_
    out["once_calls"] = getattr(seen.callbacks_.once, "calls_", 0)
    out["pickled"] = pickle.dumps(ddp().fit(X, y))
    stopped = ddp(max_epochs=4, callbacks=[StopOn(rank=1)]).fit(X, y)
    out["stopped"] = fitted(stopped)
    out["errors"] = {
        "lr": error_of(lambda: ddp(lr=0.01 if rank else 0.02).fit(X, y)),
        "data": error_of(lambda: ddp().fit(X + rank, y)),
        "seed": error_of(lambda: ddp(random_state=None).fit(X, y)),
    }
    out["after_errors"] = fitted(ddp().fit(X, y))  # the group still works
    # Last: a failed fit leaves the process group unusable.
    late = ddp(max_epochs=1, callbacks=[FailAtEnd(rank=1)])
    out["fit_end_error"] = (error_of(lambda: late.fit(X, y)), hasattr(late, "module_"))
    return out


def fail_scenario(rank):
    X, y = regression()
    return {"error": error_of(lambda: ddp(callbacks=[FailOn(rank=1, epoch=2)]).fit(X, y))}


class Rows(torch.utils.data.Dataset):
    """A map-style Dataset of ``(x, y)`` items."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], self.y[i]


def inputs(X, y):
    """The same rows as a Dataset and as a sparse matrix, by name, with
    the estimator's parameters for them."""
    return {
        "dataset": (Rows(X, y), None, {"module": Net}),
        "sparse": (sp.csr_matrix(X * (X > 0)), y, {}),
    }


class Net(torch.nn.Sequential):
    def __init__(self):
        super().__init__(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))


class DictNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(2, 2), torch.nn.Linear(3, 2)

    def forward(self, a, b):
        return self.a(a) + self.b(b)


SCENARIOS = {"main": main_scenario, "fail": fail_scenario}

if __name__ == "__main__":
    rank, world, store, out, scenario = sys.argv[1:]
    dist.init_process_group(
        "gloo", init_method=f"file://{store}", rank=int(rank), world_size=int(world)
    )
    result = SCENARIOS[scenario](int(rank))
    torch.save(result, Path(out) / f"{scenario}-{rank}.pt")
