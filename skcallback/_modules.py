"""The built-in MLP and the construction of user modules."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from typing import Any

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


class MLP(nn.Module):
    """A multi-layer perceptron: ``Linear`` layers with an activation (and
    dropout) between them; no hidden layers gives a linear model.

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
    """

    def __init__(
        self,
        n_features_in: int,
        n_outputs: int,
        hidden_layer_sizes: Sequence[int] = (100,),
        activation: str | type[nn.Module] = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        make_activation = ACTIVATIONS[activation] if isinstance(activation, str) else activation
        layers: list[nn.Module] = []
        width = n_features_in
        for size in hidden_layer_sizes:
            layers += [nn.Linear(width, size), make_activation()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, n_outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        return self.layers(X)


def build_module(estimator: Any, n_features_in: int, n_outputs: int, params: dict) -> nn.Module:
    """The module of a fit, from the estimator's ``module`` parameter."""
    module = estimator.module
    if module is None:
        return MLP(
            n_features_in,
            n_outputs,
            hidden_layer_sizes=_as_sizes(estimator.hidden_layer_sizes),
            activation=estimator.activation,
            dropout=estimator.dropout,
        )
    if isinstance(module, nn.Module):
        if params:
            raise ValueError(
                f"module__ parameters {sorted(params)} cannot apply to a module instance; "
                "pass the module class (or a factory) to have them used."
            )
        return copy.deepcopy(module)
    kwargs = dict(params)
    accepted = _named_arguments(module)
    for key, value in (("n_features_in", n_features_in), ("n_outputs", n_outputs)):
        if key in accepted:
            kwargs.setdefault(key, value)
    try:
        built = module(**kwargs)
    except TypeError as exc:
        raise TypeError(
            f"Could not build the module {getattr(module, '__name__', module)!r} with "
            f"arguments {sorted(kwargs)}: {exc}. Check the module__ parameters."
        ) from exc
    if not isinstance(built, nn.Module):
        raise TypeError(
            f"The module factory {module!r} returned {type(built).__name__}; "
            "expected a torch.nn.Module."
        )
    return built


def _named_arguments(factory: Any) -> set[str]:
    """The parameter names that ``factory``'s signature spells out."""
    try:
        return set(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        return set()


def _as_sizes(sizes: Any) -> tuple[int, ...]:
    return (int(sizes),) if isinstance(sizes, int) else tuple(int(s) for s in sizes)
