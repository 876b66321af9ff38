"""Hashed word and character n-gram features, shared by training, serving and evaluation.

Why feature hashing: an agent's model must be reproducible from its ONNX file alone, so the
featurizer has no vocabulary to fit or ship; every text maps to the same fixed-size vector in
every process. The hash is ``blake2b`` over UTF-8 bytes (never Python's salted ``hash()``), so
training, serving and evaluation agree across processes and machines.

A text becomes: Unicode NFKC, optional lowercasing, tokens (runs of word characters, or single
punctuation marks), word n-grams over the tokens and character n-grams over the tokens joined by
one space and padded with a space on each side (so prefixes and suffixes are marked). Each
distinct n-gram with count ``tf`` contributes ``sign * (1 + log tf)`` to its bucket (sublinear TF;
the sign halves the bias of collisions), and each row is scaled to unit L2 norm so that text
length does not change the scale of the logits.
"""
from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from trainhouse.core.errors import InvalidArgument

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
# The per-featurizer n-gram cache is cleared when it grows past this many entries, so a
# long-running server featurizing open-ended text keeps bounded memory.
_CACHE_LIMIT = 1 << 20
NORMALIZE = ("joint", "per_family")


@dataclass(frozen=True)
class FeaturizerConfig:
    """Settings of the hashing featurizer; stored with every model so serving rebuilds it exactly."""

    dim: int = 2 ** 14
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (3, 5)
    lowercase: bool = True
    # "joint": one L2 norm over every n-gram (character n-grams, being many, then dominate);
    # "per_family": word and character n-grams each scaled to norm 1/sqrt(2) (as a union of two
    # separately normalised TF-IDF vectorizers does), so both families weigh the same.
    normalize: str = "joint"

    def __post_init__(self) -> None:
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or not 16 <= self.dim <= 2 ** 24:
            raise InvalidArgument("featurizer.dim", "must be an integer in [16, 16777216]")
        for name, rng, upper in (("wordNgrams", self.word_ngrams, 5), ("charNgrams", self.char_ngrams, 10)):
            if (not isinstance(rng, tuple) or len(rng) != 2
                    or any(isinstance(v, bool) or not isinstance(v, int) for v in rng)):
                raise InvalidArgument(f"featurizer.{name}", "must be a pair of integers [min, max]")
            lo, hi = rng
            # (0, 0) disables that family of n-grams.
            if (lo, hi) != (0, 0) and not 1 <= lo <= hi <= upper:
                raise InvalidArgument(f"featurizer.{name}", f"must satisfy 1 <= min <= max <= {upper}, or be [0, 0]")
        if self.word_ngrams == (0, 0) and self.char_ngrams == (0, 0):
            raise InvalidArgument("featurizer", "word and character n-grams cannot both be disabled")
        if not isinstance(self.lowercase, bool):
            raise InvalidArgument("featurizer.lowercase", "must be a boolean")
        if self.normalize not in NORMALIZE:
            raise InvalidArgument("featurizer.normalize", f"must be one of {', '.join(NORMALIZE)}")

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON-ready form (snake_case keys, lists for ranges)."""
        return {
            "dim": self.dim,
            "word_ngrams": list(self.word_ngrams),
            "char_ngrams": list(self.char_ngrams),
            "lowercase": self.lowercase,
            "normalize": self.normalize,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "FeaturizerConfig":
        """Accept the canonical form or the user-facing camelCase keys; unset keys take defaults."""
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise InvalidArgument("featurizer", "must be an object")
        kwargs: dict[str, Any] = {}
        for snake, camel, field in (("dim", "dim", "dim"), ("word_ngrams", "wordNgrams", "word_ngrams"),
                                    ("char_ngrams", "charNgrams", "char_ngrams"),
                                    ("lowercase", "lowercase", "lowercase"),
                                    ("normalize", "normalize", "normalize")):
            key = camel if camel in d else snake if snake in d else None
            if key is None:
                continue
            value = d[key]
            if field in ("word_ngrams", "char_ngrams"):
                if not isinstance(value, (list, tuple)) or len(value) != 2:
                    raise InvalidArgument(f"featurizer.{camel}", "must be a pair of integers [min, max]")
                value = tuple(_as_int(v, f"featurizer.{camel}") for v in value)
            elif field == "dim":
                value = _as_int(value, "featurizer.dim")
            kwargs[field] = value
        return cls(**kwargs)


def _as_int(value: Any, field: str) -> int:
    # JSON/Struct transports deliver every number as a float; integral floats are accepted.
    if isinstance(value, bool):
        raise InvalidArgument(field, "must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise InvalidArgument(field, "must be an integer")


class SparseRows:
    """CSR-style feature rows: the trainer keeps a data set in this form and densifies one batch
    at a time, because a dense (n, 16384) float32 matrix costs 64 KiB per example."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, dim: int):
        self.indptr = indptr
        self.indices = indices
        self.values = values
        self.dim = dim

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def nnz_per_row(self) -> np.ndarray:
        return np.diff(self.indptr)

    def take(self, rows: Sequence[int] | np.ndarray) -> "SparseRows":
        """The selected rows (in that order) as a new CSR block: the trainer's sparse batches,
        which never materialise the ``dim`` columns."""
        rows = np.asarray(rows, dtype=np.int64)
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        total = int(indptr[-1])
        if len(rows) and np.all(rows[1:] == rows[:-1] + 1):  # a contiguous run: plain slices
            lo, hi = int(self.indptr[rows[0]]), int(self.indptr[rows[-1] + 1])
            return SparseRows(indptr, self.indices[lo:hi], self.values[lo:hi], self.dim)
        flat = np.repeat(starts - indptr[:-1], lengths) + np.arange(total)
        return SparseRows(indptr, self.indices[flat], self.values[flat], self.dim)

    def to_dense(self, rows: Sequence[int] | np.ndarray | None = None, dtype: Any = np.float32) -> np.ndarray:
        """Dense matrix of the selected rows (all rows when ``rows`` is None), in that order."""
        if rows is None:
            rows = np.arange(len(self))
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros((len(rows), self.dim), dtype=dtype)
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        total = int(lengths.sum())
        if total == 0:
            return out
        row_ids = np.repeat(np.arange(len(rows)), lengths)
        # Position of each selected nonzero inside the flat arrays.
        offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        flat = np.repeat(starts, lengths) + offsets
        # Buckets are unique within a row (collisions were summed), so plain assignment is exact.
        out[row_ids, self.indices[flat]] = self.values[flat]
        return out


