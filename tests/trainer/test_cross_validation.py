"""Out-of-fold probabilities: an example is never scored by a model that saw its label."""
from __future__ import annotations

import numpy as np

from trainhouse.core.featurizer import HashingFeaturizer
from trainhouse.core.trainer.cross_validation import (CrossValConfig, fit_linear_softmax, out_of_fold_proba,
                                                    stratified_folds)
from tests.intents import make_examples


def test_folds_are_stratified():
    y = np.repeat(np.arange(3), [10, 7, 23])
    fold = stratified_folds(y, 5, np.random.default_rng(0))
    for c in range(3):
        sizes = np.bincount(fold[y == c], minlength=5)
        assert sizes.max() - sizes.min() <= 1


def test_memorised_labels_are_not_predicted_out_of_fold():
    """Labels that only a per-example token explains: in-sample they are learned, out of fold they are chance."""
    rng = np.random.default_rng(0)
    texts = [f"zq{i:04d}x{rng.integers(1 << 30)}" for i in range(300)]
    y = rng.integers(0, 2, 300)
    rows = HashingFeaturizer().transform_sparse(texts)
    config = CrossValConfig()
    in_sample = fit_linear_softmax(rows, y, 2, config, np.random.default_rng(1)).predict_proba(rows)
    assert (in_sample.argmax(axis=1) == y).mean() > 0.95
    out_of_fold = out_of_fold_proba(rows, y, 2, config)
    assert 0.35 < (out_of_fold.argmax(axis=1) == y).mean() < 0.65
    np.testing.assert_allclose(out_of_fold.sum(axis=1), 1, rtol=1e-5)


def test_learnable_labels_are_predicted_out_of_fold_and_deterministically():
    data = make_examples(30, seed=5)
    labels = sorted({e["expected_output"] for e in data})
    y = np.array([labels.index(e["expected_output"]) for e in data])
    rows = HashingFeaturizer().transform_sparse([e["input"] for e in data])
    proba = out_of_fold_proba(rows, y, len(labels))
    assert (proba.argmax(axis=1) == y).mean() > 0.9
    np.testing.assert_array_equal(proba, out_of_fold_proba(rows, y, len(labels)))
