"""Run the requested checks over examples and classify findings into issues and warnings.

Issues (the dataset is not valid): empty or non-text examples; conflicting labels on at least
``CONFLICT_ISSUE_SHARE`` of the examples; an estimated label-noise rate (label_issues.py) at or
above ``max_label_noise``. Everything else is a warning: duplicates, near duplicates, too short /
too long inputs, conflicting labels below that share, label issues below that rate (medium from
half of it, low below), a label check that could not cover every example, imbalance, bias.
Statistics: ``duplicates`` and ``class_balance`` always; ``near_duplicates`` with the duplicates
check; ``average_quality`` and ``conflicting_inputs`` with the quality check (0 otherwise); the
label figures with the label check. ``average_quality`` sees the labels when both run: each
flagged example loses ``LABEL_ISSUE_PENALTY`` (see quality.py).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trainhouse.core.errors import InvalidArgument
from trainhouse.data.text import normalize
from trainhouse.data.validator import balance, bias, duplicates, label_issues, quality
from trainhouse.data.validator.report import MAX_INDEXES, Finding, ValidationReport, percent, share_severity

CONFLICT_ISSUE_SHARE = 0.01


@dataclass(frozen=True)
class ValidationConfig:
    duplicates: bool = True
    quality: bool = True
    balance: bool = True
    bias: bool = True
    label_issues: bool = True
    near_duplicate_threshold: float = 0.8
    min_length: int = 3
    max_length: int = 2000
    bias_alpha: float = 0.01
    imbalance_ratio: float = 0.5
    # Estimated share of wrong labels at or above which the dataset is invalid.
    max_label_noise: float = 0.1

    def __post_init__(self) -> None:
        def unit(name: str, value: float, hi: float = 1.0, hi_open: bool = False) -> None:
            if not (math.isfinite(value) and 0 < value and (value < hi if hi_open else value <= hi)):
                raise InvalidArgument(f"options.{name}", f"must be in (0, {hi:g}{')' if hi_open else ']'}, got {value}")
        unit("near_duplicate_threshold", self.near_duplicate_threshold)
        unit("bias_alpha", self.bias_alpha, 0.5)
        unit("imbalance_ratio", self.imbalance_ratio, hi_open=True)
        unit("max_label_noise", self.max_label_noise)
        if not 0 <= self.min_length <= 100_000:
            raise InvalidArgument("options.min_length", "must be between 0 and 100000")
        if not 1 <= self.max_length <= 10_000_000:
            raise InvalidArgument("options.max_length", "must be between 1 and 10000000")
        if self.min_length > self.max_length:
            raise InvalidArgument("options.min_length", "must not exceed options.max_length")


_QUALITY_TEXT = {
    "empty": ("{n} example(s) have an empty input or output", "Remove them or fill in the missing text"),
    "non_text": ("{n} example(s) are not text (control characters or no letters)",
                 "Remove them or fix the encoding of the source"),
    "too_short": ("{n} example(s) have inputs shorter than {min} characters",
                  "Remove them or write fuller inputs"),
    "too_long": ("{n} example(s) have inputs longer than {max} characters",
                 "Shorten them or split them into several examples"),
}


def validate(examples: Sequence[dict[str, Any]], config: ValidationConfig) -> ValidationReport:
    inputs = [e["input"] for e in examples]
    outputs = [e["expected_output"] for e in examples]
    feedback = [e.get("feedback") or "correct" for e in examples]
    normalized = [normalize(t) for t in inputs]
    n = len(examples)
    report = ValidationReport(total_examples=n, class_balance=balance.shares(outputs))

    exact = duplicates.exact_duplicates(normalized, outputs)
    report.duplicates = len(exact)
    if config.duplicates and n:
        if exact:
            share = len(exact) / n
            report.warnings.append(Finding(
                "duplicate", f"{len(exact)} example(s) repeat an earlier example ({percent(share)} of total)",
                share_severity(share, 0.01, 0.1), "Remove the repeated examples", count=len(exact),
                example_indexes=exact, details={"share": f"{share:.4f}"}))
        near = duplicates.near_duplicates(normalized, config.near_duplicate_threshold)
        report.near_duplicates = len(near)
        if near:
            share = len(near) / n
            report.warnings.append(Finding(
                "near_duplicate",
                f"{len(near)} input(s) are near-duplicates of an earlier input "
                f"(Jaccard >= {config.near_duplicate_threshold:g} over character 5-shingles)",
                share_severity(share, 0.05, 0.2), "Remove near-duplicates or vary their wording",
                count=len(near), example_indexes=[i for i, _, _ in near],
                details={"share": f"{share:.4f}", "threshold": f"{config.near_duplicate_threshold:g}",
                         "first_pair": f"{near[0][1]},{near[0][0]}"}))

    labels = label_issues.check(inputs, outputs, feedback, normalized) if config.label_issues and n else None
    if labels is not None:
        report.label_issues = labels.issues
        report.label_issues_checked = labels.checked
        report.label_noise_rate = labels.noise_rate
        for finding, is_issue in _label_findings(labels, inputs, config.max_label_noise):
            (report.issues if is_issue else report.warnings).append(finding)

    if config.quality and n:
        result = quality.assess(inputs, outputs, feedback, normalized, config.min_length, config.max_length)
        lost = 0.0
        if labels is not None and labels.checked:
            # On a sample, the sample's loss stands for the examples it was drawn from.
            lost = (quality.label_issue_loss(result.scores, [x.index for x in labels.issues])
                    * labels.population / labels.checked)
        report.average_quality = max(0.0, (sum(result.scores) - lost) / n)
        report.conflicting_inputs = len(result.conflicts)
        for kind, (message, suggestion) in _QUALITY_TEXT.items():
            idx = result.flagged.get(kind, [])
            if not idx:
                continue
            share = len(idx) / n
            finding = Finding(kind, message.format(n=len(idx), min=config.min_length, max=config.max_length),
                              "high" if kind in ("empty", "non_text") else share_severity(share, 0.05, 0.2),
                              suggestion, count=len(idx), example_indexes=idx, details={"share": f"{share:.4f}"})
            (report.issues if kind in ("empty", "non_text") else report.warnings).append(finding)
        involved = result.flagged.get("conflicting_labels", [])
        if involved:
            share = len(involved) / n
            key, idx = next(iter(result.conflicts.items()))
            labels = sorted({outputs[i] for i in idx})
            finding = Finding(
                "conflicting_labels",
                f"{len(result.conflicts)} input(s) appear with different outputs ({len(involved)} examples), "
                f"e.g. '{inputs[idx[0]][:80]}' -> {', '.join(repr(x) for x in labels)}",
                "high" if share >= CONFLICT_ISSUE_SHARE else "medium",
                "Give each input one output, or mark the wrong ones with feedback 'incorrect'",
                count=len(involved), example_indexes=involved,
                details={"share": f"{share:.4f}", "inputs": str(len(result.conflicts))})
            (report.issues if share >= CONFLICT_ISSUE_SHARE else report.warnings).append(finding)

    if config.balance and n:
        report.warnings.extend(balance.check(outputs, config.imbalance_ratio))
    if config.bias and n:
        report.warnings.extend(bias.check(inputs, outputs, config.bias_alpha))
    return report


def _label_findings(labels: label_issues.LabelCheck, inputs: Sequence[str],
                    max_noise: float) -> list[tuple[Finding, bool]]:
    """(finding, is an issue): the flagged examples, and what limited the check."""
    out: list[tuple[Finding, bool]] = []
    if labels.issues:
        rate, top = labels.noise_rate, labels.issues[0]
        is_issue = rate >= max_noise
        sample = " (a random sample)" if labels.sampled else ""
        out.append((Finding(
            "label_issues",
            f"An estimated {percent(rate)} of labels look wrong: {len(labels.issues)} of {labels.checked} checked "
            f"examples{sample} have an output that the rest of the data contradicts, e.g. '{inputs[top.index][:80]}' "
            f"labelled '{top.given}', likely '{top.likely}'",
            "high" if is_issue else ("medium" if rate >= max_noise / 2 else "low"),
            "Review the flagged examples (most doubtful first) and correct their outputs, or mark wrong ones with "
            "feedback 'incorrect'",
            count=len(labels.issues), example_indexes=[x.index for x in labels.issues[:MAX_INDEXES]],
            details={"noise_rate": f"{rate:.4f}", "max_label_noise": f"{max_noise:g}",
                     "checked": str(labels.checked), "method": label_issues.METHOD}), is_issue))
    if labels.limits:
        details = {"checked": str(labels.checked), "eligible": str(labels.eligible)}
        if labels.small_outputs:
            details["small_outputs"] = ",".join(list(labels.small_outputs)[:MAX_INDEXES])
        out.append((Finding(
            "label_check_limited", "Label check: " + "; ".join(labels.limits), "low",
            f"Add examples so that every output has at least {label_issues.MIN_PER_OUTPUT} distinct ones"
            if labels.small_outputs or not labels.ran else "Validate subsets to check every example",
            count=labels.eligible - labels.checked, details=details), False))
    return out
