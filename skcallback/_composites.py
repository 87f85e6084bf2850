"""scikit-learn estimators in a model file: pipelines, column transformers,
meta-estimators and their steps, as plain data.

An estimator is stored as its class's import path, its ``get_params``
values and its other attributes (the fitted ones, and private state such as
``set_output``'s configuration): numbers, strings, arrays, lists, dicts and
nested estimators, encoded by ``_saving``'s encoder. Nothing is pickled. On
load the class is built from its parameters and the attributes are set on
it; only the classes of ``ALLOWED`` (and skcallback's estimators) are
imported without being named in ``trusted``.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

#: The scikit-learn classes a model file may name without ``trusted``, by
#: their public import path: steps whose fitted state is arrays and numbers,
#: and the compositions that hold them. Others (trees and neighbors, whose
#: state holds compiled objects; ``SplineTransformer``, whose state holds
#: SciPy splines; searches, whose state holds scorers) are refused at save,
#: or loaded only when trusted.
ALLOWED = (
    "sklearn.pipeline.Pipeline",
    "sklearn.pipeline.FeatureUnion",
    "sklearn.compose.ColumnTransformer",
    "sklearn.compose.TransformedTargetRegressor",
    "sklearn.preprocessing.Binarizer",
    "sklearn.preprocessing.FunctionTransformer",
    "sklearn.preprocessing.LabelBinarizer",
    "sklearn.preprocessing.LabelEncoder",
    "sklearn.preprocessing.MaxAbsScaler",
    "sklearn.preprocessing.MinMaxScaler",
    "sklearn.preprocessing.Normalizer",
    "sklearn.preprocessing.OneHotEncoder",
    "sklearn.preprocessing.OrdinalEncoder",
    "sklearn.preprocessing.PolynomialFeatures",
    "sklearn.preprocessing.PowerTransformer",
    "sklearn.preprocessing.QuantileTransformer",
    "sklearn.preprocessing.RobustScaler",
    "sklearn.preprocessing.StandardScaler",
    "sklearn.preprocessing.TargetEncoder",
    "sklearn.impute.MissingIndicator",
    "sklearn.impute.SimpleImputer",
    "sklearn.feature_selection.SelectFromModel",
    "sklearn.feature_selection.SelectKBest",
    "sklearn.feature_selection.SelectPercentile",
    "sklearn.feature_selection.VarianceThreshold",
    "sklearn.decomposition.IncrementalPCA",
    "sklearn.decomposition.PCA",
    "sklearn.decomposition.TruncatedSVD",
    "sklearn.linear_model.ElasticNet",
    "sklearn.linear_model.Lasso",
    "sklearn.linear_model.LinearRegression",
    "sklearn.linear_model.LogisticRegression",
    "sklearn.linear_model.Ridge",
    "sklearn.linear_model.RidgeCV",
    "sklearn.linear_model.RidgeClassifier",
    "sklearn.dummy.DummyClassifier",
    "sklearn.dummy.DummyRegressor",
    "sklearn.ensemble.StackingClassifier",
    "sklearn.ensemble.StackingRegressor",
    "sklearn.ensemble.VotingClassifier",
    "sklearn.ensemble.VotingRegressor",
)

#: The types a parameter or attribute may name without trust (``dtype=``,
#: ``make_column_selector(dtype_include=np.number)``): NumPy's scalar types
#: and Python's own, which are data types, not code.
_NUMPY_TYPES = (
    *(np.dtype(code).type for code in "?bhilqBHILQefdgFDG"),
    np.generic,
    np.number,
    np.integer,
    np.signedinteger,
    np.unsignedinteger,
    np.floating,
    np.complexfloating,
    np.object_,
    np.str_,
    np.bytes_,
)
TYPES: dict[str, type] = {
    f"{t.__module__}.{t.__qualname__}": t
    for t in (*_NUMPY_TYPES, bool, int, float, complex, str, bytes, object)
}
#: The dtype kinds a ``numpy.dtype`` value may have in a file.
DTYPE_KINDS = "biufcO"
#: Parameters that name a folder the estimator writes to: a file does not
#: decide where a loaded pipeline caches its steps.
PATH_PARAMS = ("memory",)


@functools.cache
def _allowed() -> dict[type, str]:
    """The ``ALLOWED`` classes, imported (scikit-learn moves classes
    between its private modules; the public paths stay)."""
    return {resolve_allowed(path): path for path in ALLOWED}


def resolve_allowed(path: str) -> type:
    """The class of an ``ALLOWED`` path."""
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    if not isinstance(cls, type):
        raise ValueError(f"The file names {path}, which is not a class here.")
    return cls


def allowed_path(cls: type) -> str | None:
    """The public path of an allow-listed class (its subclasses are not)."""
    return _allowed().get(cls)


def check_storable(estimator: Any) -> None:
    """Refuse, at save, what a file must not carry or cannot carry well."""
    from sklearn.model_selection._search import BaseSearchCV

    name = type(estimator).__name__
    if isinstance(estimator, BaseSearchCV):
        raise TypeError(
            f"save() does not store a fitted {name} (its scorers and results are not plain "
            f"data); save the model it selected: skcallback.save(search.best_estimator_, path)."
        )
    params = estimator.get_params(deep=False)
    for key in PATH_PARAMS:
        if params.get(key) is not None:
            raise TypeError(
                f"save() does not store {name}({key}={params[key]!r}): a file does not decide "
                f"where a loaded estimator writes. Set {key}=None before saving."
            )


def node(estimator: Any, encode: Callable[[Any, str], Any]) -> dict[str, Any]:
    """The parameters and the other attributes of a scikit-learn estimator,
    encoded."""
    check_storable(estimator)
    name = type(estimator).__name__
    params = estimator.get_params(deep=False)
    attributes = {key: value for key, value in vars(estimator).items() if key not in params}
    return {
        "params": {
            "__dict__": [
                [key, encode(value, f"the parameter {key!r} of {name}")]
                for key, value in params.items()
            ]
        },
        "fitted": {
            "__dict__": [
                [key, encode(value, f"the attribute {key!r} of {name}")]
                for key, value in attributes.items()
            ]
        },
    }


def build(cls: type, saved: dict[str, Any], decode: Callable[[Any], Any], path: Any) -> Any:
    """A scikit-learn estimator from its ``node``: built from its parameters,
    then given its attributes."""
    params = _names(decode(saved.get("params")), "parameters", path)
    estimator: Any = cls(**params)
    for key in PATH_PARAMS:
        if params.get(key) is not None:
            raise ValueError(
                f"{path} is malformed: it sets {cls.__name__}({key}=...), a folder to write "
                "to; a file does not decide where a loaded estimator writes."
            )
    attributes = _names(decode(saved.get("fitted")), "attributes", path)
    # An attribute that a parameter, a method or a property has the name of
    # would replace it: a file sets fitted state, not behaviour.
    taken = sorted(key for key in attributes if key in params or hasattr(cls, key))
    if taken:
        raise ValueError(
            f"{path} is malformed: it sets attributes of {cls.__name__} that are its "
            f"parameters or methods: {taken}."
        )
    vars(estimator).update(attributes)
    return estimator


def _names(values: Any, what: str, path: Any) -> dict[str, Any]:
    """A dict keyed by attribute names (never a dunder)."""
    if not isinstance(values, dict) or not all(
        isinstance(key, str) and key.isidentifier() and not key.startswith("__") for key in values
    ):
        raise ValueError(f"{path} is malformed: an estimator's {what} are not named values.")
    return values


def column_selector(value: Any, encode: Callable[[Any, str], Any], where: str) -> dict:
    """A ``make_column_selector`` as its three fields (it has no
    ``get_params``)."""
    fields = {key: getattr(value, key) for key in ("pattern", "dtype_include", "dtype_exclude")}
    return {"__column_selector__": encode(fields, where)}


def make_selector(fields: Any, where: Any) -> Any:
    """The ``make_column_selector`` of ``column_selector``'s fields."""
    from sklearn.compose import make_column_selector

    if not isinstance(fields, dict) or not set(fields) <= {
        "pattern",
        "dtype_include",
        "dtype_exclude",
    }:
        raise ValueError(f"{where} is malformed: a column selector's fields.")
    return make_column_selector(**fields)


def object_array(value: np.ndarray, where: str) -> list[Any]:
    """An object array's values as a (nested) list of str, int and float,
    or a TypeError naming what else it holds."""
    items = value.ravel().tolist()
    for item in items:
        if not isinstance(item, str | int | float | np.integer | np.floating):
            raise TypeError(
                f"save() cannot store an object array holding a {type(item).__name__} "
                f"({item!r}) in {where}; object arrays may hold only str, int and float."
            )
    plain = [item if isinstance(item, str | int | float) else item.item() for item in items]
    return np.array(plain, dtype=object).reshape(value.shape).tolist()
