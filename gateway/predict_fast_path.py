"""REST Predict's hot path: a request the serving replica answers skips FastAPI's routing,
dependency solving and response machinery.

Why: profiled under a one-client load (README, "Where the time went"), the gateway spent about as
much CPU per Predict on FastAPI as on the model: matching the path against every route of every
surface (~130 us), solving dependencies, and the exception, exit-stack and response layers. A
routed Predict is the one call an agent makes per user request, so it gets a path of its own, in
front of the router, like the data plane of a serving system beside its control plane.

It adds no second definition of any answer. It answers only the common case whole: POST
/api/v1/agents/{agentId}/predict, a declared JSON body of at most FAST_BODY_BYTES, a caller the
route would admit, a body the route's own model (PredictIn) accepts and turns into the same
PredictRequest (predict_request), and an answer from the serving replica, rendered by the route's
own function (predict_data). Every other request goes to the full route with its body replayed;
that route renders every error, pin, episode and registry answer.

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
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trainhouse.common.identity import bind_for_task
from trainhouse.common.validation import RESOURCE_ID_MAX
from trainhouse.gateway.auth import require_scope
from trainhouse.gateway.errors import ApiError, SurfaceRegistry, render_error
from trainhouse.gateway.json_limits import parse_body
from trainhouse.gateway.models import ID_PATTERN, envelope, json_answer
from trainhouse.gateway.ratelimit import REQUESTS
from trainhouse.gateway.routing import charge, rate_limited
from trainhouse.gateway.scopes import AUTHENTICATED, PUBLIC_WHEN, scope_for
from trainhouse.gateway.surfaces.agents import PredictIn, predict_data, predict_request, router

TEMPLATE = "/api/v1/agents/{agentId}/predict"
_PATH = re.compile(r"/api/v1/agents/([^/]+)/predict")
_AGENT_ID = re.compile(ID_PATTERN)
# Larger bodies (up to 1,000 inputs) are rare and cost more in the model than in the framework.
FAST_BODY_BYTES = 64 * 1024
REQUIRED = scope_for("POST", TEMPLATE)
# The route this path stands in front of: its template labels the request's metrics and log.
ROUTE = next(r for r in router.routes if isinstance(r, APIRoute) and r.path == TEMPLATE and "POST" in r.methods)
if ("POST", TEMPLATE) in PUBLIC_WHEN:  # pragma: no cover - guarded by a test; the fast path assumes a token
    raise RuntimeError(f"{TEMPLATE} became public-when: teach predict_fast_path about it")


class PredictFastPath:
    """ASGI middleware in front of the router (module doc)."""

    def __init__(self, app: ASGIApp, surfaces: SurfaceRegistry):
        self.app = app
        self.surfaces = surfaces

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        agent_id = self._candidate(scope)
        if agent_id is None:
            await self.app(scope, receive, send)
            return
        body = await _read(receive)
        handled = await self._answer(scope, agent_id, body, send)
        scope["app"].state.gate.metrics.took_fast_path(handled)
        if not handled:
            await self.app(scope, _replaying(body, receive), send)

    def _candidate(self, scope: Scope) -> str | None:
        """The agent id when the request has the shape the fast path takes, else None."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("query_string"):
            return None
        match = _PATH.fullmatch(scope["path"])
        if match is None:
            return None
        agent_id = match.group(1)
        if len(agent_id) > RESOURCE_ID_MAX or not _AGENT_ID.match(agent_id):
            return None
        length = content_type = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                length = value
            elif key == b"content-type":
                content_type = value
        if length is None or not length.isdigit() or int(length) > FAST_BODY_BYTES:
            return None
        if content_type is None or content_type.split(b";")[0].strip().lower() != b"application/json":
            return None
        return agent_id

    async def _answer(self, scope: Scope, agent_id: str, raw: bytes, send: Send) -> bool:
        """Answer the request, or return False (having changed nothing) for the full route."""
        app = scope["app"]
        gate = app.state.gate
        if not gate.backends.serving.fresh():
            return False  # the replica would decline: spare the work of judging the request twice
        state = scope.setdefault("state", {})
        authorization = None
        for key, value in scope["headers"]:
            if key == b"authorization":
                authorization = value.decode("latin-1")
        try:
            principal = gate.authenticator.authenticate(authorization)
            if REQUIRED != AUTHENTICATED:
                require_scope(principal, REQUIRED)
            body = PredictIn.model_validate(parse_body(raw, gate.settings.max_json_depth))
            if body.version_id or body.episodes:
                return False  # pinned versions and policies: the registry's (the replica declines them)
            request = predict_request(agent_id, body)
        except (ApiError, ValidationError):
            return False  # the full route renders it, in its order (it charges before it judges)
        scope["route"] = ROUTE
        state["principal"] = principal
        decision = charge(Request(scope), REQUESTS)
        if decision is not None and not decision.allowed:
            await self._render(scope, rate_limited(decision), send)
            return True
        bind_for_task(principal.caller)
        answer = await gate.backends.serving.predict(request, final=False)
        if answer is None:
            if decision is not None:
                gate.limiter.refund(principal.token_id, gate.limiter.limit_of(REQUESTS, principal.rate_limit_per_hour),
                                    1.0, REQUESTS)
            for key in ("principal", "rate_decisions", "extra_headers"):
                state.pop(key, None)
            return False
        response = json_answer(envelope(predict_data(agent_id, list(request.inputs), answer)))
        await response(scope, _no_receive, send)
        return True

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
