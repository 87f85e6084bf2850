"""The checkpoint format: the complete state of a fit in one file.

A file is a magic line, a BLAKE2b checksum of the payload, and the payload:
a ``torch.save`` of plain data (tensors, numbers, strings, lists, dicts),
read back with ``torch.load(weights_only=True)``, so loading never unpickles
an object. Files carry data, never authority: no path is saved, and every
field is checked on load against the estimator that loads it.

A snapshot holds everything the rest of the fit depends on: module,
optimizer, gradient scaler, every callback's state (history included), the
fit's random generators, its position in the current epoch (the batches
done, the losses so far, the generator state the epoch's permutation was
drawn from) and the seed of the validation split.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = 2
MAGIC = b"skcallback-checkpoint\n"
_DIGEST_SIZE = 32


def _plain(value: Any) -> Any:
    """NumPy values as types ``torch.load(weights_only=True)`` accepts."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy()) if value.dtype.kind in "biuf" else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def architecture(estimator: Any) -> dict[str, Any]:
    """The parameters that decide the shapes and kinds of the saved state;
    recorded at save and compared at load."""
    from ._fingerprint import describe

    names = ("module", "hidden_layer_sizes", "activation", "optimizer", "criterion", "precision")
    return {name: describe(getattr(estimator, name)) for name in names}


def snapshot(ctx: Any) -> dict[str, Any]:
    """Everything needed to continue ``ctx``'s fit exactly from this moment:
    mid-epoch (from ``on_after_step``) or at the end of an epoch."""
    work, plan, run, progress = ctx.estimator, ctx.plan, ctx.run, ctx.progress
    mid_epoch = progress is not None and not progress.complete
    if mid_epoch and not progress.between_batches:
        raise ValueError(
            "A checkpoint records the fit's position exactly only between training batches "
            "(from on_after_step, on_train_batch_end or on_train_end) or between epochs (from "
            "on_fit_begin, on_epoch_end or on_fit_end); it was saved elsewhere."
        )
    rng_state = work._rng.get_state()
    return {
        "format": FORMAT,
        "estimator": type(work).__name__,
        "architecture": architecture(work),
        "fingerprint": plan.fingerprint(),
        "epoch": ctx.epoch - 1 if mid_epoch else ctx.epoch,
        "step": ctx.step,
        "batches_done": ctx.batch if mid_epoch else 0,
        "epoch_lr": progress.lr if mid_epoch else None,
        "epoch_losses": [loss.detach().cpu() for loss in progress.losses] if mid_epoch else [],
        "epoch_sizes": list(progress.sizes) if mid_epoch else [],
        "shuffle_state": progress.shuffle_state if mid_epoch else run.shuffle.get_state(),
        "dropout_state": run.dropout.get_state(),
        "global_rng_state": torch.random.get_rng_state() if plan.custom_seed is not None else None,
        "stop_reason": ctx.stop_reason,
        "rng": [rng_state[0], torch.from_numpy(rng_state[1].astype(np.int64)), *rng_state[2:]],
        "split_seed": work._split_seed,
        "module": ctx.module.state_dict(),
        "optimizer": ctx.optimizer.state_dict(),
        "grad_scaler": None if ctx.grad_scaler is None else ctx.grad_scaler.state_dict(),
        "callbacks": {name: _plain(cb.state_dict()) for name, cb in ctx.callbacks.items()},
        "data": _plain(work._data_state()),
    }


