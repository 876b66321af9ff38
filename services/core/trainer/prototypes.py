"""Class prototypes: the mean of the L2-normalised representations of an output's examples.

Few-shot training initialises its output layer from them and transfer learning the rows of
newly added outputs, because with a handful of examples "how close is this input to the
average example of each output" (nearest centroid, cosine similarity) is already a good
classifier, and gradient descent from there needs few steps.
"""
from __future__ import annotations

import numpy as np

from trainhouse.core.featurizer import SparseRows
from trainhouse.core.trainer.mlp import MLP
from trainhouse.core.trainer.sparse_ops import as_csr


def _unit_rows(P: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(P, axis=1, keepdims=True)
    return P / np.where(norms > 0, norms, 1.0)


def representations(mlp: MLP, X: SparseRows, layers: int) -> np.ndarray:
    """Eval-mode activations after the first ``layers`` hidden layers, shape (n, width); ``layers``
    must be >= 1 (the raw input is handled sparsely by ``prototypes``)."""
    _, cache = mlp.forward(X)
    return np.asarray(cache["acts"][layers], dtype=np.float64)


def prototypes(X: SparseRows | np.ndarray, y: np.ndarray, weights: np.ndarray,
               n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(unit prototypes of shape (n_classes, width), mask of classes that have examples).

    Rows of ``X`` are L2-normalised first (featurizer rows already are), averaged per class with
    ``weights`` and re-normalised; a class without examples gets the zero vector.
    """
    Y = np.zeros((len(y), n_classes))
    Y[np.arange(len(y)), y] = weights
    if isinstance(X, SparseRows):
        csr = as_csr(X).astype(np.float64)
        norms = np.sqrt(np.asarray(csr.multiply(csr).sum(axis=1))).ravel()
        scale = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0)
        P = np.asarray((csr.T @ (Y * scale[:, None])).T)
    else:
        P = Y.T @ _unit_rows(np.asarray(X, dtype=np.float64))
    present = Y.sum(axis=0) > 0
    return _unit_rows(P), present
