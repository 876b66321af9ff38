"""Conditional GETs: every JSON answer to a GET carries an ETag, and a request whose If-None-Match
names the current one gets 304 Not Modified with no body, without spending the hourly budget.

Why: the dashboard (gateway/ui) polls its lists every few seconds; an open tab made ~1,200
requests an hour against the default 1,000-request budget of its token. A poll whose answer did
not change now costs the caller nothing from `requests`: the charge taken when the request came
in is given back. It is spent instead from the `conditional` group (TRAINHOUSE_RATE_LIMIT_
CONDITIONAL_PER_HOUR, default 36,000: some thirty open tabs), so a client cannot make unlimited
free backend calls by always sending the right ETag; when that group is spent too, the request
keeps its ordinary charge (and still gets its 304).

A pure ASGI middleware (no BaseHTTPMiddleware): it holds back the response start of a GET only
until the body's single message arrives (JSONResponse sends one); streamed answers (SSE, JSONL,
downloads: several body messages, or not JSON) pass through untouched. The ETag is a hash of the
body, so it changes exactly when the answer does, whichever backend produced it.
"""
from __future__ import annotations

import dataclasses
import hashlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trainhouse.gateway.ratelimit import CONDITIONAL, REQUESTS, tightest


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: `*`, or a list of (possibly weak) tags compared weakly."""
    if if_none_match.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in if_none_match.split(","))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _json(start: Message) -> bool:
    for key, value in start.get("headers", ()):
        if key.lower() == b"content-type":
            return value.split(b";")[0].strip().lower() == b"application/json"
    return False


class ConditionalGetMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return
        if_none_match = _header(scope, b"if-none-match")
        held: list[Message] = []  # the response start, while we wait for the body

        async def send_tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                if message["status"] == 200 and _json(message):
                    held.append(message)
                    return
            elif message["type"] == "http.response.body" and held:
                start = held.pop()
                if message.get("more_body", False):  # streamed: not ours to tag
                    await send(start)
                else:
                    tag = etag_of(message.get("body", b""))
                    headers = [(k, v) for k, v in start.get("headers", ()) if k.lower() != b"etag"]
                    headers.append((b"etag", tag.encode("latin-1")))
                    if if_none_match is not None and matches(if_none_match, tag):
                        _uncharge(scope)
                        keep = (b"etag", b"cache-control", b"vary", b"content-location", b"date", b"expires")
                        await send({"type": "http.response.start", "status": 304,
                                    "headers": [(k, v) for k, v in headers if k.lower() in keep]})
                        await send({"type": "http.response.body", "body": b""})
                        return
                    await send({**start, "headers": headers})
            await send(message)

        await self.app(scope, receive, send_tagged)


def _uncharge(scope: Scope) -> None:
    """Move this request's `requests` charge to the `conditional` group, when that one has budget
    left; the rate-limit headers then show the budget as the caller has it."""
    state = scope.get("state") or {}
    principal = state.get("principal")
    decisions = state.get("rate_decisions")
    app = scope.get("app")
    gate = getattr(getattr(app, "state", None), "gate", None)
    if principal is None or not decisions or gate is None:
        return
    charged = [d for d in decisions if d.group == REQUESTS and d.allowed]
    if not charged:
        return
    limiter = gate.limiter
    conditional = limiter.limit_of(CONDITIONAL)
    if conditional is not None and not limiter.hit(principal.token_id, conditional, 1.0, CONDITIONAL).allowed:
        return  # the conditional budget is spent too: the ordinary charge stands
    limit = limiter.limit_of(REQUESTS, principal.rate_limit_per_hour)
    if limit is None:
        return
    limiter.refund(principal.token_id, limit, 1.0, REQUESTS)
    refunded = dataclasses.replace(charged[0], remaining=min(charged[0].limit, charged[0].remaining + 1))
    decisions[decisions.index(charged[0])] = refunded
    state["extra_headers"] = tightest(decisions).headers()
