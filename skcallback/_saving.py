"""``skcallback.save`` and ``skcallback.load``: a whole estimator in a file
that is never unpickled.

The file is a safetensors file: its tensors (module, optimizer and callback
state) are stored as raw data, and everything else (parameters, the fitted
state of ``_fitted_state.encode``) as JSON in its metadata, with a BLAKE2b
checksum over the JSON document and every tensor, verified before anything
is decoded. Classes and functions
are stored by import path; on load, those outside skcallback, scikit-learn,
``torch.nn`` and ``torch.optim`` are imported only when named in
``trusted``.
"""

from __future__ import annotations

import errno
import importlib
import inspect
import json
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch

from . import _composites
from ._files import atomic_write, checksum
from ._fitted_state import adopt, check_state, malformed, rng_from, rng_state
from ._fitted_state import encode as encode_fitted
from ._params import DEVICES, is_device
from ._rebuild import restore
from ._untrusted import text_array

#: The format of a file of skcallback estimators alone (earlier versions
#: read it too).
FORMAT = "skcallback-model-2"
#: The format of a file holding scikit-learn estimators (pipelines).
FORMAT_3 = "skcallback-model-3"
#: The first format: no checksum; loaded with a warning.
_FORMAT_1 = "skcallback-model-1"
#: Import paths that load without being trusted.
TRUSTED_PREFIXES = ("skcallback.", "sklearn.", "torch.nn.", "torch.optim.")
#: skcallback's own functions that a parameter may hold (a user's function
#: is trusted only by name, at load).
#: NumPy's elementwise functions for a ``FunctionTransformer`` or a
#: ``TransformedTargetRegressor``, and scikit-learn's feature scores for
#: ``SelectKBest``, load without trust too.
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
_TAGS = ("__class__", "__function__", "__callback__", "__estimator__")
#: How deep a document may nest; a saved estimator nests far less (its
#: deepest values are callback states, three levels per dict).
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
    when named in ``trusted``, wherever they live; classes of skcallback,
    ``torch.nn`` and ``torch.optim``, and the scikit-learn estimators of the
    allow-list, load without trust.

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
    _check_trust(document, path, {t if isinstance(t, str) else _name(t) for t in trusted})
    _check_version(document, path)
    decode = _Decoder(tensors, path, document["format"])
    try:
        with malformed(path):
            return decode.build(document["class"], document)
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path} is malformed: {exc}") from exc


def _build_neural(cls: Any, saved: dict[str, Any], decode: _Decoder) -> Any:
    """A skcallback estimator from its parameters and checked fitted state."""
    path = decode.path
    params = decode(saved.get("params"))
    if not isinstance(params, dict):
        raise ValueError(f"{path} is malformed: an estimator's parameters are not a dict.")
    estimator = cls(**params)
    if not is_device(estimator.device):
        raise ValueError(
            f"{path} is malformed: its device parameter is {estimator.device!r}, not a device "
            f"({DEVICES})."
        )
    if saved.get("fitted") is not None:
        with malformed(path):
            fitted = decode({k: v for k, v in saved["fitted"].items() if k != "callbacks"})
            callbacks = saved["fitted"].get("callbacks", {})
            fitted["callbacks"] = {name: decode(state) for name, state in callbacks.items()}
            if decode.format == _FORMAT_1:
                fitted = _from_format_1(fitted)
        check_state(fitted, path)
        adopt(estimator, restore(estimator, fitted, _device(estimator, path), path))
    return estimator


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


def _estimator_class(path: str) -> type:
    """The class of a trusted estimator path: an allow-listed one by its
    public path, any other as it was saved."""
    if path in _composites.ALLOWED:
        return _composites.resolve_allowed(path)
    cls: type = _resolve(path, kind="class")
    return cls


def _name(obj: Any) -> str:
    """The import path of a class or function given to ``trusted``."""
    return f"{obj.__module__}.{obj.__qualname__}"


def _from_format_1(fitted: dict[str, Any]) -> dict[str, Any]:
    """A fitted state of the first format in the schema's terms (that format
    named the counts ``n_iter`` and ``n_steps`` and kept arrays as arrays)."""
    fitted["epoch"], fitted["step"] = fitted.pop("n_iter"), fitted.pop("n_steps")
    fitted["rng"] = rng_state(rng_from(fitted["rng"]))
    return fitted


