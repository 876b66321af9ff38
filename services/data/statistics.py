"""Dataset statistics computed from the examples themselves (never estimated)."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any


def compute(examples: list[dict[str, Any]]) -> dict[str, Any]:
    counts = Counter(e["expected_output"] for e in examples)
    n = len(examples)
    return {
        "example_count": n,
        "output_counts": dict(counts),
        "output_shares": {k: v / n for k, v in counts.items()} if n else {},
        "average_length": (sum(len(e["input"]) for e in examples) / n) if n else 0.0,
    }


def content_hash(examples: list[dict[str, Any]]) -> str:
    digest = hashlib.sha256()
    for e in examples:
        digest.update(json.dumps(e, sort_keys=True).encode())
        digest.update(b"\n")
    return digest.hexdigest()
