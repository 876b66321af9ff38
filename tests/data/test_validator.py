"""Validation checks on hand-made datasets whose problems are known."""
from __future__ import annotations

import random

import pytest

from trainhouse.core.errors import InvalidArgument
from trainhouse.data.synthetic.generation_config import GenerationConfig
from trainhouse.data.synthetic.generator import SyntheticGenerator
from trainhouse.data.synthetic.scenarios import builtin
from trainhouse.data.validator import ValidationConfig, validate
from trainhouse.data.validator.duplicates import jaccard, near_duplicates, shingles


def ex(text: str, output: str, feedback: str = "correct") -> dict:
    return {"input": text, "expected_output": output, "feedback": feedback}


def by_type(findings, kind):
    return [f for f in findings if f.type == kind]


def test_seed_000_imbalance_example():
    data = [ex(f"billing question {i}", "billing") for i in range(45)] + \
           [ex(f"technical question {i}", "technical") for i in range(12)] + \
           [ex(f"account question {i}", "account") for i in range(43)]
    report = validate(data, ValidationConfig(duplicates=False, bias=False))
    assert report.valid and report.issues == []
    (warning,) = by_type(report.warnings, "imbalance")
    assert warning.message == "Class 'technical' is underrepresented (12% of total)"
    assert warning.severity == "medium" and warning.suggestion == "Generate more 'technical' examples"
    assert report.class_balance == {"billing": 0.45, "account": 0.43, "technical": 0.12}
    assert report.total_examples == 100 and report.average_quality == 1.0


def test_severe_and_over_representation_and_single_output():
    data = [ex(f"a {i}", "a") for i in range(88)] + [ex(f"b {i}", "b") for i in range(10)] + [ex("c 1", "c"), ex("c 2", "c")]
    warnings = by_type(validate(data, ValidationConfig()).warnings, "imbalance")
    severity = {f.details["output"]: f.severity for f in warnings}
    assert severity == {"a": "medium", "b": "medium", "c": "high"}
    assert "overrepresented (88% of total)" in next(f.message for f in warnings if f.details["output"] == "a")
    single = validate([ex("hello there", "x")] * 3, ValidationConfig())
    assert by_type(single.warnings, "single_output")[0].severity == "high"


def test_exact_and_near_duplicates():
    data = [ex("Where is my order #1234?", "track"), ex("where is my ORDER 1234", "track"),  # exact after normalising
            ex("where is my order 12345", "track"),                                        # near (0.95)
            ex("cancel my subscription today", "cancel"), ex("I love the new design", "praise")]
    report = validate(data, ValidationConfig())
    assert report.duplicates == 1 and by_type(report.warnings, "duplicate")[0].example_indexes == [1]
    assert report.near_duplicates == 1
    near = by_type(report.warnings, "near_duplicate")[0]
    assert near.example_indexes == [2] and near.details["first_pair"] == "0,2"
    strict = validate(data, ValidationConfig(near_duplicate_threshold=0.99))
    assert strict.near_duplicates == 0 and strict.duplicates == 1


def test_near_duplicates_are_confirmed_with_exact_jaccard():
    rng = random.Random(0)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
    texts = [" ".join(rng.choice(words) for _ in range(8)) for _ in range(300)]
    for i, j, sim in near_duplicates(texts, 0.6):
        assert jaccard(shingles(texts[i]), shingles(texts[j])) == sim >= 0.6 and j < i


def test_quality_issues_and_scores():
    data = [ex("", "a"), ex("\x00\x01binary", "a"), ex("12345 !!!", "b"), ex("ok", "b"),
            ex("x" * 50, "a"), ex("A perfectly fine question about billing", "a"),
            ex("A perfectly fine question about billing", "b"), ex("another fine question", "b"),
            ex("THIS IS A VERY LOUD MESSAGE", "a"), ex("hello", "")]
    report = validate(data, ValidationConfig(max_length=40, duplicates=False, balance=False, bias=False))
    assert not report.valid
    issues = {f.type: f for f in report.issues}
    assert issues["empty"].example_indexes == [0, 9]
    assert set(issues["non_text"].example_indexes) == {1, 2}
    assert issues["conflicting_labels"].example_indexes == [5, 6]   # 20% of examples: an issue
    warnings = {f.type: f for f in report.warnings}
    assert warnings["too_short"].example_indexes == [3]
    assert warnings["too_long"].example_indexes == [4]
    assert report.conflicting_inputs == 1
    # scores: 0,0,0, 0.5 (short), 0.6 (long, repeated chars), 0.5, 0.5, 1, 0.9 (shouting), 0
    assert report.average_quality == pytest.approx((0.5 + 0.6 + 0.5 + 0.5 + 1 + 0.9) / 10)


