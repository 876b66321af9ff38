"""GatewayRoute: authenticates, checks the scope and spends the rate budget BEFORE the body is read,
and reads JSON bodies through trainhouse.gateway.json_limits (nesting depth and numbers checked at the edge).

Doing it in the route (not in a dependency) matters: FastAPI reads and parses the body before it
solves dependencies, so an anonymous caller sending malformed JSON would get 400 instead of 401,
and would make us parse up to 10 MiB for nothing.

`charge` spends a further group's budget from inside a handler, for limits that depend on the
body (generated example counts, JSON-RPC methods); every decision taken for a request is folded
into its X-RateLimit-* headers, showing the tightest.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from trainhouse.gateway.auth import Principal, require_scope
from trainhouse.gateway.errors import RATE_LIMITED, UNAUTHENTICATED, ApiError
from trainhouse.gateway.json_limits import LimitedJsonRequest
from trainhouse.gateway.ratelimit import REQUESTS, Decision, tightest
from trainhouse.gateway.scopes import AUTHENTICATED, PUBLIC_WHEN, SIGNED_URL_ROUTES, scope_for
from trainhouse.common.identity import bind_for_task


class GatewayRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        original = super().get_route_handler()
        if len(self.methods) != 1:
            raise RuntimeError(f"route {self.path} must have exactly one method, has {self.methods}")
        method = next(iter(self.methods))
        try:
            required = scope_for(method, self.path)
        except KeyError:
            raise RuntimeError(f"route {method} {self.path} is missing from trainhouse.gateway.scopes.ROUTE_SCOPES") from None
        signed_ok = (method, self.path) in SIGNED_URL_ROUTES
        public_switch = PUBLIC_WHEN.get((method, self.path))

        async def handler(request: Request) -> Response:
            # FastAPI reads JSON bodies with request.json(): this request's checks depth and numbers first.
            request = LimitedJsonRequest(request.scope, request.receive)
            gate = request.app.state.gate
            if required is not None and not (public_switch and getattr(gate.settings, public_switch)):
                state = request.scope.setdefault("state", {})
                if signed_ok and "signature" in request.query_params:
                    linked = gate.signer.verify_request(request, required)
                    if linked is None:
                        raise ApiError(UNAUTHENTICATED, "invalid or expired download link",
                                       field="signature", issue="invalid or expired")
                    state["signed"] = True
                    bind_for_task(linked)  # the services see the link's account and scope only
                    return await original(request)
                principal = gate.authenticator.authenticate(request.headers.get("authorization"))
                state["principal"] = principal
                decision = charge(request, REQUESTS)
                if decision is not None and not decision.allowed:
                    raise rate_limited(decision)
                if required != AUTHENTICATED:
                    require_scope(principal, required)
                # Every service call made for this request carries this caller (gateway.rpc_interceptors).
                bind_for_task(principal.caller)
            return await original(request)

        return handler


def charge(request: Request, group: str, cost: float = 1.0) -> Decision | None:
    """Spend `cost` of the caller's `group` budget; None when the group (or the token) is unlimited.

    The decision is recorded for the response headers whether or not it allowed the request.
    """
    gate = request.app.state.gate
    state = request.scope.setdefault("state", {})
    principal: Principal | None = state.get("principal")
    if principal is None or principal.internal:  # the platform's own calls were admitted where they entered
        return None
    limit = gate.limiter.limit_of(group, principal.rate_limit_per_hour)
    if limit is None:
        return None
    decision = gate.limiter.hit(principal.token_id, limit, cost, group)
    if not decision.allowed:
        gate.metrics.rejected(group)
    decisions: list[Decision] = state.setdefault("rate_decisions", [])
    decisions.append(decision)
    state["extra_headers"] = tightest(decisions).headers()
    return decision


def spend(request: Request, group: str, cost: float = 1.0) -> None:
    """Charge `cost` of the caller's `group` budget, or raise the surface's 429 when it is spent."""
    decision = charge(request, group, cost)
    if decision is not None and not decision.allowed:
        raise rate_limited(decision)


def rate_limited(decision: Decision) -> ApiError:
    if decision.impossible:
        message = (f"Rate limit exceeded: the request needs more than the whole {decision.group} budget "
                   f"({decision.limit}).")
    else:
        message = f"Rate limit exceeded. Try again in {_human(decision.retry_after)}."
    return ApiError(RATE_LIMITED, message, retry_after=decision.retry_after, resource=decision.group)


def _human(seconds: int) -> str:
    if seconds >= 120:
        return f"{round(seconds / 60)} minutes"
    return f"{seconds} seconds"
