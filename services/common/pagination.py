"""Opaque page tokens (MLflow's habit: base64 of a small JSON), so clients cannot depend on offsets."""
from __future__ import annotations

import base64
import json

from services.core.errors import InvalidArgument


def encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str, field: str = "page_token") -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except Exception as exc:  # any malformed token is the caller's mistake
        raise InvalidArgument(field, "malformed page token") from exc
    if not isinstance(offset, int) or offset < 0:
        raise InvalidArgument(field, "malformed page token")
    return offset


def page_size(value: int, default: int, maximum: int, field: str = "page_size") -> int:
    if value < 0:
        raise InvalidArgument(field, "must be >= 0")
    if value == 0:
        return default
    return min(value, maximum)


def next_token(offset: int, size: int, total: int) -> str:
    return encode_page_token(offset + size) if offset + size < total else ""
