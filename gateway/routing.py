"""GatewayRoute: authenticates, checks the scope and spends the rate budget BEFORE the body is read.

Doing it in the route (not in a dependency) matters: FastAPI reads and parses the body before it
solves dependencies, so an anonymous caller sending malformed JSON would get 400 instead of 401,
and would make us parse up to 10 MiB for nothing.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import Principal, require_scope
from gateway.errors import RATE_LIMITED, ApiError
from gateway.scopes import scope_for


class GatewayRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        original = super().get_route_handler()
        if len(self.methods) != 1:
            raise RuntimeError(f"route {self.path} must have exactly one method, has {self.methods}")
        method = next(iter(self.methods))
        try:
            required = scope_for(method, self.path)
        except KeyError:
            raise RuntimeError(f"route {method} {self.path} is missing from gateway.scopes.ROUTE_SCOPES") from None

        async def handler(request: Request) -> Response:
            if required is not None:
                gate = request.app.state.gate
                principal = gate.authenticator.authenticate(request.headers.get("authorization"))
                state = request.scope.setdefault("state", {})
                state["principal"] = principal
                _spend(gate, principal, state)
                require_scope(principal, required)
            return await original(request)

        return handler


def _spend(gate, principal: Principal, state: dict) -> None:  # noqa: ANN001 - Gate lives in app.py
    limit = principal.rate_limit_per_hour
    if limit is None:
        limit = gate.settings.rate_limit_per_hour
    if limit <= 0:
        return
    decision = gate.limiter.hit(principal.token_id, limit)
    state["extra_headers"] = decision.headers()
    if not decision.allowed:
        raise ApiError(RATE_LIMITED, f"Rate limit exceeded. Try again in {decision.retry_after} seconds.",
                       retry_after=decision.retry_after)
