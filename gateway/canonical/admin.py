"""/v1/tokens (admin) and /v1/webhooks: the gateway's own resources (no RPC behind them).

Both stores hold few rows per account, so their lists come whole in one page (``has_more`` false);
webhook deliveries page with an opaque cursor over the delivery log.
"""
from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Any, Literal

from fastapi import Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, StrictStr, field_validator

from trainhouse.gateway.auth import ADMIN, DEFAULT_ACCOUNT, SCOPES
from trainhouse.gateway.canonical.common import After, Page, page, path_id, router
from trainhouse.gateway.canonical.idempotency import idempotent
from trainhouse.gateway.deps import Caller, Tokens
from trainhouse.gateway.errors import CONFLICT, INVALID, NOT_FOUND, ApiError
from trainhouse.gateway.models import Int
from trainhouse.gateway.resources.tokens import token_fields
from trainhouse.gateway.resources.webhooks import delivery_fields, webhook_fields
from trainhouse.gateway.tokens import BOOTSTRAP_ID
from trainhouse.gateway.webhooks import payloads, urls
from trainhouse.common.timeutil import now

tokens = router("/tokens", "tokens")
webhooks = router("/webhooks", "webhooks")
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]
Scope = Literal[tuple(sorted(SCOPES))]  # type: ignore[valid-type]
EVENT_DOC = payloads.EVENT_DOC


class V1TokenOut(BaseModel):
    token_id: str
    name: str
    scopes: list[str]
    account: str
    created_at: str | None = None
    expires_at: str | None = None
    revoked: bool
    rate_limit_per_hour: int | None = None


class V1CreatedTokenOut(V1TokenOut):
    token: str = Field(description="Shown once; only a salted hash is stored")


class V1CreateTokenIn(BaseModel):
    name: StrictStr = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(min_length=1)
    account: StrictStr | None = Field(None, min_length=1, max_length=200)
    expires_in_days: Int | None = Field(None, ge=1, le=3650)
    rate_limit_per_hour: Int | None = Field(None, ge=0, description="Per-token budget; 0 = unlimited")


class V1RevokedOut(BaseModel):
    token_id: str
    revoked: bool


@tokens.post("", operation_id="tokens.create", response_model=V1CreatedTokenOut, status_code=201,
             summary="Create a scoped API token (admin)")
async def create_token(body: V1CreateTokenIn, request: Request, store: Tokens, idempotency_key: IdempotencyKey = None) -> Any:
    async def create() -> dict[str, Any]:
        expires = now() + dt.timedelta(days=body.expires_in_days) if body.expires_in_days else None
        token, record = await run_in_threadpool(store.create, body.name, list(body.scopes),
                                                body.account or DEFAULT_ACCOUNT, expires, body.rate_limit_per_hour)
        return {"token": token, **token_fields(record)}
    return await idempotent(request, idempotency_key, body.model_dump(exclude_none=True), create)


@tokens.get("", operation_id="tokens.list", response_model=Page[V1TokenOut], summary="API tokens, without secrets (admin)")
async def list_tokens(store: Tokens, include_revoked: bool = False) -> dict[str, Any]:
    return page([token_fields(r) for r in await run_in_threadpool(store.list, include_revoked)], None)


@tokens.delete("/{token_id}", operation_id="tokens.revoke", response_model=V1RevokedOut, summary="Revoke a token (admin)")
async def revoke_token(token_id: Annotated[str, path_id()], store: Tokens) -> dict[str, Any]:
    if token_id == BOOTSTRAP_ID:
        raise ApiError(CONFLICT, "the bootstrap admin token cannot be revoked here", field="token_id")
    if await run_in_threadpool(store.get, token_id) is None:
        raise ApiError(NOT_FOUND, f"token '{token_id}' not found", field="token_id", resource="token")
    await run_in_threadpool(store.revoke, token_id)
    return {"token_id": token_id, "revoked": True}


# ---- webhooks ------------------------------------------------------------------------------------

class V1CreateWebhookIn(BaseModel):
    url: StrictStr = Field(max_length=2048, description="http(s) URL on a public address")
    events: list[StrictStr] = Field(min_length=1, max_length=20, description=EVENT_DOC)
    secret: StrictStr | None = Field(None, min_length=16, max_length=256,
                                     description="HMAC key of the signature; generated (and shown once) if absent")
    format: Literal["v1", "functions", "jsonrpc"] | None = Field(None, description="Payload shape (default v1)")
    progress_every: Int | None = Field(None, ge=1, le=1_000_000)

    @field_validator("events")
    @classmethod
    def _known(cls, events: list[str]) -> list[str]:
        return payloads.check_subscription(events)


