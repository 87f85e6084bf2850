"""Data that comes item by item: a torch ``Dataset`` of ``(x, y)`` items,
the rows of a ``SliceDataset``, or a list of variable-length samples with
a ``dataloader__collate_fn``. Such data is loaded through torch's
``DataLoader`` (in worker processes with ``dataloader__num_workers``);
arrays in memory never are (``_data.ArrayData`` gathers their batches),
nor a list of samples padded by ``pad_sequences`` (``_padding``).

Reproducibility: the rows of each epoch are shuffled by the fit's
generator, as for arrays, and every batch is loaded with torch's, NumPy's
and Python's random generators seeded from the fit's seed, the epoch's
draw and the batch's number. An item's random augmentation therefore
depends on neither the number of workers nor which worker loads it, and a
fit resumed mid-epoch loads the remaining batches exactly as the
interrupted one would have. In the main process (``num_workers=0``) those
generators are restored after loading (once for the batches fetched
ahead), so loading draws nothing from the training's streams (seeds and
restoring: ``_loading_seeds``).

The targets are read once, at the start of ``fit`` (one pass over the
items, with the workers), to learn the classes, check them and split off
validation rows; each batch's targets are taken from them by row.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import operator
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, TensorDataset, get_worker_info
from torch.utils.data import Dataset as TorchDataset

from ._data import describe_batch, normalized_weights, to_device
from ._fingerprint import describe
from ._loading_seeds import batch_seeds, generators_kept, seed_globals
from ._padding import PaddedSamples
from ._slicing import SliceDataset

#: Items fetched ahead in this process (``_InProcess``): batches fetched
#: between one save and one restore of the random generators while they
#: take less than ``_AHEAD_SECONDS`` (a batch of items that load slowly, from
#: files, is fetched alone), at most ``_AHEAD_BATCHES``.
_AHEAD_SECONDS, _AHEAD_BATCHES = 0.002, 8


class Items(TorchDataset):
    """The items of a fit or a prediction: ``dataset[rows[i]]`` (every row
    of ``dataset`` when ``rows`` is None)."""

    def __init__(self, dataset: Any, rows: np.ndarray | None = None) -> None:
        self.dataset = dataset
        self.rows = rows

    def __len__(self) -> int:
        return len(self.dataset) if self.rows is None else len(self.rows)

    def __getitem__(self, i: int) -> Any:
        return self.dataset[i if self.rows is None else int(self.rows[i])]

    def fetch(self, positions: list[int]) -> list[Any]:
        """The items at ``positions`` (through the dataset's own batched
        ``__getitems__`` where it has one)."""
        rows = positions if self.rows is None else [int(self.rows[i]) for i in positions]
        batched = getattr(self.dataset, "__getitems__", None)
        if batched is not None:
            return list(batched(rows))
        return [self.dataset[row] for row in rows]

    def describe(self) -> str:
        """What the items are, for the fit's fingerprint: the dataset's
        class and length and the rows (items are not read)."""
        name = f"{type(self.dataset).__module__}.{type(self.dataset).__qualname__}"
        if isinstance(self.dataset, Pairs):
            return f"pairs:{self.dataset.describe()}"
        rows = "all" if self.rows is None else ",".join(map(str, self.rows.tolist()))
        return f"{name}[{len(self.dataset)}]:{rows}"


class Pairs(TorchDataset):
    """A list of samples (of any length each) with their targets, as items
    ``(x, y)``; without targets (prediction) each item's y is 0."""

    def __init__(self, samples: list[Any], targets: Any = None) -> None:
        self.samples, self.targets = samples, targets

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        return self.samples[i], 0 if self.targets is None else self.targets[i]

    def describe(self) -> str:
        return describe([np.asarray(sample) for sample in self.samples])


