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
single-threaded and sum in a fixed order, so results are deterministic run to run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

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


def sparse_matmul(X: SparseRows, W: np.ndarray) -> np.ndarray:
    """``X @ W`` for CSR rows ``X`` and a dense ``W`` of shape (dim, out)."""
    if X.values.dtype != W.dtype:
        X = SparseRows(X.indptr, X.indices, X.values.astype(W.dtype), X.dim)
    out = as_csr(X) @ W
    return np.asarray(out)


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
    compact = sp.csr_matrix((values, inverse, X.indptr), shape=(len(X), len(rows)))
    G = np.asarray(compact.T @ dz) if len(rows) else np.zeros((0, dz.shape[1]), dtype=dz.dtype)
    return RowSparse(rows.astype(np.int64), G.astype(dz.dtype, copy=False), (X.dim, int(dz.shape[1])))
