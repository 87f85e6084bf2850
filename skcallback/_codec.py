"""Values of a model file as JSON: the encoder and decoder of
``skcallback.save`` and ``skcallback.load``.

Numbers, strings, lists and dicts are JSON; tensors and arrays of numbers
go to the file's tensors; everything else is a tagged dict (``__tuple__``,
``__class__``, ``__estimator__``, ...). Classes and functions are stored by
import path and imported back only after ``_saving`` has checked that the
file names nothing untrusted. An estimator is a node: its class, its
parameters and its fitted state (skcallback's schema, or a scikit-learn
estimator's attributes, ``_composites``).
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import Bunch

from . import _composites
from ._fitted_state import adopt, check_state, malformed, rng_from, rng_state
from ._fitted_state import encode as encode_fitted
from ._params import DEVICES, is_device
from ._rebuild import restore
from ._untrusted import text_array

#: The tags that name an import path.
TAGS = ("__class__", "__function__", "__callback__", "__estimator__")


class Encoder:
    """Values as JSON, with tensors moved into ``tensors``; estimators as
    nodes (``estimator``), each stored once and referred to by its number
    (``__ref__``) wherever else it appears."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = tensors
        self.composite = False  # whether a scikit-learn estimator was stored
        self._numbers: dict[int, int] = {}  # id of a stored estimator -> its number
        self._open: set[int] = set()  # ids of the estimators being encoded
        # Within a scikit-learn estimator, NumPy scalars keep their type and
        # arrays their memory order: its predictions are then identical
        # (BLAS sums in another order for another layout).
        self._faithful = False

    def __call__(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, np.generic):
            if self._faithful and value.dtype.kind in "biuf":
                return {"__scalar__": value.item(), "dtype": value.dtype.str}
            return value.item()
        if isinstance(value, list):
            return [self(v, where) for v in value]
        if isinstance(value, tuple):
            return {"__tuple__": [self(v, where) for v in value]}
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
        if isinstance(value, BaseEstimator):
            if id(value) in self._numbers:
                return {"__ref__": self._numbers[id(value)]}
            body = self.estimator(value, where)
            return {"__estimator__": body.pop("class"), **body}
        return self._object(value, where)

    def estimator(self, value: Any, where: str) -> dict[str, Any]:
        """A skcallback or scikit-learn estimator as its class, parameters
        and fitted state; it gets the next number."""
        from ._base import NeuralEstimatorBase

        if not isinstance(value, BaseEstimator):
            raise TypeError(
                f"save() stores skcallback and scikit-learn estimators, not a "
                f"{type(value).__module__}.{type(value).__qualname__}."
            )
        if id(value) in self._open:
            raise TypeError(f"save() cannot store {where}: an estimator that contains itself.")
        self._open.add(id(value))
        faithful, self._faithful = self._faithful, not isinstance(value, NeuralEstimatorBase)
        if isinstance(value, NeuralEstimatorBase):
            body = {"class": path_of(type(value), where), **self._neural(value)}
        else:
            self.composite = True
            path = _composites.allowed_path(type(value)) or path_of(type(value), where)
            body = {"class": path, **_composites.node(value, self)}
        self._open.discard(id(value))
        self._faithful = faithful
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
            fortran = (
                self._faithful
                and value.ndim > 1
                and not value.flags.c_contiguous
                and value.strides[0] < value.strides[-1]
            )
            stored = {
                "__ndarray__": self(torch.from_numpy((value.T if fortran else value).copy()), where)
            }
            return stored | {"order": "F"} if fortran else stored
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
        if _is_remainder_columns(value):
            return {
                "__remainder_columns__": self(list(value.data), where),
                "future_dtype": value.future_dtype,
            }
        if isinstance(value, Callback):
            extra = {k: vars(value)[k] for k in ("order", "name") if k in vars(value)}
            params = value.get_params(deep=False)
            extra = {k: v for k, v in extra.items() if k not in params}
            return {
                "__callback__": path_of(type(value), where),
                "params": self(params, f"{where} (callback {type(value).__name__})"),
                "attributes": self(extra, where),
            }
        if isinstance(value, type) and name_of(value) in _composites.TYPES:
            return {"__type__": name_of(value)}
        if isinstance(value, type):
            return {"__class__": path_of(value, where)}
        if inspect.isfunction(value) or inspect.isbuiltin(value) or isinstance(value, np.ufunc):
            return {"__function__": path_of(value, where)}
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


