"""The torch objects of a fit: criterion, optimizer and the loss function,
built from the estimator's parameters with errors in its words."""

from __future__ import annotations

import copy
import fnmatch
import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from . import _internals, _routing
from ._modules import MLP, build_module, global_rng_scope, signature_names
from ._params import OPTIMIZERS, InvalidParameterError

LossFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def build_criterion(estimator: Any, device: torch.device) -> Any:
    params = _routing.routed(estimator, "criterion__")
    criterion = (
        estimator.criterion if estimator.criterion is not None else estimator._default_criterion
    )
    if isinstance(criterion, nn.Module):
        if params:
            raise InvalidParameterError(
                f"criterion__ parameters {sorted(params)} cannot apply to a criterion "
                "instance; pass its class instead."
            )
        built = copy.deepcopy(criterion)
    else:
        try:
            built = criterion(**params)
        except Exception as exc:
            raise InvalidParameterError(
                f"Could not build the criterion {_name(criterion)} with criterion__ "
                f"parameters {params}: {type(exc).__name__}: {exc}"
            ) from exc
    reduction = getattr(built, "reduction", "mean")
    if reduction != "mean":
        raise InvalidParameterError(
            f"The criterion's reduction must be 'mean' (the loss of a batch is the mean of its "
            f"samples'; sample_weight weighs samples, and lr scales the step); got "
            f"criterion__reduction={reduction!r}."
        )
    return built.to(device) if isinstance(built, nn.Module) else built


def build_optimizer(estimator: Any, module: nn.Module) -> torch.optim.Optimizer:
    params = _routing.routed(estimator, "optimizer__")
    spec = params.pop("param_groups", None)
    name = estimator.optimizer
    cls: type[torch.optim.Optimizer] = OPTIMIZERS[name.lower()] if isinstance(name, str) else name
    _check_optimizer(cls, params, estimator.lr)
    # Called as a factory: torch.optim.Optimizer's own __init__ takes
    # (params, defaults), its subclasses their hyperparameters as keywords.
    factory: Callable[..., torch.optim.Optimizer] = cls
    kwargs = {"lr": estimator.lr, **params}
    if spec is not None:
        return _grouped_optimizer(cls, module, spec, kwargs)
    parameters = list(module.parameters())
    if not parameters:
        raise ValueError(
            f"The module {type(module).__name__} has no parameters to train; give it at "
            "least one nn.Parameter."
        )
    # The fused kernels (CPU and CUDA) update every tensor in one call; where
    # this optimizer or device has none, or it fails, use the default.
    fused = not {"fused", "foreach"} & set(params) and _takes(cls, "fused")
    failure: tuple[str, Exception] | None = None
    for extra in ({"fused": True}, {}) if fused else ({},):
        try:
            optimizer = factory(parameters, **extra, **kwargs)
        except Exception as exc:
            failure = ("Could not build the optimizer {} with {}: ", exc)
            continue
        try:
            if params or cls not in _BUILT_IN:  # the defaults of torch's own step
                _first_step(factory, parameters, {**extra, **kwargs})
        except Exception as exc:
            failure = ("The optimizer {} with {} fails at its first step: ", exc)
            continue
        return optimizer
    assert failure is not None
    template, error = failure
    given = f"lr={estimator.lr!r} and optimizer__ parameters {params}"
    raise InvalidParameterError(
        template.format(cls.__name__, given) + f"{type(error).__name__}: {error}"
    ) from error


def _grouped_optimizer(
    cls: type[torch.optim.Optimizer], module: nn.Module, spec: Any, kwargs: dict[str, Any]
) -> torch.optim.Optimizer:
    """The optimizer of ``optimizer__param_groups=spec``: one group per
    pattern (the parameters whose names it matches first, with its
    options), after one of the parameters no pattern matches (the
    estimator's options). Each group's options are tried as the
    optimizer's own (its constructor's checks, a throwaway first step),
    so a bad value fails here, in our words."""
    groups = parameter_groups(module, spec)
    options = set().union(*(group.keys() - {"params"} for group in groups))
    known = _options_of(cls, kwargs)
    unknown = sorted(options - known) if known is not None else []
    if known is not None and unknown:
        raise InvalidParameterError(
            f"optimizer__param_groups sets {unknown}, which {cls.__name__} does not take; "
            f"its options are {sorted(known)}."
        )
    factory: Callable[..., torch.optim.Optimizer] = cls
    fused = not {"fused", "foreach"} & (set(kwargs) | options) and _takes(cls, "fused")
    failure: tuple[dict[str, Any], Exception] | None = None
    for extra in ({"fused": True}, {}) if fused else ({},):
        own: dict[str, Any] = {}
        try:
            for group in groups:
                own = {k: v for k, v in group.items() if k != "params"}
                _first_step(factory, group["params"], {**kwargs, **extra, **own})
            return factory(groups, **extra, **kwargs)
        except Exception as exc:
            failure = (own, exc)
    assert failure is not None
    own, error = failure
    given = {k: v for k, v in kwargs.items() if k != "lr"}
    raise InvalidParameterError(
        f"The optimizer {cls.__name__} with lr={kwargs['lr']!r} and optimizer__ parameters "
        f"{given} fails for the parameter group of options {own} "
        f"(optimizer__param_groups={spec!r}): {type(error).__name__}: {error}"
    ) from error


