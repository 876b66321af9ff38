"""Metric names, and the classification metrics computed from real predictions.

Callers name metrics as the seeds do; ``REQUESTABLE`` maps each accepted name to its family and
to the keys it adds to ``Evaluation.metrics``. A family says what a metric needs:

* ``classification`` — the predictions and probabilities of one Predict pass over the test set
* ``serving``        — timed single-input Predict calls (latency, cost per task)
* ``robustness``     — extra Predict passes over perturbed inputs (consistency)

Policy metrics (GRPO: success_rate, avg_reward, avg_steps, tool_accuracy) need trajectories,
not predictions; they are a family of their own, added here by registering their names with
family ``policy`` and a computation over a trajectory set next to ``classification_report``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trainhouse.core.errors import InvalidArgument

ECE_BINS = 10
# Probabilities are clipped before log so that an output outside the catalog (p = 0) costs a
# finite, large loss rather than infinity.
LOG_LOSS_EPS = 1e-7
# A wrong answer given with at least this confidence would be acted on without review.
CONFIDENT_ERROR_THRESHOLD = 0.8
RELEVANCE_K = 3


@dataclass(frozen=True)
class MetricSpec:
    name: str
    family: str
    keys: tuple[str, ...]
    description: str


REQUESTABLE: dict[str, MetricSpec] = {s.name: s for s in (
    MetricSpec("accuracy", "classification", ("accuracy",), "share of positive examples answered with the expected output"),
    MetricSpec("precision", "classification", ("precision", "macro_precision"), "macro precision over outputs (per output in per_output)"),
    MetricSpec("recall", "classification", ("recall", "macro_recall"), "macro recall over outputs (per output in per_output)"),
    MetricSpec("f1", "classification", ("f1", "macro_f1", "micro_f1"), "macro F1 over outputs; micro F1 too"),
    MetricSpec("f1_score", "classification", ("f1", "macro_f1", "micro_f1"), "same as f1 (seed 001 spelling)"),
    MetricSpec("confusion_matrix", "classification", (), "expected x predicted counts (always returned)"),
    MetricSpec("log_loss", "classification", ("log_loss",), "mean -log p(expected output), p clipped at 1e-7"),
    MetricSpec("calibration", "classification", ("ece", "mean_confidence"), "expected calibration error, 10 equal-width bins"),
    MetricSpec("safety", "classification", ("safety", "confident_error_rate", "forbidden_output_avoidance"),
               "1 - share of wrong answers given with >= 0.8 confidence, averaged with avoidance of outputs "
               "marked incorrect when the test set has such examples"),
    MetricSpec("relevance", "classification", ("relevance", "mrr"), "expected output within the top 3 outputs; mean reciprocal rank"),
    MetricSpec("latency", "serving", ("latency_p50_ms", "latency_p95_ms", "latency_mean_ms", "latency_samples"),
               "single-input Predict round trips on the serving path"),
    MetricSpec("cost", "serving", ("cost_per_task_usd",), "measured seconds per task and tokens at the price model"),
    MetricSpec("consistency", "robustness", ("consistency",), "same prediction under casing, punctuation, typo and word-order changes"),
)}

EVALUATION_TYPES: dict[str, tuple[str, ...]] = {
    "comprehensive": ("accuracy", "precision", "recall", "f1", "confusion_matrix", "log_loss", "calibration",
                      "safety", "relevance", "latency", "cost", "consistency"),
    "standard": ("accuracy", "precision", "recall", "f1", "confusion_matrix", "log_loss", "calibration", "relevance"),
    "quick": ("accuracy", "precision", "recall", "f1"),
}

# Metrics whose value is a share in [0, 1] where higher is better (used by scores and advice).
QUALITY_KEYS = {"accuracy": "accuracy", "precision": "precision", "recall": "recall", "f1": "f1",
                "f1_score": "f1", "consistency": "consistency", "safety": "safety", "relevance": "relevance"}
LOWER_IS_BETTER = {"log_loss", "ece", "latency_p50_ms", "latency_p95_ms", "latency_mean_ms", "cost_per_task_usd",
                   "confident_error_rate"}


def validate_metric_names(names: Sequence[str], field: str, valid: Sequence[str] | None = None,
                          what: str = "metric") -> list[str]:
    """Normalise (strip, lower) and reject unknown names, listing the valid ones (default: the
    classification metrics; GRPO policies pass theirs)."""
    valid = list(REQUESTABLE) if valid is None else list(valid)
    out: list[str] = []
    for i, raw in enumerate(names):
        name = raw.strip().lower()
        if name not in valid:
            raise InvalidArgument(f"{field}[{i}]", f"unknown {what} '{raw}'; valid {what}s: "
                                  + ", ".join(valid), metadata={"valid": ",".join(valid)})
        if name not in out:
            out.append(name)
    return out


def families(names: Sequence[str]) -> set[str]:
    return {REQUESTABLE[n].family for n in names}


def classification_report(expected: Sequence[str], predicted: Sequence[str]) -> dict:
    """Accuracy, macro precision/recall/F1 and micro F1 over the outputs present in either list,
    per-output figures and the confusion matrix (rows expected, columns predicted)."""
    if not expected:
        return {"metrics": {}, "per_output": [], "labels": [], "matrix": []}
    labels = sorted(set(expected) | set(predicted))
    index = {label: i for i, label in enumerate(labels)}
    exp = np.array([index[e] for e in expected])
    pred = np.array([index[p] for p in predicted])
    k = len(labels)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (exp, pred), 1)
    tp = np.diag(matrix).astype(float)
    predicted_count = matrix.sum(axis=0).astype(float)
    support = matrix.sum(axis=1).astype(float)
    precision = np.divide(tp, predicted_count, out=np.zeros(k), where=predicted_count > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    accuracy = float(tp.sum() / len(expected))
    metrics = {"accuracy": accuracy, "precision": float(precision.mean()), "recall": float(recall.mean()),
               "f1": float(f1.mean()), "micro_f1": accuracy}  # single-label: micro F1 equals accuracy
    metrics["macro_precision"], metrics["macro_recall"], metrics["macro_f1"] = (
        metrics["precision"], metrics["recall"], metrics["f1"])
    per_output = [{"output": label, "precision": float(precision[i]), "recall": float(recall[i]),
                   "f1": float(f1[i]), "support": int(support[i]), "predicted": int(predicted_count[i])}
                  for i, label in enumerate(labels)]
    return {"metrics": metrics, "per_output": per_output, "labels": labels, "matrix": matrix.tolist()}


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE = sum over equal-width confidence bins of (bin share) * |accuracy - mean confidence|."""
    if len(confidence) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin i holds (edges[i], edges[i+1]]; confidence 0 goes to the first bin.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def log_losses(p_expected: np.ndarray) -> np.ndarray:
    """Per-example -log p(expected output)."""
    return -np.log(np.clip(p_expected, LOG_LOSS_EPS, 1.0))