class Decoder:
    """The inverse of ``Encoder`` (paths were checked beforehand)."""

    def __init__(
        self, tensors: dict[str, torch.Tensor], path: Any = "The file", first_format: bool = False
    ) -> None:
        self.tensors, self.path, self.first_format = tensors, path, first_format
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
            return Bunch(**{_key(self(k)): self(v) for k, v in value["__bunch__"]})
        if "__tensor__" in value:
            try:
                return self.tensors[value["__tensor__"]]
            except KeyError:
                raise ValueError(f"The file lacks the tensor {value['__tensor__']!r}.") from None
        if "__ndarray__" in value:
            array = self(value["__ndarray__"]).numpy()
            return array.T if value.get("order") == "F" else array
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
        from ._base import NeuralEstimatorBase

        cls = estimator_class(path)
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
        if "__scalar__" in value:
            dtype = _numpy_dtype(value.get("dtype"))
            if dtype.kind not in "biuf" or type(value["__scalar__"]) not in (bool, int, float):
                raise ValueError(f"The file holds a malformed NumPy scalar {value!r}.")
            return dtype.type(value["__scalar__"])
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
        if "__remainder_columns__" in value:
            columns = self(value["__remainder_columns__"])
            return _remainder_columns(columns, value.get("future_dtype"))
        if "__random_state__" in value:
            return rng_from(self(value["__random_state__"]))
        if "__callback__" in value:
            cls = resolve(value["__callback__"], kind="callback")
            callback = cls(**self(value["params"]))
            for key, attribute in self(value["attributes"]).items():
                setattr(callback, key, attribute)
            return callback
        if "__class__" in value:
            return resolve(value["__class__"], kind="class")
        if "__function__" in value:
            return resolve(value["__function__"], kind="function")
        raise ValueError(f"The file holds a value of unknown kind: {sorted(value)}.")


def _is_remainder_columns(value: Any) -> bool:
    """Whether ``value`` is the list of remainder columns scikit-learn before
    1.7 keeps in a fitted ColumnTransformer (a ``UserList`` that warns)."""
    cls = type(value)
    return cls.__name__ == "_RemainderColsList" and cls.__module__.startswith("sklearn.")


def _remainder_columns(columns: Any, future_dtype: Any) -> Any:
    """The remainder columns as the scikit-learn here keeps them: its warning
    list where it has one, else the plain list."""
    if not isinstance(columns, list) or future_dtype not in (None, "str", "bool"):
        raise ValueError("The file holds malformed remainder columns.")
    from sklearn.compose import _column_transformer

    cls = getattr(_column_transformer, "_RemainderColsList", None)
    return columns if cls is None else cls(columns, future_dtype=future_dtype)


def module_of(obj: Any) -> Any:
    """``obj.__module__``; for a NumPy ufunc without one (NumPy before 2.1),
    ``"numpy"`` where NumPy exports it under its name."""
    module = getattr(obj, "__module__", None)
    if module is None and _numpy_ufunc(obj):
        return "numpy"
    return module


def qualname_of(obj: Any) -> Any:
    """``obj.__qualname__``; a NumPy ufunc's name where it has none (NumPy
    before 2.1)."""
    qualname = getattr(obj, "__qualname__", None)
    if qualname is None and _numpy_ufunc(obj):
        return obj.__name__
    return qualname


def _numpy_ufunc(obj: Any) -> bool:
    return isinstance(obj, np.ufunc) and getattr(np, obj.__name__, None) is obj


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


def named_paths(document: Any) -> tuple[set[str], set[str], set[str]]:
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
            for tag in TAGS:
                if tag in value:
                    if not isinstance(value[tag], str):
                        raise ValueError(f"The file names a {tag} that is not a string.")
                    kinds.get(tag, classes).add(value[tag])
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return classes, functions, estimators


def path_of(obj: Any, where: str = "the saved object") -> str:
    """The import path a class or function is saved under; a TypeError for
    one that would not import elsewhere."""
    qualname = qualname_of(obj) or ""
    if "<" in qualname:  # <lambda>, <locals>: not importable
        raise TypeError(
            f"save() cannot store {obj!r}: only module-level classes and functions can be "
            "saved by import path (not lambdas or functions defined inside functions)."
        )
    if module_of(obj) == "__main__":
        kind = "class" if isinstance(obj, type) else "function"
        raise TypeError(
            f"save() cannot store the {kind} {qualname} (in {where}): it is defined in "
            "__main__, the script being run, so the file would not load in any other "
            f"process. Move {qualname} to a module and import it from there; or, for a file "
            "only this script reads, use pickle or joblib."
        )
    return f"{module_of(obj)}.{qualname}"


def resolve(path: str, *, kind: str) -> Any:
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
        if f"{module_of(obj)}.{qualname_of(obj)}" != path:
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


def _build_neural(cls: Any, saved: dict[str, Any], decode: Decoder) -> Any:
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
            if decode.first_format:
                fitted = _from_format_1(fitted)
        check_state(fitted, path)
        adopt(estimator, restore(estimator, fitted, _device(estimator, path), path))
    return estimator


def estimator_class(path: str) -> type:
    """The class of a trusted estimator path: an allow-listed one by its
    public path, any other as it was saved."""
    if path in _composites.ALLOWED:
        return _composites.resolve_allowed(path)
    cls: type = resolve(path, kind="class")
    return cls


def name_of(obj: Any) -> str:
    """The import path of a class or function given to ``trusted``."""
    return f"{module_of(obj)}.{qualname_of(obj)}"


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
