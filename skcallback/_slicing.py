"""Containers that scikit-learn can index by rows: ``SliceDict`` (several
named arrays, for a multi-input module) and ``SliceDataset`` (one field of
a torch Dataset's items).

scikit-learn's splitters and searches select samples with
``_safe_indexing``, which indexes anything with a ``shape`` as an array
(``X[indices]``) and counts samples by ``shape[0]``; both containers answer
to that, so they go through ``train_test_split``, ``cross_val_score``,
``GridSearchCV`` (in worker processes too: they pickle) and ``Pipeline``
steps that pass ``X`` through.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np


class SliceDict(dict):
    """A dict of arrays with one first dimension, indexable by rows.

    ``X["name"]`` is an array; ``X[rows]`` (an integer, a slice, an array of
    indices or a boolean mask) is a ``SliceDict`` of those rows of every
    array. A multi-input module receives a batch as keyword arguments,
    ``module(**batch)``.

    Parameters
    ----------
    **arrays : array-like
        Arrays (NumPy, torch, lists) of the same length.

    Raises
    ------
    ValueError
        If there is no array, or their lengths differ.

    Examples
    --------
    >>> import numpy as np
    >>> from skcallback import SliceDict
    >>> X = SliceDict(numbers=np.zeros((4, 3)), category=np.arange(4))
    >>> X.shape, X[1:3]["category"].tolist()
    ((4,), [1, 2])
    """

    def __init__(self, **arrays: Any) -> None:
        if not arrays:
            raise ValueError("SliceDict needs at least one array, passed by name.")
        lengths = {key: _length(value) for key, value in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(
                f"The arrays of a SliceDict must have the same length (one row per sample); "
                f"got {lengths}."
            )
        super().__init__(**arrays)
        self._len = next(iter(lengths.values()))

    @property
    def shape(self) -> tuple[int]:
        """``(n_samples,)``: how scikit-learn counts the samples."""
        return (self._len,)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(key)
        if isinstance(key, numbers.Integral):
            key = slice(key, key + 1 or None)  # one row, kept as a row
        return SliceDict(**{name: _select(value, key) for name, value in self.items()})

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"SliceDict keys are names (str); got {key!r}.")
        if _length(value) != self._len:
            raise ValueError(
                f"SliceDict[{key!r}] must have {self._len} rows, as the other arrays; "
                f"it has {_length(value)}."
            )
        super().__setitem__(key, value)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def copy(self) -> SliceDict:
        return SliceDict(**self)

    def __repr__(self) -> str:
        return f"SliceDict(**{dict.__repr__(self)})"

    def __reduce__(self) -> tuple:
        return (_slice_dict, (dict(self),))


def _slice_dict(arrays: dict[str, Any]) -> SliceDict:
    return SliceDict(**arrays)


def _length(value: Any) -> int:
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    try:
        return len(value)
    except TypeError:
        raise ValueError(
            f"A SliceDict holds arrays with one row per sample; got a {type(value).__name__}."
        ) from None


def _select(value: Any, key: Any) -> Any:
    """Rows ``key`` of an array, a tensor or a list."""
    if isinstance(value, list):
        if isinstance(key, slice):
            return value[key]
        index = np.arange(len(value))[key]
        return [value[i] for i in index]
    if isinstance(key, np.ndarray | list) and hasattr(value, "index_select"):  # torch
        import torch

        index = torch.as_tensor(np.arange(len(value))[key], device=value.device)
        return value.index_select(0, index)
    return value[key]


class SliceDataset(Sequence):
    """The ``idx``-th field of each item of a torch Dataset, as a sequence
    scikit-learn can index by rows.

    ``GridSearchCV(est).fit(SliceDataset(ds), SliceDataset(ds, idx=1))``
    searches over a Dataset whose items are ``(x, y)``: the splitters read
    the targets (``idx=1``) and select rows of both; the estimator trains on
    the Dataset's items of the selected rows, loaded as a ``fit(dataset)``
    loads them. ``ds[i]`` is called for each item read: reading every
    target loads every item once.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        A map-style Dataset (with ``__len__``) whose items are tuples.
    idx : int, default=0
        Which field of an item this sequence holds.
    indices : array-like of int, optional
        The dataset's rows this sequence holds, in order (all by default).

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> from skcallback import SliceDataset
    >>> ds = TensorDataset(torch.zeros(5, 2), torch.arange(5))
    >>> y = SliceDataset(ds, idx=1)
    >>> y.shape, np.asarray(y[[0, 3]]).tolist()
    ((5,), [0, 3])
    """

    def __init__(self, dataset: Any, idx: int = 0, indices: Any = None) -> None:
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise TypeError(
                f"SliceDataset needs a map-style Dataset (with __getitem__ and __len__); "
                f"got {type(dataset).__name__}."
            )
        if not isinstance(idx, numbers.Integral) or isinstance(idx, bool):
            raise TypeError(f"idx must be an int (a field of the items); got {idx!r}.")
        self.dataset: Any = dataset
        self.idx: int = int(idx)
        every = np.arange(len(dataset))
        self.indices: np.ndarray = every if indices is None else every[np.asarray(indices)]

    @property
    def shape(self) -> tuple[int]:
        """``(n_samples,)``: how scikit-learn counts the samples."""
        return (len(self.indices),)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, numbers.Integral):
            return _field(self.dataset[int(self.indices[key])], self.idx)
        return SliceDataset(self.dataset, self.idx, self.indices[key])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The fields as an array (targets, for scikit-learn's checks of y);
        reads every item."""
        values = [np.asarray(_as_host(self[i])) for i in range(len(self))]
        array = np.stack(values) if values else np.empty(0)
        return array if dtype is None else array.astype(dtype)

    def __repr__(self) -> str:
        return (
            f"SliceDataset({type(self.dataset).__name__} of {len(self.dataset)} items, "
            f"idx={self.idx}, {len(self)} rows)"
        )


def _field(item: Any, idx: int) -> Any:
    if not isinstance(item, tuple | list):
        raise TypeError(
            f"SliceDataset(idx={idx}) reads field {idx} of each item, but the Dataset's "
            f"items are {type(item).__name__}, not tuples."
        )
    return item[idx]


def _as_host(value: Any) -> Any:
    """A tensor as a NumPy array (anything else unchanged)."""
    detach = getattr(value, "detach", None)
    return detach().cpu().numpy() if detach is not None else value


__all__ = ["SliceDataset", "SliceDict"]
