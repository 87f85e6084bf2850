"""LoadWeights: weights saved elsewhere, loaded into (part of) the module."""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from .._context import Context
from .._stack import user_stacklevel
from .._untrusted import check_tensor_sizes
from ._base import Callback
from ._finetune import PATTERNS, as_patterns, check_every_pattern_matches, is_fresh, matching


def _path_ok(value: Any) -> bool:
    return isinstance(value, str | os.PathLike) and bool(os.fspath(value))


class LoadWeights(Callback):
    """Load weights from a file into the module before a new fit trains it.

    The file is a torch state dict (``torch.save(module.state_dict(),
    path)``), read with ``torch.load(weights_only=True)`` (never unpickled
    beyond tensors and plain containers), or a ``.safetensors`` file. It
    carries data, never authority: its tensors are checked (names, shapes,
    finite values, no more elements than stored bytes) before any is copied
    into the module, which keeps its own dtypes and device. A warm start, a
    continued ``partial_fit`` and a fit resumed from a checkpoint keep their
    weights: nothing is loaded.

    Parameters
    ----------
    path : str or path-like
        The file: ``*.safetensors``, else a torch state dict.
    patterns : str or list of str, optional
        ``fnmatch`` patterns of the state's names (``"backbone.*"``): only
        these are loaded, the module's other weights keep their
        initialisation. Each must match a name of the module (checked
        before training). None: every name.
    strict : bool, default=True
        Whether a mismatch is an error: a name of the module (among the
        patterns) missing from the file, a name of the file (among the
        patterns) the module lacks, or a shape that differs. The error lists
        each. With ``strict=False`` the names that match in shape are loaded
        and a warning gives the same report.

    Notes
    -----
    The file is read and checked in ``setup`` (a mismatch is an error before
    training) and copied into the module in ``on_fit_begin``, before
    ordinary callbacks (``order = -10``); the tensors read are dropped then,
    so the fitted callback holds no weights. A state dict saved with
    ``torch.save`` is memory-mapped while it is read.

    Examples
    --------
    >>> import numpy as np, torch, tempfile, os
    >>> from skcallback import NeuralRegressor
    >>> from skcallback.callbacks import LoadWeights
    >>> X = np.random.RandomState(0).normal(size=(64, 3)).astype("float32")
    >>> y = X.sum(1)
    >>> pre = NeuralRegressor(hidden_layer_sizes=(8,), max_epochs=5, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "pre.pt")
    >>> torch.save(pre.module_.state_dict(), path)
    >>> est = NeuralRegressor(hidden_layer_sizes=(8,), max_epochs=1, random_state=1,
    ...                       callbacks=[LoadWeights(path, patterns="layers.0.*")]).fit(X, y)
    """

    order = -10
    parameter_constraints = {
        "path": (_path_ok, "a non-empty str or path-like"),
        "patterns": (lambda v: v is None or PATTERNS[0](v), f"None or {PATTERNS[1]}"),
        "strict": (lambda v: isinstance(v, bool), "True or False"),
    }

    def __init__(
        self,
        path: str | os.PathLike,
        patterns: str | list[str] | None = None,
        strict: bool = True,
    ) -> None:
        self.path = path
        self.patterns = patterns
        self.strict = strict

    def setup(self, plan: Any) -> None:
        self._weights: dict[str, torch.Tensor] = {}
        if not is_fresh(plan):
            return
        own = plan.estimator.module_.state_dict()
        patterns = None if self.patterns is None else as_patterns(self.patterns)
        if patterns is not None:
            check_every_pattern_matches(self, list(own), patterns, "module weight")
        path = Path(self.path)
        shapes = read_shapes(path)
        wanted = list(shapes) if patterns is None else matching(shapes, patterns)
        expected = list(own) if patterns is None else matching(own, patterns)
        report = _mismatches(own, shapes, wanted, expected)
        if report:
            message = f"LoadWeights({str(path)!r}) does not fit the module: " + "; ".join(report)
            if self.strict:
                raise ValueError(message + ". Pass strict=False to load the weights that fit.")
            warnings.warn(message + ".", UserWarning, stacklevel=user_stacklevel())
        names = [name for name in wanted if name in own and shapes[name] == tuple(own[name].shape)]
        self._weights = read_tensors(path, names)

    def on_fit_begin(self, ctx: Context) -> None:
        weights, self._weights = self._weights, {}
        if not weights:
            return
        own = ctx.module.state_dict()
        with torch.no_grad():
            for name, tensor in weights.items():
                own[name].copy_(tensor)

    def on_fit_end(self, ctx: Context) -> None:
        self._weights = {}  # a failed fit's too: the fitted callback holds no weights


