"""Sparse first layer: hashed features stay sparse from the featurizer to the gradient.

A batch of hashed n-gram rows has ~100 nonzeros out of ``dim`` (2^14 by default) columns, so
the first layer never densifies it:

* forward  ``X @ W1``: a CSR x dense product (SciPy's compiled ``csr_matvecs``), i.e. for every
  row the value-weighted sum of the W1 rows its nonzero buckets select;
* backward ``X^T @ dz``: only the buckets present in the batch have a nonzero gradient row. The
  batch's distinct buckets ``u`` are found once (a presence map, ``present_buckets``), the batch is re-indexed onto
  them and ``X_u^T @ dz`` is a (len(u), hidden) scatter-add done by the same compiled kernel.
  The result is a ``RowSparse`` gradient: rows ``u`` of an otherwise zero (dim, hidden) matrix.

Measured on this project's data (bench/trainer.py) SciPy's kernels beat ``np.add.at`` /
``np.add.reduceat`` gathers by 10x or more and a dense (batch, dim) matmul by 5-15x; they are
single-threaded and sum in a fixed order, so results are deterministic run to run. At batch 64
building the ``csr_matrix`` objects around them (format checks, index dtype choices) cost about
as much as the kernel, so the batch's arrays go to the kernels (``csr_matvecs``/``csc_matvecs``,
``Y += A @ X``) directly when their dtypes are the ones the kernels take as they are; anything
else takes the public ``scipy.sparse`` path. Both compute the same sums in the same order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

try:  # SciPy's compiled CSR/CSC kernels, what csr_matrix @ ndarray calls
    from scipy.sparse import _sparsetools
except ImportError:  # pragma: no cover - a SciPy that moved them: the public path below
    _sparsetools = None

from trainhouse.core.featurizer import SparseRows


@dataclass
class RowSparse:
    """A gradient that is zero except on ``rows`` (sorted, unique), where it equals ``values``."""

    rows: np.ndarray      # int64 (r,)
    values: np.ndarray    # (r, cols)
    shape: tuple[int, int]

    def to_dense(self) -> np.ndarray:
        out = np.zeros(self.shape, dtype=self.values.dtype)
        out[self.rows] = self.values
        return out

    def scaled(self, factor: Any) -> "RowSparse":
        return RowSparse(self.rows, self.values * factor, self.shape)

    def sq_norm(self) -> float:
        return float(np.sum(self.values.astype(np.float64) ** 2))

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype


def dense(g: np.ndarray | RowSparse) -> np.ndarray:
    """``g`` as a dense array (a no-op for arrays)."""
    return g.to_dense() if isinstance(g, RowSparse) else g


def as_csr(X: SparseRows) -> sp.csr_matrix:
    return sp.csr_matrix((X.values, X.indices, X.indptr), shape=(len(X), X.dim))


def _kernel_ok(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, dense: np.ndarray) -> bool:
    """Whether the arrays can go to the compiled kernel as they are (else: the public path)."""
    return (_sparsetools is not None and indptr.dtype == indices.dtype and indptr.dtype in (np.int32, np.int64)
            and values.dtype == dense.dtype and dense.dtype in (np.float32, np.float64) and dense.ndim == 2
            and dense.flags.c_contiguous and indptr.flags.c_contiguous and indices.flags.c_contiguous
            and values.flags.c_contiguous)


def sparse_matmul(X: SparseRows, W: np.ndarray) -> np.ndarray:
    """``X @ W`` for CSR rows ``X`` and a dense ``W`` of shape (dim, out)."""
    values = X.values.astype(W.dtype, copy=False)
    if _kernel_ok(X.indptr, X.indices, values, W) and W.shape[0] == X.dim:
        out = np.zeros((len(X), W.shape[1]), dtype=W.dtype)
        _sparsetools.csr_matvecs(len(X), X.dim, W.shape[1], X.indptr, X.indices, values, W.reshape(-1),
                                 out.reshape(-1))
        return out
    return np.asarray(as_csr(SparseRows(X.indptr, X.indices, values, X.dim)) @ W)


def present_buckets(indices: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct buckets, position of each index among them): ``np.unique(...,
    return_inverse=True)`` without sorting, via a presence map over the ``dim`` buckets
    (O(dim + nnz); several times faster for a batch's few thousand nonzeros)."""
    if len(indices) * 16 < dim:  # very sparse batch: sorting the few indices is cheaper
        rows, inverse = np.unique(indices, return_inverse=True)
        return rows.astype(np.int64), inverse.reshape(-1)
    present = np.zeros(dim, dtype=bool)
    present[indices] = True
    rows = np.flatnonzero(present)
    position = np.empty(dim, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    return rows, position[indices]


def sparse_weight_grad(X: SparseRows, dz: np.ndarray) -> RowSparse:
    """``X^T @ dz`` as a ``RowSparse`` over the buckets present in ``X``."""
    rows, inverse = present_buckets(X.indices, X.dim)
    values = X.values.astype(dz.dtype, copy=False)
    if _kernel_ok(X.indptr, inverse, values, dz) and dz.shape[0] == len(X):
        # X_u^T as CSC (its columns are X's rows) times dz, accumulated into zeros
        G = np.zeros((len(rows), dz.shape[1]), dtype=dz.dtype)
        _sparsetools.csc_matvecs(len(rows), len(X), dz.shape[1], X.indptr, inverse, values, dz.reshape(-1),
                                 G.reshape(-1))
        return RowSparse(rows.astype(np.int64, copy=False), G, (X.dim, int(dz.shape[1])))
    compact = sp.csr_matrix((values, inverse, X.indptr), shape=(len(X), len(rows)))
    G = np.asarray(compact.T @ dz) if len(rows) else np.zeros((0, dz.shape[1]), dtype=dz.dtype)
    return RowSparse(rows.astype(np.int64), G.astype(dz.dtype, copy=False), (X.dim, int(dz.shape[1])))
