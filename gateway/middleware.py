"""Per-request context as a pure ASGI middleware: request id, body limit, access log, metrics.

Pure ASGI (not BaseHTTPMiddleware) so that streaming responses (SSE, JSONL downloads) pass
through unbuffered and a client disconnect still reaches the endpoint.

The request id is also bound to trainhouse.common.request_context's contextvar for the life of
the request: the gateway's own log lines carry it, and trainhouse.gateway.rpc_interceptors sends it to the
services as `x-request-id` metadata.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trainhouse.gateway.errors import TOO_LARGE, ApiError, SurfaceRegistry, new_request_id
from trainhouse.gateway.metrics import UNMATCHED, GatewayMetrics
from trainhouse.common.logs import log
from trainhouse.common.request_context import request_id as request_id_var

logger = logging.getLogger("trainhouse.gateway.access")

# A caller's id is echoed only when it is short and plain, so it cannot inject into logs/headers.
_CALLER_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


# An oversized body is read and dropped (up to this much) before the 413 goes out: closing a
# socket with unread input makes the kernel send RST, which can destroy the 413 in flight.
DRAIN_LIMIT = 64 * 1024 * 1024


async def _drain(receive: Receive, already: int) -> None:
    seen = already
    while seen <= DRAIN_LIMIT:
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class RequestContextMiddleware:
    """Assigns the request id, enforces the body limit, adds context headers, logs one line and
    records the request's duration by route template and status."""

    def __init__(self, app: ASGIApp, surfaces: SurfaceRegistry, max_body_bytes: int,
                 metrics: GatewayMetrics | None = None):
        self.app = app
        self.surfaces = surfaces
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        caller_id, declared = "", None
        for key, value in scope.get("headers", ()):  # (names arrive lowercased: ASGI spec)
            if key == b"x-request-id":
                caller_id = value.decode("latin-1")
            elif key == b"content-length":
                declared = value.decode("latin-1")
        request_id = caller_id if _CALLER_ID.match(caller_id) else new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        bound = request_id_var.set(request_id)
        started = time.monotonic()
        status_holder: dict[str, int] = {}

        async def send_with_context(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                raw = list(message.get("headers", []))
                names = {k.lower() for k, _ in raw}
                extra = {"x-request-id": request_id}
                extra.update({k.lower(): v for k, v in (state.get("extra_headers") or {}).items()})
                for key, value in extra.items():
                    if key.encode("latin-1") not in names:
                        raw.append((key.encode("latin-1"), str(value).encode("latin-1")))
                message = {**message, "headers": raw}
            await send(message)

        try:
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                await self._too_large(scope, receive, send_with_context, request_id)
                return
            await self.app(scope, self._limited(receive), send_with_context)
        except Exception:
            # Starlette's outermost middleware turns it into the 500 after we have returned.
            status_holder.setdefault("status", 500)
            raise
        finally:
            elapsed = time.monotonic() - started
            principal = state.get("principal")
            status = status_holder.get("status")
            log(logger, "request", method=scope.get("method"), path=scope.get("path"),
                status=status, ms=round(elapsed * 1000, 1), token_id=getattr(principal, "token_id", None))
            if self.metrics is not None:
                route = scope.get("route")
                template = getattr(route, "path", None) or UNMATCHED
                # No status: the client went away before the response started (nginx's 499).
                self.metrics.observe_http(str(scope.get("method")), template, status or 499, elapsed)
            request_id_var.reset(bound)

    def _limited(self, receive: Receive) -> Callable:
        """Count body bytes as they arrive, for chunked bodies that declare no length."""
        received = 0
        limit = self.max_body_bytes

        async def wrapped() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if message.get("more_body", False):
                        await _drain(receive, received)
                    raise ApiError(TOO_LARGE, f"request body exceeds {limit} bytes")
            return message

        return wrapped

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        await _drain(receive, 0)
        error = ApiError(TOO_LARGE, f"request body exceeds {self.max_body_bytes} bytes")
        response = self.surfaces.for_path(scope.get("path", "")).render(error, request_id)
        # Close the connection: the unread body would otherwise be parsed as the next request.
        response.headers["Connection"] = "close"
        await response(scope, receive, send)