def unwrap_tensor_dataset(X: Any, y: Any) -> tuple[Any, Any]:
    """A plain ``TensorDataset(X, y)`` (of exactly that class: a subclass
    may change its items) as its arrays, which train by the gathered batch
    path of arrays, exactly as ``fit(X, y)``; anything else unchanged."""
    if type(X) is TensorDataset and y is None and len(X.tensors) == 2:
        return _host(X.tensors[0]), _host(X.tensors[1])
    if type(X) is TensorDataset and len(X.tensors) == 1:
        return _host(X.tensors[0]), y
    return X, y


def as_items(X: Any, collate_fn: Any) -> Items | None:
    """``X`` as items when it is item-wise data: a map-style torch Dataset,
    a ``SliceDataset`` (its rows of its dataset), or a list of samples when
    a ``collate_fn`` is given; else None (an array, a dict, a sparse
    matrix)."""
    if isinstance(X, SliceDataset):
        if X.idx != 0:
            raise ValueError(
                f"A SliceDataset given as X must hold the items' inputs (idx=0); got "
                f"idx={X.idx}. Pass SliceDataset(dataset) as X and SliceDataset(dataset, "
                "idx=1) as y."
            )
        return Items(X.dataset, np.asarray(X.indices))
    if isinstance(X, IterableDataset):
        raise ValueError(
            f"X is an IterableDataset ({type(X).__name__}); a fit needs a map-style Dataset "
            "(with __len__ and __getitem__) to shuffle rows, hold out validation rows and "
            "resume."
        )
    if isinstance(X, TorchDataset):
        if type(X) is not Items and not hasattr(X, "__len__"):
            raise ValueError(f"X, a {type(X).__name__}, has no __len__; a fit needs one.")
        return X if isinstance(X, Items) else Items(X)
    if collate_fn is not None and isinstance(X, list | tuple):
        return Items(Pairs(list(X)))
    return None


# ----------------------------------------------------------------------
# Reading targets
# ----------------------------------------------------------------------
def read_targets(items: Items, options: dict[str, Any], field: int = 1) -> np.ndarray:
    """Every item's target (its field ``field``, the second by default),
    read once through the loader's workers, as one array."""
    if isinstance(items.dataset, Pairs) and items.dataset.targets is not None:
        return np.asarray(items.dataset.targets)
    plan = _EpochBatches()
    starts = range(0, len(items), 256)
    seeds = batch_seeds(0, list(range(len(starts))))
    plan.batches = [
        _Batch(list(range(i, i + 256))[: len(items) - i], seed)
        for i, seed in zip(starts, seeds, strict=True)
    ]
    collate = functools.partial(_field_of_pairs, field=field)
    loader = _loader(_SeededItems(items), collate, options, batch_sampler=plan)
    values: list[Any] = []
    with _loading_errors("reading the targets of"):
        for part in loader:
            values.extend(part)
    try:
        return _as_array(values)
    except ValueError as exc:
        raise ValueError(
            f"The Dataset's targets (the second field of its items) do not form an array "
            f"(one target of one shape per item): {exc}"
        ) from exc


def _as_array(values: list[Any]) -> np.ndarray:
    """Targets as one array: tensors of one dtype and shape stacked by
    torch (one copy, not one NumPy conversion per item), else each value
    converted."""
    first = values[0] if values else None
    if isinstance(first, torch.Tensor) and all(
        isinstance(v, torch.Tensor) and v.dtype == first.dtype and v.shape == first.shape
        for v in values
    ):
        return _host(torch.stack(values))
    return np.asarray([_host(value) for value in values])


def _field_of_pairs(items: list[Any], field: int) -> list[Any]:
    """Field ``field`` of each ``(x, y)`` item (a collate function)."""
    for item in items:
        if not isinstance(item, tuple | list) or len(item) != 2:
            pair = isinstance(item, tuple | list)
            found = f"a {len(item)}-tuple" if pair else type(item).__name__
            raise ValueError(f"A Dataset's items must be (x, y) pairs; one is {found}.")
    return [item[field] for item in items]


def _host(value: Any) -> Any:
    detach = getattr(value, "detach", None)
    return detach().cpu().numpy() if detach is not None else value


