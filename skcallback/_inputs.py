"""The data a user passes to ``fit``, ``predict`` and ``score``, made into
what scikit-learn's validation reads, and its conversion failures said in
our words.

NumPy, torch and narwhals fail on some inputs (text in X, ragged lists,
bfloat16 or sparse tensors, duplicate column names, mixed label types) with
messages that name neither the argument nor what is allowed; those inputs
are converted here where a conversion is plain, and refused by name where
it is not.
"""

from __future__ import annotations

import contextlib
import numbers
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils.validation import assert_all_finite, check_array, column_or_1d

from ._loading import Items

#: NumPy's words for a value that is not a number, and for ragged rows.
_NOT_A_NUMBER = re.compile(r"could not convert string to float: (np\.str_\()?(?P<value>.*?)\)?$")
_NOT_A_SCALAR = re.compile(r"argument must be a string or a (real )?number, not '(?P<type>\w+)'")
_RAGGED = ("setting an array element with a sequence", "inhomogeneous shape")


def host(value: Any) -> Any:
    """A torch tensor as the NumPy array (or, sparse and 2-D, the SciPy CSR
    matrix) the estimators validate and batch; anything else unchanged.

    Validating in NumPy also keeps torch inputs working under
    scikit-learn's ``array_api_dispatch=True`` (whose validation would
    otherwise ask torch for a NumPy dtype). bfloat16 has no NumPy dtype: it
    widens to float32, which holds every bfloat16 value exactly.
    """
    if not isinstance(value, torch.Tensor):
        return value
    tensor = value.detach()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    if tensor.dim() != 2 and tensor.layout != torch.strided:
        tensor = tensor.to_dense()  # SciPy's sparse matrices are 2-D
    if tensor.layout == torch.strided:
        return tensor.cpu().numpy()
    coo = tensor.cpu().to_sparse_coo().coalesce()
    rows, columns = coo.indices().numpy()
    return sp.csr_matrix((coo.values().numpy(), (rows, columns)), shape=tuple(coo.shape))


def check_columns(X: Any, name: str = "X") -> None:
    """Refuse a data frame whose column names repeat (its columns cannot be
    told apart by name, which scikit-learn checks at ``predict``)."""
    columns = getattr(X, "columns", None)
    if columns is None or not hasattr(X, "shape"):
        return
    repeated = sorted(str(c) for c, count in Counter(columns).items() if count > 1)
    if repeated:
        raise ValueError(
            f"{name} has duplicate column names {repeated}; every column of a data frame "
            "must have its own name."
        )


