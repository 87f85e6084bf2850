"""The shared base of :class:`NeuralRegressor` and :class:`NeuralClassifier`:
parameters and routing, input validation, fitting, prediction, persistence."""

from __future__ import annotations

import copy
import inspect
import io
import math
import os
import warnings
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
from torch import nn

from . import _routing
from ._context import Context
from ._data import EVAL_BATCH_SIZE, Dataset, canonical_rows, predict_batches
from ._dispatch import CallbackMap, HookTable
from ._loop import run_fit
from ._modules import build_module
from ._params import OPTIMIZERS, InvalidParameterError, validate_parameters
from ._precision import Precision, autocast, compiled_forward

#: Fitted attributes holding torch objects; pickled through ``torch.save`` so a
#: model fitted on a GPU loads on a CPU-only machine.
_TORCH_ATTRIBUTES = ("module_", "optimizer_", "criterion_", "callbacks_", "history_")
#: Attributes that validation sets, restored if a call fails before training.
_INPUT_ATTRIBUTES = ("n_features_in_", "feature_names_in_")


class NeuralEstimatorBase(BaseEstimator):
    """Parameters, routing and the fit/predict machinery shared by the
    regressor and the classifier; subclasses only handle targets."""

    def __init__(
        self,
        *,
        module: Any = None,
        hidden_layer_sizes: tuple[int, ...] = (100,),
        activation: str = "relu",
        dropout: float = 0.0,
        criterion: Any = None,
        optimizer: str | type[torch.optim.Optimizer] = "adam",
        lr: float = 1e-3,
        batch_size: int = 128,
        max_epochs: int = 100,
        validation_fraction: float | None = 0.1,
        callbacks: list | None = None,
        device: str | torch.device = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
        warm_start: bool = False,
        compile: bool = False,
        precision: str = "32",
        **routed_params: Any,
    ) -> None:
        self.module = module
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.criterion = criterion
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.callbacks = callbacks
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.compile = compile
        self.precision = precision
        # Routed parameters (cb__*, module__*, ...) are stored as given and
        # checked at fit, as scikit-learn validates every parameter there.
        for key, value in routed_params.items():
            setattr(self, key, value)

    # ------------------------------------------------------------------
    # Parameters
    # ------------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters of this estimator, routed ones included.

        Parameters
        ----------
        deep : bool, default=True
            Also return each callback as ``cb__<name>`` and its parameters as
            ``cb__<name>__<param>``.
        """
        params = super().get_params(deep=False)
        extras = _routing.extra_params(self)
        if deep:
            params.update(_routing.callback_params(self))
        params.update(extras)
        return params

    def set_params(self, **params: Any) -> NeuralEstimatorBase:
        """Set parameters, routed ones included.

        The ``callbacks`` list is applied first, then ``cb__<name>``
        replacements, then ``cb__<name>__<param>`` values.

        Raises
        ------
        ValueError
            For an unknown parameter, callback name or callback parameter.
        """
        stored = set(_routing.extra_params(self))
        plain = {k: v for k, v in params.items() if not _routing.is_routed(k) and k not in stored}
        if plain:
            super().set_params(**plain)
        rest = {k: v for k, v in params.items() if k not in plain}
        for key in sorted(rest, key=lambda k: k.count("__")):
            if key.startswith("cb__"):
                setattr(self, key, rest[key])
                try:
                    _routing.check_callback_param(self, key)
                except ValueError:
                    delattr(self, key)
                    raise
            else:
                setattr(self, key, rest[key])
        return self

    # ------------------------------------------------------------------
    # Fitting
    # ------------------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> NeuralEstimatorBase:
        """Train the module for ``max_epochs`` epochs (fewer if stopped).

        With ``warm_start=True`` a fitted estimator continues: module,
        optimizer, callback state and history carry on.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights of each sample's loss; zero-weight samples
            are left out.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, partial=False)

    def _fit(self, X, y, sample_weight, *, partial: bool, classes: Any = None):
        continuing = self.__sklearn_is_fitted__() and (partial or self.warm_start)
        snapshot = {k: vars(self)[k] for k in _INPUT_ATTRIBUTES if k in vars(self)}
        # Until the commit below, an error leaves a fitted model as it was.
        try:
            validate_parameters(self)
            _routing.check_extra_params(self)
            device = _resolve_device(self.device)
            X, y = self._validate_inputs(X, y, reset=not continuing)
            y, target_state = self._encode_targets(y, continuing=continuing, classes=classes)
            sample_weight = self._check_weights(sample_weight, X)
            callbacks = _routing.fitted_callbacks(self)
            rows, weights = canonical_rows(X, y, sample_weight)
            rng = copy.deepcopy(self._rng) if continuing else check_random_state(self.random_state)
            train, valid = self._split(rows, weights, y, rng, partial=partial)
            seed = int(rng.randint(np.iinfo(np.int32).max))
            cuda = [device.index or 0] if device.type == "cuda" else []
            with torch.random.fork_rng(devices=cuda):
                torch.manual_seed(seed)
                if continuing:
                    module, optimizer, criterion = self.module_, self.optimizer_, self.criterion_
                    kinds = {name: type(cb) for name, cb in callbacks}
                    previous = {
                        name: cb.state_dict()
                        for name, cb in self.callbacks_.items()
                        if kinds.get(name) is type(cb)
                    }
                else:
                    module, criterion, optimizer = self._build_objects(
                        X.shape[1], target_state["n_outputs_"], device
                    )
                    previous = {}
                compute_loss = _loss_function(criterion, weighted=weights is not None)
            data = Dataset(X, y, device)
            precision = Precision(self.precision, device)
        except BaseException:
            for key in _INPUT_ATTRIBUTES:
                vars(self).pop(key, None)
            vars(self).update(snapshot)
            raise

        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed + 1)
            # Everything is valid: commit the fitted state.
            start = self.n_iter_ if continuing else 0
            steps = self.n_steps_ if continuing else 0
            self._commit(
                target_state,
                module,
                optimizer,
                criterion,
                device,
                callbacks,
                previous,
                rng,
                start,
                steps,
            )
            ctx = Context(
                estimator=self,
                module=module,
                optimizer=optimizer,
                criterion=criterion,
                device=device,
                epoch=start,
                max_epochs=start + (1 if partial else self.max_epochs),
                step=steps,
                history=self.history_,
                callbacks=self.callbacks_,
            )
            generator = torch.Generator().manual_seed(seed)
            ctx.grad_scaler = precision.scaler
            try:
                run_fit(
                    ctx,
                    HookTable(callbacks),
                    data.subset(*train),
                    None if valid is None else data.subset(*valid),
                    batch_size=self.batch_size,
                    generator=generator,
                    compute_loss=compute_loss,
                    precision=precision,
                    forward=compiled_forward(module, self.compile),
                )
            finally:
                self.n_iter_ = len(self.history_)
                self.n_steps_ = ctx.step
                module.eval()
        return self

    def _build_objects(self, n_features: int, n_outputs: int, device: torch.device):
        module = build_module(self, n_features, n_outputs, _routing.routed(self, "module__"))
        module = module.to(device)
        return module, self._build_criterion(device), self._build_optimizer(module)

    def _commit(
        self, data_state, module, optimizer, criterion, device, callbacks, states, rng, epoch, step
    ) -> None:
        """Set the fitted attributes (after everything was validated)."""
        for name, cb in callbacks:
            if name in states:
                cb.load_state_dict(states[name])
        vars(self).update(data_state)
        self.module_, self.optimizer_, self.criterion_ = module, optimizer, criterion
        self.device_ = device
        self.callbacks_ = CallbackMap(callbacks)
        self.history_ = self.callbacks_["history"]
        self._rng = rng
        self.n_iter_, self.n_steps_ = epoch, step

    def _data_state(self) -> dict[str, Any]:
        """What the fit learned about its data (saved in checkpoints)."""
        keys = ("n_features_in_", "feature_names_in_", "n_outputs_", "classes_", "_y_ndim")
        return {key: vars(self)[key] for key in keys if key in vars(self)}

    def load_checkpoint(self, path: str | os.PathLike) -> NeuralEstimatorBase:
        """Restore module, optimizer, callback states and history from a
        :class:`~skcallback.callbacks.Checkpoint` file.

        The estimator must be built with the same parameters as the one that
        saved it; it may be fitted or not. Nothing changes if the file does
        not match.

        Parameters
        ----------
        path : str or path-like

        Returns
        -------
        self

        Raises
        ------
        ValueError
            If the file is corrupt, not a checkpoint, from another estimator
            class, or does not match this estimator's module or optimizer.
        """
        from .callbacks._checkpoint import read_checkpoint

        validate_parameters(self)
        _routing.check_extra_params(self)
        device = _resolve_device(self.device)
        state = read_checkpoint(path, device)
        if state["estimator"] != type(self).__name__:
            raise ValueError(
                f"{path} was saved by a {state['estimator']}, not a {type(self).__name__}."
            )
        data_state = state["data"]
        module, criterion, optimizer = self._build_objects(
            data_state["n_features_in_"], data_state["n_outputs_"], device
        )
        try:
            module.load_state_dict(state["module"])
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ValueError(
                f"{path} does not match this estimator's module or optimizer; build the "
                f"estimator with the parameters that saved it. ({exc})"
            ) from exc
        callbacks = _routing.fitted_callbacks(self)
        rng = check_random_state(self.random_state)
        self._commit(
            data_state,
            module,
            optimizer,
            criterion,
            device,
            callbacks,
            state["callbacks"],
            rng,
            state["epoch"],
            state["step"],
        )
        module.eval()
        return self

    def _validate_inputs(self, X, y, *, reset: bool):
        return validate_data(
            self,
            X,
            y,
            reset=reset,
            accept_sparse="csr",
            dtype=np.float32,
            **self._target_validation,
        )

    def _check_weights(self, sample_weight, X) -> np.ndarray | None:
        if sample_weight is None:
            return None
        sample_weight = _check_sample_weight(
            sample_weight, X, dtype=np.float32, ensure_non_negative=True
        )
        if not np.isfinite(sample_weight).all():
            raise ValueError("sample_weight must be finite; it contains NaN or infinity.")
        if not sample_weight.any():
            raise ValueError(
                "Sample weights must contain at least one non-zero number; all are zero."
            )
        return sample_weight

    def _split(self, rows, weights, y, rng, *, partial: bool):
        """Hold out ``validation_fraction`` of the (distinct) training rows,
        stratified for classifiers; returns ``(rows, weights)`` pairs."""
        fraction = self.validation_fraction
        if partial or fraction is None:
            return (rows, weights), None
        n_rows = len(rows)
        n_valid = math.ceil(fraction * n_rows)
        if n_rows - n_valid < 1:
            raise ValueError(
                f"Cannot hold out validation_fraction={fraction} of n_samples={n_rows} "
                "(distinct, non-zero-weight) samples: no training sample would remain. Pass "
                "more samples or set validation_fraction=None."
            )
        splitter = ShuffleSplit(n_splits=1, test_size=n_valid, random_state=rng)
        labels = self._stratify_labels(y)
        if labels is not None:
            labels = labels[rows]
            counts = np.unique(labels, return_counts=True)[1]
            if counts.min() >= 2 and len(counts) <= n_valid <= n_rows - len(counts):
                splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_valid, random_state=rng)
        train, valid = (np.sort(part) for part in next(splitter.split(rows, labels)))

        def take(part):
            return rows[part], None if weights is None else weights[part]

        return take(train), take(valid)

    def _build_criterion(self, device: torch.device) -> nn.Module:
        params = _routing.routed(self, "criterion__")
        criterion = self.criterion if self.criterion is not None else self._default_criterion
        if isinstance(criterion, nn.Module):
            if params:
                raise ValueError(
                    f"criterion__ parameters {sorted(params)} cannot apply to a criterion "
                    "instance; pass its class instead."
                )
            built = copy.deepcopy(criterion)
        else:
            try:
                built = criterion(**params)
            except TypeError as exc:
                raise ValueError(
                    f"Could not build the criterion {criterion!r} with criterion__ parameters "
                    f"{params}: {exc}"
                ) from exc
        return built.to(device) if isinstance(built, nn.Module) else built

    def _build_optimizer(self, module: nn.Module) -> torch.optim.Optimizer:
        params = _routing.routed(self, "optimizer__")
        name = self.optimizer
        cls = OPTIMIZERS[name.lower()] if isinstance(name, str) else name
        kwargs = {"lr": self.lr, **params}
        parameters = list(module.parameters())
        if not {"fused", "foreach"} & set(params) and _takes(cls, "fused"):
            # The fused kernels (CPU and CUDA) update every tensor in one call;
            # where this optimizer or device has none, use the default.
            try:
                return cls(parameters, fused=True, **kwargs)
            except (RuntimeError, ValueError, TypeError):
                pass
        try:
            return cls(parameters, **kwargs)
        except TypeError as exc:
            raise InvalidParameterError(
                f"Could not build the optimizer {cls.__name__} with optimizer__ parameters "
                f"{params}: {exc}"
            ) from exc

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> NeuralEstimatorBase:
        """Train for one epoch, continuing from the fitted state if any.

        No validation data is held out: every sample given trains.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, partial=True)

    # ------------------------------------------------------------------
    # Prediction
    # ------------------------------------------------------------------
    def _forward(self, X: Any) -> torch.Tensor:
        """The module's output for ``X`` on the CPU, in large batches."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, accept_sparse="csr", dtype=np.float32)
        module, device = self.module_, self.device_
        module.eval()
        outputs = []
        with torch.inference_mode(), autocast(self.precision, device):
            for X_b, n_rows in predict_batches(X, max(self.batch_size, EVAL_BATCH_SIZE), device):
                outputs.append(module(X_b)[:n_rows].float().cpu())
        return torch.cat(outputs)

    # ------------------------------------------------------------------
    # scikit-learn protocol and persistence
    # ------------------------------------------------------------------
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "module_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        torch_state = {k: state.pop(k) for k in _TORCH_ATTRIBUTES if k in state}
        if torch_state:
            buffer = io.BytesIO()
            torch.save(torch_state, buffer)
            state["_torch_state"] = buffer.getvalue()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        blob = state.pop("_torch_state", None)
        if blob is not None:
            device = state.get("device_", torch.device("cpu"))
            if device.type == "cuda" and not _cuda_index_available(device):
                warnings.warn(
                    f"This model was fitted on {device}, which is not available here; it is "
                    "loaded on the CPU.",
                    RuntimeWarning,
                    stacklevel=2,
                )
                device = state["device_"] = torch.device("cpu")
            state.update(torch.load(io.BytesIO(blob), map_location=device, weights_only=False))
        super().__setstate__(state)


