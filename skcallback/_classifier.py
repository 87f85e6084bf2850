"""NeuralClassifier."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from torch import nn

from ._base import NeuralEstimatorBase
from ._inputs import check_label_types, host, numeric_weights


class NeuralClassifier(ClassifierMixin, NeuralEstimatorBase):
    """A scikit-learn classifier trained by a PyTorch loop with callbacks.

    Binary and multiclass targets with any labels (strings too). The module
    outputs one logit per class; the loss is cross-entropy unless
    ``criterion`` says otherwise, and ``predict_proba`` is their softmax.
    The validation split is stratified.

    Parameters
    ----------
    module : None, nn.Module class or factory, or nn.Module instance, default=None
        ``None`` builds an MLP from ``hidden_layer_sizes``, ``activation`` and
        ``dropout``. A class or factory is called with the ``module__*``
        parameters, plus ``n_features_in`` and ``n_outputs`` (the number of
        classes) when its signature names them. An instance is copied at
        fit, never mutated. The module outputs one logit per class, shape
        ``(n_samples, n_classes)``, two for a binary problem.
    hidden_layer_sizes : tuple of int, default=(100,)
        Widths of the MLP's hidden layers; ``()`` gives a multinomial
        logistic regression.
    activation : str or nn.Module class, default="relu"
        Activation of the MLP: "relu", "tanh", "logistic", "identity",
        "gelu", "silu", "elu", "leaky_relu", or a module class.
    dropout : float, default=0.0
        Dropout probability after each hidden layer of the MLP.
    criterion : None, nn.Module class or instance, default=None
        The loss; ``None`` is ``nn.CrossEntropyLoss``, which takes the
        logits and the class indices (int64) of ``classes_``.
        ``criterion__*`` parameters go to its constructor (e.g.
        ``criterion__label_smoothing=0.1``).
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
        Share of the samples held out to compute ``valid_loss`` each epoch,
        stratified by class (a plain shuffled split when a class has fewer
        than 2 samples or the share cannot hold every class); ``None``
        trains on all samples. Not used when ``fit`` gets ``X_val`` and
        ``y_val``.
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
        Continue training from the fitted state at the next ``fit``; the
        classes must be the same.
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
        ``activation``, the default cross-entropy (``criterion=None``, no
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
        training step is small (under about 5e7 floating-point operations),
        and torch's setting otherwise; None always keeps torch's setting.
    **routed_params
        ``cb__<name>__<param>``, ``cb__<name>``, ``module__<param>``,
        ``optimizer__<param>`` and ``criterion__<param>``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted; the module's output column ``i`` is the
        logit of ``classes_[i]``.
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
        Number of classes (outputs of the module).
    device_ : torch.device
        The device the model lives on.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skcallback import NeuralClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NeuralClassifier(lr=1e-2, max_epochs=30, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).sum(axis=1).round(6).tolist()
    [1.0, 1.0]
    """

    _target_validation: dict[str, Any] = {}
    _default_criterion = nn.CrossEntropyLoss
    _output_meaning = "one logit per class"
    _criterion_hint = (
        "The classifier's targets are class indices (int64) of shape (n_samples,) and the "
        "output one logit per class, as nn.CrossEntropyLoss expects."
    )

    def _encode_targets(self, y: Any, *, continuing: bool, classes: Any = None):
        for name, labels in (("y", y), ("classes", classes)):
            check_label_types(labels, name)
            labels = np.asarray(labels)
            if labels.dtype.kind in "fc" and not np.isfinite(labels).all():
                raise ValueError(
                    f"{name} contains NaN or infinity; class labels must be finite numbers "
                    "or other values (strings, integers)."
                )
        check_classification_targets(y)
        kind = type_of_target(y, input_name="y")
        if kind not in ("binary", "multiclass"):
            raise ValueError(
                f"{type(self).__name__} supports binary and multiclass targets; got a {kind} y."
            )
        if continuing:
            known = self.classes_
            if classes is not None and not np.array_equal(np.unique(classes), known):
                raise ValueError(
                    f"classes={np.unique(classes).tolist()} differs from the classes of the "
                    f"fit, {known.tolist()}."
                )
        else:
            known = np.unique(y if classes is None else classes)
            if len(known) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes; the data "
                    f"has 1 class: {known.tolist()}."
                )
        try:
            encoded = np.searchsorted(known, y)
        except TypeError:
            raise ValueError(
                f"y holds labels of another type ({np.asarray(y).dtype}) than the classes "
                f"{known.tolist()[:10]} ({known.dtype})."
            ) from None
        unknown = (encoded >= len(known)) | (known[np.minimum(encoded, len(known) - 1)] != y)
        if unknown.any():
            raise ValueError(
                f"y contains labels {np.unique(np.asarray(y)[unknown]).tolist()[:10]} that are "
                f"not among the classes {known.tolist()}."
            )
        return encoded.astype(np.int64), {"classes_": known, "n_outputs_": len(known)}

    def _stratify_labels(self, y: np.ndarray) -> np.ndarray:
        return y

    def _check_target_weights(self, y: np.ndarray, sample_weight: np.ndarray | None) -> None:
        """Zero weights must leave samples of at least two classes."""
        if sample_weight is None:
            return
        weighted = np.unique(y[sample_weight > 0])
        if len(weighted) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes with a non-zero "
                f"sample_weight; only class {self.classes_[weighted].tolist()} has any."
            )

    def partial_fit(
        self,
        X: Any,
        y: Any,
        classes: Any = None,
        sample_weight: Any = None,
        *,
        X_val: Any = None,
        y_val: Any = None,
        sample_weight_val: Any = None,
    ) -> NeuralClassifier:
        """Train for one epoch, continuing from the fitted state if any.

        Like ``fit``, a call completes or leaves the estimator as it was.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like, optional
            Every class label; required on the first call (a batch may lack
            some classes), and equal to ``classes_`` when given later.
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
            When ``classes`` is missing on the first call, differs from
            ``classes_``, or ``y`` holds labels outside it; for invalid
            parameters or data.
        """
        if classes is None and not self.__sklearn_is_fitted__():
            raise ValueError("classes must be passed on the first call to partial_fit.")
        return self._fit(
            X,
            y,
            sample_weight,
            partial=True,
            classes=classes,
            X_val=X_val,
            y_val=y_val,
            sample_weight_val=sample_weight_val,
        )

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (softmax of the logits), rows summing to 1.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Column ``i`` is the probability of ``classes_[i]``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted.
        """
        output = self._forward(X)
        return self._outputs().predict_proba(output)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class labels: the class of the largest logit.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``, of their dtype.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted.
        """
        output = self._forward(X)
        return self._outputs().predict(output)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """The mean accuracy of ``predict(X)`` against ``y``.

        The fitted callbacks' prediction hooks run, as for ``predict``.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            The true labels.
        sample_weight : array-like of shape (n_samples,), optional
            Weights of the samples in the mean.

        Returns
        -------
        float
            The (weighted) share of correctly predicted samples.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted.
        """
        y = host(y)
        check_label_types(y)
        sample_weight = numeric_weights(sample_weight)
        return float(super().score(X, y, sample_weight=sample_weight))

    @staticmethod
    def _output_adapter(data_state: dict[str, Any]) -> ClassificationOutputs:
        return ClassificationOutputs(data_state["classes_"])


class ClassificationOutputs:
    """Turns a classifier module's logits into labels and probabilities."""

    def __init__(self, classes: np.ndarray) -> None:
        self.classes_ = classes

    def predict_proba(self, output: torch.Tensor) -> np.ndarray:
        """Class probabilities: the softmax of the logits."""
        return torch.softmax(output.detach().double(), dim=1).cpu().numpy()

    def predict(self, output: torch.Tensor) -> np.ndarray:
        """The label of the largest logit."""
        return self.classes_[output.detach().argmax(dim=1).cpu().numpy()]

    def targets(self, y: torch.Tensor) -> np.ndarray:
        """Labels from their encoded class indices."""
        return self.classes_[y.detach().cpu().numpy()]

    def perfect_output(self, y: torch.Tensor) -> torch.Tensor:
        """Logits that predict the class indices ``y`` with certainty."""
        return torch.nn.functional.one_hot(y, len(self.classes_)).to(torch.float64) * 10