# ----------------------------------------------------------------------
# Batches
# ----------------------------------------------------------------------
class ItemData:
    """Items with their encoded targets, loaded in batches on ``device``
    (the item-wise counterpart of ``_data.ArrayData``)."""

    def __init__(
        self,
        items: Items,
        y: np.ndarray,
        device: torch.device,
        options: dict[str, Any],
        dtype: torch.dtype,
    ) -> None:
        self.items, self.device, self.options, self.dtype = items, device, options, dtype
        self.storage = torch.device("cpu")
        self.y = torch.from_numpy(np.ascontiguousarray(y))
        self.sparse = self.sparse_batches = False
        #: Whether the items are to predict: ``(x, y)`` pairs or bare inputs.
        self.predicting = False
        self._padding_value = _padding_value(items, options)
        self._padded: PaddedSamples | None = None

    def padded_samples(self) -> PaddedSamples | None:
        """The samples converted once (at the first batch), when they are a
        list padded by ``pad_sequences``: its batches are gathered from them
        (``_padding``); else None."""
        if self._padded is None and self._padding_value is not None:
            samples = self.items.dataset.samples
            tensors = [_sample_tensor(sample) for sample in samples]
            self._padded = PaddedSamples(tensors, self._padding_value)
        return self._padded

    def subset(self, rows: np.ndarray, sample_weight: np.ndarray | None) -> ItemRows:
        """The rows ``rows`` with their (raw) sample weights."""
        weights = None if sample_weight is None else sample_weight[rows]
        dtype = np.float64 if self.dtype == torch.float64 else np.float32
        return ItemRows(self, np.asarray(rows), normalized_weights(weights, np.dtype(dtype)))

    def take(self, idx: torch.Tensor) -> tuple[Any, torch.Tensor]:
        """The rows ``idx`` as one batch, loaded in this process."""
        batch = _Batch(idx.cpu().tolist(), seed=0)
        with _loading_errors("loading"):
            collated = _collate(self.options)(_SeededItems(self.items).__getitems__(batch))
        return self.features(collated), self.y[idx.cpu()].to(self.device)

    def features(self, collated: Any) -> Any:
        """A collated batch's inputs (its first field) on the device, their
        floating tensors in the fit's dtype. Items to predict may be bare
        inputs (no pair): then the whole batch is the inputs."""
        pair = isinstance(collated, tuple | list) and len(collated) == 2
        if not pair and self.predicting:
            return to_device(_floats(collated, self.dtype), self.device)
        if not pair:
            raise ValueError(
                "The collate function must return a pair (X_batch, y_batch); it returned "
                f"{describe_batch(collated)}."
            )
        return self.inputs(collated[0])

    def inputs(self, X: Any) -> Any:
        """A batch's inputs on the device, floating tensors in the fit's dtype."""
        return to_device(_floats(X, self.dtype), self.device)


def sample_shape(items: Items) -> list[int] | None:
    """The shape of the first item's input when it is an array or a tensor
    (what a module factory's ``input_shape`` receives), else None; the item
    is loaded as a batch's are (seeded, generators restored)."""
    first = _SeededItems(items).__getitems__(_Batch([0], seed=0))[0]
    x = first[0] if isinstance(first, tuple | list) and len(first) == 2 else first
    shape = getattr(x, "shape", None)
    return None if shape is None else [int(d) for d in shape]


