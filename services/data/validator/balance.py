"""Output balance: shares, and which outputs are under- or over-represented.

With k outputs and ratio r (default 0.5): an output with share < r / k is under-represented
(severity medium; high below r / 2k) and one with share > 1 / (k r) is over-represented
(medium). A single output is a high-severity warning: a classifier over one output learns nothing.
Seed 000's example: shares 45% / 12% / 43%, k = 3, 12% < 16.7% -> "Class 'technical' is
underrepresented (12% of total)", medium.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from trainhouse.data.validator.report import Finding, percent


def shares(outputs: Sequence[str]) -> dict[str, float]:
    counts = Counter(outputs)
    n = len(outputs)
    return {k: v / n for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))} if n else {}


def check(outputs: Sequence[str], ratio: float) -> list[Finding]:
    share = shares(outputs)
    k = len(share)
    counts = Counter(outputs)
    if k == 0:
        return []
    if k == 1:
        only = next(iter(share))
        return [Finding("single_output", f"Every example has the output '{only}'", "high",
                        "Add examples of the other outputs the agent must choose between",
                        count=len(outputs), details={"output": only})]
    findings: list[Finding] = []
    under, over = ratio / k, 1.0 / (k * ratio)
    for output, s in share.items():
        if s < under:
            findings.append(Finding(
                "imbalance", f"Class '{output}' is underrepresented ({percent(s)} of total)",
                "high" if s < under / 2 else "medium", f"Generate more '{output}' examples",
                count=counts[output],
                details={"output": output, "share": f"{s:.4f}", "expected_share": f"{1 / k:.4f}"}))
        elif s > over:
            findings.append(Finding(
                "imbalance", f"Class '{output}' is overrepresented ({percent(s)} of total)", "medium",
                f"Downsample '{output}' or add examples of the other outputs", count=counts[output],
                details={"output": output, "share": f"{s:.4f}", "expected_share": f"{1 / k:.4f}"}))
    return findings
