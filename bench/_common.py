"""Helpers shared by the bench scripts: percentiles and one result-line format for run_all.py."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, int(round(q / 100 * (len(ordered) - 1)))))
    return ordered[k]


def result(name: str, value: float, unit: str, baseline: float, baseline_name: str) -> None:
    """One figure next to its baseline measured in the same run (run_all.py collects these lines)."""
    ratio = value / baseline if baseline else float("nan")
    print(f"RESULT | {name} | {value:,.3f} {unit} | {baseline_name}: {baseline:,.3f} {unit} | ratio {ratio:.2f}")
