"""NeuralClassifier."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import column_or_1d
from torch import nn

from ._base import NeuralEstimatorBase
from ._class_weights import ALLOWED, ClassWeights, is_class_weight
from ._data import host_float64
from ._inputs import check_label_types, host, numeric_weights
from ._precision import float_dtype


class NeuralClassifier(ClassifierMixin, NeuralEstimatorBase):
    """A scikit-learn classifier trained by a PyTorch loop with callbacks.

    Binary and multiclass targets with any labels (strings too): the module
    outputs one logit per class, the loss is cross-entropy unless
    ``criterion`` says otherwise, ``predict_proba`` is their softmax, and
    the validation split is stratified.

    Multi-label targets, an indicator matrix ``y`` of shape
    ``(n_samples, n_labels)`` of 0/1 (dense or sparse), as scikit-learn's
    ``MLPClassifier`` takes them: the module outputs one logit per label,
    the loss is ``nn.BCEWithLogitsLoss`` unless ``criterion`` says
    otherwise (its targets are the float 0/1 matrix), ``predict_proba`` is
    the sigmoid of each logit, ``predict`` the indicator matrix (1 where
    that probability is above 0.5), ``score`` the subset accuracy, and the
    validation split is a plain shuffled one.

    Parameters
    ----------
    module : None, nn.Module class or factory, or nn.Module instance, default=None
        ``None`` builds an MLP from ``hidden_layer_sizes``, ``activation`` and
        ``dropout``. A class or factory is called with the ``module__*``
        parameters, plus ``n_features_in`` (2-D ``X``), ``input_shape`` (a
        sample's shape; a dict of shapes for a dict ``X``) and ``n_outputs``
        (the number of classes) when its signature names them. An instance is copied at
        fit, never mutated. The module outputs one logit per class, shape
        ``(n_samples, n_classes)``, two for a binary problem; for a
        multi-label ``y``, one per label, ``(n_samples, n_labels)``.
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
        logits and the class indices (int64) of ``classes_``, or for a
        multi-label ``y`` ``nn.BCEWithLogitsLoss``, which takes the logits
        and the float 0/1 indicator matrix (``pos_weight`` and other
        options through ``criterion__*`` or an instance).
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
        than 2 samples or the share cannot hold every class, and for a
        multi-label ``y``, as ``MLPClassifier``); ``None``
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
        classes must be the same (for a multi-label ``y``, the number of
        labels), and class labels cannot become a multi-label ``y`` nor
        the reverse.
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
        ``activation``, the default loss (cross-entropy, or
        ``BCEWithLogitsLoss`` for a multi-label ``y``; ``criterion=None``,
        no ``criterion__*``), ``precision="32"``, ``compile=False``, a CPU or
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
        training step is small (under about 5e7 floating-point operations);
        otherwise torch's setting, but no more threads than the cores the
        rest of the machine leaves idle (the load average less this
        process's own use, and the tasks running at the fit's start) within
        the process's CPU affinity, and at least one. None always keeps
        torch's setting.
    class_weight : None, "balanced" or dict, default=None
        Weights of the classes, which multiply ``sample_weight`` (the
        products are then divided by their mean, as ``sample_weight`` is).
        A dict maps class labels to non-negative weights; a class it omits
        weighs 1, and a key that is not a class is an error. ``"balanced"``
        weighs each class ``n_samples / (n_classes * n_samples_of_class)``,
        counted over the rows given to ``fit`` (unweighted, as
        ``sklearn.utils.class_weight.compute_sample_weight`` and
        ``HistGradientBoostingClassifier`` count them). For a multi-label
        ``y``, ``"balanced"`` weighs the 0/1 values of each label so, and a
        row the product over its labels (scikit-learn's rule for
        multi-output targets); a dict, which names classes, is an error
        there. The validation loss is weighted alike (held-out rows, and
        ``X_val``/``y_val`` with the weights of the training rows' classes),
        so that ``valid_loss`` measures the loss that training minimises and
        EarlyStopping watches the same objective; scikit-learn's
        classifiers, which validate by accuracy, weigh only the training
        loss. ``partial_fit`` refuses ``"balanced"``, as ``SGDClassifier``
        does: one call sees too few rows to measure the class frequencies.
        A continued fit (``warm_start``, ``partial_fit``) uses the value set
        now.
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
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted; the module's output column ``i`` is the
        logit of ``classes_[i]``. For a multi-label ``y``, the label
        indices ``0, ..., n_labels - 1`` (the columns of ``y``), as
        ``MLPClassifier`` sets them.
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
        Number of classes, or of labels for a multi-label ``y`` (the
        outputs of the module).
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

    # A 2-D y passes validation (an indicator matrix); a column is made 1-D
    # with scikit-learn's warning in _encode_targets.
    _target_validation: dict[str, Any] = {"multi_output": True}
    _own_constraints = {"class_weight": (is_class_weight, ALLOWED)}

    # The shared parameters spelled out, as scikit-learn's estimators do: the
    # signature is what get_params, clone and the reference read.
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
        accumulate: int = 1,
        max_epochs: int = 100,
        validation_fraction: float | None = 0.1,
        validate_every: int = 1,
        callbacks: list | None = None,
        device: str | torch.device = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
        warm_start: bool = False,
        compile: bool = False,
        precision: str = "32",
        fast_path: bool = True,
        threads: int | str | None = "auto",
        strategy: str | None = None,
        class_weight: str | Mapping[Any, float] | None = None,
        **routed_params: Any,
    ) -> None:
        super().__init__(
            module=module,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            dropout=dropout,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            batch_size=batch_size,
            accumulate=accumulate,
            max_epochs=max_epochs,
            validation_fraction=validation_fraction,
            validate_every=validate_every,
            callbacks=callbacks,
            device=device,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
            compile=compile,
            precision=precision,
            fast_path=fast_path,
            threads=threads,
            strategy=strategy,
            **routed_params,
        )
        self.class_weight = class_weight

    @property
    def _multilabel(self) -> bool:
        """Whether the fit's targets are a multi-label indicator matrix."""
        return vars(self).get("_y_ndim") == 2

    @property
    def _default_criterion(self) -> type[nn.Module]:
        return nn.BCEWithLogitsLoss if self._multilabel else nn.CrossEntropyLoss

    @property
    def _output_meaning(self) -> str:
        return "one logit per label" if self._multilabel else "one logit per class"

    @property
    def _criterion_hint(self) -> str:
        if self._multilabel:
            return (
                "The targets of a multi-label y are float 0/1 of shape (n_samples, n_labels) and "
                "the output one logit per label, as nn.BCEWithLogitsLoss expects."
            )
        return (
            "The classifier's targets are class indices (int64) of shape (n_samples,) and the "
            "output one logit per class, as nn.CrossEntropyLoss expects."
        )

    def _encode_targets(self, y: Any, *, continuing: bool, classes: Any = None):
        if sp.issparse(y):
            y = y.toarray()  # a sparse indicator matrix; its rows are batched dense
        if np.ndim(y) == 2 and np.shape(y)[1] == 1:
            y = column_or_1d(y, warn=True)
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
        if kind not in ("binary", "multiclass", "multilabel-indicator"):
            raise ValueError(
                f"{type(self).__name__} supports binary, multiclass and multi-label "
                f"(an indicator matrix of 0/1) targets; got a {kind} y."
            )
        multilabel = kind == "multilabel-indicator"
        if continuing and multilabel != self._multilabel:
            raise ValueError(_KIND_CHANGED[self._multilabel])
        if multilabel:
            return self._encode_indicator(y, continuing=continuing, classes=classes)
        return self._encode_labels(y, continuing=continuing, classes=classes)

    def _encode_labels(self, y: Any, *, continuing: bool, classes: Any):
        """Class labels as indices of the sorted classes (int64)."""
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
        return encoded.astype(np.int64), {"classes_": known, "n_outputs_": len(known), "_y_ndim": 1}

    def _encode_indicator(self, y: Any, *, continuing: bool, classes: Any):
        """A multi-label indicator matrix as float 0/1 targets; its classes
        are the label indices, as MLPClassifier's."""
        y = np.asarray(y)
        labels = np.arange(y.shape[1])
        if continuing and y.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {y.shape[1]} labels (columns), but the model was fitted on "
                f"{self.n_outputs_}; the number of labels cannot change."
            )
        if classes is not None and not np.array_equal(np.unique(classes), labels):
            raise ValueError(
                f"classes={np.unique(classes).tolist()} must be the label indices "
                f"{labels.tolist()} for a multi-label y of {len(labels)} columns (its classes_, "
                "as MLPClassifier's)."
            )
        targets = y.astype(float_dtype(self.precision))
        return targets, {"classes_": labels, "n_outputs_": len(labels), "_y_ndim": 2}

    def _stratify_labels(self, y: np.ndarray) -> np.ndarray | None:
        return None if y.ndim == 2 else y  # no stratification of a multi-label y

    def _class_weights(self, y: np.ndarray, *, partial: bool) -> ClassWeights | None:
        class_weight = self.class_weight
        if class_weight is None:
            return None
        if isinstance(class_weight, str):  # "balanced", as validated
            if partial:
                raise ValueError(
                    "class_weight='balanced' is not supported by partial_fit: one call sees "
                    "too few rows to measure the class frequencies (as SGDClassifier says). "
                    "Compute the weights once over a large sample of the targets, e.g. "
                    "dict(zip(classes, sklearn.utils.class_weight.compute_class_weight("
                    "'balanced', classes=classes, y=y_sample))), and pass that dict."
                )
            return ClassWeights.balanced(y, n_values=2 if y.ndim == 2 else self.n_outputs_)
        if y.ndim == 2:
            raise ValueError(
                "class_weight as a dict weighs class labels; a multi-label y has none (for "
                "multi-output targets, scikit-learn takes one dict per column). Use "
                "class_weight='balanced', or pass sample_weight."
            )
        return ClassWeights.from_dict(class_weight, self.classes_)

    def _check_target_weights(self, y: np.ndarray, sample_weight: np.ndarray | None) -> None:
        """Zero weights must leave samples of at least two classes."""
        if sample_weight is None or y.ndim == 2:
            return
        weighted = np.unique(y[sample_weight > 0])
        if len(weighted) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes with a non-zero "
                "weight (sample_weight, times class_weight); only class "
                f"{self.classes_[weighted].tolist()} has any."
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
        X : array-like, sparse matrix, dict of arrays, Dataset or list
            As for ``fit`` (with ``y=None`` for a Dataset).
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a multi-label indicator matrix.
        classes : array-like, optional
            Every class label; required on the first call (a batch may lack
            some classes), and equal to ``classes_`` when given later. For
            a multi-label ``y``, the label indices ``range(n_labels)`` (as
            ``MLPClassifier`` requires them).
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
        """Class probabilities (softmax of the logits), rows summing to 1;
        for a multi-label fit, the probability of each label (the sigmoid of
        its logit).

        Parameters
        ----------
        X : array-like, sparse matrix, dict of arrays, Dataset or list
            Of the kind ``fit`` was given, with its sample shape (or keys),
            which is checked. A Dataset is predicted in batches of
            ``batch_size``; its items are ``(x, y)`` as at ``fit``.

        Returns
        -------
        ndarray of shape (n_samples, n_classes) or (n_samples, n_labels)
            Column ``i`` is the probability of ``classes_[i]``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted.
        """
        output = self._forward(X)
        return self._outputs().predict_proba(output)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class labels: the class of the largest logit; for a
        multi-label fit, the indicator matrix of the labels whose
        probability is above 0.5.

        Parameters
        ----------
        X : array-like, sparse matrix, dict of arrays, Dataset or list
            Of the kind ``fit`` was given, with its sample shape (or keys),
            which is checked. A Dataset is predicted in batches of
            ``batch_size``; its items are ``(x, y)`` as at ``fit``.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_labels)
            Labels from ``classes_``, of their dtype; or 0/1 of dtype int,
            as ``MLPClassifier`` predicts them.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted.
        """
        output = self._forward(X)
        return self._outputs().predict(output)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """The mean accuracy of ``predict(X)`` against ``y`` (for a
        multi-label ``y``, the subset accuracy: a row counts when all its
        labels are right).

        The fitted callbacks' prediction hooks run, as for ``predict``.

        Parameters
        ----------
        X : array-like, sparse matrix, dict of arrays, Dataset or list
            As for ``predict``.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            The true labels, or indicator matrix (dense or sparse).
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
        if sp.issparse(y):
            y = y.toarray()
        check_label_types(y)
        sample_weight = numeric_weights(sample_weight)
        return float(super().score(X, y, sample_weight=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    @staticmethod
    def _output_adapter(data_state: dict[str, Any]) -> ClassificationOutputs | MultilabelOutputs:
        # Files made before multi-label targets have no _y_ndim: class labels.
        if data_state.get("_y_ndim", 1) == 2:
            return MultilabelOutputs(data_state["classes_"])
        return ClassificationOutputs(data_state["classes_"])


#: Why a continued fit refuses targets of the other kind, by whether the
#: fitted targets were multi-label.
_KIND_CHANGED = {
    False: (
        "y is a multi-label indicator matrix, but the model was fitted on class labels "
        "(a single column); a fitted model keeps its kind of targets. Fit a new model "
        "(warm_start=False, or a clone for partial_fit) to train on a multi-label y."
    ),
    True: (
        "y holds class labels (a single column), but the model was fitted on a multi-label "
        "indicator matrix; a fitted model keeps its kind of targets. Fit a new model "
        "(warm_start=False, or a clone for partial_fit) to train on class labels."
    ),
}


class ClassificationOutputs:
    """Turns a classifier module's logits into labels and probabilities."""

    def __init__(self, classes: np.ndarray) -> None:
        self.classes_ = classes

    def predict_proba(self, output: torch.Tensor | np.ndarray) -> np.ndarray:
        """Class probabilities: the softmax of the logits."""
        return host_float64(torch.softmax(torch.from_numpy(host_float64(output)), dim=1))

    def predict(self, output: torch.Tensor | np.ndarray) -> np.ndarray:
        """The label of the largest logit."""
        if isinstance(output, torch.Tensor) and not output.is_cpu:
            return self.classes_[output.detach().argmax(dim=1).cpu().numpy()]
        # NumPy's argmax takes the first of equal logits, as torch's does.
        return self.classes_[host_float64(output).argmax(axis=1)]

    def targets(self, y: torch.Tensor) -> np.ndarray:
        """Labels from their encoded class indices."""
        return self.classes_[y.detach().cpu().numpy()]

    def perfect_output(self, y: torch.Tensor) -> torch.Tensor:
        """Logits that predict the class indices ``y`` with certainty."""
        return torch.nn.functional.one_hot(y, len(self.classes_)).to(torch.float64) * 10


class MultilabelOutputs:
    """Turns a multi-label module's logits (one per label) into the
    indicator matrix and the label probabilities."""

    def __init__(self, classes: np.ndarray) -> None:
        self.classes_ = classes

    def predict_proba(self, output: torch.Tensor | np.ndarray) -> np.ndarray:
        """The probability of each label: the sigmoid of its logit."""
        return host_float64(torch.sigmoid(torch.from_numpy(host_float64(output))))

    def predict(self, output: torch.Tensor | np.ndarray) -> np.ndarray:
        """1 where a label's probability is above 0.5, as MLPClassifier
        (and so consistent with ``predict_proba``), in its dtype (int)."""
        return np.asarray(self.predict_proba(output) > 0.5, dtype=int)

    def targets(self, y: torch.Tensor) -> np.ndarray:
        """The indicator matrix of the encoded (float) targets."""
        return np.asarray(y.detach().cpu().numpy() > 0.5, dtype=int)

    def perfect_output(self, y: torch.Tensor) -> torch.Tensor:
        """Logits that predict the indicator targets ``y`` with certainty."""
        return (y.to(torch.float64) * 2 - 1) * 10
