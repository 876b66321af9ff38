"""Label check (confident learning) on real data with known wrong labels, next to random flags.

Data: HWU64 train (/work/shared/data/hwu64_train.jsonl, or the path given as the first argument),
a seeded sample of 3,000 requests over its 64 intents. A share (10 %, 30 %) of the labels is
replaced by another intent; the check runs on the result and its flags are scored against the
flips. Baseline, measured in the same run: as many flags drawn at random, whose expected precision
is the noise share. The clean sample's flag rate is printed too (HWU64 has debatable labels of its
own, which bound the precision measurable against our flips).

Run: .venv/bin/python bench/label_issues.py [path/to/hwu64_train.jsonl]
"""
from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import result  # noqa: E402

from trainhouse.data.text import normalize  # noqa: E402
from trainhouse.data.validator import label_issues  # noqa: E402
from tests.intents import flip_labels  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data/hwu64_train.jsonl")
SAMPLE = 3000


def scores(flagged: set[int], wrong: set[int]) -> tuple[float, float]:
    hit = len(flagged & wrong)
    return hit / max(len(flagged), 1), hit / max(len(wrong), 1)


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DATA
    if not path.exists():
        print(f"no data at {path}; pass the path of hwu64_train.jsonl", file=sys.stderr)
        return 2
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    data = random.Random(0).sample(rows, min(SAMPLE, len(rows)))
    outputs = {e["expected_output"] for e in data}
    print(f"{len(data)} examples, {len(outputs)} outputs from {path.name}; "
          f"check capped at {label_issues.MAX_CHECKED:,} examples")
    for share in (0.0, 0.1, 0.3):
        noisy, wrong = flip_labels(data, share, seed=1)
        inputs = [e["input"] for e in noisy]
        started = time.perf_counter()
        check = label_issues.check(inputs, [e["expected_output"] for e in noisy], ["correct"] * len(noisy),
                                   [normalize(t) for t in inputs])
        took = time.perf_counter() - started
        flagged = {x.index for x in check.issues}
        print(f"{share:.0%} flipped: {len(flagged)} flagged ({check.noise_rate:.1%} of {check.checked}) in {took:.2f} s")
        if not wrong:
            continue
        precision, recall = scores(flagged, wrong)
        rng = random.Random(2)
        random_flags = set(rng.sample(range(len(noisy)), len(flagged)))
        base_precision, base_recall = scores(random_flags, wrong)
        print(f"  precision {precision:.3f} recall {recall:.3f}; random flags: precision {base_precision:.3f} "
              f"recall {base_recall:.3f}")
        label = f"label check precision, HWU64 {len(data):,} x {len(outputs)}, {share:.0%} flipped"
        result(label, precision, "precision", base_precision, "random flags (same count)")
        result(f"label check recall, HWU64 {len(data):,} x {len(outputs)}, {share:.0%} flipped", recall, "recall",
               base_recall, "random flags (same count)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