class HashingFeaturizer:
    """Maps texts to L2-normalised, signed, hashed n-gram vectors of ``config.dim`` floats."""

    def __init__(self, config: FeaturizerConfig | None = None):
        self.config = config or FeaturizerConfig()
        self._cache: dict[str, tuple[int, float]] = {}

    def _bucket(self, key: str) -> tuple[int, float]:
        digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
        h = int.from_bytes(digest, "little")
        # Low bits choose the bucket, the top bit the sign: independent for power-of-two dims.
        return h % self.config.dim, (1.0 if h >> 63 else -1.0)

    def _ngrams(self, text: str) -> list[str]:
        cfg = self.config
        text = unicodedata.normalize("NFKC", text)
        if cfg.lowercase:
            text = text.lower()
        tokens = _TOKEN_RE.findall(text)
        grams: list[str] = []
        wlo, whi = cfg.word_ngrams
        if whi:
            for n in range(wlo, whi + 1):
                grams.extend("w" + " ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
        clo, chi = cfg.char_ngrams
        if chi and tokens:
            padded = " " + " ".join(tokens) + " "
            for n in range(clo, chi + 1):
                grams.extend("c" + padded[i:i + n] for i in range(len(padded) - n + 1))
        return grams

    def transform_sparse(self, texts: Sequence[str]) -> SparseRows:
        """Featurize ``texts`` into CSR rows (float32 values, unit L2 norm per non-empty row)."""
        if isinstance(texts, str):
            raise TypeError("transform expects a sequence of texts, not a single string")
        cache = self._cache
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        log = math.log
        indptr = [0]
        indices: list[int] = []
        values: list[float] = []
        per_family = self.config.normalize == "per_family"
        for text in texts:
            grams = self._ngrams(text)
            families = ([[g for g in grams if g[0] == "w"], [g for g in grams if g[0] == "c"]] if per_family
                        else [grams])
            parts: list[dict[int, float]] = []
            for family in families:
                part: dict[int, float] = {}
                for gram, tf in Counter(family).items():
                    hit = cache.get(gram)
                    if hit is None:
                        hit = cache[gram] = self._bucket(gram)
                    idx, sign = hit
                    part[idx] = part.get(idx, 0.0) + sign * (1.0 + log(tf))
                norm = math.sqrt(sum(v * v for v in part.values()))
                if norm > 0.0:
                    parts.append({k: v / norm for k, v in part.items()})
            row: dict[int, float] = {}
            scale = 1.0 / math.sqrt(len(parts)) if parts else 1.0
            for part in parts:
                for k, v in part.items():
                    row[k] = row.get(k, 0.0) + v * scale
            norm = math.sqrt(sum(v * v for v in row.values()))
            if norm > 0.0:
                indices.extend(row.keys())
                values.extend(v / norm for v in row.values())
            # An all-cancelled or empty row stays the zero vector.
            indptr.append(len(indices))
        return SparseRows(
            np.asarray(indptr, dtype=np.int64),
            np.asarray(indices, dtype=np.int64),
            np.asarray(values, dtype=np.float32),
            self.config.dim,
        )

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Dense float32 matrix of shape (len(texts), dim)."""
        return self.transform_sparse(texts).to_dense()
