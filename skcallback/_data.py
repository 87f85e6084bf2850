"""Input handling: in-memory data as tensors once, batched by index.

Rows are trained on as given: an epoch visits every training row once, in a
shuffled order, so it takes ``ceil(n_train / batch_size)`` optimizer steps
whatever the data's duplicates. Sample weights scale each row's loss; they
are divided by their mean over the rows of the phase, so the loss keeps the
scale of an unweighted mean and ``sample_weight=c * w`` trains exactly as
``w``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, cast

import numpy as np
import scipy.sparse as sp
import torch

#: Rows per batch for validation and prediction (no gradients are kept).
EVAL_BATCH_SIZE = 16384


#: The most bytes of features gathered at once when batching an epoch. The
#: next chunk is gathered while the last batch (a view of the previous one)
#: is still held, so two are resident at a chunk boundary; 16 MiB chunks, and
#: the C allocator's keeping of their freed space, cost 32-48 MiB of host
#: memory on a 1M x 50 fit, 4 MiB ones about a quarter of that, at no
#: measured cost in time.
CHUNK_BYTES = 4 * 2**20


def as_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A tensor on ``device``; on the CPU it shares ``array``'s memory."""
    return shared_tensor(np.ascontiguousarray(array)).to(device)


def shared_tensor(array: np.ndarray) -> torch.Tensor:
    """A CPU tensor sharing ``array``'s memory, which is never written.

    ``torch.from_numpy`` warns about a read-only array (once per process,
    under the user's warning filters, which a filter of ours cannot
    outrank), though the library never writes to it. Such an array is
    taken through a writable view of the same memory where NumPy allows one
    (the read-only flag was set on writable memory), else through DLPack,
    which carries the flag without a warning (a read-only memory map), else
    copied."""
    if array.flags.writeable:
        return torch.from_numpy(array)
    view = array.view()
    try:
        view.setflags(write=True)
    except ValueError:  # the memory itself is read-only
        try:
            return torch.from_dlpack(array)
        except (BufferError, RuntimeError, TypeError):
            return torch.from_numpy(array.copy())
    return torch.from_numpy(view)


def normalized_weights(sample_weight: np.ndarray | None, dtype: np.dtype) -> np.ndarray | None:
    """``sample_weight`` divided by its mean (in float64, so tiny or huge
    weights neither underflow nor overflow); None when every weight is the
    same, which trains exactly as without weights."""
    if sample_weight is None or np.all(sample_weight == sample_weight[0]):
        return None
    weights = np.asarray(sample_weight, dtype=np.float64)
    return (weights / weights.mean()).astype(dtype)


