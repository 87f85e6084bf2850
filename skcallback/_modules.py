"""The built-in MLP, the construction of user modules, and the random state
a fit owns.

The built-in MLP never touches torch's global random number generator: it
is initialised from a generator of the fit and its dropout draws from
another (``DROPOUT_GENERATOR``), so fits running in threads neither
disturb each other nor the caller. A user module may use the global
generator in its constructor and forward pass; ``global_rng_scope``
then seeds it for the fit, under a lock, and restores it afterwards.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import inspect
import math
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}

#: The generator the built-in dropout draws from during a fit (per thread);
#: outside a fit it falls back to torch's global generator.
DROPOUT_GENERATOR: contextvars.ContextVar[torch.Generator | None] = contextvars.ContextVar(
    "skcallback_dropout_generator", default=None
)
_GLOBAL_RNG_LOCK = threading.RLock()


class Dropout(nn.Dropout):
    """``nn.Dropout`` that draws its mask from the fit's generator."""

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        generator = DROPOUT_GENERATOR.get()
        if not self.training or self.p == 0 or generator is None:
            return super().forward(X)
        keep = 1.0 - self.p
        mask = torch.empty_like(X).bernoulli_(keep, generator=generator)
        return X * mask / keep


class Linear(nn.Linear):
    """``nn.Linear`` whose initial weights come from ``generator``, in
    PyTorch's default scheme (uniform in ``±1/sqrt(in_features)``), never
    from torch's global generator; without one, as ``nn.Linear``."""

    def __init__(
        self, in_features: int, out_features: int, generator: torch.Generator | None = None
    ) -> None:
        # nn.Linear's __init__ calls reset_parameters, which reads it. (No
        # skip_init: building on the meta device costs five times as much
        # on the small layers of a small fit.)
        self._init_generator = generator
        super().__init__(in_features, out_features)
        del self._init_generator

    def reset_parameters(self) -> None:
        generator = getattr(self, "_init_generator", None)
        if generator is None:
            super().reset_parameters()
            return
        bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        with torch.no_grad():
            self.weight.uniform_(-bound, bound, generator=generator)
            self.bias.uniform_(-bound, bound, generator=generator)


class SparseInputLinear(Linear):
    """``Linear`` that also takes a torch sparse input, multiplied as it is
    (``X @ weight.T + bias`` from a sparse ``X``, autograd included): the
    MLP's first layer, which receives the sparse batches of a sparse ``X``."""

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if X.layout == torch.strided:
            return super().forward(X)
        return torch.addmm(self.bias, X, self.weight.t())