def _options_of(cls: type[torch.optim.Optimizer], kwargs: dict[str, Any]) -> set[str] | None:
    """The options of ``cls``'s groups (its ``defaults``: torch keeps any
    other key a group holds, and no step reads it); None where it cannot
    be built with ``kwargs`` (the caller reports why)."""
    try:
        probe = cls([torch.zeros(1, requires_grad=True)], **kwargs)
    except Exception:
        return None
    return set(probe.defaults)


def parameter_groups(module: nn.Module, spec: Any) -> list[dict[str, Any]]:
    """The parameter groups ``optimizer__param_groups=spec`` makes of
    ``module``'s named parameters: those no pattern matches first (when
    there are any), then one group per pattern, of the parameters it is
    the first to match (``fnmatch``), with its options.

    Raises
    ------
    InvalidParameterError
        For a ``spec`` that is not a list of ``(pattern, {option: value})``
        pairs, an option named ``params``, or a pattern that matches no
        parameter left to it (a typo would otherwise train those
        parameters with the estimator's options, silently).
    """
    pairs = _group_pairs(spec)
    left = dict(module.named_parameters())
    groups = []
    for pattern, options in pairs:
        names = [name for name in left if fnmatch.fnmatchcase(name, pattern)]
        if not names:
            raise InvalidParameterError(
                f"optimizer__param_groups: the pattern {pattern!r} matches no parameter"
                + (" that an earlier pattern did not take" if len(left) < _count(module) else "")
                + f"; the module's parameters are {_some_names(module)}."
            )
        groups.append({"params": [left.pop(name) for name in names], **options})
    rest = [{"params": list(left.values())}] if left else []
    return [*rest, *groups]


def _group_pairs(spec: Any) -> list[tuple[str, dict[str, Any]]]:
    """``spec`` as ``(pattern, options)`` pairs, or an error in our words."""
    shape = "a list of (pattern, {option: value}) pairs, e.g. [('layers.0.*', {'lr': 1e-4})]"
    if not isinstance(spec, list | tuple):
        raise InvalidParameterError(
            f"The 'optimizer__param_groups' parameter must be {shape}; got {spec!r}."
        )
    pairs = []
    for entry in spec:
        if not (
            isinstance(entry, list | tuple)
            and len(entry) == 2
            and isinstance(entry[0], str)
            and isinstance(entry[1], dict)
            and all(isinstance(key, str) for key in entry[1])
        ):
            raise InvalidParameterError(
                f"The 'optimizer__param_groups' parameter must be {shape}; its entry "
                f"{entry!r} is not one."
            )
        if "params" in entry[1]:
            raise InvalidParameterError(
                f"optimizer__param_groups: the options of {entry[0]!r} name 'params'; the "
                "pattern chooses the parameters."
            )
        pairs.append((entry[0], dict(entry[1])))
    return pairs


def _count(module: nn.Module) -> int:
    return sum(1 for _ in module.named_parameters())


def _some_names(module: nn.Module, most: int = 12) -> str:
    names = [name for name, _ in module.named_parameters()]
    shown = ", ".join(names[:most])
    return f"[{shown}{', ...' if len(names) > most else ''}] ({len(names)})"


#: torch's optimizers, by the names the ``optimizer`` parameter takes: with
#: no ``optimizer__`` options (``lr`` is checked by its constraint) their
#: first step cannot fail, and a fit skips the throwaway one.
_BUILT_IN = frozenset(OPTIMIZERS.values())


def _first_step(factory: Callable[..., Any], parameters: list[Any], kwargs: dict) -> None:
    """Step a throwaway optimizer built as the fit's is, over small zero
    tensors shaped like the parameters (their number of dimensions, dtype
    and device) with zero gradients: hyperparameters that only its step
    reads (``betas=(0.9,)``) fail now rather than at the first batch."""
    throwaway = []
    for parameter in parameters:
        tensor = torch.zeros(
            (1,) * parameter.ndim,
            dtype=parameter.dtype,
            device=parameter.device,
            requires_grad=True,
        )
        tensor.grad = torch.zeros_like(tensor)
        throwaway.append(tensor)
    optimizer = factory(throwaway, **kwargs)
    # Torch wraps every optimizer's step to run the step hooks (a user's
    # global ones too) and the profiler; the function it wraps steps alone,
    # so neither sees a step that trains nothing.
    _internals.unwrapped_step(type(optimizer))(optimizer)


