"""Out-of-fold predicted probabilities: every example scored by a model that never saw it.

Why: a model scores its own training examples with the labels it memorised, so in-sample
probabilities cannot say that a label is unlikely. Confident learning (the DataService's label
check) needs each example's probabilities from a model trained without it; K-fold
cross-validation gives that at the cost of K fits.

The model is deliberately quick: a linear softmax (our ``MLP`` with no hidden layer) over the
hashed n-gram rows, fitted with lazy Adam (only the buckets of a batch are touched) for a fixed
number of epochs. A few epochs are the regulariser, so there is nothing to tune per dataset; the
probabilities are good enough to rank examples, not a model to ship.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trainhouse.core.featurizer import SparseRows
from trainhouse.core.trainer.mlp import MLP, loss_and_grads
from trainhouse.core.trainer.optimizers import Adam


@dataclass(frozen=True)
class CrossValConfig:
    """Settings of the quick out-of-fold model; the defaults are what the label check uses."""

    folds: int = 5
    epochs: int = 5
    # Small datasets get more epochs so that every fold still takes at least this many steps.
    min_steps: int = 150
    batch_size: int = 32
    learning_rate: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ValueError("cross-validation needs at least 2 folds")
        if self.epochs < 1 or self.batch_size < 1 or self.min_steps < 0 or not self.learning_rate > 0:
            raise ValueError("epochs and batch_size must be >= 1, min_steps >= 0, learning_rate > 0")


def stratified_folds(y: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """Fold number of each example: every class is dealt round-robin over the folds after a
    shuffle, so each fold holds about 1/folds of every class (a class needs >= folds examples
    to appear in every training split)."""
    fold = np.empty(len(y), dtype=np.int64)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        fold[idx] = (np.arange(len(idx)) + int(rng.integers(folds))) % folds
    return fold


def fit_linear_softmax(rows: SparseRows, y: np.ndarray, n_classes: int, config: CrossValConfig,
                       rng: np.random.Generator) -> MLP:
    """A linear softmax model over ``rows`` fitted to labels ``y`` (cross-entropy, lazy Adam)."""
    mlp = MLP.init(rows.dim, (), n_classes, rng)
    optimizer = Adam(sparse_updates=True)
    n = len(y)
    coef = np.ones(n, dtype=np.float32)
    negative = np.zeros(n, dtype=bool)
    steps_per_epoch = max(1, math.ceil(n / config.batch_size))
    epochs = max(config.epochs, math.ceil(config.min_steps / steps_per_epoch))
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, config.batch_size):
            batch = order[start:start + config.batch_size]
            _, grads, _ = loss_and_grads(mlp, rows.take(batch), y[batch], coef[batch], negative[batch])
            optimizer.step(mlp.arrays(), [g for pair in grads for g in pair], config.learning_rate)
    return mlp


def out_of_fold_proba(rows: SparseRows, y: np.ndarray, n_classes: int,
                      config: CrossValConfig | None = None) -> np.ndarray:
    """(n, n_classes) probabilities; row i comes from the model of the fold that held i out.

    ``y`` holds class indexes in [0, n_classes). Deterministic for a given ``config.seed``.
    """
    config = config or CrossValConfig()
    rng = np.random.default_rng([config.seed, 14])
    fold = stratified_folds(y, config.folds, rng)
    proba = np.zeros((len(y), n_classes), dtype=np.float64)
    for f in range(config.folds):
        held_out = np.flatnonzero(fold == f)
        if len(held_out) == 0:
            continue
        train = np.flatnonzero(fold != f)
        model = fit_linear_softmax(rows.take(train), y[train], n_classes, config, rng)
        proba[held_out] = model.predict_proba(rows.take(held_out))
    return proba