def safety_metrics(correct: np.ndarray, confidence: np.ndarray, negatives_avoided: np.ndarray | None) -> dict[str, float]:
    confident_errors = float(np.mean((~correct) & (confidence >= CONFIDENT_ERROR_THRESHOLD))) if len(correct) else 0.0
    parts = [1.0 - confident_errors]
    out = {"confident_error_rate": confident_errors}
    if negatives_avoided is not None and len(negatives_avoided):
        out["forbidden_output_avoidance"] = float(np.mean(negatives_avoided))
        parts.append(out["forbidden_output_avoidance"])
    out["safety"] = float(np.mean(parts))
    return out


def relevance_metrics(ranks: np.ndarray, k: int = RELEVANCE_K) -> dict[str, float]:
    """``ranks``: 1-based rank of the expected output among the model's outputs, 0 when absent."""
    if len(ranks) == 0:
        return {"relevance": 0.0, "mrr": 0.0}
    hit = (ranks >= 1) & (ranks <= k)
    rr = np.where(ranks >= 1, 1.0 / np.maximum(ranks, 1), 0.0)
    return {"relevance": float(hit.mean()), "mrr": float(rr.mean())}


def percentile_ms(samples_s: Sequence[float], q: float) -> float:
    return float(np.percentile(np.array(samples_s) * 1000.0, q)) if len(samples_s) else 0.0


def classification_metrics(expected: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """Accuracy and macro precision/recall/F1 (kept for callers of the first version)."""
    return classification_report(expected, predicted)["metrics"]


def out_of_scope_metrics(expected: Sequence[str], predicted: Sequence[str], abstained: Sequence[bool],
                         out_of_scope: str = "__out_of_scope__") -> dict[str, float]:
    """Abstention quality on a test set with out-of-scope examples (expected output ``out_of_scope``):

    * ``out_of_scope_recall``: share of out-of-scope examples the version abstained on;
    * ``out_of_scope_precision``: share of abstentions that were out-of-scope examples (0 without any);
    * ``in_scope_accuracy``: share of in-scope examples answered (not abstained) with the right output;
    * ``in_scope_accuracy_without_abstention``: the same counting the top output even when it abstained;
    * ``accuracy_with_out_of_scope``: accuracy with out of scope as its own output (Larson et al. 2019);
    * ``out_of_scope_examples`` / ``in_scope_examples``: the counts.
    Empty when the test set has no out-of-scope example."""
    exp = np.asarray(expected, dtype=object)
    pred = np.asarray(predicted, dtype=object)
    abst = np.asarray(abstained, dtype=bool) if len(abstained) else np.zeros(len(exp), dtype=bool)
    oos = exp == out_of_scope
    if not oos.any():
        return {}
    inn = ~oos
    right = (pred == exp) & inn
    flagged = int(abst.sum())
    return {
        "out_of_scope_recall": float(abst[oos].mean()),
        "out_of_scope_precision": float(abst[oos].sum() / flagged) if flagged else 0.0,
        "in_scope_accuracy": float((right & ~abst)[inn].mean()) if inn.any() else float("nan"),
        "in_scope_accuracy_without_abstention": float(right[inn].mean()) if inn.any() else float("nan"),
        "accuracy_with_out_of_scope": float(((right & ~abst).sum() + abst[oos].sum()) / len(exp)),
        "out_of_scope_examples": float(oos.sum()),
        "in_scope_examples": float(inn.sum()),
    }
