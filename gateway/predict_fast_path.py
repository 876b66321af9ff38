"""REST Predict's hot path: a request the serving replica answers skips FastAPI's routing,
dependency solving and response machinery.

Why: profiled under a one-client load (README, "Where the time went"), the gateway spent about as
much CPU per Predict on FastAPI as on the model: matching the path against every route of every
surface (~130 us), solving dependencies, and the exception, exit-stack and response layers. A
routed Predict is the one call an agent makes per user request, so it gets a path of its own, in
front of the router, like the data plane of a serving system beside its control plane.

It adds no second definition of any answer. Each surface's Predict route it stands in front of
(app.PREDICT_ROUTES: seed 000's /api/v1, which clients of that seed call, and the canonical /v1,
which the SDK and the CLI call) lends it the route's own body model, request builder and answer
renderer.
It answers only the common case whole: a declared JSON body of at most FAST_BODY_BYTES, no query
string, a caller the route would admit, a body the route's model accepts, and an answer from the
serving replica. Every other request goes to the full route with its body replayed; that route
renders every error, pin, episode and registry answer.

Nothing with an effect happens before the last point of return to the full route, so a request
that falls back is charged and recorded exactly once:
  authenticate (a lookup) -> scope -> parse and validate the body -> charge the request budget
  (a refused charge spends nothing; its 429 is rendered by the errors module's one renderer, as the
  route's would be) -> the replica's answer (a declined answer refunds the charge, then falls back).
The request-context middleware around it still assigns the request id, logs the request, adds
the rate-limit headers and records the duration under the route's template.
"""
from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trainhouse.common.identity import bind_for_task
from trainhouse.common.validation import RESOURCE_ID_MAX
from trainhouse.gateway.auth import require_scope
from trainhouse.gateway.errors import ApiError, SurfaceRegistry, render_error
from trainhouse.gateway.json_limits import parse_body
from trainhouse.gateway.models import ID_PATTERN
from trainhouse.gateway.ratelimit import REQUESTS
from trainhouse.gateway.routing import charge, rate_limited
from trainhouse.gateway.scopes import AUTHENTICATED, PUBLIC_WHEN, scope_for
from trainhouse.v1 import model_registry_pb2

# Larger bodies (up to 1,000 inputs) are rare and cost more in the model than in the framework.
FAST_BODY_BYTES = 64 * 1024
_AGENT_ID = re.compile(ID_PATTERN)


@dataclass(frozen=True)
class PredictRoute:
    """One surface's Predict route, as the fast path needs it."""

    route: APIRoute                 # its template labels the request's metrics and log
    pattern: re.Pattern[str]        # the path, capturing the agent id
    scope: str | None               # the scope the route requires (trainhouse.gateway.scopes)
    body: type[BaseModel]           # the route's body model
    request: Callable[[str, Any], model_registry_pb2.PredictRequest]
    answer: Callable[[str, model_registry_pb2.PredictRequest, model_registry_pb2.PredictResponse], Response]

    @classmethod
    def of(cls, router: APIRouter, template: str, body: type[BaseModel], request: Callable, answer: Callable
           ) -> "PredictRoute":
        found = [r for r in router.routes if isinstance(r, APIRoute) and r.path == template and "POST" in r.methods]
        if len(found) != 1:  # a renamed route would otherwise leave the fast path standing before nothing
            raise RuntimeError(f"expected one POST {template} route in its router, found {len(found)}")
        route = found[0]
        if ("POST", template) in PUBLIC_WHEN:  # the fast path always authenticates: fail at import, not open
            raise RuntimeError(f"{template} became public-when: teach predict_fast_path about it")
        # "/v1/agents/{agent_id}/predict" -> "/v1/agents/([^/]+)/predict" (no other regex characters)
        return cls(route, re.compile(re.sub(r"\{[^}]+\}", "([^/]+)", template)), scope_for("POST", template),
                   body, request, answer)


class PredictFastPath:
    """ASGI middleware in front of the router (module doc)."""

    def __init__(self, app: ASGIApp, surfaces: SurfaceRegistry, routes: tuple[PredictRoute, ...]):
        self.app = app
        self.surfaces = surfaces
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self._candidate(scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        route, agent_id, authorization = found
        body = await _read(receive)
        outcome = await self._answer(scope, route, agent_id, authorization, body, send)
        scope["app"].state.gate.metrics.took_fast_path(outcome or "route")
        if outcome is None:
            await self.app(scope, _replaying(body, receive), send)

    def _candidate(self, scope: Scope) -> tuple[PredictRoute, str, str | None] | None:
        """The route, agent id and Authorization header when the request has the shape the fast path
        takes, else None (one pass over the headers)."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("query_string"):
            return None
        path = scope["path"]
        for route in self.routes:
            match = route.pattern.fullmatch(path)
            if match is not None:
                break
        else:
            return None
        agent_id = match.group(1)
        if len(agent_id) > RESOURCE_ID_MAX or not _AGENT_ID.match(agent_id):
            return None
        length = content_type = authorization = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                length = value
            elif key == b"content-type":
                content_type = value
            elif key == b"authorization":
                authorization = value
        if length is None or not length.isdigit() or int(length) > FAST_BODY_BYTES:
            return None
        if content_type is None or content_type.split(b";")[0].strip().lower() != b"application/json":
            return None
        return route, agent_id, None if authorization is None else authorization.decode("latin-1")

    async def _answer(self, scope: Scope, route: PredictRoute, agent_id: str, authorization: str | None, raw: bytes,
                      send: Send) -> str | None:
        """Answer the request ("answered"), refuse it with its 429 ("refused"), or return None
        (having changed nothing) for the full route."""
        gate = scope["app"].state.gate
        if not gate.backends.serving.fresh():
            return None  # the replica would decline: spare the work of judging the request twice
        state = scope.setdefault("state", {})
        try:
            principal = gate.authenticator.authenticate(authorization)
            if route.scope is not None and route.scope != AUTHENTICATED:
                require_scope(principal, route.scope)
            request = route.request(agent_id, route.body.model_validate(parse_body(raw, gate.settings.max_json_depth)))
        except (ApiError, ValidationError):
            return None  # the full route renders it, in its order (it charges before it judges)
        if request.version_id or request.episodes:
            return None  # pinned versions and policies: the registry's (the replica declines them)
        scope["route"] = route.route
        state["principal"] = principal
        decision = charge(Request(scope), REQUESTS)
        if decision is not None and not decision.allowed:
            await self._render(scope, rate_limited(decision), send)
            return "refused"
        bind_for_task(principal.caller)
        answer = await gate.backends.serving.predict(request, final=False)
        if answer is None:
            if decision is not None:
                gate.limiter.refund(principal.token_id, gate.limiter.limit_of(REQUESTS, principal.rate_limit_per_hour),
                                    1.0, REQUESTS)
            for key in ("principal", "rate_decisions", "extra_headers"):
                state.pop(key, None)
            return None
        await route.answer(agent_id, request, answer)(scope, _no_receive, send)
        return "answered"

    async def _render(self, scope: Scope, error: ApiError, send: Send) -> None:
        response = render_error(self.surfaces, scope["path"], scope["state"]["request_id"], error)
        await response(scope, _no_receive, send)


async def _read(receive: Receive) -> bytes:
    """The whole body (declared and small: the server frames it by its content-length)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Callable[[], Awaitable[Message]]:
    """A receive that hands the full route the body already read, then the connection's own."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _no_receive() -> Message:  # a Response only reads to notice a disconnect while streaming
    return {"type": "http.disconnect"}
