"""Label issues: examples whose given output the rest of the dataset contradicts.

Why: every other check reads inputs one at a time, so a dataset whose outputs are shuffled looks
perfect to them. Confident learning (Northcutt, Jiang and Chuang, "Confident Learning:
Estimating Uncertainty in Dataset Labels", JAIR 2021; cleanlab's ``find_label_issues`` with
``filter_by="confident_learning"``) finds the examples whose label a model trained on the *other*
examples does not believe:

1. out-of-sample probabilities ``p(x)``: 5-fold stratified cross-validation of a linear softmax
   over the hashed n-gram features (``trainhouse.core.trainer.cross_validation``);
2. per-output threshold ``t_j`` = mean self-confidence ``p_j(x)`` over the examples labelled j;
3. the confident joint: an example is counted at (given output, j) where j is, among the outputs
   whose probability reaches their threshold, the most probable one (no output reaching its
   threshold: not counted);
4. off-diagonal examples are label issues, except those whose top prediction is their given output
   (cleanlab drops them too). ``likely`` is j, ranked by self-confidence ``p_given``, lowest first.

The estimated label-noise rate is the share of the checked examples that are flagged.

Which examples are checked: non-empty input and output, feedback other than "incorrect" (that
output is a negative, not a label). Repeats of the same normalised input with the same output
are checked once (otherwise a copy in the training folds would vouch for its twin) and share the
verdict. Outputs with fewer than ``MIN_PER_OUTPUT`` distinct examples cannot be learned from 4/5
of them: their examples are left out and they are never proposed. With fewer than two outputs left
the check does not run. Above ``MAX_CHECKED`` examples, or ``MAX_WORK`` / outputs when there are
more than 64 outputs, a uniform random sample (fixed seed) is checked and the rate is the sample's.
Every such limit is reported (``LabelCheck.limits``).

Limits of the method: a flag means "this label disagrees with what similar inputs are labelled";
with a weak model (few examples per output, many similar outputs) genuine but hard examples are
flagged too, so on clean real data a few percent are flagged. Systematic mislabelling (all of
output A labelled B) is not a disagreement and is not found. Runtime: about a second per thousand
examples checked with 64 outputs on one core (5 fits of 5 epochs).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from trainhouse.core.featurizer import HashingFeaturizer
from trainhouse.core.trainer.cross_validation import CrossValConfig, out_of_fold_proba

MIN_PER_OUTPUT = 10
MAX_CHECKED = 5000
# The model's work grows with examples x outputs (~4 s at 5,000 x 64 on a busy core; 500 outputs
# took 30 s, the gateway's RPC deadline), so with more than 64 outputs fewer examples are checked.
MAX_WORK = MAX_CHECKED * 64
SAMPLE_SEED = 14
METHOD = "confident learning over 5-fold cross-validated linear softmax probabilities"


@dataclass(frozen=True)
class LabelIssue:
    """An example whose given output is unlikely; probabilities are out-of-sample."""

    index: int
    given: str
    likely: str
    likely_confidence: float
    given_confidence: float


@dataclass
class LabelCheck:
    """What the label check found and how much of the dataset it covered."""

    issues: list[LabelIssue] = field(default_factory=list)
    # Examples covered (sampled examples when capped; 0 when the check did not run).
    checked: int = 0
    # Eligible examples before the cap.
    eligible: int = 0
    # Eligible examples of the outputs checked: what ``checked`` stands for (== checked unless sampled).
    population: int = 0
    # Why coverage is partial or nil, one sentence each; empty when every eligible example was checked.
    limits: list[str] = field(default_factory=list)
    # Outputs left out for having fewer than MIN_PER_OUTPUT distinct examples -> their count.
    small_outputs: dict[str, int] = field(default_factory=dict)
    sampled: bool = False

    @property
    def ran(self) -> bool:
        return self.checked > 0

    @property
    def noise_rate(self) -> float:
        return len(self.issues) / self.checked if self.checked else 0.0


def confident_learning(proba: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flag per example, the confident-joint column of each example or -1).

    ``proba`` are out-of-sample probabilities (n, k); ``y`` given class indexes. Every class in
    ``y`` must have at least one example (its threshold is their mean self-confidence).
    """
    n, k = proba.shape
    counts = np.bincount(y, minlength=k)
    thresholds = np.bincount(y, weights=proba[np.arange(n), y], minlength=k) / np.maximum(counts, 1)
    # A class nobody carries has no threshold: it can never be the confident column.
    thresholds[counts == 0] = np.inf
    above = proba >= thresholds - 1e-6  # cleanlab's tolerance for ties at the threshold
    column = np.where(above, proba, -np.inf).argmax(axis=1)
    column[~above.any(axis=1)] = -1
    flagged = (column >= 0) & (column != y) & (proba.argmax(axis=1) != y)
    return flagged, column


