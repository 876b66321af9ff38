"""Random resource ids: a prefix and hex digits from the operating system's CSPRNG.

One definition for every ``<prefix>-<hex>`` id (requests, predictions, tokens, evaluations...).
Why not ``uuid.uuid4().hex[:n]``: that builds a 128-bit UUID object to keep a slice of it, and a
served prediction mints two ids (its own and its request's) on the path the caller waits on.
"""
from __future__ import annotations

import secrets


def random_id(prefix: str, hex_digits: int = 16) -> str:
    """``prefix-`` and ``hex_digits`` random lowercase hex digits (4 bits of entropy each)."""
    return f"{prefix}-{secrets.token_hex((hex_digits + 1) // 2)[:hex_digits]}"