def _device(estimator: Any, path: Any) -> torch.device:
    """Where a loaded model goes: its ``device`` parameter's device, or the
    CPU (with a warning, and ``device="cpu"``) when that is not here."""
    from ._device import resolve_device

    try:
        return resolve_device(estimator.device)
    except ValueError:
        warnings.warn(
            f"{path} was saved for device={estimator.device!r}, which is not available here; "
            "it is loaded on the CPU.",
            RuntimeWarning,
            stacklevel=3,
        )
        estimator.set_params(device="cpu")
        return torch.device("cpu")


class _Encoder:
    """Values as JSON, with tensors moved into ``tensors``; estimators as
    nodes (``estimator``), each stored once and referred to by its number
    (``__ref__``) wherever else it appears."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = tensors
        self.composite = False  # whether a scikit-learn estimator was stored
        self._numbers: dict[int, int] = {}  # id of a stored estimator -> its number
        self._open: set[int] = set()  # ids of the estimators being encoded

    def __call__(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, list):
            return [self(v, where) for v in value]
        if isinstance(value, tuple):
            return {"__tuple__": [self(v, where) for v in value]}
        from sklearn.utils import Bunch

        if isinstance(value, Bunch):
            return {"__bunch__": [[self(k, where), self(v, where)] for k, v in value.items()]}
        if isinstance(value, dict):
            return {"__dict__": [[self(k, where), self(v, where)] for k, v in value.items()]}
        if isinstance(value, torch.Tensor):
            key = f"t{len(self.tensors)}"
            self.tensors[key] = value.detach().cpu().contiguous()
            return {"__tensor__": key}
        if isinstance(value, np.ndarray):
            return self._array(value, where)
        if isinstance(value, slice):
            return {"__slice__": [self(v, where) for v in (value.start, value.stop, value.step)]}
        from sklearn.base import BaseEstimator

        if isinstance(value, BaseEstimator):
            if id(value) in self._numbers:
                return {"__ref__": self._numbers[id(value)]}
            body = self.estimator(value, where)
            return {"__estimator__": body.pop("class"), **body}
        return self._object(value, where)

    def estimator(self, value: Any, where: str) -> dict[str, Any]:
        """A skcallback or scikit-learn estimator as its class, parameters
        and fitted state; it gets the next number."""
        from sklearn.base import BaseEstimator

        from ._base import NeuralEstimatorBase

        if not isinstance(value, BaseEstimator):
            raise TypeError(
                f"save() stores skcallback and scikit-learn estimators, not a "
                f"{type(value).__module__}.{type(value).__qualname__}."
            )
        if id(value) in self._open:
            raise TypeError(f"save() cannot store {where}: an estimator that contains itself.")
        self._open.add(id(value))
        if isinstance(value, NeuralEstimatorBase):
            body = {"class": _path_of(type(value), where), **self._neural(value)}
        else:
            self.composite = True
            path = _composites.allowed_path(type(value)) or _path_of(type(value), where)
            body = {"class": path, **_composites.node(value, self)}
        self._open.discard(id(value))
        self._numbers[id(value)] = len(self._numbers)
        return body

    def _neural(self, estimator: Any) -> dict[str, Any]:
        """A skcallback estimator's parameters and fitted state (the schema
        of ``_fitted_state.encode``)."""
        body = {"params": self(estimator.get_params(deep=False), "the parameters"), "fitted": None}
        if estimator.__sklearn_is_fitted__():
            fitted = encode_fitted(estimator)
            callbacks = {
                name: self(state, f"the state of callback {name!r}")
                for name, state in fitted.pop("callbacks").items()
            }
            body["fitted"] = self(fitted, "the fitted state") | {"callbacks": callbacks}
        return body

    def _array(self, value: np.ndarray, where: str) -> Any:
        """Numbers as a tensor; strings, and objects that are str, int or
        float, as a JSON list."""
        if value.dtype.kind in "biuf":
            return {"__ndarray__": self(torch.from_numpy(value.copy()), where)}
        if value.dtype.kind == "U":
            return {"__array__": value.tolist(), "dtype": str(value.dtype)}
        if value.dtype.kind == "O":
            return {"__array__": _composites.object_array(value, where), "dtype": "object"}
        raise TypeError(
            f"save() cannot store an array of dtype {value.dtype} in {where}; it stores arrays "
            "of numbers, of str, and object arrays of str, int and float."
        )

    def _object(self, value: Any, where: str) -> Any:
        """Any other value the format holds, tagged with its kind."""
        if isinstance(value, torch.device):
            return {"__device__": str(value)}
        if isinstance(value, PurePath):
            return {"__path__": str(value)}
        if isinstance(value, torch.dtype):
            return {"__dtype__": str(value).removeprefix("torch.")}
        if isinstance(value, np.dtype) and value.kind in _composites.DTYPE_KINDS:
            return {"__numpy_dtype__": value.str}
        if isinstance(value, np.random.RandomState):
            return {"__random_state__": self(rng_state(value), where)}
        from sklearn.compose import make_column_selector

        from .callbacks._base import Callback

        if isinstance(value, make_column_selector):
            return _composites.column_selector(value, self, where)
        if isinstance(value, Callback):
            extra = {k: vars(value)[k] for k in ("order", "name") if k in vars(value)}
            params = value.get_params(deep=False)
            extra = {k: v for k, v in extra.items() if k not in params}
            return {
                "__callback__": _path_of(type(value), where),
                "params": self(params, f"{where} (callback {type(value).__name__})"),
                "attributes": self(extra, where),
            }
        if isinstance(value, type) and _name(value) in _composites.TYPES:
            return {"__type__": _name(value)}
        if isinstance(value, type):
            return {"__class__": _path_of(value, where)}
        if inspect.isfunction(value) or inspect.isbuiltin(value) or isinstance(value, np.ufunc):
            return {"__function__": _path_of(value, where)}
        if isinstance(value, torch.nn.Module):
            raise TypeError(
                f"save() cannot store the module instance in {where}; pass its class "
                "(module=MyModule, with module__ parameters) so it can be rebuilt."
            )
        raise TypeError(
            f"save() cannot store a {type(value).__module__}.{type(value).__qualname__} in "
            f"{where}; the format holds numbers, strings, lists, dicts, tensors, arrays, "
            "classes, module-level functions and scikit-learn estimators."
        )


class _Decoder:
    """The inverse of ``_Encoder`` (paths were checked beforehand)."""

    def __init__(
        self, tensors: dict[str, torch.Tensor], path: Any = "The file", format_: str = FORMAT
    ) -> None:
        self.tensors, self.path, self.format = tensors, path, format_
        self.built: list[Any] = []  # the estimators built, by number

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "__tuple__" in value:
            return tuple(self(v) for v in value["__tuple__"])
        if "__dict__" in value:
            return {self(k): self(v) for k, v in value["__dict__"]}
        if "__bunch__" in value:
            from sklearn.utils import Bunch

            return Bunch(**{_key(self(k)): self(v) for k, v in value["__bunch__"]})
        if "__tensor__" in value:
            try:
                return self.tensors[value["__tensor__"]]
            except KeyError:
                raise ValueError(f"The file lacks the tensor {value['__tensor__']!r}.") from None
        if "__ndarray__" in value:
            return self(value["__ndarray__"]).numpy()
        if "__array__" in value:
            return text_array(value["__array__"], value.get("dtype"), "The file")
        if "__estimator__" in value:
            return self.build(value["__estimator__"], value)
        if "__ref__" in value:
            number = value["__ref__"]
            if type(number) is not int or not 0 <= number < len(self.built):
                raise ValueError(f"The file refers to an estimator it has not stored: {number!r}.")
            return self.built[number]
        return self._object(value)

    def build(self, path: str, saved: dict[str, Any]) -> Any:
        """The estimator of a node (or of the document): it gets the next
        number."""
        from sklearn.base import BaseEstimator

        from ._base import NeuralEstimatorBase

        cls = _estimator_class(path)
        if issubclass(cls, NeuralEstimatorBase):
            estimator = _build_neural(cls, saved, self)
        elif issubclass(cls, BaseEstimator):
            estimator = _composites.build(cls, saved, self, self.path)
        else:
            raise ValueError(f"The file names {path}, which is not an estimator.")
        self.built.append(estimator)
        return estimator

    def _object(self, value: dict[str, Any]) -> Any:
        """A value tagged with its kind, other than a container or an array."""
        if "__device__" in value:
            if not is_device(value["__device__"]):
                raise ValueError(f"The file names an unknown device {value['__device__']!r}.")
            return torch.device(value["__device__"])
        if "__path__" in value:
            return Path(value["__path__"])
        if "__dtype__" in value:
            dtype = getattr(torch, str(value["__dtype__"]), None)
            if not isinstance(dtype, torch.dtype):
                raise ValueError(f"The file names an unknown dtype {value['__dtype__']!r}.")
            return dtype
        if "__numpy_dtype__" in value:
            return _numpy_dtype(value["__numpy_dtype__"])
        if "__type__" in value:
            if value["__type__"] not in _composites.TYPES:
                raise ValueError(f"The file names an unknown type {value['__type__']!r}.")
            return _composites.TYPES[value["__type__"]]
        if "__slice__" in value:
            bounds = value["__slice__"]
            if not (isinstance(bounds, list) and len(bounds) == 3):
                raise ValueError("The file holds a malformed slice.")
            if not all(b is None or type(b) is int for b in bounds):
                raise ValueError("The file holds a malformed slice.")
            return slice(*bounds)
        if "__column_selector__" in value:
            return _composites.make_selector(self(value["__column_selector__"]), "The file")
        if "__random_state__" in value:
            return rng_from(self(value["__random_state__"]))
        if "__callback__" in value:
            cls = _resolve(value["__callback__"], kind="callback")
            callback = cls(**self(value["params"]))
            for key, attribute in self(value["attributes"]).items():
                setattr(callback, key, attribute)
            return callback
        if "__class__" in value:
            return _resolve(value["__class__"], kind="class")
        if "__function__" in value:
            return _resolve(value["__function__"], kind="function")
        raise ValueError(f"The file holds a value of unknown kind: {sorted(value)}.")


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise ValueError("The file holds a Bunch with a key that is not a string.")
    return key


def _numpy_dtype(text: Any) -> np.dtype:
    """A NumPy dtype of numbers or objects, from its ``dtype.str``."""
    try:
        dtype = np.dtype(str(text))
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in _composites.DTYPE_KINDS:
        raise ValueError(f"The file names an unknown NumPy dtype {text!r}.")
    return dtype


def _named_paths(document: Any) -> tuple[set[str], set[str], set[str]]:
    """The import paths of the classes, of the functions and of the
    estimators a document names."""
    classes: set[str] = set()
    functions: set[str] = set()
    estimators: set[str] = set()
    kinds = {"__function__": functions, "__estimator__": estimators}
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for tag in _TAGS:
                if tag in value:
                    if not isinstance(value[tag], str):
                        raise ValueError(f"The file names a {tag} that is not a string.")
                    kinds.get(tag, classes).add(value[tag])
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return classes, functions, estimators


def _path_of(obj: Any, where: str = "the file") -> str:
    """The import path a class or function is saved under; a TypeError for
    one that would not import elsewhere."""
    qualname = getattr(obj, "__qualname__", "")
    if "<" in qualname:  # <lambda>, <locals>: not importable
        raise TypeError(
            f"save() cannot store {obj!r}: only module-level classes and functions can be "
            "saved by import path (not lambdas or functions defined inside functions)."
        )
    if obj.__module__ == "__main__":
        kind = "class" if isinstance(obj, type) else "function"
        raise TypeError(
            f"save() cannot store the {kind} {qualname} (in {where}): it is defined in "
            "__main__, the script being run, so the file would not load in any other "
            f"process. Move {qualname} to a module and import it from there; or, for a file "
            "only this script reads, use pickle or joblib."
        )
    return f"{obj.__module__}.{qualname}"


def _resolve(path: str, *, kind: str) -> Any:
    """Import ``module.qualname`` (already checked to be trusted); the object
    found must live there (``sklearn.os.system`` is not sklearn's)."""
    if not isinstance(path, str):
        raise ValueError(f"The file names {path!r}, which is not an import path.")
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            # Any: the walk below may end on any kind of object.
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for name in parts[split:]:
                obj = getattr(obj, name)
        except AttributeError:
            break
        if f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', None)}" != path:
            break  # reached through another module's namespace
        if kind == "function" and not callable(obj):
            break
        if kind in ("class", "callback") and not isinstance(obj, type):
            break
        if kind == "callback":
            from .callbacks._base import Callback

            if not issubclass(obj, Callback):
                break
        return obj
    raise ValueError(f"The file names {path}, which does not import as a {kind} here.")