@contextlib.contextmanager
def numeric(name: str = "X") -> Iterator[None]:
    """Say NumPy's failures to make ``name`` a numeric array in our words:
    a value that is not a number, or rows of different lengths."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        message = str(exc)
        found = _NOT_A_NUMBER.search(message)
        if found:
            raise ValueError(
                f"{name} must hold numbers; it holds {found['value']}, which is not one. "
                "Encode text or categories first (e.g. with sklearn.preprocessing."
                "OneHotEncoder or OrdinalEncoder)."
            ) from exc
        found = _NOT_A_SCALAR.search(message)
        if found:
            # A TypeError in words scikit-learn's check_dtype_object knows.
            raise TypeError(
                f"{name} must hold numbers; it holds a {found['type']} (each value goes through "
                "float(), whose argument must be a string or a number)."
            ) from exc
        if any(text in message for text in _RAGGED):
            raise ValueError(
                f"{name} is not a rectangular array of numbers: its rows (nested sequences) "
                "have different lengths, or a value is itself a sequence. For samples of "
                "different lengths (sequences) pass a list of them with "
                "dataloader__collate_fn=skcallback.pad_sequences."
            ) from exc
        raise


def numeric_targets(y: Any) -> Any:
    """Regression targets of text or object dtype as float64 (as
    scikit-learn's ``y_numeric`` makes object targets), failing in our
    words; sparse targets dense; numeric targets unchanged."""
    if sp.issparse(y):
        return y.toarray()  # the targets are dense (one column per target)
    if y is None:
        return y
    with numeric("y"):
        array = np.asarray(y)
        return array.astype(np.float64) if array.dtype.kind in "OUS" else y


def numeric_weights(sample_weight: Any) -> Any:
    """``sample_weight`` of ``score`` as a float64 array (None stays None),
    failing in our words; ``fit`` checks its weights further."""
    if sample_weight is None:
        return None
    with numeric("sample_weight"):
        return np.asarray(host(sample_weight), dtype=np.float64)


def check_label_types(labels: Any, name: str = "y") -> None:
    """Refuse class labels that mix strings, numbers and other objects
    (they cannot be sorted into classes)."""
    if not hasattr(labels, "dtype"):
        return  # a list: NumPy makes it all strings, as scikit-learn does
    array = np.asarray(labels)
    if array.dtype != object:
        return
    types = set(map(type, array.ravel()))  # one pass in C: labels may be many
    if len({_kind(t) for t in types}) > 1:
        found = ", ".join(sorted(t.__name__ for t in types))
        raise ValueError(
            f"{name} mixes label types ({found}); class labels must be all strings or all numbers."
        )


def _kind(type_: type) -> str:
    """'str', 'number' (a bool counts) or 'other'."""
    if issubclass(type_, str):
        return "str"
    return "number" if issubclass(type_, numbers.Number | np.bool_) else "other"


# ----------------------------------------------------------------------
# Inputs that are not one 2-D table: arrays of any rank, dicts of arrays
# ----------------------------------------------------------------------
def mapping_features(X: Mapping, dtype: np.dtype, name: str = "X") -> dict[str, np.ndarray]:
    """A dict of arrays (a ``dict`` or ``SliceDict``) for a multi-input
    module, each validated: floating values (and numbers held as objects)
    as ``dtype``, integers as int64 (indices, for an embedding), booleans
    as they are; all finite, at least one row, one first dimension."""
    if not X:
        raise ValueError(f"{name} is an empty dict; a multi-input X maps names to arrays.")
    features: dict[str, np.ndarray] = {}
    for key, value in X.items():
        if not isinstance(key, str):
            raise ValueError(
                f"{name}'s keys are passed to the module as keyword arguments "
                f"(module(**batch)); {key!r} is not a str."
            )
        label = f"{name}[{key!r}]"
        value = host(value)
        if sp.issparse(value):
            raise ValueError(
                f"{label} is a sparse matrix; the arrays of a dict X are dense (a sparse X "
                "is supported as the only input)."
            )
        with numeric(label):
            array = np.asarray(value)
            if array.ndim == 0:
                raise ValueError(f"{label} is a scalar; it must hold one row per sample.")
            if array.dtype.kind in "biu":
                kind = np.bool_ if array.dtype.kind == "b" else np.int64
                array = check_array(
                    array, dtype=kind, ensure_2d=False, allow_nd=True, input_name=label
                )
            else:
                array = check_array(
                    value, dtype=dtype, ensure_2d=False, allow_nd=True, input_name=label
                )
        features[key] = array
    lengths = {key: len(array) for key, array in features.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"The arrays of {name} must have the same number of rows (one per sample); "
            f"got {lengths}."
        )
    return features


def input_spec(X: Any) -> dict[str, Any] | None:
    """What predict must be given, as plain data: None for a 2-D array or
    sparse matrix (``n_features_in_`` says it); for an array of another
    rank its shape after the first dimension; for a dict each key's shape
    and kind ("float", "int" or "bool")."""
    if isinstance(X, Items):
        return {"kind": "dataset"}
    if isinstance(X, dict):
        fields = {
            key: {"shape": list(array.shape[1:]), "kind": _value_kind(array)}
            for key, array in X.items()
        }
        return {"kind": "dict", "fields": fields}
    if sp.issparse(X) or X.ndim == 2:
        return None
    return {"kind": "array", "shape": list(X.shape[1:])}


def _value_kind(array: np.ndarray) -> str:
    return {"b": "bool", "i": "int", "u": "int"}.get(array.dtype.kind, "float")


def check_input_spec(X: Any, spec: dict[str, Any] | None, n_features: Any, owner: str) -> None:
    """Refuse features unlike those of the fit (``spec``, or a 2-D array of
    ``n_features`` columns when ``spec`` is None), in our words."""
    fitted = _spec_words(spec, n_features)
    width = X.shape[1] if not isinstance(X, dict | Items) and X.ndim == 2 else None
    given = _spec_words(input_spec(X), width)
    if fitted != given:
        raise ValueError(f"X is {given}, but {owner} was fitted on {fitted}.")


def _spec_words(spec: dict[str, Any] | None, n_features: Any) -> str:
    if spec is None:
        return f"a 2-D array of {n_features} features"
    if spec["kind"] == "dataset":
        return "a Dataset (or a list of samples with a dataloader__collate_fn)"
    if spec["kind"] == "array":
        return f"an array of shape (n_samples, {', '.join(map(str, spec['shape']))})"
    fields = ", ".join(
        f"{key!r}: {field['kind']} (n_samples, {', '.join(map(str, field['shape']))})"
        for key, field in sorted(spec["fields"].items())
    )
    return f"a dict of arrays {{{fields}}}"


def targets(y: Any, n_samples: int, *, multi_output: bool = False, y_numeric: bool = False) -> Any:
    """``y`` validated as ``validate_data`` validates it beside a 2-D X, for
    inputs it cannot take (a dict of arrays), with the length checked
    against ``n_samples``."""
    if y is None:
        raise ValueError("y must be given (one target per sample).")
    if multi_output:
        y = check_array(y, accept_sparse="csr", ensure_2d=False, dtype=None, input_name="y")
    else:
        y = column_or_1d(y, warn=True)
        assert_all_finite(y, input_name="y")
    if y_numeric and y.dtype.kind == "O":
        y = y.astype(np.float64)
    if y.shape[0] != n_samples:  # a sparse y (a multi-label indicator matrix) has no len
        raise ValueError(
            f"X has {n_samples} samples but y has {y.shape[0]}; give one target per sample."
        )
    return y
