"""Accuracy of our trainer vs scikit-learn's LogisticRegression on the very same hashed features."""
import numpy as np
import pytest

from trainhouse.core.featurizer import FeaturizerConfig, HashingFeaturizer
from trainhouse.core.trainer import SupervisedConfig, SupervisedTrainer
from trainhouse.core.trainer.sparse_ops import as_csr

linear_model = pytest.importorskip("sklearn.linear_model")
FEATURES = FeaturizerConfig(dim=4096)
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def splits(intents):
    """Per seed: a small training split (8 per output), a held-out split (40 per output) and the
    held-out accuracy of LogisticRegression (sklearn defaults: L2, C=1, lbfgs) on their features."""
    featurizer = HashingFeaturizer(FEATURES)
    out = []
    for seed in SEEDS:
        train, test = intents(50 + seed, per_intent=8), intents(500 + seed, per_intent=40)
        X_train = as_csr(featurizer.transform_sparse([e.input for e in train]))
        X_test = as_csr(featurizer.transform_sparse([e.input for e in test]))
        lr = linear_model.LogisticRegression(max_iter=2000).fit(X_train, [e.expected_output for e in train])
        out.append((train, test, float(np.mean(lr.predict(X_test) == np.array([e.expected_output for e in test])))))
    return out


@pytest.mark.parametrize("options", [{"hiddenSizes": []}, {}], ids=["linear", "mlp-default"])
def test_within_three_points_of_logistic_regression(splits, options):
    results = []
    for seed, (train, test, theirs) in zip(SEEDS, splits):
        cfg = SupervisedConfig.from_dict({"epochs": 30, "learningRate": 0.01, "batchSize": 16,
                                          "featurizer": FEATURES.to_dict(), "validationSplit": 0.0, "seed": seed,
                                          **options})
        model = SupervisedTrainer(cfg, train).train().model
        ours = np.mean([p == e.expected_output for (p, _), e in zip(model.predict([e.input for e in test]), test)])
        results.append((float(ours), theirs))
    ours, theirs = np.mean(results, axis=0)
    assert theirs > 0.6  # a task where the comparison means something (majority class is 1/6)
    assert ours >= theirs - 0.03, results