class ArrayData:
    """Features and targets held once, in memory.

    Dense features (an array of any rank, or a dict of such arrays, one
    tensor per key) become tensors: on the training device when they fit in
    a quarter of its free memory, otherwise in pinned host memory, from which
    each batch is copied asynchronously. Sparse features stay CSR on the
    host; each batch is a torch sparse tensor when ``sparse_batches``, else
    a dense one.
    """

    def __init__(
        self,
        X: np.ndarray | sp.csr_matrix | dict[str, np.ndarray],
        y: np.ndarray,
        device: torch.device,
        *,
        sparse_batches: bool = False,
    ) -> None:
        self.device = device
        self.sparse = sp.issparse(X)
        self.sparse_batches = self.sparse and sparse_batches
        parts: list[Any] = list(X.values()) if isinstance(X, dict) else [X]
        nbytes = (parts[0].data.nbytes if self.sparse else sum(a.nbytes for a in parts)) + y.nbytes
        self.streamed = not _fits_on(device, nbytes)
        self.storage = torch.device("cpu") if self.streamed else device
        self.X: Features | sp.csr_matrix
        if self.sparse:
            self.X = canonical_csr(X)
        elif isinstance(X, dict):
            self.X = {key: self.hold(as_tensor(a, self.storage)) for key, a in X.items()}
        else:
            self.X = self.hold(as_tensor(X, self.storage))
        self.y = self.hold(as_tensor(y, self.storage))
        self.dtype = float_dtype_of(X)
        if self.sparse:  # a gathered row: its values and their two int64 indices
            csr = cast(sp.csr_matrix, X)
            per_row = csr.nnz / max(1, csr.shape[0]) * (csr.dtype.itemsize + 16)
            self.row_bytes = max(1, math.ceil(per_row))
        else:
            self.row_bytes = max(1, sum(a[:1].nbytes for a in parts))

    def hold(self, tensor: torch.Tensor) -> torch.Tensor:
        """A tensor kept on the storage side (pinned when streamed)."""
        return tensor.pin_memory() if self.streamed else tensor

    def send(self, tensor: torch.Tensor) -> torch.Tensor:
        """A batch tensor moved to the training device (asynchronously when
        streamed; a no-op otherwise)."""
        return tensor.pin_memory().to(self.device, non_blocking=True) if self.streamed else tensor

    def subset(self, rows: np.ndarray, sample_weight: np.ndarray | None) -> TensorData:
        """The rows ``rows`` with their (raw) sample weights."""
        weights = None if sample_weight is None else sample_weight[rows]
        return TensorData(self, rows, normalized_weights(weights, self.dtype))

    def gather(self, idx: torch.Tensor) -> tuple[Any, torch.Tensor]:
        """The rows ``idx`` (on the storage device), on the device, to slice
        batches from (with ``rows``): features as a tensor, a dict of
        tensors or ``SparseRows``, and targets as a tensor."""
        X_c: Any
        if self.sparse:
            csr = cast(sp.csr_matrix, self.X)
            X_c = SparseRows(csr[idx.cpu().numpy()], self.device, sparse=self.sparse_batches)
        elif isinstance(self.X, dict):
            X_c = {key: self.send(t.index_select(0, idx)) for key, t in self.X.items()}
        else:
            X_c = self.send(self.X.index_select(0, idx))
        return X_c, self.send(self.y.index_select(0, idx))

    def take(self, idx: torch.Tensor) -> tuple[Any, torch.Tensor]:
        """The rows ``idx`` (on the storage device) as one batch on the device."""
        X_c, y_c = self.gather(idx)
        return slice_rows(X_c, slice(0, len(y_c))), y_c


def _fits_on(device: torch.device, nbytes: int) -> bool:
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= free // 4