def _loss_function(criterion, *, weighted: bool):
    """``loss(y_pred, y, sample_weight)``: the criterion, or its per-sample
    values averaged with the weights."""
    if not weighted:
        return lambda y_pred, y, w: criterion(y_pred, y)
    if not hasattr(criterion, "reduction"):
        raise ValueError(
            f"sample_weight needs a criterion with a 'reduction' attribute (as torch.nn "
            f"losses have) to compute per-sample losses; {criterion!r} has none."
        )
    per_sample = copy.copy(criterion)
    per_sample.reduction = "none"

    def compute(y_pred, y, w):
        losses = per_sample(y_pred, y)
        if losses.ndim > 1:
            losses = losses.reshape(len(losses), -1).mean(1)
        return (losses * w).sum() / w.sum()

    return compute


def _takes(factory: Any, name: str) -> bool:
    try:
        return name in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


def _cuda_index_available(device: torch.device) -> bool:
    return torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()


def _resolve_device(device: str | torch.device) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not _cuda_index_available(resolved):
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        raise InvalidParameterError(
            f"device={device!r} was requested but {available} CUDA device(s) are available; "
            "use device='cpu' or device='auto'."
        )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidParameterError(
            "device='mps' was requested but MPS is not available; use 'cpu' or 'auto'."
        )
    return resolved


__all__ = ["NeuralEstimatorBase"]
