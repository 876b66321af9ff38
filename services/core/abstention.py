"""What "out of scope" means for a classifier's probabilities: one definition for training,
export, serving and evaluation.

* ``OUT_OF_SCOPE`` is the reserved output that marks an out-of-scope example. When training data
  has such examples they are trained as a real output (the model learns what out of scope looks
  like: Larson et al. 2019's "oos-train"), and their held-out share chooses the threshold.
* ``abstention_score`` is the number a version's threshold applies to: the calibrated probability
  of the best *catalogue* output, or -1 when the top output is ``OUT_OF_SCOPE`` itself (so such a
  row abstains under every threshold >= 0, and a threshold of 0 means "only then").
* A row abstains when its score is strictly below the threshold (``abstains``).

Kept free of trainer imports so serving (onnx_model, the registry) can use it without pulling in
the trainer package.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

OUT_OF_SCOPE = "__out_of_scope__"


def out_of_scope_column(labels: Sequence[str]) -> int | None:
    """The column of ``OUT_OF_SCOPE`` in a catalogue, or None when the version never learned it."""
    labels = list(labels)
    return labels.index(OUT_OF_SCOPE) if OUT_OF_SCOPE in labels else None


def in_scope_ranking(probs: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Per row, the catalogue columns by decreasing probability, ``OUT_OF_SCOPE`` left out (what
    Predict presents as ``top``: never the reserved output as an intent)."""
    order = np.argsort(np.asarray(probs), axis=1)[:, ::-1]  # ties: the order Predict always served
    column = out_of_scope_column(labels)
    if column is None:
        return order
    return order[order != column].reshape(order.shape[0], order.shape[1] - 1)


def abstention_score(probs: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Per row: the best catalogue output's probability; -1 where ``OUT_OF_SCOPE`` is the top output."""
    probs = np.asarray(probs, dtype=np.float64)
    column = out_of_scope_column(labels)
    if column is None:
        return probs.max(axis=1) if probs.shape[1] else np.zeros(len(probs))
    rest = probs.copy()
    rest[:, column] = -np.inf
    return np.where(probs.argmax(axis=1) == column, -1.0, rest.max(axis=1))


def abstains(probs: np.ndarray, labels: Sequence[str], threshold: float) -> np.ndarray:
    """Which rows a version answers as out of scope: score strictly below its threshold."""
    return abstention_score(probs, labels) < threshold


def served_outputs(probs: np.ndarray, labels: Sequence[str], threshold: float) -> np.ndarray:
    """The output a version serves for each row: ``OUT_OF_SCOPE`` where it abstains, else its best
    catalogue output. What anything that scores a version (the promotion gate) must compare, so a
    version is judged on the answers it gives, abstentions included."""
    labels_arr = np.asarray(list(labels), dtype=object)
    best = labels_arr[in_scope_ranking(probs, labels)[:, 0]] if len(probs) else np.zeros(0, dtype=object)
    return np.where(abstains(probs, labels, threshold), OUT_OF_SCOPE, best)