def _eligible(inputs: Sequence[str], outputs: Sequence[str], feedback: Sequence[str]) -> list[int]:
    return [i for i, (text, out, fb) in enumerate(zip(inputs, outputs, feedback))
            if text.strip() and out.strip() and fb != "incorrect"]


def check(inputs: Sequence[str], outputs: Sequence[str], feedback: Sequence[str], normalized: Sequence[str],
          *, max_checked: int = MAX_CHECKED, max_work: int = MAX_WORK,
          cv: CrossValConfig | None = None) -> LabelCheck:
    """Run the label check (see the module docstring) and return every flagged example."""
    result = LabelCheck()
    everyone = chosen = _eligible(inputs, outputs, feedback)
    result.eligible = len(chosen)
    learnable = sum(1 for c in Counter(outputs[i] for i in everyone).values() if c >= MIN_PER_OUTPUT)
    cap = min(max_checked, max_work // max(learnable, 1))
    if len(chosen) > cap:
        rng = np.random.default_rng(SAMPLE_SEED)
        chosen = sorted(rng.choice(everyone, size=cap, replace=False).tolist())
        result.sampled = True
        why = (f"capped at {max_checked:,}" if cap == max_checked else
               f"capped at {max_work:,} examples x outputs, {learnable} outputs")
        result.limits.append(f"checked a random sample of {cap:,} of the {result.eligible:,} examples "
                             f"(the check is {why}); the noise rate is the sample's")

    # One representative per (normalised input, output); members share its verdict.
    members: dict[tuple[str, str], list[int]] = {}
    for i in chosen:
        members.setdefault((normalized[i], outputs[i]), []).append(i)
    groups = list(members.values())
    per_output = Counter(outputs[g[0]] for g in groups)
    small = {o: c for o, c in per_output.items() if c < MIN_PER_OUTPUT}
    kept = sorted(o for o in per_output if o not in small)
    if small:
        result.small_outputs = dict(sorted(small.items()))
        names = ", ".join(f"'{o}'" for o in list(result.small_outputs)[:5]) + (", ..." if len(small) > 5 else "")
        result.limits.append(f"{len(small)} output(s) have fewer than {MIN_PER_OUTPUT} distinct examples and were "
                             f"left out ({names})")
    if len(kept) < 2:
        result.limits.append(f"labels were not checked: it needs at least 2 outputs with {MIN_PER_OUTPUT}+ distinct "
                             f"examples each, found {len(kept)}")
        return result

    column_of = {o: j for j, o in enumerate(kept)}
    groups = [g for g in groups if outputs[g[0]] in column_of]
    y = np.array([column_of[outputs[g[0]]] for g in groups], dtype=np.int64)
    rows = HashingFeaturizer().transform_sparse([inputs[g[0]] for g in groups])
    proba = out_of_fold_proba(rows, y, len(kept), cv)
    flagged, column = confident_learning(proba, y)

    result.checked = sum(len(g) for g in groups)
    result.population = sum(1 for i in everyone if outputs[i] in column_of) if result.sampled else result.checked
    issues: list[LabelIssue] = []
    for r in np.flatnonzero(flagged):
        given, likely = int(y[r]), int(column[r])
        for i in groups[r]:
            issues.append(LabelIssue(i, kept[given], kept[likely], float(proba[r, likely]), float(proba[r, given])))
    issues.sort(key=lambda x: (x.given_confidence, x.index))
    result.issues = issues
    return result
