"""create_app(): the FastAPI application with every surface, its error dispatch and its lifespan."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anyio import to_thread
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from trainhouse.gateway import canonical
from trainhouse.gateway.canonical import agents as canonical_agents
from trainhouse.gateway.auth import Authenticator
from trainhouse.gateway.backends import Backends
from trainhouse.gateway.conditional import ConditionalGetMiddleware
from trainhouse.gateway.errors import SurfaceRegistry, install_handlers
from trainhouse.common.authn import internal_tokens
from trainhouse.common.jwt_keys import JwtVerifier
from trainhouse.gateway.metrics import GatewayMetrics
from trainhouse.gateway.middleware import RequestContextMiddleware
from trainhouse.gateway.predict_fast_path import PredictFastPath, PredictRoute
from trainhouse.gateway.ratelimit import REQUESTS, Limit, RateLimiter
from trainhouse.gateway.scopes import AUTHENTICATED, PUBLIC_WHEN, ROUTE_SCOPES, SIGNED_URL_ROUTES
from trainhouse.gateway.settings import GatewaySettings
from trainhouse.gateway.signing import UrlSigner
from trainhouse.gateway.surfaces import (
    adapt_v1,
    agents,
    auth_routes,
    data_v1,
    datasets,
    evaluation_v1,
    functions,
    health,
    jsonrpc,
    models_v1,
    observability,
    runtime,
    sweeps,
    training_v1,
    ui,
    webhooks,
)
from trainhouse.gateway.surfaces.datasets import CreateDatasetIn
from trainhouse.gateway.surfaces.v1 import V1_SURFACE
from trainhouse.gateway.tokens import TokenStore, ensure_bootstrap
from trainhouse.gateway.webhooks.dispatcher import Dispatcher
from trainhouse.gateway.webhooks.store import WebhookStore
from trainhouse.common.duckdb_store import DuckStore
from trainhouse.common import tracing
from trainhouse.common.logs import log

logger = logging.getLogger("trainhouse.gateway")

# functions.ROUTERS ends with the catch-all POST /api/v1/functions/{name}.
ROUTERS = [health.router, observability.router, ui.router, auth_routes.router, auth_routes.internal_router,
           training_v1.router,
           adapt_v1.router, evaluation_v1.router, models_v1.router, agents.router, datasets.router,
           data_v1.router, sweeps.router, webhooks.router, *functions.ROUTERS, jsonrpc.router,
           runtime.router, *canonical.ROUTERS]

# The Predict routes gateway/predict_fast_path.py answers in front of the router, each with its
# own body model, request builder and answer renderer.
PREDICT_ROUTES = (
    PredictRoute.of(agents.router, "/api/v1/agents/{agentId}/predict", agents.PredictIn, agents.predict_request,
                    agents.predict_answer),
    PredictRoute.of(canonical_agents.agents, "/v1/agents/{agent_id}/predict", canonical_agents.V1PredictIn,
                    canonical_agents.predict_request, canonical_agents.predict_answer),
)

# Models documented in /openapi.json that no route references directly (hand-written bodies).
EXTRA_SCHEMAS = [CreateDatasetIn, *jsonrpc.EXTRA_SCHEMAS]


@dataclass
class Gate:
    """What the routes reach through `request.app.state.gate` while the app runs."""

    settings: GatewaySettings
    store: TokenStore
    authenticator: Authenticator
    limiter: RateLimiter
    backends: Backends
    admin_token_file: Path | None
    signer: UrlSigner
    webhooks: WebhookStore
    dispatcher: Dispatcher
    metrics: GatewayMetrics


def build_surfaces() -> SurfaceRegistry:
    """Path prefix -> surface (longest prefix wins); seed 000's is the default."""
    registry = SurfaceRegistry(default=V1_SURFACE)
    registry.add(functions.PREFIX, functions.FUNCTIONS_SURFACE)
    registry.add(jsonrpc.PATH, jsonrpc.JSONRPC_SURFACE)
    registry.add(runtime.PREFIX, runtime.RUNTIME_SURFACE)
    registry.add(canonical.PREFIX, canonical.SURFACE)
    return registry


