"""Exact and near duplicates.

* exact: an example whose normalised input (``text.normalize``) and output repeat an earlier one;
* near: a distinct normalised input whose character 5-shingle set has Jaccard similarity
  >= threshold with an earlier distinct input. Candidates come from MinHash LSH (datasketch,
  64 permutations) tuned to a threshold 0.1 below the requested one (within [0.05, 0.9]) for
  recall, and are confirmed with the exact Jaccard of the shingle sets, so LSH false positives
  never count. Inputs shorter than 5 characters are one shingle.
"""
from __future__ import annotations

from collections.abc import Sequence

from datasketch import MinHash, MinHashLSH

SHINGLE = 5
NUM_PERM = 64


def exact_duplicates(normalized: Sequence[str], outputs: Sequence[str]) -> list[int]:
    """Indexes of examples that repeat an earlier (normalised input, output) pair."""
    seen: set[tuple[str, str]] = set()
    out: list[int] = []
    for i, key in enumerate(zip(normalized, outputs)):
        if key in seen:
            out.append(i)
        else:
            seen.add(key)
    return out


def shingles(text: str, k: int = SHINGLE) -> set[str]:
    if len(text) <= k:
        return {text}
    return {text[i:i + k] for i in range(len(text) - k + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def near_duplicates(normalized: Sequence[str], threshold: float) -> list[tuple[int, int, float]]:
    """(index, index of the earlier near match, Jaccard) for each distinct input with a near match.

    Indexes are those of first occurrences; exact repeats are not near-duplicates.
    """
    first: dict[str, int] = {}
    for i, text in enumerate(normalized):
        if text and text not in first:
            first[text] = i
    texts = list(first)
    if len(texts) < 2:
        return []
    sets = [shingles(t) for t in texts]
    hashes = MinHash.bulk([[s.encode("utf-8") for s in sorted(sh)] for sh in sets], num_perm=NUM_PERM)
    lsh = MinHashLSH(threshold=min(0.9, max(0.05, threshold - 0.1)), num_perm=NUM_PERM)
    found: list[tuple[int, int, float]] = []
    for j, mh in enumerate(hashes):
        best: tuple[float, int] | None = None
        for cand in lsh.query(mh):
            sim = jaccard(sets[j], sets[cand])
            if sim >= threshold and (best is None or sim > best[0] or (sim == best[0] and cand < best[1])):
                best = (sim, cand)
        if best is not None:
            found.append((first[texts[j]], first[texts[best[1]]], best[0]))
        lsh.insert(j, mh)
    return found
