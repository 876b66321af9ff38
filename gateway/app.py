"""create_app(): the FastAPI application with every surface, its error dispatch and its lifespan."""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from gateway.auth import Authenticator
from gateway.backends import Backends
from gateway.errors import SurfaceRegistry, install_handlers
from gateway.middleware import RequestContextMiddleware
from gateway.ratelimit import RateLimiter
from gateway.scopes import ROUTE_SCOPES
from gateway.settings import GatewaySettings
from gateway.surfaces import agents, auth_routes, datasets, health, models_v1, training_v1
from gateway.surfaces.datasets import CreateDatasetIn
from gateway.surfaces.v1 import V1_SURFACE
from gateway.tokens import TokenStore, ensure_bootstrap
from services.common.logs import log

logger = logging.getLogger("trainhouse.gateway")

ROUTERS = [health.router, auth_routes.router, training_v1.router, models_v1.router, agents.router,
           datasets.router]


@dataclass
class Gate:
    """What the routes reach through `request.app.state.gate` while the app runs."""

    settings: GatewaySettings
    store: TokenStore
    authenticator: Authenticator
    limiter: RateLimiter
    backends: Backends
    admin_token_file: Path | None


def build_surfaces() -> SurfaceRegistry:
    """Path prefix -> surface. Seed 000 is the default; later surfaces add their prefixes here."""
    return SurfaceRegistry(default=V1_SURFACE)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings.from_env()
    surfaces = build_surfaces()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = TokenStore(settings.home / "gateway.duckdb")
        token_file = ensure_bootstrap(store, settings.home, settings.bootstrap_token)
        backends = Backends.connect(settings.rpc_timeout_s)
        app.state.gate = Gate(settings, store, Authenticator(store, settings.jwt_secret), RateLimiter(),
                              backends, token_file)
        log(logger, "gateway ready", home=str(settings.home),
            admin_token=str(token_file) if token_file else "TRAINHOUSE_BOOTSTRAP_TOKEN")
        try:
            yield
        finally:
            await backends.close()
            store.close()

    app = FastAPI(title="trainhouse gateway", version="1.0.0", lifespan=lifespan, docs_url="/docs",
                  redoc_url=None, openapi_url="/openapi.json",
                  description="Train, evaluate, version and deploy the small learned parts of AI agents. "
                              "Every route except /healthz, /openapi.json and /docs needs "
                              "`Authorization: Bearer <token>`.")
    app.add_middleware(RequestContextMiddleware, surfaces=surfaces, max_body_bytes=settings.max_body_bytes)
    install_handlers(app, surfaces)
    for router in ROUTERS:
        app.include_router(router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the bearer scheme, each route's scope, and the JSON/JSONL upload model."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearer"] = {
        "type": "http", "scheme": "bearer", "description": "API token (th_...) or, when enabled, an HS256 JWT"}
    schemas = components.setdefault("schemas", {})
    extra = CreateDatasetIn.model_json_schema(ref_template="#/components/schemas/{model}", by_alias=True)
    for name, definition in extra.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas.setdefault("CreateDatasetIn", extra)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            scope = ROUTE_SCOPES.get((method.upper(), path))
            if scope is not None:
                operation["security"] = [{"bearer": []}]
                operation["description"] = (operation.get("description", "") + f"\n\nScope: `{scope}`").strip()
    app.openapi_schema = schema
    return schema
