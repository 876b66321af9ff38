"""Meaning-preserving perturbations for the consistency metric and the consistency suite.

A model that decides by what a request means should give the same output when only its surface
changes. Four kinds, each applied once per source example:

* ``casing``      — the whole text upper-, lower- or title-cased (one that differs from the text)
* ``punctuation`` — punctuation removed when there is some, else a final "?", "!" or "." added
* ``typo``        — one word of 4+ letters gets a swap of two inner letters, a dropped inner
                    letter, or a doubled letter
* ``word_order``  — two adjacent words swapped, never a negation or its neighbour (swapping
                    around "not" could change the meaning)

Deterministic: the generator for (seed, example index, kind) is ``random.Random`` seeded with a
string, which Python hashes with SHA-512, so every process and machine builds the same variants.
"""
from __future__ import annotations

import random
import re

KINDS = ("casing", "punctuation", "typo", "word_order")
NEGATIONS = {"not", "no", "never", "none", "nor", "cannot", "can't", "don't", "doesn't", "didn't", "isn't",
             "aren't", "wasn't", "won't", "without", "nothing", "nobody", "neither"}
_PUNCT = re.compile(r"[^\w\s']")


def _rng(seed: int, index: int, kind: str) -> random.Random:
    return random.Random(f"consistency:{seed}:{index}:{kind}")


def casing(text: str, rng: random.Random) -> str:
    options = [t for t in (text.upper(), text.lower(), text.title()) if t != text]
    return rng.choice(options) if options else text


def punctuation(text: str, rng: random.Random) -> str:
    stripped = re.sub(r"\s+", " ", _PUNCT.sub("", text)).strip()
    if stripped != text.strip() and stripped:
        return stripped
    return text.rstrip() + rng.choice(("?", "!", "."))


def typo(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not candidates:
        return text
    i = rng.choice(candidates)
    w = words[i]
    op = rng.choice(("swap", "drop", "double"))
    j = rng.randrange(1, len(w) - 2) if len(w) > 3 else 1
    if op == "swap":
        w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    elif op == "drop":
        w = w[:j] + w[j + 1:]
    else:
        w = w[:j] + w[j] + w[j:]
    words[i] = w
    return " ".join(words)


def word_order(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    safe = [i for i in range(len(words) - 1)
            if words[i].lower().strip(".,!?") not in NEGATIONS and words[i + 1].lower().strip(".,!?") not in NEGATIONS
            and words[i] != words[i + 1]]
    if not safe:
        return text
    i = rng.choice(safe)
    words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


_FUNCS = {"casing": casing, "punctuation": punctuation, "typo": typo, "word_order": word_order}


def perturb(text: str, kind: str, seed: int, index: int) -> str:
    """The ``kind`` variant of ``text`` for example ``index`` under ``seed`` (may equal text for
    texts the kind cannot change, e.g. a one-word input for word_order)."""
    return _FUNCS[kind](text, _rng(seed, index, kind))


def variants(texts: list[str], seed: int, kinds: tuple[str, ...] = KINDS) -> list[tuple[int, str, str]]:
    """(source index, kind, perturbed text) for every text and kind whose variant differs."""
    out = []
    for i, text in enumerate(texts):
        for kind in kinds:
            changed = perturb(text, kind, seed, i)
            if changed != text:
                out.append((i, kind, changed))
    return out
