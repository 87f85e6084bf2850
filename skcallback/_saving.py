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
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch

from ._files import atomic_write, checksum
from ._fitted_state import adopt, check_state, malformed, rng_from, rng_state
from ._fitted_state import encode as encode_fitted
from ._params import DEVICES, is_device
from ._rebuild import restore
from ._untrusted import text_array

FORMAT = "skcallback-model-2"
#: The first format: no checksum; loaded with a warning.
_FORMAT_1 = "skcallback-model-1"
#: Import paths that load without being trusted.
TRUSTED_PREFIXES = ("skcallback.", "sklearn.", "torch.nn.", "torch.optim.")
#: skcallback's own functions that a parameter may hold (a user's function
#: is trusted only by name, at load).
TRUSTED_FUNCTIONS = frozenset({"skcallback._loading.pad_sequences"})
_TAGS = ("__class__", "__function__", "__callback__")
#: How deep a document may nest; a saved estimator nests far less (its
#: deepest values are callback states, three levels per dict).
MAX_DEPTH = 100


def save(estimator: Any, path: str | os.PathLike) -> Path:
    """Save an estimator (fitted or not) to ``path``, without pickle.

    Parameters
    ----------
    estimator : NeuralRegressor or NeuralClassifier
    path : str or path-like
        The file to write (atomically).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    TypeError
        If a parameter or a callback's state holds a value the format cannot
        store: a lambda or a nested function, a module instance, or an
        object of another type. The message names it.

    Functions (a LambdaCallback's hooks, a module factory) are imported only
    when named in ``trusted``, wherever they live; classes of skcallback,
    scikit-learn, ``torch.nn`` and ``torch.optim`` load without trust.

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
    from safetensors.torch import save as safetensors_bytes

    tensors: dict[str, torch.Tensor] = {}
    encode = _Encoder(tensors)
    document: dict[str, Any] = {
        "format": FORMAT,
        "class": _path_of(type(estimator)),
        "params": encode(estimator.get_params(deep=False), "the parameters"),
        "fitted": None,
    }
    if estimator.__sklearn_is_fitted__():
        fitted = encode_fitted(estimator)
        callbacks = {
            name: encode(state, f"the state of callback {name!r}")
            for name, state in fitted.pop("callbacks").items()
        }
        document["fitted"] = encode(fitted, "the fitted state") | {"callbacks": callbacks}
    text = json.dumps(document)
    metadata = {"skcallback": text, "skcallback-checksum": _checksum(text, tensors)}
    return atomic_write(safetensors_bytes(tensors, metadata=metadata), path, "the model file")


def load(path: str | os.PathLike, *, trusted: tuple[str, ...] | list[str] = ()) -> Any:
    """Load an estimator saved by [`save`][skcallback.save]; nothing is unpickled.

    Parameters
    ----------
    path : str or path-like
    trusted : sequence of str, default=()
        Import paths (``"mypackage.MyModule"``) of the classes outside
        skcallback, scikit-learn, ``torch.nn`` and ``torch.optim``, and of
        every function, that the file may name (a custom module class, a
        function of a LambdaCallback, a custom callback class).

    Returns
    -------
    NeuralRegressor or NeuralClassifier

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

    Notes
    -----
    The parameters are the saved ones, callbacks' file paths included:
    ``predict`` writes nothing, but fitting a loaded estimator writes where
    its ``Checkpoint`` or ``CSVLogger`` say. Look at ``est.get_params()``
    before fitting a model from a source you do not trust.
    """
    document, tensors = _read(path)
    cls = _estimator_class(document, path, trusted)
    decode = _Decoder(tensors)
    with malformed(path):
        try:
            params = decode(document["params"])
        except ValueError as exc:
            raise ValueError(f"{path} is malformed: {exc}") from exc
        estimator = cls(**params)
    if not is_device(estimator.device):
        raise ValueError(
            f"{path} is malformed: its device parameter is {estimator.device!r}, not a device "
            f"({DEVICES})."
        )
    if document.get("fitted") is not None:
        with malformed(path):
            fitted = decode({k: v for k, v in document["fitted"].items() if k != "callbacks"})
            callbacks = document["fitted"].get("callbacks", {})
            fitted["callbacks"] = {name: decode(state) for name, state in callbacks.items()}
            if document["format"] == _FORMAT_1:
                fitted = _from_format_1(fitted)
        check_state(fitted, path)
        adopt(estimator, restore(estimator, fitted, _device(estimator, path), path))
    return estimator


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
    if format_ not in (FORMAT, _FORMAT_1):
        raise ValueError(f"{path} is not an skcallback model file of format {FORMAT!r}.")
    if saved is None and format_ == FORMAT:
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


def _estimator_class(document: dict[str, Any], path: Any, trusted: Any) -> Any:
    """The estimator class a document names, once every class and function it
    names is trusted (nothing is imported before)."""
    classes, functions = _named_paths(document)
    classes.add(document["class"])
    # A function runs when the estimator uses it: functions always need trust.
    untrusted = sorted(
        {p for p in classes if not p.startswith(TRUSTED_PREFIXES) and p not in trusted}
        | {p for p in functions if p not in trusted and p not in TRUSTED_FUNCTIONS}
    )
    if untrusted:
        raise ValueError(
            f"{path} names classes or functions that are not trusted: {untrusted}. Load it with "
            f"skcallback.load(path, trusted={untrusted!r}) if you trust where the file comes "
            "from: loading imports them and may run their code."
        )
    cls = _resolve(document["class"], kind="class")
    from ._base import NeuralEstimatorBase

    if not (isinstance(cls, type) and issubclass(cls, NeuralEstimatorBase)):
        raise ValueError(f"{path} names {document['class']}, which is not an skcallback estimator.")
    return cls


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
    """Values as JSON, with tensors moved into ``tensors``."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = tensors

    def __call__(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, list):
            return [self(v, where) for v in value]
        if isinstance(value, tuple):
            return {"__tuple__": [self(v, where) for v in value]}
        if isinstance(value, dict):
            return {"__dict__": [[self(k, where), self(v, where)] for k, v in value.items()]}
        if isinstance(value, torch.Tensor):
            key = f"t{len(self.tensors)}"
            self.tensors[key] = value.detach().cpu().contiguous()
            return {"__tensor__": key}
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "biuf":
                return {"__ndarray__": self(torch.from_numpy(value.copy()), where)}
            return {"__array__": value.tolist(), "dtype": str(value.dtype)}
        if isinstance(value, torch.device):
            return {"__device__": str(value)}
        if isinstance(value, PurePath):
            return {"__path__": str(value)}
        if isinstance(value, torch.dtype):
            return {"__dtype__": str(value).removeprefix("torch.")}
        if isinstance(value, np.random.RandomState):
            return {"__random_state__": self(rng_state(value), where)}
        from .callbacks._base import Callback

        if isinstance(value, Callback):
            extra = {k: vars(value)[k] for k in ("order", "name") if k in vars(value)}
            params = value.get_params(deep=False)
            extra = {k: v for k, v in extra.items() if k not in params}
            return {
                "__callback__": _path_of(type(value)),
                "params": self(params, f"{where} (callback {type(value).__name__})"),
                "attributes": self(extra, where),
            }
        if isinstance(value, type):
            return {"__class__": _path_of(value)}
        if inspect.isfunction(value) or inspect.isbuiltin(value):
            return {"__function__": _path_of(value)}
        if isinstance(value, torch.nn.Module):
            raise TypeError(
                f"save() cannot store the module instance in {where}; pass its class "
                "(module=MyModule, with module__ parameters) so it can be rebuilt."
            )
        raise TypeError(
            f"save() cannot store a {type(value).__module__}.{type(value).__qualname__} in "
            f"{where}; the format holds numbers, strings, lists, dicts, tensors, arrays, "
            "classes and module-level functions."
        )


