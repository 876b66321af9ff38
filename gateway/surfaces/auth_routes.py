"""API token management (admin only): /api/v1/auth/tokens[/{tokenId}].

The token itself appears exactly once, in the creation response; listings never carry secrets.
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import Field, StrictBool, StrictStr

from trainhouse.gateway.auth import DEFAULT_ACCOUNT, SCOPES
from trainhouse.gateway.deps import Tokens
from trainhouse.gateway.errors import CONFLICT, NOT_FOUND, ApiError
from trainhouse.gateway.models import CamelModel, Envelope, envelope, id_path, Int
from trainhouse.gateway.resources.tokens import TOKEN_V1, token_fields
from trainhouse.gateway.routing import GatewayRoute
from trainhouse.gateway.surfaces.common import ERROR_RESPONSES
from trainhouse.gateway.tokens import BOOTSTRAP_ID, TokenRecord
from trainhouse.common.timeutil import now

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], route_class=GatewayRoute, responses=ERROR_RESPONSES)

Scope = Literal["training:start", "training:view", "training:cancel", "training:evaluate",
                "data:generate", "data:export", "models:deploy", "admin"]
assert set(Scope.__args__) == set(SCOPES)  # type: ignore[attr-defined]


class CreateTokenIn(CamelModel):
    name: StrictStr = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(min_length=1)
    account: StrictStr | None = Field(None, min_length=1, max_length=200,
                                      description="Account whose concurrency limit jobs count against")
    expires_in_days: Int | None = Field(None, ge=1, le=3650)
    rate_limit_per_hour: Int | None = Field(None, ge=0, description="Per-token budget; 0 = unlimited")


class TokenOut(CamelModel):
    token_id: str
    name: str
    scopes: list[str]
    account: str
    created_at: str | None = None
    expires_at: str | None = None
    revoked: bool
    rate_limit_per_hour: int | None = None


class CreatedTokenOut(TokenOut):
    token: str = Field(description="Shown once; only a salted hash is stored")


class TokensData(CamelModel):
    tokens: list[TokenOut]


class RevokedOut(CamelModel):
    token_id: str
    revoked: StrictBool


def token_json(r: TokenRecord) -> dict[str, Any]:
    return TOKEN_V1.render(token_fields(r))


@router.post("/tokens", response_model=Envelope[CreatedTokenOut],
             status_code=201, summary="Create a scoped API token (admin)")
async def create_token(body: CreateTokenIn, store: Tokens) -> dict[str, Any]:
    expires = now() + dt.timedelta(days=body.expires_in_days) if body.expires_in_days else None
    token, record = await run_in_threadpool(
        store.create, body.name, list(body.scopes), body.account or DEFAULT_ACCOUNT, expires,
        body.rate_limit_per_hour)
    return envelope({"token": token, **token_json(record)})


@router.get("/tokens", response_model=Envelope[TokensData],
            summary="List API tokens without their secrets (admin)")
async def list_tokens(store: Tokens,
                      include_revoked: Annotated[bool, Query(alias="includeRevoked")] = False) -> dict[str, Any]:
    records = await run_in_threadpool(store.list, include_revoked)
    return envelope({"tokens": [token_json(r) for r in records]})


@router.delete("/tokens/{tokenId}", response_model=Envelope[RevokedOut], summary="Revoke an API token (admin)")
async def revoke_token(token_id: Annotated[str, id_path("tokenId")], store: Tokens) -> dict[str, Any]:
    if token_id == BOOTSTRAP_ID:
        raise ApiError(CONFLICT, "the bootstrap admin token cannot be revoked here; change "
                       "TRAINHOUSE_BOOTSTRAP_TOKEN or delete $TRAINHOUSE_HOME/admin-token and restart",
                       field="tokenId", issue="bootstrap token")
    record = await run_in_threadpool(store.get, token_id)
    if record is None:
        raise ApiError(NOT_FOUND, f"token '{token_id}' not found", resource="token")
    await run_in_threadpool(store.revoke, token_id)
    return envelope({"tokenId": token_id, "revoked": True}, message="Token revoked")


internal_router = APIRouter(prefix="/internal/v1", tags=["internal"], route_class=GatewayRoute,
                            include_in_schema=False)


@internal_router.post("/introspect", summary="OAuth 2.0 token introspection (RFC 7662) for the services")
async def introspect(request: Request, store: Tokens) -> dict[str, Any]:
    """Whether an API token is active and whose it is, for a service a direct gRPC client presented
    it to. Only the stack's own processes (an internal assertion; trainhouse.gateway.scopes.INTERNAL) may ask:
    an API token, even an admin one, cannot use this to test other tokens."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=4)
    token = (form.get("token") or [""])[0]
    record = await run_in_threadpool(store.verify, token) if token else None
    if record is None or record.revoked or record.expired(now()):
        return {"active": False}
    answer: dict[str, Any] = {"active": True, "sub": record.name, "account": record.account,
                              "scope": " ".join(sorted(record.scopes)), "token_id": record.token_id,
                              "token_type": "api_token"}
    if record.expires_at is not None:
        answer["exp"] = int(record.expires_at.replace(tzinfo=dt.timezone.utc).timestamp())
    return answer
