"""How diverse a set of inputs is, measured on the inputs themselves.

* ``diversity``: Shannon entropy of the distribution of normalised inputs divided by ln(n) --
  0 when every input is the same, 1 when all n are distinct.
* ``distinct_1`` / ``distinct_2``: distinct word unigrams / bigrams over all unigrams / bigrams
  (Li et al. 2016, "distinct-n").
* ``unique``: number of distinct normalised inputs.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from trainhouse.data.text import normalize


@dataclass(frozen=True)
class DiversityMeasures:
    unique: int
    diversity: float
    distinct_1: float
    distinct_2: float


def measure(inputs: Iterable[str]) -> DiversityMeasures:
    counts = Counter(normalize(text) for text in inputs)
    n = sum(counts.values())
    if n == 0:
        return DiversityMeasures(0, 0.0, 0.0, 0.0)
    entropy = -sum((c / n) * math.log(c / n) for c in counts.values())
    diversity = entropy / math.log(n) if n > 1 else 0.0
    unigrams: set[str] = set()
    bigrams: set[tuple[str, str]] = set()
    total_1 = total_2 = 0
    # Distinct n-grams only need each distinct input once; totals weigh it by its count.
    for text, c in counts.items():
        toks = text.split()
        unigrams.update(toks)
        bigrams.update(zip(toks, toks[1:]))
        total_1 += c * len(toks)
        total_2 += c * max(0, len(toks) - 1)
    return DiversityMeasures(
        unique=len(counts), diversity=min(1.0, diversity),
        distinct_1=len(unigrams) / total_1 if total_1 else 0.0,
        distinct_2=len(bigrams) / total_2 if total_2 else 0.0)
