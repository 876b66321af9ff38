"""GET /ui: the read-only dashboard (static files in gateway/ui/, no build step).

The files are public: they hold no data. The page asks for an API token once, keeps it in
sessionStorage and calls the REST API with it, so everything it shows is subject to the same
scopes as any other client (training:view). A strict Content-Security-Policy keeps the page to
this origin: no inline scripts, no third-party anything.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import Response

from trainhouse.gateway.errors import NOT_FOUND, ApiError
from trainhouse.gateway.routing import GatewayRoute

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
# Only the files shipped in gateway/ui/ are served: a name is looked up, never joined to a path.
ASSETS = {p.name: p for p in UI_DIR.iterdir() if p.is_file() and p.suffix in TYPES} if UI_DIR.is_dir() else {}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["ui"], route_class=GatewayRoute, include_in_schema=False)


def _file(name: str) -> Response:
    path = ASSETS.get(name)
    if path is None:
        raise ApiError(NOT_FOUND, f"no dashboard file '{name[:100]}'")
    return Response(path.read_bytes(), media_type=TYPES[path.suffix], headers=HEADERS)


@router.get("/ui", summary="The dashboard")
async def index() -> Response:
    return _file("index.html")


@router.get("/ui/{asset}", summary="A dashboard file")
async def asset(name: Annotated[str, PathParam(alias="asset")]) -> Response:
    return _file(name)
