"""Dataset statistics computed from the examples themselves (never estimated)."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any


def compute(examples: list[dict[str, Any]]) -> dict[str, Any]:
    counts = Counter(e["expected_output"] for e in examples)
    levels = Counter(int(e.get("level", 1)) for e in examples)
    n = len(examples)
    return {
        "example_count": n,
        "output_counts": dict(counts),
        "output_shares": {k: v / n for k, v in counts.items()} if n else {},
        "average_length": (sum(len(e["input"]) for e in examples) / n) if n else 0.0,
        # JSON object keys are strings; dataset_proto turns them back into ints.
        "level_counts": {str(k): v for k, v in sorted(levels.items())},
    }


def content_hash(examples: list[dict[str, Any]]) -> str:
    """sha256 of the canonical JSONL form (sorted keys, one example per line)."""
    digest = hashlib.sha256()
    for e in examples:
        digest.update(json.dumps(e, sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()
