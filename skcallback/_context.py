"""The ``Context`` every hook receives."""

from __future__ import annotations

from typing import Any


class Context:
    """The state of one fit, passed to every hook.

    The loop keeps these attributes current; callbacks read them, and may set
    attributes of their own to share values during the fit (as MindSpore's
    ``RunContext.original_args()`` allows).

    Attributes
    ----------
    estimator : NeuralRegressor or NeuralClassifier
        The estimator being trained: a working copy of the one whose ``fit``
        was called, with the same parameters and the fitted attributes of
        this fit (``module_``, ``history_``, ...; ``predict`` works). The
        estimator adopts its fitted state when the fit completes, and stays
        as it was if the fit fails.
    plan : FitPlan
        What the fit was planned to do: ``n_batches``, ``has_validation``,
        the declared ``metrics`` and their directions, ``outputs`` (turns
        module outputs into predictions), ... (see
        [`Callback.setup`][skcallback.Callback.setup]).
    run : FitRun or None
        The live objects executing the plan (the loop's own: generators,
        dispatch table, training step); None in a prediction.
    module, optimizer, criterion : torch objects
        The network, its optimizer and the loss of this fit.
    device : torch.device
        Where the module and the batches live.
    epoch : int
        The current epoch, 1-based; it continues across warm starts.
    max_epochs : int
        The epoch at which this fit ends unless stopped earlier.
    phase : {"train", "valid", "predict"} or None
        The phase in progress.
    batch : int
        The index of the current batch within the phase, 1-based.
    n_batches : int
        The number of batches of the current phase.
    step : int
        Optimizer steps taken so far.
    X_batch : torch.Tensor, dict of torch.Tensor, tuple, or None
        The current batch's inputs, as the module receives them: a tensor
        ``(batch, ...)`` of the shape of ``X`` (``module(X_batch)``); a dict
        of tensors for a dict ``X`` (``module(**X_batch)``); for a Dataset or
        a list of samples, what the collate function made of the items'
        inputs, a tuple being passed as ``module(*X_batch)`` (``(padded,
        lengths)`` with ``pad_sequences``). A torch sparse COO tensor when a
        SciPy sparse ``X`` trains the built-in MLP on the CPU with
        ``precision`` ``"32"`` or ``"64"`` and ``compile=False``.
    y_batch : torch.Tensor or None
        The current batch's encoded targets: class indices (int64) for a
        classifier, its 0/1 indicator as floats ``(batch, n_labels)`` for a
        multi-label one, floats ``(batch, n_targets)`` for a regressor; None
        in a prediction.
    sample_weight_batch : torch.Tensor or None
        The current batch's sample weights (None without weights).
    y_pred : torch.Tensor or None
        The module's output for the current batch.
    loss : torch.Tensor or None
        The loss of the current batch; ``on_after_loss`` may replace it and
        the loop backpropagates what it holds afterwards.
    metrics : dict
        This epoch's values so far (``epoch``, ``lr``, ``train_loss``,
        ``valid_loss``, scores, ``dur``); it becomes the epoch's history row.
    history : History
        The history of the fit.
    callbacks : Mapping
        The callbacks of the fit by name.
    stop_requested : bool
        Whether a stop was requested.
    stop_reason : str or None
        Why, as given to [`request_stop`][skcallback.Context.request_stop].
    exception : BaseException or None
        The error that ended the fit, during ``on_exception``/``on_fit_end``.
    progress : object
        The loop's position in the current epoch (the learning rate it
        started with, the batch losses so far, the generator state its
        permutation was drawn from); checkpoints save it so a resume
        continues mid-epoch exactly.
    grad_scaler : torch.amp.GradScaler or None
        The loss scaler of ``precision="16-mixed"``; a callback that reads or
        changes gradients calls ``ctx.grad_scaler.unscale_(ctx.optimizer)``
        first.
    """

    def __init__(
        self,
        *,
        estimator: Any,
        plan: Any,
        run: Any = None,
        module: Any,
        optimizer: Any,
        criterion: Any,
        device: Any,
        epoch: int,
        max_epochs: int,
        step: int,
        history: Any,
        callbacks: Any,
    ) -> None:
        self.estimator = estimator
        self.plan = plan
        self.run = run
        self.module = module
        self.optimizer = optimizer
        self.criterion = criterion
        self.device = device
        self.epoch = epoch
        self.max_epochs = max_epochs
        self.step = step
        self.history = history
        self.callbacks = callbacks
        self.phase: str | None = None
        self.batch = 0
        self.n_batches = 0
        self.X_batch: Any = None
        self.y_batch: Any = None
        self.sample_weight_batch: Any = None
        self.y_pred: Any = None
        self.loss: Any = None
        self.metrics: dict[str, Any] = {}
        self.stop_requested = False
        self.stop_reason: str | None = None
        self.exception: BaseException | None = None
        self.skip_requested = False
        self.grad_scaler: Any = None
        self.progress: Any = None

    def request_stop(self, reason: str | None = None) -> None:
        """Ask the loop to stop: the current epoch's training ends after the
        current batch, validation and ``on_epoch_end`` still run, and no new
        epoch starts.

        Parameters
        ----------
        reason : str, optional
            Why; it becomes ``stop_reason`` and the estimator's
            ``stop_reason_``. The first reason given is kept; None gives
            ``"stop requested"``.
        """
        self.stop_requested = True
        if self.stop_reason is None:
            self.stop_reason = reason or "stop requested"

    def skip_batch(self) -> None:
        """Skip the rest of the current training batch: from
        ``on_train_batch_begin`` the whole batch, from ``on_after_forward`` or
        ``on_after_loss`` its backward pass and optimizer step. Skipped batches
        do not count in ``train_loss``."""
        self.skip_requested = True

    def __repr__(self) -> str:
        return (
            f"Context(epoch={self.epoch}, phase={self.phase!r}, batch={self.batch}, "
            f"step={self.step}, stop_requested={self.stop_requested})"
        )
