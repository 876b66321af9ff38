"""Classification metrics from real predictions (no numbers invented)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def classification_metrics(expected: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """Accuracy and macro precision/recall/F1 over the outputs present in either list."""
    if not expected:
        return {}
    labels = sorted(set(expected) | set(predicted))
    exp = np.array(expected)
    pred = np.array(predicted)
    precisions, recalls, f1s = [], [], []
    for label in labels:
        tp = float(np.sum((pred == label) & (exp == label)))
        fp = float(np.sum((pred == label) & (exp != label)))
        fn = float(np.sum((pred != label) & (exp == label)))
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        precisions.append(p)
        recalls.append(r)
        f1s.append(2 * p * r / (p + r) if p + r else 0.0)
    return {
        "accuracy": float(np.mean(exp == pred)),
        "macro_precision": float(np.mean(precisions)),
        "macro_recall": float(np.mean(recalls)),
        "macro_f1": float(np.mean(f1s)),
    }


def percentile_ms(samples_s: Sequence[float], q: float) -> float:
    return float(np.percentile(np.array(samples_s) * 1000.0, q)) if samples_s else 0.0
