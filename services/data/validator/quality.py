"""Per-example quality: what makes an example unusable (issues) or weak (warnings), and a score.

Score of an example, starting at 1.0 (floored at 0):

=====================  ======================================================  =======
signal                 rule                                                    effect
=====================  ======================================================  =======
empty                  input or output blank                                   score 0
non_text               control characters / U+FFFD in the input, or no letter  score 0
too_short              input shorter than ``min_length`` characters (trimmed)  -0.5
too_long               input longer than ``max_length`` characters             -0.3
conflicting_labels     same normalised input given another positive output     -0.5
low_letter_ratio       under half of the non-space characters are letters      -0.3
repeated_characters    a character repeated 5+ times in a row ("!!!!!")        -0.1
shouting               all upper case with 10+ letters                         -0.1
label_issue            the label check flags the output as likely wrong        -0.5
=====================  ======================================================  =======

``averageQuality`` is the mean score. ``label_issue`` comes from label_issues.py (confident
learning) and counts only when that check runs; it weighs as much as ``conflicting_labels``,
the other sign that the output is disputed, because a flag is strong but not certain evidence
(on clean real data a few percent of examples are flagged). So ``averageQuality`` falls by about
``0.5 x`` the estimated label-noise rate: 90% wrong labels take a clean dataset to ~0.55. When
the label check ran on a sample, the sample's loss is scaled up to the examples it stands for.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

LABEL_ISSUE_PENALTY = 0.5

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
_REPEAT = re.compile(r"(.)\1{4,}")


@dataclass
class QualityResult:
    scores: list[float]
    flagged: dict[str, list[int]] = field(default_factory=dict)
    # normalised input -> indexes, for inputs labelled with more than one output
    conflicts: dict[str, list[int]] = field(default_factory=dict)


def assess(inputs: Sequence[str], outputs: Sequence[str], feedback: Sequence[str], normalized: Sequence[str],
           min_length: int, max_length: int) -> QualityResult:
    flagged: dict[str, list[int]] = defaultdict(list)
    scores: list[float] = []
    for i, (text, output) in enumerate(zip(inputs, outputs)):
        stripped = text.strip()
        if not stripped or not output.strip():
            flagged["empty"].append(i)
            scores.append(0.0)
            continue
        letters = sum(c.isalpha() for c in stripped)
        if _CONTROL.search(text) or letters == 0:
            flagged["non_text"].append(i)
            scores.append(0.0)
            continue
        score = 1.0
        if len(stripped) < min_length:
            flagged["too_short"].append(i)
            score -= 0.5
        if len(stripped) > max_length:
            flagged["too_long"].append(i)
            score -= 0.3
        non_space = sum(not c.isspace() for c in stripped)
        if letters < 0.5 * non_space:
            flagged["low_letter_ratio"].append(i)
            score -= 0.3
        if _REPEAT.search(stripped):
            flagged["repeated_characters"].append(i)
            score -= 0.1
        if letters >= 10 and stripped.upper() == stripped and stripped.lower() != stripped:
            flagged["shouting"].append(i)
            score -= 0.1
        scores.append(score)

    by_input: dict[str, list[int]] = defaultdict(list)
    for i, (key, fb) in enumerate(zip(normalized, feedback)):
        if key and fb != "incorrect" and scores[i] > 0:
            by_input[key].append(i)
    conflicts = {key: idx for key, idx in by_input.items() if len({outputs[i] for i in idx}) > 1}
    for idx in conflicts.values():
        for i in idx:
            scores[i] -= 0.5
            flagged["conflicting_labels"].append(i)
    return QualityResult([max(0.0, s) for s in scores], dict(flagged), conflicts)


def label_issue_loss(scores: Sequence[float], flagged: Sequence[int]) -> float:
    """Total score the flagged examples lose: ``LABEL_ISSUE_PENALTY`` each, floored at 0 like
    every score (an example that already scores 0 has nothing left to lose)."""
    return sum(min(scores[i], LABEL_ISSUE_PENALTY) for i in flagged)