class _Decoder:
    """The inverse of ``_Encoder`` (paths were checked beforehand)."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = tensors

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "__tuple__" in value:
            return tuple(self(v) for v in value["__tuple__"])
        if "__dict__" in value:
            return {self(k): self(v) for k, v in value["__dict__"]}
        if "__tensor__" in value:
            try:
                return self.tensors[value["__tensor__"]]
            except KeyError:
                raise ValueError(f"The file lacks the tensor {value['__tensor__']!r}.") from None
        if "__ndarray__" in value:
            return self(value["__ndarray__"]).numpy()
        if "__array__" in value:
            return text_array(value["__array__"], value.get("dtype"), "The file")
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


def _named_paths(document: Any) -> tuple[set[str], set[str]]:
    """The import paths of classes and of functions a document names."""
    classes: set[str] = set()
    functions: set[str] = set()
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for tag in _TAGS:
                if tag in value:
                    if not isinstance(value[tag], str):
                        raise ValueError(f"The file names a {tag} that is not a string.")
                    (functions if tag == "__function__" else classes).add(value[tag])
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return classes, functions


def _path_of(obj: Any) -> str:
    qualname = getattr(obj, "__qualname__", "")
    if "<" in qualname:  # <lambda>, <locals>: not importable
        raise TypeError(
            f"save() cannot store {obj!r}: only module-level classes and functions can be "
            "saved by import path (not lambdas or functions defined inside functions)."
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
