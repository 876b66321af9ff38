"""The reference ladder's members and the percentile rule, without a stack."""
from __future__ import annotations

import numpy as np
import pytest

from trainhouse.core.featurizer import FeaturizerConfig, HashingFeaturizer
from trainhouse.core.trainer.examples import LabelMap
from trainhouse.core.trainer.mlp import MLP, TrainedModel
from trainhouse.evaluation.reference_ladder import Reference, majority_class, nearest_neighbour, percentile, untrained

LABELS = ["billing", "shipping", "technical"]
REFERENCE = Reference([
    {"input": "refund my card payment", "expected_output": "billing"},
    {"input": "I was charged twice on my invoice", "expected_output": "billing"},
    {"input": "where is my parcel", "expected_output": "shipping"},
    {"input": "the app crashes on start", "expected_output": "technical"},
], "4 training examples", True)


def test_percentile_ranks_within_the_population_it_is_given():
    assert percentile(90, [10, 20, 30]) == 100.0
    assert percentile(5, [10, 20, 30]) == 0.0
    assert percentile(20, [10, 20, 30]) == pytest.approx(100 * (1 + 0.5) / 3)
    assert percentile(50, [10, 50, 60, 70, 20]) == pytest.approx(100 * (2 + 0.5) / 5)
    with pytest.raises(ValueError):
        percentile(50, [])


def test_majority_class_answers_the_reference_prior_for_every_text():
    member = majority_class(REFERENCE, LABELS)
    answers = member.answer(["anything", "else at all"])
    assert answers[0] == answers[1] == {"billing": 0.5, "shipping": 0.25, "technical": 0.25}
    assert "always 'billing'" in member.description and "4 training examples" in member.description


def test_nearest_neighbour_answers_the_most_similar_reference_example():
    member = nearest_neighbour(REFERENCE, LABELS, HashingFeaturizer(FeaturizerConfig(dim=2 ** 12)))
    answers = member.answer(["where is my parcel today", "the app crashes", "refund my card payment"])
    tops = [max(a, key=a.get) for a in answers]
    assert tops == ["shipping", "technical", "billing"]
    for a in answers:
        assert set(a) == set(LABELS) and sum(a.values()) == pytest.approx(1.0) and min(a.values()) >= 0


def test_untrained_is_the_architecture_at_the_trainers_initial_weights():
    config = FeaturizerConfig(dim=2 ** 10)
    trained = TrainedModel(params=MLP.init(config.dim, (8,), 3, np.random.default_rng(99)).params,
                           label_map=LabelMap(LABELS), featurizer_config=config, hidden_sizes=(8,))
    member = untrained(trained, seed=3)
    texts = ["where is my parcel", "refund please"]
    start = TrainedModel(params=MLP.init(config.dim, (8,), 3, np.random.default_rng([3, 1])).params,
                         label_map=LabelMap(LABELS), featurizer_config=config, hidden_sizes=(8,))
    expected = start.predict_proba(texts)
    for row, answer in zip(expected, member.answer(texts)):
        assert list(answer) == LABELS
        assert [answer[label] for label in LABELS] == pytest.approx(row.tolist())
    assert "hidden sizes [8]" in member.description and "seed [3, 1]" in member.description
