"""NeuralRegressor."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import RegressorMixin
from torch import nn

from ._base import NeuralEstimatorBase
from ._data import host_float64
from ._inputs import host, numeric_targets, numeric_weights
from ._precision import float_dtype


class NeuralRegressor(RegressorMixin, NeuralEstimatorBase):
    """A scikit-learn regressor trained by a PyTorch loop with callbacks.

    The default module is an MLP sized from the data; ``y`` may be 1-D or
    2-D (several targets). The loss is the mean squared error unless
    ``criterion`` says otherwise.

    Parameters
    ----------
    module : None, nn.Module class or factory, or nn.Module instance, default=None
        ``None`` builds an MLP from ``hidden_layer_sizes``, ``activation`` and
        ``dropout``. A class or factory is called with the ``module__*``
        parameters, plus ``n_features_in`` (2-D ``X``), ``input_shape`` (a
        sample's shape; a dict of shapes for a dict ``X``) and ``n_outputs``
        when its signature names them. An instance is copied at fit, never
        mutated.
    hidden_layer_sizes : tuple of int, default=(100,)
        Widths of the MLP's hidden layers; ``()`` gives a linear model.
    activation : str or nn.Module class, default="relu"
        Activation of the MLP: "relu", "tanh", "logistic", "identity",
        "gelu", "silu", "elu", "leaky_relu", or a module class.
    dropout : float, default=0.0
        Dropout probability after each hidden layer of the MLP.
    criterion : None, nn.Module class or instance, default=None
        The loss; ``None`` is ``nn.MSELoss``. ``criterion__*`` parameters go
        to its constructor.
    optimizer : str or torch.optim.Optimizer class, default="adam"
        "adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta", "adamax",
        "nadam", "radam", or a class; ``optimizer__*`` parameters go to it.
    lr : float, default=1e-3
        Learning rate.
    batch_size : int, default=128
        Samples per training batch.
    accumulate : int, default=1
        Gradient accumulation: the optimizer steps once every
        ``accumulate`` batches, on the gradient of the mean loss over their
        rows (each batch's loss is scaled by its share of the rows), as one
        batch of ``accumulate * batch_size`` rows would give, in the memory
        of one batch. An epoch's last window may be shorter. ``ctx.step``,
        ``n_steps_`` and per-step callbacks count optimizer steps.
    max_epochs : int, default=100
        Epochs to train (per call to ``fit``).
    validation_fraction : float or None, default=0.1
        Share of the samples held out to compute ``valid_loss`` each epoch
        (a shuffled split); ``None`` trains on all samples. Not used when
        ``fit`` gets ``X_val`` and ``y_val``.
    validate_every : int, default=1
        Validate every ``validate_every``-th epoch (counted from the start
        of training) and the last one (the fit's ``max_epochs``-th, or one
        in which a callback asked to stop before validation), as
        mlr3torch's ``eval_freq``. Other epochs record no ``valid_*``
        metric, and callbacks that watch one skip them (EarlyStopping's
        patience counts validated epochs). Each ``partial_fit`` call
        validates.
    callbacks : list of Callback or (name, Callback), default=None
        Callbacks of the fit. Each fit works on clones; these objects are
        never modified. [`History`][skcallback.callbacks.History] is always
        added.
    device : str or torch.device, default="auto"
        "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:1", ...
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling, dropout and the validation split.
        The same seed on the CPU gives the same model.
    verbose : int, default=0
        0 is silent, 1 prints a line per epoch, 2 adds a progress bar.
    warm_start : bool, default=False
        Continue training from the fitted state at the next ``fit``.
    compile : bool, default=False
        Train through ``torch.compile(module)``; where compiling fails, a
        warning is given and training runs eagerly. A process compiles a
        network at its first fit of it (seconds) and reuses that at later
        fits of any estimator with the same network and batch shapes. It
        turns the fast path off, so it pays off only for large networks and
        long fits: see the performance page's *Options* rows.
    precision : {"32", "64", "bf16-mixed", "16-mixed"}, default="32"
        Float32, float64, or mixed precision under ``torch.autocast``
        (float16 adds a gradient scaler). Predictions use the same precision.
    fast_path : bool, default=True
        Train the built-in MLP with hand-derived gradients (forward, loss and
        backward written into buffers reused from batch to batch, as
        scikit-learn's MLP does) instead of autograd: the same model within
        float rounding, in 0.44-0.49x the time for the 64-64 MLP of the
        benchmarks. It applies with ``module=None``, a built-in
        ``activation``, the default mean squared error (``criterion=None``, no
        ``criterion__*``), ``precision="32"``, ``compile=False``, a CPU or
        CUDA device and no callback overriding ``on_after_forward``,
        ``on_after_loss`` or ``on_before_backward``; otherwise autograd
        trains, as with ``fast_path=False``. ``fast_path_`` tells which ran.
        Batches a callback replaces with ones the step does not compute
        (more rows, soft targets), and batches trained while a forward or
        gradient hook is registered, a parameter was replaced or a dropout
        layer is in eval mode, train with autograd within such a fit (see
        the training-loop page).
        With any module, ``fast_path=True`` also steps torch's fused
        ``Adam``/``AdamW`` (the default optimizer) by calling its kernel
        directly, bit for bit what ``optimizer.step()`` computes, unless a
        step hook is registered; ``fast_path=False`` calls ``step()``.
    threads : "auto", int or None, default="auto"
        torch's intra-op threads during the fit, on the CPU; the caller's
        setting is restored afterwards. ``"auto"`` uses one thread when a
        training step is small (under about 5e7 floating-point operations,
        as the built-in MLP at its usual sizes), where more threads cost
        more in synchronisation than they save; otherwise torch's setting,
        but no more threads than the cores the rest of the machine leaves
        idle (the load average less this process's own use, and the tasks
        running at the fit's start) within the process's CPU affinity, and
        at least one: on a busy machine every extra thread waits on the
        others. None always keeps torch's setting.
    strategy : None or "ddp", default=None
        None trains in this process. ``"ddp"`` trains one model
        data-parallel across the processes of a ``torch.distributed`` job
        launched with ``torchrun`` (gloo on CPUs, NCCL on GPUs): every rank
        calls ``fit`` with the same arguments (an int ``random_state``
        included), trains on its share of each batch of ``world_size *
        batch_size`` rows, and ends with the same model; only rank 0 runs
        the callbacks that declare ``rank_zero_only`` (checkpoints, logs).
        See the distributed-training page.
    **routed_params
        ``cb__<name>__<param>``, ``cb__<name>``, ``module__<param>``,
        ``optimizer__<param>`` and ``criterion__<param>``.

    Attributes
    ----------
    module_, optimizer_, criterion_ : torch objects
        The network, optimizer and loss of the fit.
    callbacks_ : Mapping
        The fitted callbacks by name, in dispatch order.
    history_ : History
        Per-epoch records.
    n_iter_ : int
        Epochs run, across warm starts.
    n_steps_ : int
        Optimizer steps taken, across warm starts.
    fast_path_ : bool
        Whether the last fit (or ``partial_fit`` call) trained with the
        hand-derived gradients of ``fast_path``; each fit decides anew.
        False after ``load_checkpoint``, which trains nothing.
    stop_reason_ : str or None
        Why the last fit stopped early (e.g. EarlyStopping's message), or
        None when it ran to ``max_epochs``.
    n_outputs_ : int
        Number of targets.
    device_ : torch.device
        The device the model lives on.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn.pipeline import make_pipeline
    >>> from skcallback import NeuralRegressor
    >>> from skcallback.callbacks import EarlyStopping
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = make_pipeline(
    ...     StandardScaler(),
    ...     NeuralRegressor(lr=1e-2, max_epochs=20, callbacks=[EarlyStopping()],
    ...                     cb__early_stopping__patience=3, random_state=0),
    ... )
    >>> model.fit(X, y / 100).score(X, y / 100) > 0.3
    True
    """

    _target_validation = {"y_numeric": True, "multi_output": True}
    _default_criterion = nn.MSELoss
    _output_meaning = "one column per target"
    _criterion_hint = (
        "The regressor's targets are floats of shape (n_samples, n_targets), as for "
        "nn.MSELoss, nn.L1Loss or nn.HuberLoss."
    )

    def _encode_targets(self, y: Any, *, continuing: bool, classes: Any = None):
        with np.errstate(over="ignore"):
            y = np.asarray(y, dtype=float_dtype(self.precision))
        if not np.isfinite(y).all():
            raise ValueError(
                "y has values beyond float32's range (|y| > 3.4e38); scale the targets, e.g. "
                "with sklearn.compose.TransformedTargetRegressor."
            )
        targets = y.reshape(-1, 1) if y.ndim == 1 else y
        n_outputs = targets.shape[1]
        if continuing and n_outputs != self.n_outputs_:
            raise ValueError(
                f"y has {n_outputs} target(s) but {type(self).__name__} was fitted on "
                f"{self.n_outputs_}; refit with warm_start=False to change them."
            )
        return targets, {"n_outputs_": n_outputs, "_y_ndim": y.ndim}

    def _stratify_labels(self, y: np.ndarray) -> None:
        return None

    # Not in the base class: scikit-learn's classifiers take ``classes`` third.
    def partial_fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        *,
        X_val: Any = None,
        y_val: Any = None,
        sample_weight_val: Any = None,
    ) -> NeuralRegressor:
        """Train for one epoch, continuing from the fitted state if any.

        No validation data is held out: every sample given trains, and the
        epoch validates on ``X_val``/``y_val`` when they are given. Like
        ``fit``, a call completes or leaves the estimator as it was.

        Parameters
        ----------
        X : array-like, sparse matrix, dict of arrays, Dataset or list
            As for ``fit`` (with ``y=None`` for a Dataset).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            The same number of targets as the fitted state, if any.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights scaling each sample's loss.
        X_val, y_val : array-like, optional
            Validation data for this epoch (none is held out otherwise).
        sample_weight_val : array-like of shape (n_val_samples,), optional
            Weights of the validation samples.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For invalid parameters or data, or targets of another width
            than the fitted state's.
        """
        return self._fit(
            X,
            y,
            sample_weight,
            partial=True,
            X_val=X_val,
            y_val=y_val,
            sample_weight_val=sample_weight_val,
        )

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, shaped like the ``y`` of the fit.

        Parameters
        ----------
        X : array-like, sparse matrix, dict of arrays, Dataset or list
            Of the kind ``fit`` was given, with its sample shape (or keys),
            which is checked. A Dataset is predicted in batches of
            ``batch_size``; its items are ``(x, y)`` as at ``fit``.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets)

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted.
        """
        output = self._forward(X)
        return self._outputs().predict(output)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """The coefficient of determination R² of ``predict(X)`` against ``y``.

        1.0 is a perfect fit; a constant model predicting the mean of ``y``
        scores 0.0 and worse models score below. Several targets are
        averaged uniformly. The fitted callbacks' prediction hooks run, as
        for ``predict``.

        Parameters
        ----------
        X : array-like, sparse matrix, dict of arrays, Dataset or list
            As for ``predict``.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            The true targets.
        sample_weight : array-like of shape (n_samples,), optional
            Weights of the samples in the score.

        Returns
        -------
        float

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted.
        """
        y = numeric_targets(host(y))
        sample_weight = numeric_weights(sample_weight)
        return float(super().score(X, y, sample_weight=sample_weight))

    @staticmethod
    def _output_adapter(data_state: dict[str, Any]) -> RegressionOutputs:
        return RegressionOutputs(data_state["_y_ndim"])

    def _check_target_weights(self, y: np.ndarray, sample_weight: np.ndarray | None) -> None:
        pass

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class RegressionOutputs:
    """Turns a regression module's outputs into predictions shaped like the
    ``y`` of the fit (1-D for a 1-D ``y``)."""

    def __init__(self, y_ndim: int) -> None:
        self.y_ndim = y_ndim

    def _shaped(self, values: torch.Tensor | np.ndarray) -> np.ndarray:
        array = host_float64(values)
        return array.ravel() if self.y_ndim == 1 else array

    def predict(self, output: torch.Tensor | np.ndarray) -> np.ndarray:
        """Predictions from module outputs."""
        return self._shaped(output)

    def targets(self, y: torch.Tensor) -> np.ndarray:
        """Targets as the user gave them, from their encoded tensor."""
        return self._shaped(y)

    def perfect_output(self, y: torch.Tensor) -> torch.Tensor:
        """The module output that predicts the encoded targets ``y`` exactly."""
        return y.to(torch.float64)
