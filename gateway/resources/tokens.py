"""API tokens: the canonical fields of a token record (never its secret or hash).

The gateway owns tokens (its DuckDB file); the admin routes render them with the v1 table and the
CLI reads that rendering back with the same table.
"""
from __future__ import annotations

from typing import Any

from trainhouse.gateway.resources.tables import FieldTable
from trainhouse.gateway.tokens import TokenRecord
from trainhouse.common.timeutil import iso


def token_fields(r: TokenRecord) -> dict[str, Any]:
    return {"token_id": r.token_id, "name": r.name, "scopes": list(r.scopes), "account": r.account,
            "created_at": iso(r.created_at), "expires_at": iso(r.expires_at), "revoked": r.revoked,
            "rate_limit_per_hour": r.rate_limit_per_hour}


TOKEN_V1 = FieldTable(camel_case=True)