def test_incorrect_feedback_is_not_a_conflict_and_rare_conflicts_only_warn():
    data = [ex("refund please", "billing"), ex("refund please", "technical", "incorrect")]
    assert validate(data, ValidationConfig()).conflicting_inputs == 0
    many = [ex(f"question number {i}", "a" if i % 2 else "b") for i in range(300)] + \
           [ex("same words", "a"), ex("same words", "b")]
    # Outputs by the parity of a number are noise to a text model: the label check would (rightly) flag them.
    report = validate(many, ValidationConfig(duplicates=False, label_issues=False))
    assert report.valid
    assert by_type(report.warnings, "conflicting_labels")[0].severity == "medium"


def _gendered(bias_strength: float, n: int = 400, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    data = []
    for i in range(n):
        female = i % 2 == 0
        who = rng.choice(["my wife", "she", "my mother"]) if female else rng.choice(["my husband", "he", "my father"])
        skew = rng.random() < bias_strength
        output = ("refund" if female else "technical") if skew else rng.choice(["refund", "technical"])
        data.append(ex(f"{who} needs help with order {i}", output))
    return data


def test_bias_is_detected_with_a_chi_square_test():
    # 20% of these outputs are a coin flip the inputs cannot explain; the label check flags them (an
    # issue at that rate), which is not what this test is about.
    report = validate(_gendered(0.6), ValidationConfig(duplicates=False, label_issues=False))
    (finding,) = by_type(report.warnings, "bias")
    assert finding.details["group"] == "gender" and float(finding.details["p_value"]) < 0.01
    assert finding.details["subgroups"] == "female,male"
    assert float(finding.details["cramers_v"]) > 0.3 and finding.severity in ("medium", "high")
    assert "gender" in finding.message and "chi-square" in finding.message
    assert report.valid  # bias warns, it does not invalidate


def test_no_bias_warning_without_association():
    report = validate(_gendered(0.0, seed=3), ValidationConfig(duplicates=False))
    assert by_type(report.warnings, "bias") == []


def test_single_subgroup_is_compared_with_the_rest():
    data = [ex(f"the muslim customer asked about invoice {i}", "fraud_check") for i in range(20)] + \
           [ex(f"a customer asked about invoice {i}", "billing" if i % 2 else "fraud_check") for i in range(80)]
    (finding,) = by_type(validate(data, ValidationConfig()).warnings, "bias")
    assert finding.details["subgroups"] == "muslim,no religion terms" and finding.details["output"] == "fraud_check"


def test_checks_can_be_switched_off():
    data = [ex("", "a"), ex("dup", "a"), ex("dup", "a")]
    report = validate(data, ValidationConfig(duplicates=False, quality=False, balance=False, bias=False,
                                             label_issues=False))
    assert report.valid and report.warnings == [] and report.average_quality == 0
    assert report.duplicates == 1  # statistics still count exact duplicates


def test_generated_data_validates():
    examples = SyntheticGenerator(builtin("task-automation"),
                                  GenerationConfig(count=600, difficulty="easy", seed=4)).generate().examples
    report = validate(examples, ValidationConfig())
    assert report.valid, [f.message for f in report.issues]
    assert not by_type(report.warnings, "imbalance") and not by_type(report.warnings, "bias")
    assert report.average_quality > 0.95


@pytest.mark.parametrize("options, field", [
    ({"near_duplicate_threshold": 0}, "options.near_duplicate_threshold"),
    ({"bias_alpha": 0.7}, "options.bias_alpha"), ({"imbalance_ratio": 1.0}, "options.imbalance_ratio"),
    ({"min_length": 50, "max_length": 10}, "options.min_length"),
])
def test_bad_options_name_the_field(options, field):
    with pytest.raises(InvalidArgument) as err:
        ValidationConfig(**options)
    assert err.value.field == field
