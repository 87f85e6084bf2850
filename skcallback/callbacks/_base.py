"""The ``Callback`` base class and the names of the hooks."""

from __future__ import annotations

import copy
import difflib
import inspect
import math
import numbers
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

from .._context import Context
from .._extras import import_extra as import_extra  # where callbacks import it from
from .._params import Constraints, InvalidParameterError, check_constraints
from ._hook_names import porting_hint

PREDICT_HOOKS: tuple[str, ...] = (
    "on_predict_begin",
    "on_predict_batch_begin",
    "on_predict_batch_end",
    "on_predict_end",
)
"""The hooks of a prediction (``predict``, ``predict_proba``, ``score``), in
the order they fire; they run on the fitted callbacks (``callbacks_``)."""

HOOKS: tuple[str, ...] = (
    "on_fit_begin",
    "on_epoch_begin",
    "on_train_begin",
    "on_train_batch_begin",
    "on_after_forward",
    "on_after_loss",
    "on_before_backward",
    "on_after_backward",
    "on_before_step",
    "on_after_step",
    "on_train_batch_end",
    "on_train_end",
    "on_valid_begin",
    "on_valid_batch_begin",
    "on_valid_batch_end",
    "on_valid_end",
    "on_epoch_end",
    "on_fit_end",
    "on_exception",
    *PREDICT_HOOKS,
)
"""Every hook: those of a fit in the order the training loop fires them,
then those of a prediction ([`PREDICT_HOOKS`][skcallback.callbacks.PREDICT_HOOKS]).
A public method of a callback whose name starts with ``on_`` must be one of
them (a misspelt hook is an error before the fit)."""


def positive_int(value: Any, *, allow_none: bool = False) -> bool:
    """An int >= 1 (not a bool), or None when allowed."""
    if value is None:
        return allow_none
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 1


def non_negative_int(value: Any) -> bool:
    """An int >= 0 (not a bool)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 0


def real_number(value: Any) -> bool:
    """A real number, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def positive_number(value: Any) -> bool:
    # typeshed's numbers.Real declares __lt__ and __le__ but no __gt__; every
    # Real at runtime compares (and float() could round a tiny value to 0).
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and value > 0  # type: ignore[operator]