class MLP(nn.Module):
    """A multi-layer perceptron: ``Linear`` layers with an activation (and
    dropout) between them; no hidden layers gives a linear model. The first
    layer also takes torch sparse inputs (``SparseInputLinear``).

    Parameters
    ----------
    n_features_in : int
        Width of the input.
    n_outputs : int
        Width of the output (targets for regression, classes for
        classification; the output is raw, without a final activation).
    hidden_layer_sizes : sequence of int, default=(100,)
        Width of each hidden layer.
    activation : str or nn.Module class, default="relu"
        The activation between layers.
    dropout : float, default=0.0
        Dropout probability after each hidden activation.
    generator : torch.Generator, optional
        Draws the initial weights (PyTorch's default ``Linear`` scheme,
        uniform in ``±1/sqrt(fan_in)``); torch's global generator if None.
    """

    def __init__(
        self,
        n_features_in: int,
        n_outputs: int,
        hidden_layer_sizes: Sequence[int] = (100,),
        activation: str | type[nn.Module] = "relu",
        dropout: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        make_activation = ACTIVATIONS[activation] if isinstance(activation, str) else activation
        layers: list[nn.Module] = []
        width = n_features_in
        for size in hidden_layer_sizes:
            layers += [_linear(width, size, generator, first=not layers), make_activation()]
            if dropout:
                layers.append(Dropout(dropout))
            width = size
        layers.append(_linear(width, n_outputs, generator, first=not layers))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        return self.layers(X)


def _linear(
    n_in: int, n_out: int, generator: torch.Generator | None, *, first: bool = False
) -> nn.Linear:
    """A ``Linear`` layer (the ``first`` one taking sparse inputs too)
    initialised as PyTorch does, from ``generator``."""
    return (SparseInputLinear if first else Linear)(n_in, n_out, generator)


#: The parameters that configure the built-in MLP.
MLP_PARAMETERS = ("hidden_layer_sizes", "activation", "dropout")


def takes_sparse_batches(
    module: Any, fitted: nn.Module | None, precision: str, compile: bool, device: torch.device
) -> bool:
    """Whether the batches of a sparse ``X`` reach the estimator's module
    (in training, validation and prediction alike) as torch sparse tensors,
    the same rule for all.

    That is: the built-in MLP (the ``module`` parameter None, and the
    ``fitted`` module, where training continues one, an ``MLP``), whose
    first layer multiplies them as they are; ``precision="32"`` or ``"64"``
    (autocast has no sparse products); ``compile=False`` (``torch.compile``
    does not trace sparse tensors); the CPU (the sparse route has not been
    run on a GPU yet: CUDA densifies each batch, as before). A user's module
    receives dense batches, as it may not accept sparse tensors.
    """
    return (
        module is None
        and (fitted is None or isinstance(fitted, MLP))
        and precision in ("32", "64")
        and not compile
        and device.type == "cpu"
    )


def build_module(
    estimator: Any,
    size: int | tuple | dict,
    n_outputs: int,
    params: dict,
    generator: torch.Generator,
) -> nn.Module:
    """The module of a fit, from the estimator's ``module`` parameter.
    ``size`` is what the fit learned of the size of ``X``: its number of
    features (2-D), its shape after the first dimension (other ranks), or
    a dict of such shapes (a dict ``X``)."""
    module = estimator.module
    if module is None:
        if not isinstance(size, int):
            raise ValueError(
                f"The built-in MLP (module=None) takes a 2-D X (n_samples, n_features); X is "
                f"{_size_words(size)}. Pass a module built for this input as module=..., or "
                "flatten X (X.reshape(len(X), -1))."
            )
        if params:
            raise ValueError(
                f"module__ parameters {sorted(params)} only apply to a custom module; the "
                f"built-in MLP (module=None) is configured with {list(MLP_PARAMETERS)}."
            )
        try:
            return MLP(
                size,
                n_outputs,
                hidden_layer_sizes=_as_sizes(estimator.hidden_layer_sizes),
                activation=estimator.activation,
                dropout=estimator.dropout,
                generator=generator,
            )
        except Exception as exc:
            raise ValueError(
                f"Could not build the built-in MLP with activation={estimator.activation!r}: "
                f"{type(exc).__name__}: {exc}. An activation class must build without "
                f"arguments, as {sorted(ACTIVATIONS)} do."
            ) from exc
    if isinstance(module, nn.Module):
        if params:
            raise ValueError(
                f"module__ parameters {sorted(params)} cannot apply to a module instance; "
                "pass the module class (or a factory) to have them used."
            )
        return copy.deepcopy(module)
    kwargs = _factory_arguments(module, size, n_outputs, params)
    name = getattr(module, "__name__", repr(module))
    try:
        built = module(**kwargs)
    except Exception as exc:
        raise ValueError(
            f"Could not build the module {name!r} with arguments {sorted(kwargs)}: "
            f"{type(exc).__name__}: {exc}. Check the module__ parameters."
        ) from exc
    if not isinstance(built, nn.Module):
        raise ValueError(
            f"The module factory {name!r} returned {type(built).__name__}; "
            "expected a torch.nn.Module."
        )
    return built


def _factory_arguments(module: Any, size: Any, n_outputs: int, params: dict) -> dict:
    """The ``module__*`` parameters, plus what the fit learned of the data
    where the factory's signature names it: ``n_outputs``, ``input_shape``
    (a sample's shape) and, for a 2-D ``X`` only, ``n_features_in``."""
    kwargs = dict(params)
    accepted = _named_arguments(module)
    given: dict[str, Any] = {"n_outputs": n_outputs}
    if isinstance(size, int):
        given.update(n_features_in=size, input_shape=(size,))
    elif "n_features_in" in accepted and "n_features_in" not in kwargs:
        raise ValueError(
            f"The module factory {getattr(module, '__name__', repr(module))!r} takes "
            f"n_features_in, which is defined for a 2-D X only; X is {_size_words(size)}. "
            "Name the argument input_shape to receive the shape of a sample, or pass "
            "module__n_features_in."
        )
    else:
        given["input_shape"] = size
    for key, value in given.items():
        if key in accepted:
            kwargs.setdefault(key, value)
    return kwargs


def _size_words(size: tuple | dict) -> str:
    if isinstance(size, dict):
        return "a dict of arrays " + str({key: (None, *shape) for key, shape in size.items()})
    return f"an array of shape (n_samples, {', '.join(map(str, size))})"


def _named_arguments(factory: Any) -> set[str]:
    """The parameter names that ``factory``'s signature spells out."""
    return set(signature_names(factory))


def signature_names(factory: Any) -> tuple[str, ...]:
    """The parameter names of ``factory``'s signature (none when it has no
    signature to read), read once per class or function: inspecting a
    signature costs tens of microseconds, and every fit asks again."""
    try:
        return _cached_signature_names(factory)
    except TypeError:  # unhashable: read it each time
        return _signature_names(factory)


def _signature_names(factory: Any) -> tuple[str, ...]:
    try:
        return tuple(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        return ()


# Classes and module-level functions live as long as the process; the bound
# keeps instances used as factories from piling up.
_cached_signature_names = functools.lru_cache(maxsize=256)(_signature_names)


def _as_sizes(sizes: Any) -> tuple[int, ...]:
    return (int(sizes),) if isinstance(sizes, int) else tuple(int(s) for s in sizes)


@contextlib.contextmanager
def global_rng_scope(
    seed: int | None, device: torch.device, state: torch.Tensor | None = None
) -> Iterator[None]:
    """Seed torch's global generators with ``seed`` (then set the CPU one to
    ``state`` when resuming) for a fit of a user module, under a process-wide
    lock, and restore them afterwards; with ``seed=None`` (the built-in MLP)
    do nothing."""
    if seed is None:
        yield
        return
    devices = [device.index or 0] if device.type == "cuda" else []
    with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        if state is not None:
            torch.random.set_rng_state(state)
        yield


@contextlib.contextmanager
def dropout_generator(generator: torch.Generator) -> Iterator[None]:
    """Make the built-in dropout draw from ``generator`` in this thread."""
    token = DROPOUT_GENERATOR.set(generator)
    try:
        yield
    finally:
        DROPOUT_GENERATOR.reset(token)


def set_training(module: nn.Module, mode: bool) -> None:
    """``module.train(mode)``. Where no submodule overrides ``train`` or
    ``__setattr__``, each one's ``training`` flag is set here, as that
    method sets it, without its recursion: three times a fit, about 15 us
    each on the built-in MLP (a tenth of a small fit's validation)."""
    modules = list(module.modules())
    if any(
        type(each).train is not _MODULE_TRAIN or type(each).__setattr__ is not _MODULE_SETATTR
        for each in modules
    ):
        module.train(mode)
        return
    for each in modules:
        # Module.__setattr__ stores a value that is no parameter, buffer or
        # module as object.__setattr__ does.
        object.__setattr__(each, "training", mode)


_MODULE_TRAIN = nn.Module.train
_MODULE_SETATTR = nn.Module.__setattr__
