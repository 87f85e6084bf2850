"""``skcallback.save`` and ``skcallback.load``: a whole estimator in a file
that is never unpickled.

The file is a safetensors file: its tensors (module, optimizer and callback
state) are stored as raw data, and everything else (parameters, the fitted
state of ``_fitted_state.encode``) as JSON in its metadata, with a BLAKE2b
checksum over the JSON document and every tensor, verified before anything
is decoded. Classes and functions are stored by import path (``_codec``);
on load, those outside skcallback, scikit-learn, ``torch.nn`` and
``torch.optim``, every function but ``TRUSTED_FUNCTIONS``, and every
estimator class but skcallback's and the scikit-learn allow-list's
(``_composites.ALLOWED``), are imported only when named in ``trusted``.

A file of skcallback estimators alone is of ``FORMAT``, which earlier
versions read; a file holding scikit-learn estimators (a pipeline) is of
``FORMAT_3`` and records the scikit-learn version that saved it.
"""

from __future__ import annotations

import errno
import json
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from . import _composites
from ._codec import Decoder as _Decoder
from ._codec import Encoder as _Encoder
from ._codec import name_of
from ._codec import named_paths as _named_paths
from ._files import atomic_write, checksum
from ._fitted_state import malformed

#: The format of a file of skcallback estimators alone (earlier versions
#: read it too).
FORMAT = "skcallback-model-2"
#: The format of a file holding scikit-learn estimators (pipelines).
FORMAT_3 = "skcallback-model-3"
#: The first format: no checksum; loaded with a warning.
_FORMAT_1 = "skcallback-model-1"
#: Import paths that load without being trusted.
TRUSTED_PREFIXES = ("skcallback.", "sklearn.", "torch.nn.", "torch.optim.")
#: The functions a parameter may hold that load without trust (a user's
#: function is trusted only by name, at load): skcallback's own, NumPy's
#: elementwise functions for a ``FunctionTransformer`` or a
#: ``TransformedTargetRegressor``, scikit-learn's feature scores for
#: ``SelectKBest``.
TRUSTED_FUNCTIONS = frozenset(
    {
        "skcallback._loading.pad_sequences",
        *(
            f"numpy.{name}"
            for name in ("log", "log1p", "log2", "log10", "exp", "expm1", "sqrt", "square")
        ),
        *(
            f"sklearn.feature_selection._univariate_selection.{name}"
            for name in ("f_classif", "f_regression", "chi2", "r_regression")
        ),
    }
)
#: How deep a document may nest; a saved estimator nests far less (its
#: deepest values are callback states, three levels per dict; a pipeline
#: adds about eight per level of composition).
MAX_DEPTH = 100


def save(estimator: Any, path: str | os.PathLike) -> Path:
    """Save an estimator (fitted or not) to ``path``, without pickle.

    Parameters
    ----------
    estimator : NeuralRegressor, NeuralClassifier or scikit-learn estimator
        A skcallback estimator, or a scikit-learn ``Pipeline``,
        ``ColumnTransformer``, ``FeatureUnion`` or meta-estimator whose
        steps are scikit-learn or skcallback estimators.
    path : str or path-like
        The file to write (atomically).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    TypeError
        If a parameter, an attribute or a callback's state holds a value the
        format cannot store: a lambda or a nested function, a class or
        function defined in ``__main__``, a module instance, or an object of
        another type. The message names it.

    Functions (a LambdaCallback's hooks, a module factory) are imported only
    when named in ``trusted``, wherever they live (but a few of NumPy's and
    scikit-learn's, ``TRUSTED_FUNCTIONS``). Classes given as parameters load
    without trust from skcallback, scikit-learn, ``torch.nn`` and
    ``torch.optim``; estimators are built without trust when they are
    skcallback's or of the scikit-learn allow-list (see "Saving a whole
    pipeline" in the persistence guide).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> import skcallback
    >>> from skcallback import NeuralRegressor
    >>> X = np.random.RandomState(0).normal(size=(50, 3)); y = X.sum(axis=1)
    >>> est = NeuralRegressor(max_epochs=2, random_state=0).fit(X, y)
    >>> path = skcallback.save(est, os.path.join(tempfile.mkdtemp(), "model.skc"))
    >>> np.array_equal(skcallback.load(path).predict(X), est.predict(X))
    True
    """
    import sklearn
    from safetensors.torch import save as safetensors_bytes

    tensors: dict[str, torch.Tensor] = {}
    encode = _Encoder(tensors)
    body = encode.estimator(estimator, "the saved object")
    # A file of skcallback estimators alone keeps the format earlier
    # versions read; scikit-learn objects need the newer one.
    document: dict[str, Any] = {"format": FORMAT_3 if encode.composite else FORMAT, **body}
    if encode.composite:
        document["sklearn"] = sklearn.__version__
    text = json.dumps(document)
    metadata = {"skcallback": text, "skcallback-checksum": _checksum(text, tensors)}
    return atomic_write(safetensors_bytes(tensors, metadata=metadata), path, "the model file")