class ItemRows:
    """Some rows of an ``ItemData`` (with normalised weights), loaded in
    batches through a ``DataLoader``."""

    def __init__(self, source: ItemData, rows: np.ndarray, weights: np.ndarray | None) -> None:
        self.source, self.rows = source, rows
        self.n_samples = len(rows)
        self.w = None if weights is None else torch.from_numpy(weights)
        self._loader: Iterable[Any] | None = None
        self._plan = _EpochBatches()

    def close(self) -> None:
        """Stop the loader's persistent workers (they would live on until
        the loader is collected)."""
        self._loader = None

    def n_batches(self, batch_size: int) -> int:
        return math.ceil(self.n_samples / batch_size)

    @staticmethod
    def eval_batch_size(batch_size: int) -> int:
        """Rows per validation batch: the training batch size (items, such
        as images, may be large; the arrays' large batches would hold many
        at once)."""
        return batch_size

    def batches(
        self, batch_size: int, generator: torch.Generator | None, skip: int = 0
    ) -> Iterator[tuple[Any, torch.Tensor, torch.Tensor | None]]:
        """Yield ``(X, y, sample_weight)`` batches, shuffled when a generator
        is given (which also draws the seed of the epoch's loading),
        leaving out the first ``skip`` batches (of a resumed epoch)."""
        source = self.source
        if generator is not None:
            positions = torch.randperm(self.n_samples, generator=generator).numpy()
            epoch_seed = int(torch.randint(2**62, (1,), generator=generator))
        else:
            positions, epoch_seed = np.arange(self.n_samples), 0
        starts = range(skip * batch_size, self.n_samples, batch_size)
        local = [positions[start : start + batch_size] for start in starts]
        rows = [torch.from_numpy(self.rows[part].astype(np.int64)) for part in local]
        with _loading_errors("loading"):
            inputs = self._inputs(rows, epoch_seed, [start // batch_size for start in starts])
            for batch_rows, part, X_b in zip(rows, local, inputs, strict=True):
                y_b = source.y.index_select(0, batch_rows)
                w_b = None if self.w is None else self.w.index_select(0, torch.from_numpy(part))
                yield (
                    X_b,
                    y_b.to(source.device, non_blocking=True),
                    None if w_b is None else w_b.to(source.device, non_blocking=True),
                )

    def _inputs(
        self, rows: list[torch.Tensor], epoch_seed: int, numbers: list[int]
    ) -> Iterator[Any]:
        """Each batch's inputs on the device: padded from the samples
        converted once (a list padded by ``pad_sequences``), else loaded by
        the loader, each batch with its seed (from the epoch's and its
        number)."""
        source = self.source
        padded = source.padded_samples()
        if padded is not None:
            return (source.inputs(padded.batch(batch_rows)) for batch_rows in rows)
        self._plan.batches = [
            _Batch(batch_rows.tolist(), seed)
            for batch_rows, seed in zip(rows, batch_seeds(epoch_seed, numbers), strict=True)
        ]
        if self._loader is None:
            self._loader = _loader(
                _SeededItems(source.items),
                _collate(source.options),
                source.options,
                batch_sampler=self._plan,
            )
        return (source.features(collated) for collated in self._loader)


def predict_item_batches(
    items: Items, batch_size: int, device: torch.device, options: dict, dtype: torch.dtype
) -> Iterator[Any]:
    """The inputs of every item, in order, in batches on ``device``."""
    source = ItemData(items, np.zeros(len(items)), device, options, dtype)
    source.predicting = True
    rows = source.subset(np.arange(len(items)), None)
    for X_b, _, _ in rows.batches(batch_size, None):
        yield X_b


class _Batch(list):
    """The rows of one batch, with the seed its items are loaded with (a
    list, as a DataLoader's batch sampler yields; it travels to the worker
    that loads it)."""

    def __init__(self, rows: list[int], seed: int) -> None:
        super().__init__(rows)
        self.seed = seed


class _EpochBatches:
    """The batch sampler of an epoch's DataLoader: the batches set before
    each epoch (a persistent worker pool keeps the same loader)."""

    def __init__(self) -> None:
        self.batches: list[_Batch] = []

    def __iter__(self) -> Iterator[_Batch]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class _SeededItems(TorchDataset):
    """Items loaded a batch at a time, with the random generators seeded
    from the batch's seed (and restored afterwards in the main process)."""

    def __init__(self, items: Items) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Any:
        return self.items[i]

    def __getitems__(self, batch: list[int]) -> list[Any]:
        seed = getattr(batch, "seed", 0)
        if get_worker_info() is not None:  # a worker's generators are the loading's
            seed_globals(seed)
            return self.items.fetch(list(batch))
        with generators_kept():
            seed_globals(seed)
            return self.items.fetch(list(batch))

    def fetch_ahead(self, batches: Iterator[_Batch]) -> tuple[list[list[Any]], Exception | None]:
        """The items of the next batches, each batch's with its seed,
        between one save and one restore of the generators (in this
        process): as many as load within ``_AHEAD_SECONDS``, at most
        ``_AHEAD_BATCHES``. A failure is returned, with the batches before
        it, to be raised in its turn."""
        fetched: list[list[Any]] = []
        start = time.perf_counter()
        with generators_kept():
            for batch in itertools.islice(batches, _AHEAD_BATCHES):
                seed_globals(batch.seed)
                try:
                    fetched.append(self.items.fetch(list(batch)))
                except Exception as exc:
                    return fetched, exc
                if time.perf_counter() - start > _AHEAD_SECONDS:
                    break
        return fetched, None


def _collate(options: dict[str, Any]) -> Callable[[list[Any]], Any]:
    return options.get("collate_fn") or _collate_inputs


def _collate_inputs(items: list[Any]) -> Any:
    """torch's ``default_collate`` of the items' inputs: of the first field
    of ``(x, y)`` pairs, as ``(X_batch, None)`` (each batch's targets are
    taken by row from those read at the start of the fit), of the whole
    items otherwise (bare inputs to predict; a training item that is no
    pair is refused by ``ItemData.features``)."""
    kinds = set(map(type, items))
    if (kinds == {tuple} or kinds == {list}) and set(map(len, items)) == {2}:
        return torch.utils.data.default_collate(list(map(operator.itemgetter(0), items))), None
    return torch.utils.data.default_collate(items)


def _loader(
    dataset: Any, collate: Callable, options: dict[str, Any], batch_sampler: _EpochBatches
) -> Iterable[Any]:
    """The batches of ``batch_sampler``, loaded and collated: by a
    ``DataLoader`` with worker processes, or pinning memory; else here, as
    a ``DataLoader`` without workers loads them (``_InProcess``)."""
    workers = int(options.get("num_workers", 0))
    pin = bool(options.get("pin_memory", False)) and torch.cuda.is_available()
    if not workers and not pin:
        return _InProcess(dataset, collate, batch_sampler)
    extra: dict[str, Any] = {}
    if workers:
        extra = {
            "persistent_workers": bool(options.get("persistent_workers", False)),
            "prefetch_factor": options.get("prefetch_factor") or 2,
        }
    return DataLoader(
        dataset,
        collate_fn=collate,
        num_workers=workers,
        # Its own generator: starting workers draws their base seed from it,
        # which would otherwise come from torch's global one (the module's).
        generator=torch.Generator(),
        pin_memory=pin,
        batch_sampler=batch_sampler,
        **extra,
    )


class _InProcess:
    """Batches loaded in this process: ``collate(dataset.__getitems__(batch))``
    for each batch of the sampler, which is what a ``DataLoader`` without
    workers computes, without its per-batch bookkeeping (a profiler record,
    a fetcher: about 40 us a batch, measured).

    Items that load fast are fetched a few batches ahead, as worker
    processes do, so that saving and restoring the generators (~50 us)
    is paid once for them all; each batch is still seeded with its own
    seed, and collated in its turn."""

    def __init__(self, dataset: _SeededItems, collate: Callable, batches: _EpochBatches) -> None:
        self.dataset, self.collate, self.batches = dataset, collate, batches

    def __iter__(self) -> Iterator[Any]:
        pending = iter(self.batches)
        while True:
            fetched, failure = self.dataset.fetch_ahead(pending)
            for items in fetched:
                yield self.collate(items)
            if failure is not None:
                raise failure
            if not fetched:
                return


def _floats(X: Any, dtype: torch.dtype) -> Any:
    """Floating tensors (and NumPy arrays) of a batch's inputs in
    ``dtype``; integer and boolean ones as they are."""
    if isinstance(X, np.ndarray):
        X = torch.from_numpy(X)
    if isinstance(X, torch.Tensor):
        return X.to(dtype) if X.is_floating_point() and X.dtype != dtype else X
    if isinstance(X, dict):
        return {key: _floats(value, dtype) for key, value in X.items()}
    if isinstance(X, tuple | list):
        return type(X)(_floats(value, dtype) for value in X)
    return X


@contextlib.contextmanager
def _loading_errors(doing: str) -> Iterator[None]:
    """A failure inside the Dataset or the collate function, said as one."""
    try:
        yield
    except (ValueError, TypeError, RuntimeError, IndexError, KeyError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith(("A Dataset", "The collate")):
            raise
        raise ValueError(
            f"{doing.capitalize()} the Dataset's items failed: {type(exc).__name__}: {exc}. "
            "Items must be (x, y) pairs that the collate function "
            "(dataloader__collate_fn, torch's default_collate by default) turns into "
            "(X_batch, y_batch); samples of different shapes need a collate_fn that pads "
            "them, such as skcallback.pad_sequences."
        ) from exc


def pad_sequences(items: list[Any], padding_value: float = 0.0) -> tuple[Any, Any]:
    """Collate ``(x, y)`` items whose ``x`` are sequences of different
    lengths: ``((padded, lengths), y)``.

    ``padded`` has shape ``(batch, longest, ...)`` (batch first), the
    shorter sequences filled with ``padding_value``; ``lengths`` (int64, on
    the CPU as ``torch.nn.utils.rnn.pack_padded_sequence`` wants them)
    holds each one's length. A module receives them as
    ``module(padded, lengths)``. Pass it as ``dataloader__collate_fn``
    (``functools.partial(pad_sequences, padding_value=-1.0)`` for another
    padding value).

    Parameters
    ----------
    items : list of (x, y)
        Each ``x`` an array or tensor of shape ``(length, ...)``, the
        trailing shape the same for all.
    padding_value : float, default=0.0

    Returns
    -------
    ((padded, lengths), y) : ((torch.Tensor, torch.Tensor), torch.Tensor or list)

    Examples
    --------
    >>> import numpy as np
    >>> from skcallback import pad_sequences
    >>> (padded, lengths), y = pad_sequences([(np.ones(3), 0), (np.ones(1), 1)])
    >>> padded.shape, lengths.tolist(), y.tolist()
    (torch.Size([2, 3]), [3, 1], [0, 1])
    """
    samples = [_sample_tensor(x) for x, _ in items]
    lengths = torch.tensor([len(sample) for sample in samples], dtype=torch.int64)
    padded = torch.nn.utils.rnn.pad_sequence(samples, batch_first=True, padding_value=padding_value)
    targets = [y for _, y in items]
    try:
        y_b = torch.utils.data.default_collate(targets)
    except (TypeError, RuntimeError):
        y_b = targets
    return (padded, lengths), y_b


def _sample_tensor(x: Any) -> torch.Tensor:
    """One sample of a list of sequences as a tensor (on the CPU; NumPy
    arrays and CPU tensors shared, not copied)."""
    return torch.as_tensor(np.asarray(_host(x)))


def _padding_value(items: Items, options: dict[str, Any]) -> float | None:
    """The padding value when the items are a list of samples and the
    collate function is ``pad_sequences`` (or a ``functools.partial`` of it
    setting only ``padding_value``): their batches are gathered
    (``ItemData.padded_samples``); else None."""
    collate = options.get("collate_fn")
    keywords: dict[str, Any] = {}
    if not isinstance(items.dataset, Pairs) or items.rows is not None:
        return None
    if isinstance(collate, functools.partial) and not collate.args:
        keywords = collate.keywords
        collate = collate.func
    if collate is not pad_sequences or set(keywords) - {"padding_value"}:
        return None
    return keywords.get("padding_value", 0.0)
