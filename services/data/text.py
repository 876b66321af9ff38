"""Text normalisation shared by generation statistics and validation, so both count alike."""
from __future__ import annotations

import re

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_WORD = re.compile(r"\w+(?:'\w+)?", re.UNICODE)
# ASCII fast path: every ASCII character that is not a letter or digit becomes a space.
_ASCII_NON_WORD = str.maketrans({chr(c): " " for c in range(128) if not chr(c).isalnum()})


def normalize(text: str) -> str:
    """Lower case, punctuation dropped, whitespace collapsed: "Hi,  THERE!" -> "hi there".

    Two inputs that differ only in case, punctuation or spacing are the same input for
    duplicate detection and for counting unique scenarios.
    """
    if text.isascii():
        return " ".join(text.lower().translate(_ASCII_NON_WORD).split())
    return _NON_WORD.sub(" ", text.lower()).strip()


def words(text: str) -> list[str]:
    """Lower-case word tokens (apostrophes kept inside words: "don't")."""
    return _WORD.findall(text.lower())