def write(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` to ``path`` atomically (a temporary file in the same
    folder, flushed, synced, renamed): a crash never leaves a truncated file
    under ``path``. Disk errors are ``OSError`` naming the path."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    digest = hashlib.blake2b(payload, digest_size=_DIGEST_SIZE).digest()
    return atomic_write(MAGIC + digest + payload, path)


def atomic_write(data: bytes, path: str | os.PathLike) -> Path:
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise OSError(
            exc.errno, f"Could not write the checkpoint {str(path)!r}: {exc.strerror or exc}"
        ) from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    return path


def verify(path: str | os.PathLike) -> bytes:
    """The payload of a checkpoint file whose checksum holds.

    Raises
    ------
    ValueError
        If the file is not a skcallback checkpoint or is corrupt.
    """
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError as exc:
        raise ValueError(f"{path} is a folder, not a checkpoint file.") from exc
    head = len(MAGIC) + _DIGEST_SIZE
    if not data.startswith(MAGIC) or len(data) < head:
        raise ValueError(f"{path} is not a skcallback checkpoint (it lacks the format header).")
    payload = data[head:]
    if hashlib.blake2b(payload, digest_size=_DIGEST_SIZE).digest() != data[len(MAGIC) : head]:
        raise ValueError(f"{path} is corrupt: its checksum does not match its contents.")
    return payload


def read(path: str | os.PathLike, device: torch.device) -> dict[str, Any]:
    """Load and check a checkpoint without unpickling any object.

    Raises
    ------
    ValueError
        If the file is corrupt, not a checkpoint, or malformed.
    """
    payload = verify(path)
    try:
        state = torch.load(io.BytesIO(payload), map_location=device, weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path} is not a readable skcallback checkpoint: {exc}") from exc
    _check_fields(state, path)
    state["data"] = _arrays(state["data"])
    return state


_FIELDS: dict[str, Any] = {
    "format": int,
    "estimator": str,
    "architecture": dict,
    "fingerprint": str,
    "epoch": int,
    "step": int,
    "batches_done": int,
    "epoch_losses": list,
    "epoch_sizes": list,
    "shuffle_state": torch.Tensor,
    "dropout_state": torch.Tensor,
    "rng": list,
    "split_seed": int,
    "module": dict,
    "optimizer": dict,
    "callbacks": dict,
    "data": dict,
}


_OPTIONAL: dict[str, Any] = {
    "stop_reason": str,
    "epoch_lr": float | int,
    "global_rng_state": torch.Tensor,
    "grad_scaler": dict,
}
_DATA_KEYS = ("n_features_in_", "feature_names_in_", "n_outputs_", "classes_", "_y_ndim")


def _check_fields(state: Any, path: Any) -> None:
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a skcallback checkpoint of format {FORMAT}.")
    for key, kind in _FIELDS.items():
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            raise ValueError(f"{path} is malformed: {key!r} is not a {kind.__name__}.")
    for key, kind in _OPTIONAL.items():
        if key not in state or not (state[key] is None or isinstance(state[key], kind)):
            raise ValueError(f"{path} is malformed: {key!r} is missing or of the wrong type.")
    for key in ("shuffle_state", "dropout_state", "global_rng_state"):
        if state[key] is not None and state[key].dtype != torch.uint8:
            raise ValueError(f"{path} is malformed: {key!r} is not a generator state.")
    losses, sizes = state["epoch_losses"], state["epoch_sizes"]
    if (
        len(losses) != len(sizes)
        or len(losses) > state["batches_done"]
        or not all(isinstance(x, torch.Tensor) and x.ndim == 0 for x in losses)
        or not all(isinstance(n, int) and n > 0 for n in sizes)
    ):
        raise ValueError(f"{path} is malformed: the losses of the unfinished epoch.")
    rng = state["rng"]
    if not (
        len(rng) == 5
        and isinstance(rng[0], str)
        and isinstance(rng[1], torch.Tensor)
        and rng[1].shape == (624,)
        and all(isinstance(v, int | float) for v in rng[2:])
    ):
        raise ValueError(f"{path} is malformed: 'rng' is not a NumPy generator state.")
    if set(state["data"]) - set(_DATA_KEYS):
        raise ValueError(f"{path} is malformed: unknown data attributes.")
    if min(state["epoch"], state["step"], state["batches_done"]) < 0:
        raise ValueError(f"{path} is malformed: negative epoch, step or batch count.")
    if not all(isinstance(v, dict) for v in state["callbacks"].values()):
        raise ValueError(f"{path} is malformed: a callback state is not a dict.")


def _arrays(data: dict[str, Any]) -> dict[str, Any]:
    """Undo ``_plain`` for the estimator's array attributes."""
    data = dict(data)
    if "classes_" in data:
        classes = data["classes_"]
        data["classes_"] = np.asarray(
            classes.numpy() if isinstance(classes, torch.Tensor) else classes
        )
    if "feature_names_in_" in data:
        data["feature_names_in_"] = np.asarray(data["feature_names_in_"], dtype=object)
    return data


def check_matches(state: dict[str, Any], estimator: Any, path: Any) -> None:
    """Raise a ValueError unless ``state`` was saved by an estimator of this
    class and architecture."""
    if state["estimator"] != type(estimator).__name__:
        raise ValueError(
            f"{path} was saved by a {state['estimator']}, not a {type(estimator).__name__}."
        )
    saved, own = state["architecture"], architecture(estimator)
    differences = [
        f"{k}: saved {saved.get(k)}, here {own[k]}" for k in own if saved.get(k) != own[k]
    ]
    if differences:
        raise ValueError(
            f"{path} was saved by an estimator with other parameters ("
            + "; ".join(differences)
            + "); build the estimator with the parameters that saved it."
        )


#: Optimizer state entries that are one number per parameter (step counters).
_SCALAR_STATE = ("step", "mu_product")


def load_objects(work: Any, state: dict[str, Any], path: Any) -> None:
    """Load module, optimizer (with its tensors checked against the
    parameters) into ``work``'s freshly built objects."""
    try:
        work.module_.load_state_dict(state["module"])
        work.optimizer_.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path} does not match this estimator's module or optimizer; build the "
            f"estimator with the parameters that saved it. ({exc})"
        ) from exc
    for group in work.optimizer_.param_groups:
        for parameter in group["params"]:
            for name, value in work.optimizer_.state.get(parameter, {}).items():
                if not isinstance(value, torch.Tensor):
                    continue
                expected = () if name in _SCALAR_STATE else tuple(parameter.shape)
                if tuple(value.shape) != expected or not value.is_floating_point():
                    raise ValueError(
                        f"{path} is malformed: optimizer state {name!r} has shape "
                        f"{tuple(value.shape)} ({value.dtype}); expected {expected} floats for "
                        f"a parameter of shape {tuple(parameter.shape)}."
                    )


def restore_rng(work: Any, state: dict[str, Any]) -> None:
    """The estimator's NumPy generator and split seed as saved."""
    key, keys, pos, has_gauss, cached = state["rng"]
    work._rng.set_state((key, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    work._split_seed = state["split_seed"]


@contextlib.contextmanager
def malformed(path: Any):
    """Report any failure to restore a file's contents as a ValueError."""
    try:
        yield
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(
            f"{path} is malformed: restoring it failed ({type(exc).__name__}: {exc})."
        ) from exc
