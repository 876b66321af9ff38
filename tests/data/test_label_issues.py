"""The label check on real user requests (HWU64 subset) whose wrong labels are known, because we put them there."""
from __future__ import annotations

import numpy as np
import pytest

from trainhouse.core.errors import InvalidArgument
from trainhouse.data.text import normalize
from trainhouse.data.validator import ValidationConfig, validate
from trainhouse.data.validator import label_issues
from trainhouse.data.validator.label_issues import MIN_PER_OUTPUT, confident_learning
from tests.intents import flip_labels, hwu64_subset, shuffle_labels


def by_type(findings, kind):
    return [f for f in findings if f.type == kind]


def run_check(examples: list[dict], **kwargs) -> label_issues.LabelCheck:
    inputs = [e["input"] for e in examples]
    return label_issues.check(inputs, [e["expected_output"] for e in examples], ["correct"] * len(examples),
                              [normalize(t) for t in inputs], **kwargs)


@pytest.fixture(scope="module")
def clean() -> list[dict]:
    return hwu64_subset()


@pytest.fixture(scope="module")
def clean_report(clean):
    return validate(clean, ValidationConfig())


def test_confident_joint_by_hand():
    # thresholds: class 0 = mean(0.9, 0.2) = 0.55, class 1 = mean(0.8, 0.7) = 0.75
    proba = np.array([[0.9, 0.1],    # labelled 0, confidently 0
                      [0.2, 0.8],    # labelled 0, 1 reaches its threshold: an issue, likely 1
                      [0.2, 0.8],    # labelled 1, fine
                      [0.3, 0.7]])   # labelled 1: 0.3 < 0.55 and 0.7 < 0.75, no confident column
    flagged, column = confident_learning(proba, np.array([0, 0, 1, 1]))
    assert flagged.tolist() == [False, True, False, False]
    assert column.tolist() == [0, 1, 1, -1]


def test_clean_real_data_is_valid_with_few_suspects(clean, clean_report):
    assert clean_report.valid, [f.message for f in clean_report.issues]
    assert clean_report.label_issues_checked == len(clean) == 840
    # 4.5% are flagged: HWU64's own debatable labels ("what goes with risotto" as cooking_recipe, likely
    # general_quirky) and examples too hard for a linear model trained on 32 per intent.
    assert clean_report.label_noise_rate < 0.06
    assert all(f.severity == "low" for f in by_type(clean_report.warnings, "label_issues"))
    assert clean_report.average_quality > 0.97
    assert not by_type(clean_report.warnings, "label_check_limited")


def test_shuffled_labels_make_the_dataset_invalid(clean, clean_report):
    report = validate(shuffle_labels(clean, 0.9, seed=1), ValidationConfig())
    assert not report.valid
    (issue,) = by_type(report.issues, "label_issues")
    assert issue.severity == "high" and "of labels look wrong" in issue.message
    assert report.label_noise_rate > 0.6 and issue.count == len(report.label_issues) > 500
    assert float(issue.details["noise_rate"]) == pytest.approx(report.label_noise_rate, abs=1e-4)
    assert issue.example_indexes == sorted(x.index for x in report.label_issues[:20])
    # Most doubtful first, every probability out-of-sample and the likely label a different output.
    confidences = [x.given_confidence for x in report.label_issues]
    assert confidences == sorted(confidences)
    assert all(x.likely != x.given and 0 <= x.given_confidence <= x.likely_confidence <= 1 for x in report.label_issues)
    # The text checks see nothing wrong; the score falls by about half the noise rate.
    assert clean_report.average_quality - report.average_quality == pytest.approx(
        0.5 * (report.label_noise_rate - clean_report.label_noise_rate), abs=0.02)
    assert report.average_quality < 0.7


def test_flagged_examples_are_the_flipped_ones(clean):
    noisy, flipped = flip_labels(clean, 0.1, seed=2)
    result = run_check(noisy)
    flagged = {x.index for x in result.issues}
    precision = len(flagged & flipped) / len(flagged)
    recall = len(flagged & flipped) / len(flipped)
    # Flagging at random would give precision 0.1 at any recall. Measured 0.52 / 0.62: the ~38 examples
    # flagged on the clean data (see above) bound the precision that can be measured against our flips.
    assert precision > 0.5 and recall > 0.5, (precision, recall)
    # A caught flip mostly proposes the output the example had before.
    caught = [x for x in result.issues if x.index in flipped]
    assert sum(x.likely == clean[x.index]["expected_output"] for x in caught) / len(caught) > 0.6


def test_the_threshold_is_an_option(clean):
    noisy, _ = flip_labels(clean, 0.3, seed=3)
    strict = validate(noisy, ValidationConfig())
    assert not strict.valid and strict.label_noise_rate >= 0.1
    lenient = validate(noisy, ValidationConfig(max_label_noise=0.9))
    assert lenient.valid
    (warning,) = by_type(lenient.warnings, "label_issues")
    assert warning.severity == "low" and warning.details["max_label_noise"] == "0.9"
    off = validate(noisy, ValidationConfig(label_issues=False))
    assert off.valid and off.label_issues == [] and off.label_issues_checked == 0
    assert not by_type(off.warnings, "label_issues") and off.average_quality > strict.average_quality


@pytest.mark.parametrize("value", [0.0, -0.1, 1.5, float("nan")])
def test_bad_threshold_names_the_field(value):
    with pytest.raises(InvalidArgument) as err:
        ValidationConfig(max_label_noise=value)
    assert err.value.field == "options.max_label_noise"


def test_repeats_of_a_wrong_example_share_its_verdict(clean):
    """Checked once: a copy in the training folds would otherwise vouch for its twin."""
    wrong = {"input": "set an alarm for seven tomorrow morning", "expected_output": "takeaway_query"}
    data = clean + [dict(wrong) for _ in range(4)]
    result = run_check(data)
    assert {x.index for x in result.issues if x.given == "takeaway_query"} >= {840, 841, 842, 843}
    assert next(x for x in result.issues if x.index == 840).likely == "alarm_query"
    assert result.checked == len(data)


def test_small_outputs_are_left_out_and_said_so(clean):
    data = clean + [{"input": f"open the garage door {i}", "expected_output": "garage"} for i in range(3)]
    report = validate(data, ValidationConfig())
    (limited,) = by_type(report.warnings, "label_check_limited")
    assert limited.details["small_outputs"] == "garage" and limited.count == 3
    assert f"fewer than {MIN_PER_OUTPUT} distinct examples" in limited.message
    assert report.label_issues_checked == 840

    tiny = validate([{"input": f"turn on the light number {i}", "expected_output": "lights"} for i in range(20)] +
                    [{"input": "what's the weather", "expected_output": "weather"}], ValidationConfig())
    (skipped,) = by_type(tiny.warnings, "label_check_limited")
    assert "labels were not checked" in skipped.message and tiny.label_issues_checked == 0


def test_a_large_dataset_is_checked_on_a_sample(clean):
    noisy = shuffle_labels(clean, 0.9, seed=4)
    result = run_check(noisy, max_checked=400)
    assert result.sampled and result.checked == 400 and result.eligible == 840 and result.population == 840
    assert "random sample of 400 of the 840" in result.limits[0]
    assert result.noise_rate > 0.5
    # Many outputs: the cap is on examples x outputs (21 outputs here).
    result = run_check(noisy, max_work=21 * 500)
    assert result.sampled and result.checked == 500 and "capped at 10,500 examples x outputs, 21 outputs" in \
        result.limits[0]
