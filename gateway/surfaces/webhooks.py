"""Webhooks (seeds 000/001/003 name the events, not the registration): ``/api/v1/webhooks``.

A subscription belongs to the caller's account and receives the events of that account's jobs
from its creation on. The seed-000 envelope and error shape apply (this is the v1 surface).
"""
from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import Field, StrictStr, field_validator

from trainhouse.gateway.auth import ADMIN, Principal
from trainhouse.gateway.deps import Caller
from trainhouse.gateway.errors import INVALID, NOT_FOUND, ApiError
from trainhouse.gateway.models import CamelModel, Envelope, envelope, id_path, Int
from trainhouse.gateway.resources.webhooks import WEBHOOK_V1, delivery_fields, webhook_fields
from trainhouse.gateway.routing import GatewayRoute
from trainhouse.gateway.surfaces.common import ERROR_RESPONSES
from trainhouse.gateway.webhooks import payloads, urls
from trainhouse.gateway.webhooks.store import Webhook, WebhookStore

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], route_class=GatewayRoute,
                   responses=ERROR_RESPONSES)

EVENT_DOC = payloads.EVENT_DOC


class CreateWebhookIn(CamelModel):
    url: StrictStr = Field(max_length=2048, description="http(s) URL on a public address")
    events: list[StrictStr] = Field(min_length=1, max_length=20, description=EVENT_DOC)
    secret: StrictStr | None = Field(None, min_length=16, max_length=256,
                                     description="HMAC key for the signature; generated (and shown once) if absent")
    format: Literal["v1", "functions", "jsonrpc"] | None = Field(
        None, description="Payload shape: seed 000 (v1, default), seed 001 (functions) or seed 003 (jsonrpc; "
                          "the default when the events use training.job.* names)")
    progress_every: Int | None = Field(None, ge=1, le=1_000_000,
                                       description="A training.progress event every N epochs/iterations")

    @field_validator("events")
    @classmethod
    def _known(cls, events: list[str]) -> list[str]:
        return payloads.check_subscription(events)


class WebhookOut(CamelModel):
    webhook_id: str
    url: str
    events: list[str]
    format: str
    progress_every: int
    account: str
    created_at: str | None = None
    secret: str | None = Field(None, description="Only in the creation response, when generated")


class WebhooksData(CamelModel):
    webhooks: list[WebhookOut]


class DeletedOut(CamelModel):
    webhook_id: str
    deleted: bool


class DeliveryOut(CamelModel):
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


class DeliveriesData(CamelModel):
    webhook_id: str
    deliveries: list[DeliveryOut]
    total: int


def webhook_json(h: Webhook) -> dict[str, Any]:
    return WEBHOOK_V1.render(webhook_fields(h))


def store_of(request: Request) -> WebhookStore:
    return request.app.state.gate.webhooks


async def _owned(request: Request, caller: Principal, webhook_id: str) -> Webhook:
    hook = await run_in_threadpool(store_of(request).get, webhook_id)
    if hook is None or not hook.active or (ADMIN not in caller.scopes and hook.account != caller.account):
        raise ApiError(NOT_FOUND, f"webhook '{webhook_id[:100]}' not found", resource="webhook")
    return hook


WebhookId = Annotated[str, id_path("webhookId")]


@router.post("", response_model=Envelope[WebhookOut], response_model_exclude_none=True, status_code=201,
             summary="Subscribe a URL to training events of the caller's account")
async def create_webhook(body: CreateWebhookIn, request: Request, caller: Caller) -> dict[str, Any]:
    gate = request.app.state.gate
    try:
        await urls.check(body.url, gate.settings.webhooks.allow_private)
    except urls.UrlRefused as exc:
        raise ApiError(INVALID, f"webhook URL refused: {exc}", field="url", issue=str(exc)) from None
    events = sorted({"*" if e == "*" else payloads.normalize(e) or e for e in body.events})
    fmt = body.format or ("jsonrpc" if any(e in payloads.ALIASES for e in body.events) else "v1")
    every = body.progress_every or gate.settings.webhooks.progress_every
    hook, generated = await run_in_threadpool(gate.webhooks.create, caller.account, body.url, events, body.secret,
                                              fmt, every, caller.token_id, time.time())
    out = webhook_json(hook)
    if generated:
        out["secret"] = generated
    return envelope(out)


@router.get("", response_model=Envelope[WebhooksData], response_model_exclude_none=True,
            summary="The caller's account's webhooks (admin: all); secrets are never listed")
async def list_webhooks(request: Request, caller: Caller) -> dict[str, Any]:
    account = None if ADMIN in caller.scopes else caller.account
    hooks = await run_in_threadpool(store_of(request).list, account)
    return envelope({"webhooks": [webhook_json(h) for h in hooks]})


@router.get("/{webhookId}", response_model=Envelope[WebhookOut], response_model_exclude_none=True,
            summary="One webhook")
async def get_webhook(webhook_id: WebhookId, request: Request, caller: Caller) -> dict[str, Any]:
    return envelope(webhook_json(await _owned(request, caller, webhook_id)))


@router.delete("/{webhookId}", response_model=Envelope[DeletedOut], summary="Unsubscribe (pending deliveries stop)")
async def delete_webhook(webhook_id: WebhookId, request: Request, caller: Caller) -> dict[str, Any]:
    await _owned(request, caller, webhook_id)
    await run_in_threadpool(store_of(request).delete, webhook_id)
    return envelope({"webhookId": webhook_id, "deleted": True}, message="Webhook deleted")


@router.get("/{webhookId}/deliveries", response_model=Envelope[DeliveriesData], response_model_exclude_none=True,
            summary="The delivery log: each event sent to this webhook, its status and attempts")
async def list_deliveries(
    webhook_id: WebhookId, request: Request, caller: Caller,
    status: Annotated[Literal["pending", "delivered", "failed", "cancelled"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    store = store_of(request)
    hook = await run_in_threadpool(store.get, webhook_id)
    if hook is None or (ADMIN not in caller.scopes and hook.account != caller.account):
        raise ApiError(NOT_FOUND, f"webhook '{webhook_id[:100]}' not found", resource="webhook")
    rows, total = await run_in_threadpool(store.deliveries, webhook_id, status, limit, offset)
    deliveries = [WEBHOOK_V1.render(delivery_fields(r)) for r in rows]
    return envelope({"webhookId": webhook_id, "deliveries": deliveries, "total": total})