def load(path: str | os.PathLike, *, trusted: Iterable[str | type | Callable] = ()) -> Any:
    """Load an estimator saved by [`save`][skcallback.save]; nothing is unpickled.

    Parameters
    ----------
    path : str or path-like
    trusted : sequence of str, classes or functions, default=()
        The classes outside skcallback, ``torch.nn``, ``torch.optim`` and the
        scikit-learn allow-list, and every function, that the file may name
        (a custom module class, a function of a LambdaCallback, a custom
        callback class, your own transformer), by import path
        (``"mypackage.MyModule"``) or as the objects themselves.

    Returns
    -------
    NeuralRegressor, NeuralClassifier or scikit-learn estimator

    Raises
    ------
    ValueError
        If the file is corrupt (its checksum), not an skcallback model, or
        names classes or functions that are not trusted (all of them are
        listed); nothing has been imported then.

    Warns
    -----
    UserWarning
        For a file of the first format (``"skcallback-model-1"``), which has
        no checksum: it loads unchecked; save it again to add one.
    sklearn.exceptions.InconsistentVersionWarning
        For scikit-learn objects saved with another scikit-learn version.

    Notes
    -----
    The parameters are the saved ones, callbacks' file paths included:
    ``predict`` writes nothing, but fitting a loaded estimator writes where
    its ``Checkpoint`` or ``CSVLogger`` say. Look at ``est.get_params()``
    before fitting a model from a source you do not trust.
    """
    document, tensors = _read(path)
    _check_trust(document, path, {t if isinstance(t, str) else name_of(t) for t in trusted})
    _check_version(document, path)
    decode = _Decoder(tensors, path, first_format=document["format"] == _FORMAT_1)
    try:
        with malformed(path):
            return decode.build(document["class"], document)
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path} is malformed: {exc}") from exc


def _check_version(document: dict[str, Any], path: Any) -> None:
    """Warn, as scikit-learn's unpickling does, when the file's scikit-learn
    objects come from another scikit-learn version."""
    import sklearn
    from sklearn.exceptions import InconsistentVersionWarning

    saved = document.get("sklearn")
    if document["format"] == FORMAT_3 and saved != sklearn.__version__:
        warnings.warn(
            InconsistentVersionWarning(
                estimator_name=f"{document['class']} in {path}",
                original_sklearn_version=str(saved),
                current_sklearn_version=sklearn.__version__,
            ),
            stacklevel=3,
        )


def _read(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The document and the tensors of a model file whose checksum holds,
    checked to name a format and an estimator class; nothing is decoded."""
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    if not Path(path).is_file():
        raise FileNotFoundError(errno.ENOENT, f"No model file {str(path)!r}", str(path))
    try:
        with safe_open(str(path), framework="pt", device="cpu") as file:
            metadata = file.metadata() or {}
            tensors = {key: file.get_tensor(key) for key in file.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as exc:
        raise ValueError(f"{path} is not a readable skcallback model file: {exc}") from exc
    text, saved = metadata.get("skcallback"), metadata.get("skcallback-checksum")
    if text is None:
        raise ValueError(f"{path} is not an skcallback model file (no model metadata).")
    if saved is not None and saved != _checksum(text, tensors):
        raise ValueError(f"{path} is corrupt: its checksum does not match its contents.")
    document = _parse(text, path)
    format_ = document.get("format") if isinstance(document, dict) else None
    if format_ not in (FORMAT, FORMAT_3, _FORMAT_1):
        raise ValueError(f"{path} is not an skcallback model file of format {FORMAT_3!r}.")
    if saved is None and format_ != _FORMAT_1:
        raise ValueError(f"{path} is corrupt: it lacks its checksum.")
    if saved is None:
        warnings.warn(
            f"{path} is of the first skcallback model format, which has no checksum: it is "
            "loaded unchecked. Save it again (skcallback.save(skcallback.load(path), path)) "
            "to add one.",
            UserWarning,
            stacklevel=3,
        )
    if not isinstance(document.get("class"), str):
        raise ValueError(f"{path} is malformed: it names no estimator class.")
    return document, tensors


def _parse(text: str, path: Any) -> Any:
    """The JSON document of a model file, refused when it nests deeper than
    ``MAX_DEPTH`` (every later step walks it, and Python's recursion would
    fail on it first)."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not an skcallback model file (no model metadata).") from exc
    except RecursionError:
        document = None  # nested past what the parser can read: deeper still
    if document is None or _depth(document) > MAX_DEPTH:
        raise ValueError(
            f"{path} is malformed: its document nests deeper than {MAX_DEPTH} levels."
        ) from None
    return document


def _depth(document: Any) -> int:
    """How deep lists and dicts nest in ``document`` (counted without
    recursion, and no further than just past ``MAX_DEPTH``)."""
    deepest, stack = 0, [(document, 1)]
    while stack and deepest <= MAX_DEPTH:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _checksum(text: str, tensors: dict[str, torch.Tensor]) -> str:
    """The checksum of a model file: its document and every tensor (name,
    dtype, shape and bytes)."""
    parts = [text.encode()]
    for key in sorted(tensors):
        tensor = tensors[key].detach().cpu().contiguous()
        parts.append(f"\n{key}:{tensor.dtype}:{tuple(tensor.shape)}\n".encode())
        if tensor.numel():  # an empty tensor has no bytes (and no byte view)
            parts.append(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return checksum(*parts).hex()


def _check_trust(document: dict[str, Any], path: Any, trusted: set[str]) -> None:
    """Raise a ValueError listing every class and function the document
    names that is not trusted (nothing is imported before)."""
    classes, functions, estimators = _named_paths(document)
    estimators.add(document["class"])
    # A function runs when the estimator uses it: functions always need trust.
    untrusted = sorted(
        {p for p in classes if not p.startswith(TRUSTED_PREFIXES) and p not in trusted}
        | {p for p in functions if p not in trusted and p not in TRUSTED_FUNCTIONS}
        | {p for p in estimators if not _trusted_estimator(p) and p not in trusted}
    )
    if untrusted:
        raise ValueError(
            f"{path} names classes or functions that are not trusted: {untrusted}. Load it with "
            f"skcallback.load(path, trusted={untrusted!r}) if you trust where the file comes "
            "from: loading imports them and may run their code."
        )


def _trusted_estimator(path: str) -> bool:
    """Whether an estimator class loads without trust: skcallback's, and the
    scikit-learn classes of the allow-list (built from data, never run)."""
    return path.startswith("skcallback.") or path in _composites.ALLOWED