def _check_optimizer(cls: type[torch.optim.Optimizer], params: dict[str, Any], lr: float) -> None:
    """Reject optimizers the loop cannot drive, and an ``lr`` given twice."""
    if "lr" in params and params["lr"] != lr:
        raise InvalidParameterError(
            f"optimizer__lr={params['lr']!r} conflicts with lr={lr!r}; set the learning "
            "rate with the 'lr' parameter only."
        )
    if issubclass(cls, torch.optim.SparseAdam):
        raise InvalidParameterError(
            "optimizer=SparseAdam needs sparse gradients, which the loop's modules do not "
            "produce; use 'adam' or 'adamw'."
        )
    if "closure" in _required_step_arguments(cls):
        raise InvalidParameterError(
            f"optimizer={cls.__name__} needs a closure that re-evaluates the loss at each "
            "step (as LBFGS does); skcallback takes one step per batch. Use a first-order "
            "optimizer such as 'adam', 'sgd' or 'rmsprop'."
        )


#: The arguments without default of each optimizer class's ``step``.
_STEP_ARGUMENTS: dict[type, frozenset[str]] = {}


def _required_step_arguments(cls: type[torch.optim.Optimizer]) -> frozenset[str]:
    """The arguments ``cls.step`` requires (its signature read once per class)."""
    if cls not in _STEP_ARGUMENTS:
        parameters = inspect.signature(cls.step).parameters.values()
        _STEP_ARGUMENTS[cls] = frozenset(
            p.name for p in parameters if p.default is inspect.Parameter.empty
        )
    return _STEP_ARGUMENTS[cls]


def loss_function(criterion: Any, *, weighted: bool) -> LossFn:
    """``loss(y_pred, y, w)``: the criterion, or with sample weights ``w`` the
    mean of its per-sample values times the (mean-normalised) weights. A fit
    without weights may still get some from a callback (in
    ``ctx.sample_weight_batch``); a criterion without a ``reduction``
    attribute cannot weigh them, which is an error before training when the
    fit is ``weighted`` and at the batch otherwise."""
    if not hasattr(criterion, "reduction"):
        if weighted:
            raise ValueError(_NO_REDUCTION.format(criterion=criterion))

        def unweighted(y_pred, y, w):
            if w is not None:
                raise ValueError(
                    "A callback set ctx.sample_weight_batch, but "
                    + _NO_REDUCTION.format(criterion=criterion)
                )
            return criterion(y_pred, y)

        return unweighted
    per_sample = copy.copy(criterion)
    per_sample.reduction = "none"

    def compute(y_pred, y, w):
        if w is None:  # a phase whose weights are all equal
            return criterion(y_pred, y)
        losses = per_sample(y_pred, y)
        if losses.ndim > 1:
            losses = losses.reshape(len(losses), -1).mean(1)
        return (losses * w).mean()

    return compute


_NO_REDUCTION = (
    "sample_weight needs a criterion with a 'reduction' attribute (as torch.nn "
    "losses have) to compute per-sample losses; {criterion!r} has none."
)


def _takes(factory: Any, name: str) -> bool:
    return name in signature_names(factory)


def _name(obj: Any) -> str:
    return getattr(obj, "__name__", None) or repr(obj)


def build_objects(work: Any, device: torch.device, seed: int) -> None:
    """Module, criterion and optimizer of a new fit, on ``work``."""
    params = _routing.routed(work, "module__")
    generator = torch.Generator().manual_seed(seed)
    custom_seed = None if owns_its_randomness(work) else seed
    with global_rng_scope(custom_seed, device):
        module = build_module(work, input_size(work), work.n_outputs_, params, generator)
    dtype = torch.float64 if work.precision == "64" else None
    # The built-in MLP is built on torch's default device: when that is the
    # fit's, and the dtype stays, module.to would only walk it.
    if not (isinstance(module, MLP) and dtype is None and torch.get_default_device() == device):
        module = module.to(device=device, dtype=dtype)
    work.module_ = module
    work.criterion_ = build_criterion(work, device)
    work.optimizer_ = build_optimizer(work, work.module_)
    work.device_ = device


def input_size(work: Any) -> int | tuple | dict:
    """What the fit learned of the size of ``X``: ``n_features_in_`` for a
    2-D ``X``; else the shape after the first dimension (a dict of them
    for a dict ``X``)."""
    spec = vars(work).get("_input_spec")
    if spec is None:
        return work.n_features_in_
    if spec["kind"] in ("array", "dataset") and "shape" in spec:
        return tuple(spec["shape"])
    if spec["kind"] == "dict":
        return {key: tuple(field["shape"]) for key, field in spec["fields"].items()}
    return ()


def owns_its_randomness(estimator: Any) -> bool:
    """Whether the fit's module draws only from the fit's own generators: the
    built-in MLP with a built-in activation (a user's activation class, such
    as RReLU, may use torch's global generator)."""
    return estimator.module is None and isinstance(estimator.activation, str)


def module_and_loss_are_ours(estimator: Any) -> bool:
    """Whether module and loss are the library's own: the built-in MLP with
    a built-in activation (``owns_its_randomness``) and the default
    criterion. Their shapes fit the validated targets by construction (the
    dry run checks less), and the hand-written step may replace autograd."""
    return (
        owns_its_randomness(estimator)
        and estimator.criterion is None
        and not _routing.routed(estimator, "criterion__")
    )