class V1WebhookOut(BaseModel):
    webhook_id: str
    url: str
    events: list[str]
    format: str
    progress_every: int
    account: str
    created_at: str | None = None
    secret: str | None = Field(None, description="Only in the creation answer, when generated")


class V1DeliveryOut(BaseModel):
    delivery_id: str
    event_id: str
    event: str
    job_id: str
    status: str
    attempts: int
    response_status: int | None = None
    last_error: str | None = None
    created_at: str | None = None
    delivered_at: str | None = None
    next_attempt_at: str | None = None


class V1WebhookDeletedOut(BaseModel):
    webhook_id: str
    deleted: bool


async def _owned(request: Request, caller: Any, webhook_id: str) -> Any:
    hook = await run_in_threadpool(request.app.state.gate.webhooks.get, webhook_id)
    if hook is None or not hook.active or (ADMIN not in caller.scopes and hook.account != caller.account):
        raise ApiError(NOT_FOUND, f"webhook '{webhook_id[:100]}' not found", field="webhook_id", resource="webhook")
    return hook


WebhookId = Annotated[str, path_id()]


@webhooks.post("", operation_id="webhooks.create", response_model=V1WebhookOut, status_code=201,
               summary="Subscribe a URL to training events of the caller's account")
async def create_webhook(body: V1CreateWebhookIn, request: Request, caller: Caller,
                         idempotency_key: IdempotencyKey = None) -> Any:
    gate = request.app.state.gate
    try:
        await urls.check(body.url, gate.settings.webhooks.allow_private)
    except urls.UrlRefused as exc:
        raise ApiError(INVALID, f"webhook URL refused: {exc}", field="url") from None

    async def create() -> dict[str, Any]:
        events = sorted({"*" if e == "*" else payloads.normalize(e) or e for e in body.events})
        fmt = body.format or ("jsonrpc" if any(e in payloads.ALIASES for e in body.events) else "v1")
        every = body.progress_every or gate.settings.webhooks.progress_every
        hook, generated = await run_in_threadpool(gate.webhooks.create, caller.account, body.url, events, body.secret,
                                                  fmt, every, caller.token_id, time.time())
        return {**webhook_fields(hook), "secret": generated or None}
    return await idempotent(request, idempotency_key, body.model_dump(exclude_none=True), create)


@webhooks.get("", operation_id="webhooks.list", response_model=Page[V1WebhookOut],
              summary="The account's webhooks (admin: all); secrets are never listed")
async def list_webhooks(request: Request, caller: Caller) -> dict[str, Any]:
    account = None if ADMIN in caller.scopes else caller.account
    hooks = await run_in_threadpool(request.app.state.gate.webhooks.list, account)
    return page([webhook_fields(h) for h in hooks], None)


@webhooks.get("/{webhook_id}", operation_id="webhooks.get", response_model=V1WebhookOut, summary="One webhook")
async def get_webhook(webhook_id: WebhookId, request: Request, caller: Caller) -> dict[str, Any]:
    return webhook_fields(await _owned(request, caller, webhook_id))


@webhooks.delete("/{webhook_id}", operation_id="webhooks.delete", response_model=V1WebhookDeletedOut,
                 summary="Unsubscribe (pending deliveries stop)")
async def delete_webhook(webhook_id: WebhookId, request: Request, caller: Caller) -> dict[str, Any]:
    await _owned(request, caller, webhook_id)
    await run_in_threadpool(request.app.state.gate.webhooks.delete, webhook_id)
    return {"webhook_id": webhook_id, "deleted": True}


@webhooks.get("/{webhook_id}/deliveries", operation_id="webhooks.deliveries", response_model=Page[V1DeliveryOut],
              summary="The delivery log of a webhook")
async def list_deliveries(webhook_id: WebhookId, request: Request, caller: Caller, after: After = "",
                          limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                          status: Literal["pending", "delivered", "failed", "cancelled"] | None = None) -> dict[str, Any]:
    store = request.app.state.gate.webhooks
    hook = await run_in_threadpool(store.get, webhook_id)
    if hook is None or (ADMIN not in caller.scopes and hook.account != caller.account):
        raise ApiError(NOT_FOUND, f"webhook '{webhook_id[:100]}' not found", field="webhook_id", resource="webhook")
    if after and not after.isdigit():
        raise ApiError(INVALID, "after must be a cursor from next_cursor", field="after")
    offset = int(after or 0)
    rows, total = await run_in_threadpool(store.deliveries, webhook_id, status, limit, offset)
    more = offset + len(rows) < total
    return page([delivery_fields(r) for r in rows], offset + len(rows) if more else None)
