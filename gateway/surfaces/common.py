"""Pieces shared by the seed-000 routers: error responses for OpenAPI, paging helpers."""
from __future__ import annotations

import math
from typing import Any

from trainhouse.gateway.models import ErrorEnvelope

# Documented on every v1 router so /openapi.json shows the error envelope for each status.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": text}
    for status, text in (
        (400, "INVALID_CONFIG: the request is malformed or a field is out of range"),
        (401, "UNAUTHORIZED: missing or invalid token"),
        (403, "FORBIDDEN: the token lacks the route's scope"),
        (404, "JOB_NOT_FOUND / AGENT_NOT_FOUND / NOT_FOUND"),
        (409, "CONFLICT: already exists, or not allowed in the resource's state"),
        (413, "PAYLOAD_TOO_LARGE: body over 10 MiB"),
        (429, "RATE_LIMIT_EXCEEDED"),
        (503, "SERVICE_UNAVAILABLE: a backend service is unreachable"),
    )
}


def skip_for(page: int, limit: int) -> int:
    """Seed 000 pages by number; the List RPCs take it as AIP-158's `skip` (their tokens are keyset
    tokens, which a page number cannot name)."""
    return (page - 1) * limit


def pagination(total: int, page: int, limit: int, next_token: str = "") -> dict[str, Any]:
    return {"total": total, "page": page, "limit": limit, "pages": math.ceil(total / limit) if limit else 0,
            "nextPageToken": next_token or None}
