"""The promotion gate: may a newly registered version replace what production serves?

A registration that asks for promotion (``RegisterVersionRequest.promotion``: adaptation with
``auto_apply`` / ``immediate``, auto-training) is decided here, once, at registration:

1. The test set is the candidate's held-out examples (its job's validation split, sent with the
   registration): examples the candidate never trained on. Only positive examples (feedback
   "correct" or "partial") have a right answer to score; negatives are left out.
2. The candidate and the version production serves now answer the same examples with ONNX
   Runtime (the serving path's sessions).
3. Promoted when ``candidate accuracy >= serving accuracy - tolerance`` (default tolerance 0.01)
   on at least ``min_examples`` examples (default 20); else rejected and kept ``registered``.
   McNemar's test on the paired per-example correctness is reported with its p-value: the rule is
   non-inferiority within the tolerance, the p-value says how sure the difference is.
   (The policy's fields and defaults: ``services/core/promotion.py``.)

The serving version may have trained on some of these examples (a transfer job's base saw its own
training data): that favours the serving version, so the gate errs towards keeping what serves.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from trainhouse.core.promotion import Policy
from trainhouse.core.abstention import served_outputs
from trainhouse.core.stats import paired_accuracy_test

POSITIVE = ("correct", "partial", "")


@dataclass
class Decision:
    outcome: str  # "promoted" | "rejected"
    reason: str
    requested_by: str
    baseline_version_id: str
    candidate_accuracy: float
    baseline_accuracy: float
    accuracy_tolerance: float
    examples: int
    test: str
    p_value: float
    decide_time: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def positives(examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in examples if (e.get("feedback") or "") in POSITIVE and e.get("expected_output")]


def decide(policy: Policy, candidate: Any, baseline: Any | None, baseline_version_id: str,
           holdout: list[dict[str, Any]], now: dt.datetime) -> Decision:
    """`candidate` / `baseline`: loaded models with ``predict_proba(texts)``, ``labels`` and (classifiers)
    ``out_of_scope_threshold``: each is scored on the answers it serves."""
    scored = positives(holdout)
    base = dict(requested_by=policy.requested_by, baseline_version_id=baseline_version_id,
                accuracy_tolerance=policy.accuracy_tolerance, examples=len(scored),
                decide_time=now.isoformat().replace("+00:00", "Z"))
    if baseline is None:
        return Decision("promoted", "nothing served production: the candidate serves", candidate_accuracy=0.0,
                        baseline_accuracy=0.0, test="none", p_value=1.0, **base)
    if len(scored) < policy.min_examples:
        return Decision("rejected", f"only {len(scored)} held-out example(s) with a right answer; the gate needs "
                                    f"at least {policy.min_examples} to compare with {baseline_version_id}",
                        candidate_accuracy=0.0, baseline_accuracy=0.0, test="none", p_value=1.0, **base)
    texts = [e["input"] for e in scored]
    expected = np.array([e["expected_output"] for e in scored])
    right = {}
    for name, model in (("candidate", candidate), ("baseline", baseline)):
        # Each version's served answers, abstentions included (a judged "__out_of_scope__" answer is
        # right for a version that abstains on it, as it was when it was served).
        served = served_outputs(model.predict_proba(texts), model.labels,
                                getattr(model, "out_of_scope_threshold", 0.0))
        right[name] = served == expected
    test = paired_accuracy_test(right["candidate"], right["baseline"])
    cand, served = float(right["candidate"].mean()), float(right["baseline"].mean())
    promoted = cand >= served - policy.accuracy_tolerance
    verdict = (f"accuracy {cand:.4f} vs {served:.4f} of {baseline_version_id} on {len(scored)} held-out examples "
               f"({test.test} p={test.p_value:.4g}); tolerance {policy.accuracy_tolerance:g}")
    reason = ("not worse than what serves: " if promoted else "worse than what serves: ") + verdict
    return Decision("promoted" if promoted else "rejected", reason, candidate_accuracy=cand, baseline_accuracy=served,
                    test=test.test, p_value=float(test.p_value), **base)
