"""Input handling: in-memory data as tensors once, batched by index.

Training rows are put in a canonical form first: identical ``(x, y)`` rows
merge into one row whose weight is the sum of theirs, and rows are ordered by
a hash of their content. So a sample weight of ``k`` is exactly ``k`` copies
of the sample, and a fit does not depend on the order of the rows.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch

_CHUNK_ROWS = 1 << 15
#: Rows per batch for validation and prediction (no gradients are kept).
EVAL_BATCH_SIZE = 16384
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def as_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A tensor on ``device``; on the CPU it shares ``array``'s memory (we
    never write to it, so a read-only array is fine)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor.to(device)


def _mix(v: np.ndarray) -> np.ndarray:
    """A 64-bit finaliser (splitmix64) applied elementwise, in place."""
    v ^= v >> np.uint64(30)
    v *= _MIX1
    v ^= v >> np.uint64(27)
    v *= _MIX2
    v ^= v >> np.uint64(31)
    return v


def _bits(values: np.ndarray) -> np.ndarray:
    values = np.ascontiguousarray(values)
    view = values.view(np.uint32 if values.itemsize == 4 else np.uint64)
    return view.astype(np.uint64)


def row_hashes(X: np.ndarray | sp.csr_matrix, y: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each ``(x, y)`` row; zeros contribute nothing, so a
    dense row and its sparse form hash alike."""
    n_features = X.shape[1]
    salts = np.random.RandomState(0).randint(1, 2**62, size=n_features + 1, dtype=np.int64)
    salts = salts.astype(np.uint64)
    zero_terms = _mix(salts.copy())
    targets = np.asarray(y).reshape(len(y), -1)
    hashes = np.zeros(X.shape[0], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(targets.shape[1]):
            hashes += _mix(_bits(targets[:, j]) + salts[-1] + np.uint64(j))
        if sp.issparse(X):
            X = X if X.has_canonical_format else X.tocsr(copy=True)
            X.sum_duplicates()
            terms = _mix(_bits(X.data) + salts[X.indices]) - zero_terms[X.indices]
            row_of = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
            np.add.at(hashes, row_of, terms)
        else:
            for start in range(0, X.shape[0], _CHUNK_ROWS):
                block = _bits(X[start : start + _CHUNK_ROWS])
                block += salts[:n_features]
                hashes[start : start + _CHUNK_ROWS] += (_mix(block) - zero_terms[:n_features]).sum(
                    axis=1, dtype=np.uint64
                )
    return _mix(hashes)


def canonical_rows(
    X: np.ndarray | sp.csr_matrix, y: np.ndarray, sample_weight: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The rows to train on, in content order, and their weights.

    Zero-weight rows are dropped and identical rows merged (summing their
    weights). The weights are None when they are all equal, which trains
    exactly as without weights.
    """
    n_samples = X.shape[0]
    rows = np.arange(n_samples) if sample_weight is None else np.flatnonzero(sample_weight > 0)
    weights = (np.ones(n_samples, np.float32) if sample_weight is None else sample_weight)[rows]
    hashes = row_hashes(X[rows] if len(rows) < n_samples else X, y[rows])
    order = np.argsort(hashes, kind="stable")
    rows, weights, hashes = rows[order], weights[order], hashes[order]
    same_hash = np.flatnonzero(hashes[1:] == hashes[:-1]) + 1
    if len(same_hash):
        rows, weights = _merge_duplicates(X, y, rows, weights, hashes, same_hash)
    uniform = np.all(weights == weights[0])
    return rows, None if uniform else weights


def _merge_duplicates(X, y, rows, weights, hashes, same_hash):
    """Merge rows equal to the first row of their run of equal hashes."""
    run_start = np.maximum.accumulate(
        np.where(np.r_[True, hashes[1:] != hashes[:-1]], np.arange(len(rows)), 0)
    )
    candidates, firsts = same_hash, run_start[same_hash]
    a, b = rows[candidates], rows[firsts]
    if sp.issparse(X):
        equal = np.asarray((X[a] != X[b]).sum(axis=1)).ravel() == 0
    else:
        equal = np.all(X[a] == X[b], axis=1)
    y_a, y_b = np.asarray(y)[a], np.asarray(y)[b]
    equal &= np.all((y_a == y_b).reshape(len(a), -1), axis=1)
    merged = candidates[equal]
    weights = weights.copy()
    np.add.at(weights, run_start[merged], weights[merged])
    keep = np.ones(len(rows), dtype=bool)
    keep[merged] = False
    return rows[keep], weights[keep]


class Dataset:
    """Features and targets held once.

    Dense features become one tensor: on the training device when they fit in
    a quarter of its free memory, otherwise in pinned host memory, from which
    each batch is copied asynchronously. Sparse features stay CSR and are
    densified one batch at a time.
    """

    def __init__(self, X: np.ndarray | sp.csr_matrix, y: np.ndarray, device: torch.device) -> None:
        self.device = device
        self.sparse = sp.issparse(X)
        nbytes = (X.data.nbytes if self.sparse else X.nbytes) + y.nbytes
        self.streamed = not _fits_on(device, nbytes)
        self.storage = torch.device("cpu") if self.streamed else device
        self.X = X if self.sparse else self.hold(as_tensor(X, self.storage))
        self.y = self.hold(as_tensor(y, self.storage))

    def hold(self, tensor: torch.Tensor) -> torch.Tensor:
        """A tensor kept on the storage side (pinned when streamed)."""
        return tensor.pin_memory() if self.streamed else tensor

    def send(self, tensor: torch.Tensor) -> torch.Tensor:
        """A batch tensor moved to the training device (asynchronously when
        streamed; a no-op otherwise)."""
        return tensor.pin_memory().to(self.device, non_blocking=True) if self.streamed else tensor

    def subset(self, rows: np.ndarray, weights: np.ndarray | None) -> TensorData:
        return TensorData(self, rows, weights)

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows ``idx`` (on the storage device) as tensors on the device."""
        if self.sparse:
            X_b = _densify(self.X[idx.cpu().numpy()], self.device)
        else:
            X_b = self.send(self.X.index_select(0, idx))
        return X_b, self.send(self.y.index_select(0, idx))


def _fits_on(device: torch.device, nbytes: int) -> bool:
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= free // 4


class TensorData:
    """Some rows of a :class:`Dataset` (with weights), batched by index."""

    def __init__(self, source: Dataset, rows: np.ndarray, weights: np.ndarray | None) -> None:
        self.source = source
        self.n_samples = len(rows)
        self.rows = torch.from_numpy(rows).to(source.storage)
        self.w = None if weights is None else source.hold(as_tensor(weights, source.storage))

    def n_batches(self, batch_size: int) -> int:
        return math.ceil(self.n_samples / batch_size)

    def batches(
        self, batch_size: int, generator: torch.Generator | None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        """Yield ``(X, y, sample_weight)`` batches, shuffled when a generator
        is given."""
        source, w = self.source, self.w
        if generator is None:
            positions = None
            rows = self.rows
        else:
            positions = torch.randperm(self.n_samples, generator=generator)
            positions = positions.to(self.rows.device)
            rows = self.rows[positions]
        for start in range(0, self.n_samples, batch_size):
            X_b, y_b = source.take(rows[start : start + batch_size])
            if w is None:
                w_b = None
            elif positions is None:
                w_b = source.send(w[start : start + batch_size])
            else:
                w_b = source.send(w.index_select(0, positions[start : start + batch_size]))
            yield X_b, y_b, w_b


def _densify(rows: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(rows.toarray()).to(device, non_blocking=True)


def predict_batches(
    X: np.ndarray | sp.csr_matrix, batch_size: int, device: torch.device, block: int = 64
) -> Iterator[tuple[torch.Tensor, int]]:
    """Yield ``(batch, n_real_rows)`` with each batch padded with zero rows
    to a multiple of ``block`` rows.

    Matrix kernels pick their blocking from the number of rows, so padding
    makes a row's prediction on the CPU the same whatever else is predicted
    with it: ``predict(X)[i] == predict(X[i:i + 1])`` exactly.
    """
    batch_size = max(block, batch_size // block * block)
    dense = None if sp.issparse(X) else as_tensor(X, torch.device("cpu"))
    for start in range(0, X.shape[0], batch_size):
        if dense is None:
            X_b = torch.from_numpy(X[start : start + batch_size].toarray())
        else:
            X_b = dense[start : start + batch_size]
        n_rows = len(X_b)
        padded = -(-n_rows // block) * block
        if padded != n_rows:
            X_b = torch.cat([X_b, X_b.new_zeros((padded - n_rows, X_b.shape[1]))])
        yield X_b.to(device, non_blocking=True), n_rows
