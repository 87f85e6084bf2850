"""The checkpoint format: the complete state of a fit in one file.

A file is a magic line, a BLAKE2b checksum of the payload, and the payload:
a ``torch.save`` of plain data (tensors, numbers, strings, lists, dicts),
read back with ``torch.load(weights_only=True)``, so loading never unpickles
an object. Files carry data, never authority: no path is saved, and every
field is checked on load against the estimator that loads it.

A snapshot holds everything the rest of the fit depends on: the fitted
state every format stores (``_fitted_state.encode``: module, optimizer,
every callback's state (history included), the NumPy generator, the seed of
the validation split, the counts), and on top of it the gradient scaler, the
fit's torch generators and its position in the current epoch (the batches
done, the losses so far, the generator state the epoch's permutation was
drawn from).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from . import _fitted_state
from ._files import DIGEST_SIZE, atomic_write, checksum

FORMAT = 2
MAGIC = b"skcallback-checkpoint\n"


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
    fitted = _fitted_state.encode(work)
    for name, state in fitted["callbacks"].items():
        if not _fitted_state.is_plain(state):
            raise ValueError(
                f"A checkpoint cannot store the state of callback {name!r}: its state_dict() "
                "holds something other than plain data (numbers, strings, lists, dicts, "
                "tensors), which the checkpoint could not read back without unpickling it."
            )
    # The counts are the context's: the estimator records them when the fit ends.
    return fitted | {
        "format": FORMAT,
        "estimator": type(work).__name__,
        "architecture": architecture(work),
        "fingerprint": plan.fingerprint(),
        "epoch": ctx.epoch - 1 if mid_epoch else ctx.epoch,
        "step": ctx.step,
        "stop_reason": ctx.stop_reason,
        "batches_done": ctx.batch if mid_epoch else 0,
        "epoch_lr": progress.lr if mid_epoch else None,
        "epoch_losses": [loss.detach().cpu() for loss in progress.losses] if mid_epoch else [],
        "epoch_sizes": list(progress.sizes) if mid_epoch else [],
        "shuffle_state": progress.shuffle_state if mid_epoch else run.shuffle.get_state(),
        "dropout_state": run.dropout.get_state(),
        "global_rng_state": torch.random.get_rng_state() if plan.custom_seed is not None else None,
        "grad_scaler": None if ctx.grad_scaler is None else ctx.grad_scaler.state_dict(),
    }


def write(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` to ``path`` atomically (``_files.atomic_write``), after
    the format header and the payload's checksum."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    return atomic_write(MAGIC + checksum(payload) + payload, path, "the checkpoint")


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
    head = len(MAGIC) + DIGEST_SIZE
    if not data.startswith(MAGIC) or len(data) < head:
        raise ValueError(f"{path} is not a skcallback checkpoint (it lacks the format header).")
    payload = data[head:]
    if checksum(payload) != data[len(MAGIC) : head]:
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
    return state


#: A checkpoint's fields besides the fitted state's (``_fitted_state.FIELDS``):
#: what it was saved by, and the fit's position within the current epoch.
_FIELDS: dict[str, Any] = {
    "format": int,
    "estimator": str,
    "architecture": dict,
    "fingerprint": str,
    "batches_done": int,
    "epoch_losses": list,
    "epoch_sizes": list,
    "shuffle_state": torch.Tensor,
    "dropout_state": torch.Tensor,
}


_NULLABLE: dict[str, Any] = {
    "epoch_lr": float | int,
    "global_rng_state": torch.Tensor,
    "grad_scaler": dict,
}


def _check_fields(state: Any, path: Any) -> None:
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a skcallback checkpoint of format {FORMAT}.")
    _fitted_state.check_types(state, path, _FIELDS, _NULLABLE)
    _fitted_state.check_state(state, path)
    for key in ("shuffle_state", "dropout_state", "global_rng_state"):
        if state[key] is not None and state[key].dtype != torch.uint8:
            raise ValueError(f"{path} is malformed: {key!r} is not a generator state.")
    with _fitted_state.malformed(path):
        torch.Generator().set_state(state["shuffle_state"])
    losses, sizes = state["epoch_losses"], state["epoch_sizes"]
    if (
        len(losses) != len(sizes)
        or len(losses) > state["batches_done"]
        or not all(isinstance(x, torch.Tensor) and x.ndim == 0 for x in losses)
        or not all(isinstance(n, int) and n > 0 for n in sizes)
    ):
        raise ValueError(f"{path} is malformed: the losses of the unfinished epoch.")
    if state["batches_done"] < 0:
        raise ValueError(f"{path} is malformed: negative epoch, step or batch count.")


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