def snake_case(name: str) -> str:
    """``EarlyStopping`` -> ``early_stopping``, ``CSVLogger`` -> ``csv_logger``."""
    name = re.sub(r"(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _is_learned(key: str) -> bool:
    return key.endswith("_") and not key.startswith("_") and key.isidentifier()


def check_hook_names(cb: Any, name: str) -> None:
    """A public method named like a hook but not one (``on_epoch_ends``) is
    a mistake the loop would silently ignore, and a hook that cannot take
    ``ctx`` would fail mid-training: make both errors before the fit.

    What a class defines is checked once per class (reading signatures is
    a tenth of a small fit's cost); functions set on an instance each time."""
    for hook, handler in cb._hook_handlers().items():
        method = getattr(handler, "__func__", None)
        if method is not None and method in _CHECKED:
            continue
        try:
            inspect.signature(handler).bind(None)
        except TypeError:
            raise ValueError(
                f"Callback {name!r} ({type(cb).__name__}): {hook} must take one argument, "
                f"the context (def {hook}(self, ctx)); its signature is "
                f"{inspect.signature(handler)}."
            ) from None
        except ValueError:  # no signature to inspect (a builtin): let it run
            pass
        if method is not None:
            _CHECKED.add(method)
    cls = type(cb)
    if cls in _CHECKED:
        return
    for attr in dir(cls):
        if attr.startswith("on_") and attr not in HOOKS and callable(getattr(cls, attr)):
            hint = _hint(attr)
            raise ValueError(
                f"Callback {name!r} ({cls.__name__}) defines {attr!r}, which is not a hook{hint}"
            )
    _CHECKED.add(cls)


def _hint(name: str) -> str:
    """What to write instead of ``name``: the hook another framework's name
    stands for (``_hook_names``), else the closest hook by spelling."""
    ported = porting_hint(name)
    if ported is not None:
        return f"; {ported}"
    close = difflib.get_close_matches(name, HOOKS, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; the hooks are {list(HOOKS)}."


#: Callback classes whose method names, and methods whose signatures, were
#: found right (classes and their functions live as long as the process).
_CHECKED: set[Any] = set()


def overridden_hooks(cb: Any, hooks: Iterable[str] = HOOKS) -> list[str]:
    """The hooks among ``hooks`` that ``cb`` overrides, in their order: those
    its class defines in place of [`Callback`][skcallback.Callback]'s no-ops,
    and those set on the instance (a function stored under the hook's name,
    as ``LambdaCallback`` and a callback taking a hook as a parameter do;
    None stored there disables the hook). The one rule for the fit's hook
    table and for prediction's."""
    own = getattr(cb, "__dict__", {})
    cls = type(cb)
    return [
        hook
        for hook in hooks
        if (own[hook] is not None if hook in own else _class_overrides(cls, hook))
    ]


def _class_overrides(cls: type, hook: str) -> bool:
    method = getattr(cls, hook, None)
    return method is not None and method is not getattr(Callback, hook)


def check_parameters(cb: Any, name: str) -> None:
    """Check ``cb``'s parameters against its class's ``parameter_constraints``
    (before any callback's ``setup``), with the estimator's validator and
    messages; the error's note names the callback."""
    try:
        check_constraints(cb, type(cb).parameter_constraints)
    except InvalidParameterError as exc:
        exc.add_note(f"raised by callback {name!r} before training started")
        raise


#: The constraint of a logger's ``keys`` parameter, which ``metric_keys``
#: resolves.
METRIC_KEYS: tuple[Callable[[Any], bool], str] = (
    lambda v: v is None or (isinstance(v, list | tuple) and all(isinstance(k, str) for k in v)),
    "None or a list of metric names",
)


def metric_keys(cb: Any, plan: Any) -> list[str] | None:
    """A logger's ``keys`` parameter (declared with ``METRIC_KEYS``),
    resolved against the fit's metrics (``plan.monitored``); None means
    every metric."""
    owner = type(cb).__name__
    return None if cb.keys is None else [plan.monitored(owner, key) for key in cb.keys]


def epoch_numbers(metrics: dict[str, Any], keys: list[str] | None) -> Iterator[tuple[str, float]]:
    """The finite numbers an epoch recorded under ``keys`` (None: all),
    ``epoch`` itself aside: what loggers write as scalars."""
    for key in keys if keys is not None else metrics:
        value = metrics.get(key)
        if (
            key != "epoch"
            and isinstance(value, numbers.Real)
            and not isinstance(value, bool)
            and math.isfinite(value)
        ):
            yield key, float(value)


def _init_defaults(cls: type[Any]) -> dict[str, Any]:
    if cls.__init__ is object.__init__:
        return {}
    return {
        p.name: p.default
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.default is not p.empty
    }


def _differs(value: Any, default: Any) -> bool:
    """Whether a parameter differs from its default (a required one always
    does); values that do not compare plainly count as different."""
    if value is default:
        return False
    if default is inspect.Parameter.empty:
        return True
    try:
        return not (type(value) is type(default) and bool(value == default))
    except Exception:
        return True


class Callback:
    """Base class of every callback.

    A callback observes and steers the training loop through its hooks. Each
    hook is a method ``hook(self, ctx)`` receiving the fit's
    [`Context`][skcallback.Context]; override only the hooks you need, the loop
    never calls the others. A hook that returns ``False`` requests a stop,
    as does ``ctx.request_stop(reason)``.

    Before training, [`setup`][skcallback.Callback.setup] sees the fit's
    plan and checks the parameters against it, so configuration errors
    surface before the first batch.

    Subclasses follow scikit-learn's clone rules: ``__init__`` only stores its
    arguments under the same names, and what the callback learns during a fit
    lives in attributes ending in ``_``. Those attributes make up the default
    [`state_dict`][skcallback.Callback.state_dict], which is saved with the
    estimator and in checkpoints.

    Attributes
    ----------
    name : str
        The name used in ``callbacks_`` and in ``cb__<name>__<param>``
        parameters. Defaults to the class name in snake_case; a
        ``(name, callback)`` pair in ``callbacks=[...]`` overrides it.
    order : float
        Callbacks run by increasing ``order``, ties in list order. The
        default is 0; [`History`][skcallback.callbacks.History] runs first,
        [`EarlyStopping`][skcallback.callbacks.EarlyStopping] (1000) after
        ordinary callbacks and [`Checkpoint`][skcallback.callbacks.Checkpoint]
        last.
    shared_params : tuple of str
        Parameters that clones share with this callback instead of copying:
        live resources such as a writer, a tracking client or an Optuna
        trial. Every fit works on a clone of each callback, so a copied
        trial would never hear of the fit. A subclass names them, e.g.
        ``shared_params = ("trial",)``; empty by default.
    parameter_constraints : dict
        What each parameter may be, checked at fit before any callback's
        [`setup`][skcallback.Callback.setup], as the estimator checks its
        own: parameter name -> ``(check, allowed)``, where ``check(value)``
        returns whether the value is allowed and ``allowed`` says in words
        what is. A failed check raises ``InvalidParameterError`` (a
        ``ValueError``): "The 'patience' parameter of EarlyStopping must be
        an int >= 0; got -1." A subclass extends its parent's with
        ``{**Parent.parameter_constraints, ...}``; empty by default.
    schedules_optimizer : bool
        Whether the callback changes the optimizer's rates (``lr``,
        ``momentum``, ``betas``) during a fit, as
        [`LRScheduler`][skcallback.callbacks.LRScheduler] does. A saved
        model's rates must otherwise equal what the estimator's parameters
        give (a file decides nothing), and a warm start resets them to
        those; with such a callback, finite rates load and carry on. False
        by default.
    rank_zero_only : bool
        Whether the callback's hooks run on rank 0 only in a
        ``strategy="ddp"`` fit: for side effects that must happen once
        (files, logs, printing) and steer nothing the other ranks need
        (the model, a stop). Checkpoint, CSVLogger, PrintLog, ProgressBar,
        LossMonitor, TimeMonitor, TensorBoardLogger and MlflowLogger
        declare it; every other callback runs on every rank, with the same
        ``ctx`` values. False by default.

    Examples
    --------
    >>> from skcallback import Callback
    >>> class CountBatches(Callback):
    ...     def on_fit_begin(self, ctx):
    ...         self.n_batches_ = 0
    ...     def on_train_batch_end(self, ctx):
    ...         self.n_batches_ += 1
    >>> CountBatches().name
    'count_batches'
    """

    # None on a callback whose ``name`` parameter was left out: _default_name
    # then derives it (Scoring, LambdaCallback).
    name: str | None = "callback"
    order: float = 0
    # Parameters clones share instead of copying (see the class docstring).
    shared_params: tuple[str, ...] = ()
    # What each parameter may be (see the class docstring).
    parameter_constraints: ClassVar[Constraints] = {}
    # Whether it changes the optimizer's rates (see the class docstring).
    schedules_optimizer: bool = False
    # Whether its hooks run on rank 0 only (see the class docstring).
    rank_zero_only: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = snake_case(cls.__name__)

    # -- identity ---------------------------------------------------------
    def _default_name(self) -> str:
        """The name when none is given; subclasses with a ``name`` parameter
        derive it from their other parameters."""
        name = getattr(self, "name", None)
        return name if isinstance(name, str) and name else snake_case(type(self).__name__)

    def _hook_handlers(self) -> dict[str, Callable[[Any], Any]]:
        """The hooks this callback overrides (``overridden_hooks``) with
        what the loop calls for each, less those its parameters make idle
        (so the loop never calls a no-op)."""
        idle = self.idle_hooks()
        return {hook: self._handler(hook) for hook in overridden_hooks(self) if hook not in idle}

    def _handler(self, hook: str) -> Callable[[Any], Any]:
        """What the loop calls with ``ctx`` for ``hook``: the method, or the
        function set on the instance."""
        handler: Callable[[Any], Any] = getattr(self, hook)
        return handler

    def declare(self, plan: Any) -> None:
        """Declare the metrics this callback records, before any callback's
        [`setup`][skcallback.Callback.setup].

        Called once per fit, for every callback (in dispatch order) before
        the first ``setup``, so a callback that watches a metric finds it
        declared wherever the callback recording it stands in the list.
        Call ``plan.declare_metric(name, lower_is_better=...)`` for each
        metric; check nothing and touch nothing here. The default declares
        nothing.

        Parameters
        ----------
        plan : FitPlan
            The plan of the fit about to start.
        """

    def setup(self, plan: Any) -> None:
        """Check the parameters against the fit before training starts.

        Called once per fit on the fit's copy of the callback, in dispatch
        order, after the data, module, criterion and optimizer were checked,
        after every callback's [`declare`][skcallback.Callback.declare] and
        before any hook. Raise ``ValueError`` (or ``OSError`` for files)
        here, so a configuration error never surfaces after an epoch of
        training. Check only: the fit may still fail in a later callback's
        ``setup``, so create files, folders, runs or threads in
        ``on_fit_begin``, which runs once every check has passed (and whose
        failures ``on_exception`` and ``on_fit_end`` clean up after).
        ``plan`` is the fit's ``FitPlan`` (also ``ctx.plan``):

        - ``plan.metrics``: the metrics each epoch will record (declared in
          ``declare``); a callback that watches one calls
          ``plan.monitored(owner, key)`` and ``plan.minimizes(owner, key,
          mode)``;
        - ``plan.has_validation``, ``plan.n_batches``, ``plan.first_epoch``,
          ``plan.max_epochs``, ``plan.partial``, ``plan.device``;
        - ``plan.estimator``: the working estimator, with ``module_``,
          ``optimizer_`` and ``criterion_`` built;
        - ``plan.outputs``: turns module outputs into predictions.

        The default checks nothing.

        Parameters
        ----------
        plan : FitPlan
            The plan of the fit about to start.

        Raises
        ------
        ValueError
            For a parameter the fit cannot work with; its message should
            name the parameter, the value and what is allowed.
        OSError
            For a file or folder the callback cannot use.
        """

    def resume_from(self, plan: Any) -> str | None:
        """A checkpoint file this new fit should continue from, or None.

        Called before [`setup`][skcallback.Callback.setup], for a fit that
        starts afresh (not a warm start or ``partial_fit``); the first
        callback that names a file decides. The file must be a checkpoint of
        the same fit (``plan.fingerprint()``), or the fit raises.
        [`Checkpoint`][skcallback.callbacks.Checkpoint] with ``resume=True``
        uses it.

        Parameters
        ----------
        plan : FitIdentity
            Which fit is about to start: ``fingerprint()``, ``fit_name()``,
            ``run_name()``, ``estimator``, ``partial`` and
            ``continuing`` (the rest of the plan depends on the answer).

        Returns
        -------
        str or None
            The path of the file to continue from; None (the default) to
            start afresh.
        """
        return None

    def idle_hooks(self) -> set[str]:
        """Hooks this callback overrides but that have nothing to do with its
        parameters (e.g. per-batch work when it is configured per epoch).

        Called after [`setup`][skcallback.Callback.setup]; the loop never
        calls these hooks during the fit, so they cost nothing.

        Returns
        -------
        set of str
            Hook names (from [`HOOKS`][skcallback.callbacks.HOOKS]); empty by
            default.
        """
        return set()

    def _require(self, name: str, ok: bool, allowed: str) -> None:
        """Raise a ValueError naming the parameter, its value and what is
        allowed, in the estimator's format, unless ``ok``: for checks in
        ``setup`` that depend on the fit (``parameter_constraints`` declares
        the others)."""
        check_constraints(self, {name: (lambda _: ok, allowed)})

    def __sklearn_clone__(self) -> Callback:
        """A new callback from the same parameters (cloned, except those in
        ``shared_params``, which the clone shares); an ``order`` or
        ``name`` set on this instance is kept."""
        from sklearn.base import clone

        params = {
            k: v if k in self.shared_params else clone(v, safe=False)
            for k, v in self.get_params(deep=False).items()
        }
        new = type(self)(**params)
        for key in ("order", "name"):
            if key in vars(self) and key not in params:
                setattr(new, key, vars(self)[key])
        return new

    # -- scikit-learn parameter protocol --------------------------------
    @classmethod
    def _get_param_names(cls) -> list[str]:
        init = cls.__init__
        if init is object.__init__:
            return []
        params = inspect.signature(init).parameters.values()
        return sorted(
            p.name
            for p in params
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, as scikit-learn's ``get_params``.

        Parameters
        ----------
        deep : bool, default=True
            Accepted for compatibility; callbacks have no nested parameters.

        Returns
        -------
        dict
            Parameter names mapped to their values.
        """
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> Callback:
        """Set constructor arguments, as scikit-learn's ``set_params``.

        Parameters
        ----------
        **params
            Constructor arguments by name.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            If a name is not a parameter of this callback.
        """
        valid = self.get_params()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(
                    f"Invalid parameter {key!r} for callback {type(self).__name__}; "
                    f"valid parameters are: {sorted(valid) or 'none'}."
                )
            setattr(self, key, value)
        return self

    # -- learned state ---------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What the callback learned: a copy of its attributes ending in ``_``.

        Override together with
        [`load_state_dict`][skcallback.Callback.load_state_dict] to save
        something else.

        Returns
        -------
        dict
            Attribute names mapped to deep copies of their values.
        """
        return {
            key: copy.deepcopy(value)
            for key, value in vars(self).items()
            if key.endswith("_") and not key.startswith("_")
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what [`state_dict`][skcallback.Callback.state_dict] returned.

        Parameters
        ----------
        state : dict
            Learned attributes (names ending in ``_``) mapped to their
            values; each value is deep-copied onto the callback.

        Raises
        ------
        TypeError
            If ``state`` is not a dict.
        ValueError
            If a key is not a learned attribute's name (a saved state may
            not change parameters or methods).
        """
        if not isinstance(state, dict):
            raise TypeError(
                f"{type(self).__name__}.load_state_dict expects a dict; got {type(state).__name__}."
            )
        # Learned state only: a saved state must not change parameters or
        # methods (a checkpoint's CSVLogger path, a setup function).
        refused = sorted(str(k) for k in state if not (isinstance(k, str) and _is_learned(k)))
        if refused:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict takes learned attributes (names ending "
                f"in '_'); refused {refused}."
            )
        for key, value in state.items():
            setattr(self, key, copy.deepcopy(value))

    def __repr__(self) -> str:
        """The class and the parameters that differ from their defaults, as
        scikit-learn prints estimators."""
        defaults = _init_defaults(type(self))
        args = ", ".join(
            f"{k}={v!r}"
            for k, v in self.get_params().items()
            if _differs(v, defaults.get(k, inspect.Parameter.empty))
        )
        return f"{type(self).__name__}({args})"

    # -- hooks (no-ops; the loop only calls the overridden ones) ---------
    def on_fit_begin(self, ctx: Context) -> bool | None:
        """Before the first epoch of a fit."""

    def on_epoch_begin(self, ctx: Context) -> bool | None:
        """At the start of each epoch."""

    def on_train_begin(self, ctx: Context) -> bool | None:
        """Before the first training batch of an epoch."""

    def on_train_batch_begin(self, ctx: Context) -> bool | None:
        """Before the forward pass of a training batch."""

    def on_after_forward(self, ctx: Context) -> bool | None:
        """After the forward pass (train and valid); ``ctx.y_pred`` is set."""

    def on_after_loss(self, ctx: Context) -> bool | None:
        """After the loss (train and valid); ``ctx.loss`` may be replaced."""

    def on_before_backward(self, ctx: Context) -> bool | None:
        """Before ``ctx.loss.backward()``."""

    def on_after_backward(self, ctx: Context) -> bool | None:
        """After the backward pass; gradients are present."""

    def on_before_step(self, ctx: Context) -> bool | None:
        """Before ``optimizer.step()``."""

    def on_after_step(self, ctx: Context) -> bool | None:
        """After ``optimizer.step()``; ``ctx.step`` counts it."""

    def on_train_batch_end(self, ctx: Context) -> bool | None:
        """After a training batch."""

    def on_train_end(self, ctx: Context) -> bool | None:
        """After the last training batch; ``ctx.metrics['train_loss']`` is set."""

    def on_valid_begin(self, ctx: Context) -> bool | None:
        """Before the first validation batch of an epoch."""

    def on_valid_batch_begin(self, ctx: Context) -> bool | None:
        """Before the forward pass of a validation batch."""

    def on_valid_batch_end(self, ctx: Context) -> bool | None:
        """After a validation batch."""

    def on_valid_end(self, ctx: Context) -> bool | None:
        """After validation; ``ctx.metrics['valid_loss']`` is set."""

    def on_epoch_end(self, ctx: Context) -> bool | None:
        """At the end of each epoch; ``ctx.metrics`` is complete."""

    def on_fit_end(self, ctx: Context) -> bool | None:
        """After the last epoch, after a stop, and after a failure.

        A cleanup hook (this one and ``on_exception``): it runs for every
        callback whatever another callback raised, ``KeyboardInterrupt`` and
        ``SystemExit`` included, so each can close its files and threads.
        An error raised here fails the fit once every callback's cleanup
        ran, with a note naming the callback and the hook; when several
        callbacks raise, one ``ExceptionGroup`` holds them, unless one of
        them is a ``KeyboardInterrupt`` or ``SystemExit``: the first such is
        raised as itself, with notes naming the others. After a failure in
        training, that failure stays the error raised, and errors of the
        cleanup hooks become notes on it."""

    def on_exception(self, ctx: Context) -> bool | None:
        """When the fit fails after ``on_fit_begin`` ran (errors found before
        training, in the plan or a ``setup``, fire no hook); ``ctx.exception``
        holds the error. A cleanup hook: it runs for every callback whatever
        another raises (see ``on_fit_end``): before the ``on_fit_end`` hooks
        when training failed, after them when an ``on_fit_end`` failed."""

    # -- prediction (predict, predict_proba, score), on the fitted callbacks
    def on_predict_begin(self, ctx: Context) -> bool | None:
        """Before a prediction; ``ctx.phase`` is ``"predict"`` and
        ``ctx.n_batches`` the number of batches."""

    def on_predict_batch_begin(self, ctx: Context) -> bool | None:
        """Before the forward pass of each prediction batch; ``ctx.X_batch``
        is set (a callback may replace it, e.g. to add noise)."""

    def on_predict_batch_end(self, ctx: Context) -> bool | None:
        """After each prediction batch; ``ctx.y_pred`` holds the module's
        output for it (a callback may replace it, e.g. to average
        augmented views)."""

    def on_predict_end(self, ctx: Context) -> bool | None:
        """After the last batch; ``ctx.y_pred`` holds the output for every
        row, on the CPU, before it becomes labels, probabilities or values."""