class TensorData:
    """Some rows of an ``ArrayData`` (with normalised weights), batched by
    index."""

    def __init__(self, source: ArrayData, rows: np.ndarray, weights: np.ndarray | None) -> None:
        self.source = source
        self.n_samples = len(rows)
        self.rows = torch.from_numpy(np.asarray(rows, dtype=np.int64)).to(source.storage)
        self.w = None if weights is None else source.hold(as_tensor(weights, source.storage))

    def close(self) -> None:
        """Release what loading holds (nothing: arrays are gathered here)."""

    def n_batches(self, batch_size: int) -> int:
        return math.ceil(self.n_samples / batch_size)

    @staticmethod
    def eval_batch_size(batch_size: int) -> int:
        """Rows per validation batch: many (no gradients are kept)."""
        return max(batch_size, EVAL_BATCH_SIZE)

    def batches(
        self, batch_size: int, generator: torch.Generator | None, skip: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        """Yield ``(X, y, sample_weight)`` batches, shuffled when a generator
        is given, leaving out the first ``skip`` batches (of a resumed epoch)."""
        source, w = self.source, self.w
        positions = None
        if generator is not None:
            positions = torch.randperm(self.n_samples, generator=generator)
            positions = positions.to(self.rows.device)
        # Rows are gathered a chunk of batches at a time (the whole epoch for
        # data up to CHUNK_BYTES), and each batch is a view of its chunk (of
        # sparse rows: made from slices of the chunk's arrays). A shuffled
        # chunk looks up only its own rows: no permuted copy of the epoch's.
        per_chunk = max(1, CHUNK_BYTES // (batch_size * source.row_bytes))
        step = per_chunk * batch_size
        for chunk_start in range(skip * batch_size, self.n_samples, step):
            part = slice(chunk_start, chunk_start + step)
            if positions is None:
                rows, w_part = self.rows[part], None if w is None else w[part]
            else:
                at = positions[part]
                rows = self.rows.index_select(0, at)
                w_part = None if w is None else w.index_select(0, at)
            X_c, y_c = source.gather(rows)
            w_c = None if w_part is None else source.send(w_part)
            for start in range(0, len(y_c), batch_size):
                part = slice(start, start + batch_size)
                yield slice_rows(X_c, part), y_c[part], None if w_c is None else w_c[part]


def canonical_csr(X: sp.csr_matrix) -> sp.csr_matrix:
    """``X`` with sorted, unique column indices in every row, as a coalesced
    torch sparse tensor needs them (a copy when ``X`` has not: the user's
    matrix is never changed)."""
    if X.has_canonical_format:
        return X
    X = X.copy()
    X.sum_duplicates()  # also sorts each row's indices
    return X


class SparseRows:
    """Rows of a CSR matrix, sliced into batches: ``rows[start:end]`` is a
    torch sparse COO tensor of those rows on ``device`` (``sparse=True``),
    or a dense tensor.

    The COO indices and values of every row are made once, on the device;
    a batch slices them, so its cost does not grow with the rows before it.
    COO rather than CSR: on the CPU, torch multiplied 128 rows of 10,000
    features at 0.1% density by a dense matrix in about 100 us from COO and
    390 us from CSR (torch 2.13, MKL), and builds CSR tensors with a
    warning that its support is in beta.
    """

    def __init__(self, rows: sp.csr_matrix, device: torch.device, *, sparse: bool) -> None:
        self.rows, self.device, self.sparse = canonical_csr(rows), device, sparse
        self.indptr = self.rows.indptr
        if sparse:
            counts = torch.from_numpy(np.diff(self.indptr))
            row_of = torch.repeat_interleave(torch.arange(self.rows.shape[0]), counts)
            columns = shared_tensor(self.rows.indices).long()
            self.indices = torch.stack([row_of, columns]).to(device)
            self.values = shared_tensor(self.rows.data).to(device)

    def __len__(self) -> int:
        return self.rows.shape[0]

    def __getitem__(self, part: slice) -> torch.Tensor:
        start, stop, _ = part.indices(len(self))
        if not self.sparse:
            dense = torch.from_numpy(self.rows[start:stop].toarray())
            return dense.to(self.device, non_blocking=True)
        first, last = int(self.indptr[start]), int(self.indptr[stop])
        indices = self.indices[:, first:last]
        if start:
            indices = indices - torch.tensor([[start], [0]], device=self.device)
        # The rows' indices are sorted and unique (canonical_csr): coalesced.
        return torch.sparse_coo_tensor(
            indices,
            self.values[first:last],
            (stop - start, self.rows.shape[1]),
            is_coalesced=True,
            check_invariants=False,
        )


def predict_batches(
    X: np.ndarray | sp.csr_matrix | dict[str, np.ndarray],
    batch_size: int,
    device: torch.device,
    *,
    sparse: bool,
) -> Iterator[Any]:
    """Yield ``X`` in batches of ``batch_size`` rows, on ``device``; a sparse
    ``X`` as torch sparse tensors when ``sparse``, else dense ones; a dict
    of arrays as a dict of tensors."""
    chunk: Any
    cpu = torch.device("cpu")
    if sp.issparse(X):
        chunk = SparseRows(X, device, sparse=sparse)
    elif isinstance(X, dict):
        chunk = {key: as_tensor(array, cpu) for key, array in X.items()}
    else:
        chunk = as_tensor(X, cpu)
    for start in range(0, n_rows(X), batch_size):
        yield to_device(slice_rows(chunk, slice(start, start + batch_size)), device)


#: A batch's features: a tensor, or a dict of tensors for a multi-input
#: module.
Features = torch.Tensor | dict[str, torch.Tensor]


def slice_rows(X: Any, part: slice) -> Any:
    """The rows ``part`` of a batch's features (a tensor, a dict of them,
    ``SparseRows``)."""
    if type(X) is dict:
        return {key: value[part] for key, value in X.items()}
    return X[part]


def n_rows(X: Any) -> int:
    """The number of samples of features: a first dimension, or a dict's
    (one for all its values), or a sequence's length."""
    if isinstance(X, dict):
        return n_rows(next(iter(X.values())))
    shape = getattr(X, "shape", None)
    return int(shape[0]) if shape is not None else len(X)


def to_device(X: Any, device: torch.device) -> Any:
    """Features moved to ``device`` (asynchronously from pinned memory)."""
    if isinstance(X, dict):
        return {key: to_device(value, device) for key, value in X.items()}
    if isinstance(X, tuple | list):
        return type(X)(to_device(value, device) for value in X)
    if isinstance(X, torch.Tensor):
        return X.to(device, non_blocking=True)
    return X


def feed(module: Any, X: Any) -> Any:
    """The module's output for a batch's features: a dict is passed as
    keyword arguments (``module(**X)``), a tuple or list as positional ones
    (``module(*X)``, e.g. a padded batch and its lengths), anything else as
    the one argument."""
    if isinstance(X, dict):
        return module(**X)
    if isinstance(X, tuple | list):
        return module(*X)
    return module(X)


def explained_feed(module: Any, X: Any) -> Any:
    """``feed``, a failure of the module said as one, naming the batch it
    failed on (the dry run's, or a prediction's: items of a Dataset have no
    recorded shape to check beforehand)."""
    try:
        return feed(module, X)
    except torch.cuda.OutOfMemoryError:  # torch.OutOfMemoryError from torch 2.5
        raise  # the device's limit, not the data's: torch says it best
    except Exception as exc:
        raise ValueError(
            f"The module {type(module).__name__} failed on a batch of "
            f"{describe_batch(X)}: {type(exc).__name__}: {exc}"
        ) from exc


def host_float64(values: torch.Tensor | np.ndarray) -> np.ndarray:
    """``values`` (a tensor, or an array) as a float64 NumPy array on the
    host. A dense CPU tensor that needs no gradient is converted by NumPy
    from a view of it: torch's ``detach``, ``to`` and ``cpu`` calls cost
    about a tenth of a one-row prediction, even where they change nothing."""
    if type(values) is np.ndarray:
        return values.astype(np.float64, copy=False)
    assert isinstance(values, torch.Tensor)  # for type checkers
    if (
        values.is_cpu
        and not values.requires_grad
        and values.dtype in _NUMPY_FLOATS
        and values.layout == torch.strided
    ):
        return values.numpy().astype(np.float64, copy=False)
    return values.detach().to(torch.float64).cpu().numpy()


#: The floating-point dtypes a CPU tensor shares with NumPy as they are.
_NUMPY_FLOATS = (torch.float32, torch.float64, torch.float16)


def float_dtype_of(X: Any) -> np.dtype:
    """The floating dtype of features (a dict's first floating array; float32
    when none is floating), which normalised sample weights take."""
    for array in X.values() if isinstance(X, dict) else [X]:
        if array.dtype.kind == "f":
            return array.dtype
    return np.dtype(np.float32)


def describe_batch(X: Any) -> str:
    """A batch's features in words, for error messages: ``shape (8, 20)``,
    or each key's shape, or each element's."""
    if isinstance(X, dict):
        return "keys " + ", ".join(f"{key!r}: {describe_batch(v)}" for key, v in X.items())
    if isinstance(X, tuple | list):
        return "elements (" + ", ".join(describe_batch(v) for v in X) + ")"
    shape = getattr(X, "shape", None)
    if shape is None:
        return f"type {type(X).__name__}"
    dtype = getattr(X, "dtype", None)
    return f"shape {tuple(shape)}" + (f" ({dtype})" if dtype is not None else "")