def _mismatches(
    own: dict[str, torch.Tensor],
    shapes: dict[str, tuple[int, ...]],
    wanted: list[str],
    expected: list[str],
) -> list[str]:
    """The report of a file's names and shapes against the module's."""
    missing = [name for name in expected if name not in shapes]
    unexpected = [name for name in wanted if name not in own]
    shaped = [
        f"{name} {shapes[name]} in the file, {tuple(own[name].shape)} in the module"
        for name in wanted
        if name in own and shapes[name] != tuple(own[name].shape)
    ]
    report = []
    if missing:
        report.append(f"missing from the file: {missing}")
    if unexpected:
        report.append(f"not in the module: {unexpected}")
    if shaped:
        report.append("shapes differ: " + ", ".join(shaped))
    return report


def read_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The names and shapes of the tensors in ``path`` (read from the
    header of a safetensors file, without loading them)."""
    if not path.is_file():
        raise FileNotFoundError(f"LoadWeights: no file at {str(path)!r}.")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import safe_open

        try:
            with safe_open(str(path), framework="pt") as file:
                return {name: tuple(file.get_slice(name).get_shape()) for name in file.keys()}  # noqa: SIM118
        except (SafetensorError, OSError, ValueError) as exc:
            raise _unreadable(path, exc) from exc
    return {name: tuple(tensor.shape) for name, tensor in _torch_state(path).items()}


def read_tensors(path: Path, names: list[str]) -> dict[str, torch.Tensor]:
    """The tensors ``names`` of ``path``, checked: no more elements than
    their stored bytes, finite floats."""
    if not names:
        return {}
    if path.suffix == ".safetensors":
        from safetensors.torch import safe_open

        with safe_open(str(path), framework="pt") as file:
            tensors = {name: file.get_tensor(name) for name in names}
    else:
        state = _torch_state(path)
        tensors = {name: state[name] for name in names}
    check_tensor_sizes(tensors, path)
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{path} is malformed: the weight {name!r} is not finite.")
    return tensors


def _torch_state(path: Path) -> dict[str, torch.Tensor]:
    """The state dict saved in ``path`` with ``torch.save``: loaded with
    ``weights_only=True`` (memory-mapped where the file allows it)."""
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):  # a file of torch's legacy format maps not
                raise
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise _unreadable(path, exc) from exc
    if not (
        isinstance(state, dict)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())
    ):
        inner = (
            [k for k, v in state.items() if isinstance(v, dict)] if isinstance(state, dict) else []
        )
        hint = (
            f" (it holds dicts under {inner}: save the module's state_dict alone)" if inner else ""
        )
        raise ValueError(
            f"{path} holds a {type(state).__name__}, not a state dict (tensors by name){hint}."
        )
    check_tensor_sizes(state, path)
    return state


def _unreadable(path: Path, exc: BaseException) -> ValueError:
    if isinstance(exc, pickle.UnpicklingError):  # torch's text advises weights_only=False
        return ValueError(
            f"LoadWeights cannot read {str(path)!r}: it is corrupt, or holds objects besides "
            "tensors and plain containers, which are never unpickled (save the module's "
            "state_dict() with torch.save, or a safetensors file)."
        )
    return ValueError(
        f"LoadWeights cannot read {str(path)!r} as a torch state dict or a safetensors file "
        f"(a corrupt file, or not one of those): {type(exc).__name__}: {exc}"
    )