async def _flush_periodically(limiter: RateLimiter, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await to_thread.run_sync(limiter.flush)
        except Exception as err:  # noqa: BLE001 - retried at the next tick and on shutdown
            log(logger, "rate-limit flush failed", logging.ERROR, error=type(err).__name__)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings.from_env()
    surfaces = build_surfaces()
    metrics = GatewayMetrics(settings.metrics_cache_s)
    # Read before serving: an unreadable JWKS file stops the start with its reason.
    verifier = JwtVerifier.from_env(settings.jwt_secret or "", settings.jwt_jwks or "")
    internal = internal_tokens()  # a missing TRAINHOUSE_INTERNAL_KEY stops the start here
    tracing.configure("gateway")  # before the channels are made: they carry its interceptors

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = DuckStore(settings.home / "gateway.duckdb", [])
        store = TokenStore(db)
        token_file = ensure_bootstrap(store, settings.home, settings.bootstrap_token)
        backends = Backends.connect(settings.rpc_timeout_s, metrics, settings.serving_replica)
        limits = dict(settings.limits)
        limits[REQUESTS] = Limit(settings.rate_limit_per_hour, limits.get(REQUESTS, Limit(0, 3600)).window_s)
        limiter = RateLimiter(limits, db)
        hooks = WebhookStore(db)
        dispatcher = Dispatcher(hooks, backends, settings.webhooks)
        app.state.gate = Gate(settings, store, Authenticator(store, verifier=verifier, internal=internal), limiter, backends,
                              token_file, UrlSigner(db, settings.download_url_ttl_s), hooks, dispatcher,
                              metrics)
        dispatcher.start()
        backends.serving.start()
        flusher = asyncio.create_task(_flush_periodically(limiter, settings.rate_flush_s))
        log(logger, "gateway ready", home=str(settings.home),
            admin_token=str(token_file) if token_file else "TRAINHOUSE_BOOTSTRAP_TOKEN")
        try:
            yield
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            await dispatcher.stop()
            await backends.serving.stop()
            limiter.flush()
            await backends.close()
            db.close()
            tracing.flush()

    # FastAPI's own OpenTelemetry bridge stays off: the gateway's spans come from
    # tracing.instrument_app (TRAINHOUSE_TRACING=otlp), and the bridge looked up the global tracer, meter
    # and logger providers on every request (~3 us) only to find them unconfigured or deferring.
    app = FastAPI(title="trainhouse gateway", version="1.0.0", lifespan=lifespan, docs_url="/docs",
                  redoc_url=None, openapi_url="/openapi.json",
                  telemetry={"tracing": False, "metrics": False, "logs": False},
                  description="Train, evaluate, version and deploy the small learned parts of AI agents. "
                              "Every route except /healthz, /openapi.json, /docs and the dashboard's "
                              "files (/ui) needs `Authorization: Bearer <token>`; /metrics needs `admin` "
                              "unless TRAINHOUSE_METRICS_PUBLIC=1.")
    # Innermost, in front of the router: a routed REST Predict skips FastAPI (predict_fast_path.py).
    app.add_middleware(PredictFastPath, surfaces=surfaces, routes=PREDICT_ROUTES)
    # Inside the request context: a 304 still gets the request id and the (refunded) rate headers.
    app.add_middleware(ConditionalGetMiddleware)
    app.add_middleware(RequestContextMiddleware, surfaces=surfaces, max_body_bytes=settings.max_body_bytes,
                       metrics=metrics)
    install_handlers(app, surfaces)
    for router in ROUTERS:
        app.include_router(router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    tracing.instrument_app(app)
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the bearer scheme, each route's scope, and the hand-parsed bodies' models."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearer"] = {
        "type": "http", "scheme": "bearer", "description": "API token (th_...) or, when enabled, an HS256 JWT"}
    schemas = components.setdefault("schemas", {})
    for model in EXTRA_SCHEMAS:
        extra = model.model_json_schema(ref_template="#/components/schemas/{model}", by_alias=True)
        for name, definition in extra.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas.setdefault(model.__name__, extra)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            key = (method.upper(), path)
            if key not in ROUTE_SCOPES or ROUTE_SCOPES[key] is None:
                continue
            scope = ROUTE_SCOPES[key]
            operation["security"] = [{"bearer": []}]
            text = "any valid token" if scope == AUTHENTICATED else f"`{scope}`"
            if key in PUBLIC_WHEN:
                text += f" (none when TRAINHOUSE_{PUBLIC_WHEN[key].upper()}=1)"
            if key in SIGNED_URL_ROUTES:
                text += " (or a signed URL: `expires` + `signature` query parameters)"
            operation["description"] = (operation.get("description", "") + f"\n\nScope: {text}").strip()
    app.openapi_schema = schema
    return schema
