"""Pieces shared by the seed-000 routers: error responses for OpenAPI, paging helpers."""
from __future__ import annotations

import math
from typing import Any

from gateway.models import ErrorEnvelope
from services.common.pagination import encode_page_token

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


def page_token_for(page: int, limit: int) -> str:
    """Seed 000 pages by number; the services page by opaque token. The token codec is the shared
    one in services.common.pagination, so page N is simply the token of offset (N-1)*limit."""
    return encode_page_token((page - 1) * limit) if page > 1 else ""


def pagination(total: int, page: int, limit: int, next_token: str = "") -> dict[str, Any]:
    return {"total": total, "page": page, "limit": limit, "pages": math.ceil(total / limit) if limit else 0,
            "nextPageToken": next_token or None}
