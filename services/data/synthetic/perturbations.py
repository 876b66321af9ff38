"""Text perturbations: keyboard typos, distractor clauses and the edge-case transformations.

Every function takes the generator's ``random.Random`` so a seed reproduces the same text.
"""
from __future__ import annotations

import random

EDGE_CASE_TYPES = ("typos", "truncation", "mixed_case", "very_short", "very_long", "negation")

_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_ROWS):
    for _c, _ch in enumerate(_row):
        near = [_row[j] for j in (_c - 1, _c + 1) if 0 <= j < len(_row)]
        for _other in (_r - 1, _r + 1):
            if 0 <= _other < len(_ROWS):
                near += [_ROWS[_other][j] for j in (_c - 1, _c, _c + 1) if 0 <= j < len(_ROWS[_other])]
        NEIGHBOURS[_ch] = "".join(near)

# Context sentences that add length without naming any output.
FILLERS = (
    "I have been a customer for several years.", "This started happening yesterday afternoon.",
    "I already tried the obvious things.", "A colleague mentioned the same thing last week.",
    "Sorry for the long message.", "Let me know if you need more details from me.",
    "I am writing from my phone so excuse the formatting.", "It is not the first time this happens.",
    "I checked the documentation before asking.", "My team depends on this for our weekly work.",
    "I would appreciate a quick answer.", "Everything else seems to work as expected.",
)
DISTRACTOR_FRAMES = ("also, {kw} was fine last time", "unrelated to {kw}", "I already checked {kw}",
                     "{kw} is not the problem", "(I asked about {kw} before)")
NEGATION_FRAMES = ("this is not about {kw}: ", "I don't need {kw}, ", "not {kw} - ", "it isn't {kw}; ")


def typo(word: str, rng: random.Random) -> str:
    """One keyboard slip: swap two letters, drop, double, or hit a neighbouring key."""
    if len(word) < 3:
        return word
    i = rng.randrange(len(word) - 1)
    op = rng.randrange(4)
    if op == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == 1:
        return word[:i] + word[i + 1:]
    if op == 2:
        return word[:i] + word[i] + word[i:]
    near = NEIGHBOURS.get(word[i].lower())
    if not near:  # not a letter: swap instead
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return word[:i] + rng.choice(near) + word[i + 1:]


def add_typos(text: str, rate: float, rng: random.Random) -> str:
    """Each word longer than 3 characters gets a typo with probability ``rate``."""
    if rate <= 0:
        return text
    rnd = rng.random
    parts = text.split(" ")
    changed = False
    for i, w in enumerate(parts):
        if len(w) > 3 and rnd() < rate:
            parts[i] = typo(w, rng)
            changed = True
    return " ".join(parts) if changed else text


def distractor(text: str, keyword: str, rng: random.Random) -> str:
    """Mention another output's subject in a clause that does not change the intent."""
    return f"{text}, {rng.choice(DISTRACTOR_FRAMES).format(kw=keyword)}"


def truncate_words(text: str, max_chars: int) -> str:
    """Cut to at most ``max_chars`` characters at a word boundary (mid-word only if one word is longer)."""
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars + 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > 0 else text[:max_chars]).rstrip(" ,;:-")


def edge_case(kind: str, text: str, keyword: str, rng: random.Random, long_chars: int) -> str:
    """Apply edge case ``kind`` (one of EDGE_CASE_TYPES)."""
    if kind == "typos":
        return add_typos(text, 0.4, rng) if any(len(w) > 3 for w in text.split(" ")) else text
    if kind == "truncation":
        words = text.split()
        if len(words) <= 2:
            return text
        keep = max(2, int(len(words) * rng.uniform(0.4, 0.7)))
        return " ".join(words[:keep])
    if kind == "mixed_case":
        style = rng.randrange(3)
        if style == 0:
            return text.upper()
        if style == 1:
            return text.lower()
        return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in text)
    if kind == "very_short":
        words = text.split()
        if len(words) <= 2:
            return text
        # The longest words carry the content ("refund", "headphones"); keep them in order.
        ranked = sorted(range(len(words)), key=lambda i: (-len(words[i]), i))[:2]
        return " ".join(words[i] for i in sorted(ranked))
    if kind == "very_long":
        target = rng.randint(max(len(text) + 40, long_chars // 2), max(long_chars, len(text) + 80))
        before: list[str] = []
        after: list[str] = []
        length = len(text)
        while length < target:
            sentence = rng.choice(FILLERS)
            (before if rng.random() < 0.3 else after).append(sentence)
            length += len(sentence) + 1
        return " ".join([*before, text + ".", *after])
    if kind == "negation":
        return rng.choice(NEGATION_FRAMES).format(kw=keyword) + text
    raise ValueError(kind)
