"""skorch's parameter names, and what each is here.

Scripts ported from skorch keep some of its names (``train_split``,
``iterator_train__shuffle``, ``callbacks__EarlyStopping__patience``). Each
is refused like any unknown parameter, but with the skcallback equivalent
(or the reason there is none) instead of the list of valid names. The
names skorch and skcallback share (``module__*``, ``optimizer__*``,
``criterion__*``, ``lr``, ``max_epochs``, ``batch_size``, ``callbacks``,
``device``, ``warm_start``, ``verbose``, ``compile``) are not here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._data import EVAL_BATCH_SIZE
from .callbacks._base import snake_case
from .callbacks._defaults import VERBOSE

_NO_SAMPLER = (
    "none: each epoch trains on every row once, in an order drawn from random_state "
    "(sample_weight weighs rows)"
)

#: skorch's NeuralNet, NeuralNetClassifier and NeuralNetRegressor parameters
#: without a prefix, mapped to what to use here.
PARAMS: dict[str, str] = {
    "train_split": (
        "validation_fraction (a share of the rows, stratified for classifiers; "
        "train_split=None is validation_fraction=None), or fit(X, y, X_val=..., y_val=...)"
    ),
    "iterator_train": "none: batches come from torch DataLoaders; set their options with "
    "dataloader__<param>",
    "iterator_valid": "none: batches come from torch DataLoaders; set their options with "
    "dataloader__<param>",
    "dataset": "none: pass arrays, a dict of arrays, or a torch Dataset of (x, y) items "
    "as X (then y=None)",
    "predict_nonlinearity": "none: a classifier's module returns one logit per class and "
    "predict_proba applies the softmax; a regressor's output is its prediction",
    "use_caching": "none needed: EpochScoring scores the predictions the epoch made, "
    "without another forward pass",
    "torch_load_kwargs": "none: checkpoints and model files always load weights only",
    "classes": "partial_fit(X, y, classes=...); fit reads the classes from y",
    "threshold": "none yet (NeuralNetBinaryClassifier's decision threshold)",
}

#: Options of skorch's ``iterator_train__*`` / ``iterator_valid__*`` that
#: are not DataLoader options here; the others are ``dataloader__<param>``.
_LOADER_OPTIONS: dict[str, str] = {
    "batch_size": (
        f"batch_size (training batches have batch_size rows; validation and prediction "
        f"batches max(batch_size, {EVAL_BATCH_SIZE}))"
    ),
    "sampler": _NO_SAMPLER,
    "batch_sampler": _NO_SAMPLER,
    "drop_last": _NO_SAMPLER,
    "generator": _NO_SAMPLER,
}

#: skorch's default callbacks, which skcallback does without.
_DEFAULT_CALLBACKS: dict[str, str] = {
    "epoch_timer": "none needed: the history records each epoch's duration as 'dur'",
    "train_loss": "none needed: the history records 'train_loss'",
    "valid_loss": "none needed: the history records 'valid_loss' when the fit validates",
    "valid_acc": "no accuracy is recorded by default: add EpochScoring('accuracy') to "
    "callbacks for 'valid_accuracy' (its parameters are cb__valid_accuracy__<param>)",
}


def equivalent(key: str, value: Any, callbacks: Sequence[tuple[str, Any]] = ()) -> str | None:
    """What skorch's parameter ``key`` (set to ``value``) is here, as a
    sentence; None when ``key`` is not one of skorch's.

    Parameters
    ----------
    key : str
        A parameter name that the estimator does not take.
    value : object
        Its value (``iterator_train__shuffle=False`` has no equivalent,
        ``True`` is the default).
    callbacks : sequence of (name, Callback or None)
        The estimator's callbacks, so that ``callbacks__<Name>__<param>``
        names the callback this estimator has under that name or class.
    """
    if key in PARAMS:
        return PARAMS[key]
    prefix, _, option = key.partition("__")
    if not option:
        return None
    if prefix == "iterator_train" and option == "shuffle":
        if isinstance(value, bool | np.bool_) and value:  # a grid may hold NumPy's
            return (
                "nothing to set: training batches are already shuffled, anew each epoch, "
                "in an order drawn from random_state"
            )
        return (
            "none: training batches are always shuffled, anew each epoch (random_state "
            "fixes the order)"
        )
    if prefix == "iterator_valid" and option == "shuffle":
        return "none: validation and prediction batches keep the rows' order"
    if prefix in ("iterator_train", "iterator_valid"):
        return _LOADER_OPTIONS.get(option, f"dataloader__{option}")
    if prefix == "dataset":
        return "none: pass a torch Dataset built with these arguments as X"
    if prefix == "compile":
        return "none: compile=True uses torch.compile's defaults"
    if prefix == "callbacks":
        return _callback_equivalent(option, callbacks)
    return None


def _callback_equivalent(option: str, callbacks: Sequence[tuple[str, Any]]) -> str:
    """``callbacks__<name>[__<param>]``: skorch names a callback by its
    class name unless given a name; here it is the class name in
    snake_case."""
    name, _, param = option.partition("__")
    if name in _DEFAULT_CALLBACKS:
        return _DEFAULT_CALLBACKS[name]
    ours = [
        given
        for given, cb in callbacks
        if given == name or (cb is not None and type(cb).__name__ == name)
    ] or [snake_case(name)]
    suffix = f"__{param}" if param else ""
    found = " or ".join(f"cb__{candidate}{suffix}" for candidate in ours)
    if ours[0] in VERBOSE:
        found += f" (verbose={VERBOSE[ours[0]][0]} or more adds it)"
    elif callbacks and not any(given in ours for given, _ in callbacks):
        found += (
            f" (once the callback is in callbacks; those of this estimator are "
            f"{[given for given, _ in callbacks]})"
        )
    return found
