"""Surface-neutral gateway errors and the dispatch that renders them per surface.

Every seed document has its own error shape (seed 000: ``{"success": false, "error": {...}}``,
JSON-RPC: ``{"jsonrpc", "error": {"code": -32600, ...}}``, ...). So the code that raises an error
never builds JSON: it raises an :class:`ApiError` that says *what kind* of failure happened, and
the surface that owns the request path renders it. A gRPC failure is first turned into an
``ApiError`` by the surface's own ``from_rpc`` (built on ``trainhouse.common.grpc_errors.failure_of``),
because surfaces disagree on details such as the status of FAILED_PRECONDITION.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import grpc
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from trainhouse.core.errors import ServingFailure
from trainhouse.common.grpc_errors import RpcFailure, failure_of
from trainhouse.common.logs import log
from trainhouse.core.ids import random_id

logger = logging.getLogger("trainhouse.gateway.errors")

# The kinds of failure a surface must be able to render.
INVALID = "invalid"
# The body is not parseable (malformed JSON): 400 on REST surfaces, -32700 on JSON-RPC.
MALFORMED = "malformed"
UNAUTHENTICATED = "unauthenticated"
FORBIDDEN = "forbidden"
NOT_FOUND = "not_found"
METHOD_NOT_ALLOWED = "method_not_allowed"
CONFLICT = "conflict"
PRECONDITION = "precondition"
TOO_LARGE = "too_large"
RATE_LIMITED = "rate_limited"
UNAVAILABLE = "unavailable"
TIMEOUT = "timeout"
NOT_IMPLEMENTED = "not_implemented"
INTERNAL = "internal"

# Default HTTP status per kind; a surface may override (seed 000 answers 409 for a precondition).
DEFAULT_STATUS = {
    INVALID: 400, MALFORMED: 400, UNAUTHENTICATED: 401, FORBIDDEN: 403, NOT_FOUND: 404, METHOD_NOT_ALLOWED: 405,
    CONFLICT: 409, PRECONDITION: 412, TOO_LARGE: 413, RATE_LIMITED: 429, INTERNAL: 500,
    NOT_IMPLEMENTED: 501, UNAVAILABLE: 503, TIMEOUT: 504,
}

# gRPC status -> kind, the translation every surface starts from.
KIND_OF_GRPC = {
    grpc.StatusCode.INVALID_ARGUMENT: INVALID,
    grpc.StatusCode.OUT_OF_RANGE: INVALID,
    grpc.StatusCode.UNAUTHENTICATED: UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED: FORBIDDEN,
    grpc.StatusCode.NOT_FOUND: NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS: CONFLICT,
    grpc.StatusCode.ABORTED: CONFLICT,
    grpc.StatusCode.FAILED_PRECONDITION: PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RATE_LIMITED,
    grpc.StatusCode.UNAVAILABLE: UNAVAILABLE,
    grpc.StatusCode.CANCELLED: UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: TIMEOUT,
    grpc.StatusCode.UNIMPLEMENTED: NOT_IMPLEMENTED,
}


class ApiError(HTTPException):
    """A failure the caller can act on, rendered by the surface that was called.

    It subclasses FastAPI's HTTPException on purpose: FastAPI re-raises HTTPExceptions raised
    while it reads a body untouched (anything else becomes a generic 400), which is how the body
    size limit keeps its 413.
    """

    def __init__(self, kind: str, message: str, *, field: str | None = None, issue: str | None = None,
                 resource: str | None = None, retry_after: int | None = None,
                 headers: dict[str, str] | None = None, status: int | None = None):
        super().__init__(status_code=status or DEFAULT_STATUS[kind], detail=message, headers=headers)
        self.kind = kind
        self.message = message
        self.field = field
        self.issue = issue
        self.resource = resource
        self.retry_after = retry_after


class BodyValidationError(ApiError):
    """A problem found while reading a body (trainhouse.gateway.json_limits), before FastAPI validates it.

    FastAPI lets only HTTPExceptions out of its body reading, hence the base class; the handler
    turns it into a RequestValidationError, so each surface names the field in its own spelling."""

    def __init__(self, loc: tuple, message: str):
        super().__init__(INVALID, message, field="body", issue=message)
        self.errors = [{"type": "value_error", "loc": ("body", *loc), "msg": message, "input": None}]


@contextlib.contextmanager
def encoding_request() -> Iterator[None]:
    """Building a protobuf request from validated input can still fail on values protobuf cannot
    carry (a lone UTF-16 surrogate in a string): that is the caller's input, so 400, not 500."""
    try:
        yield
    except ValueError as exc:
        raise ApiError(INVALID, f"request cannot be encoded: {exc}", field="body", issue=str(exc)) from None


def rename_field(field: str, renames: dict[str, str]) -> str:
    """Respell the head of a field path: {"suites": "benchmarks"} makes "suites[2]" "benchmarks[2]"."""
    for old, new in renames.items():
        if field == old or field.startswith((old + "[", old + ".")):
            return new + field[len(old):]
    return field


@contextlib.contextmanager
def rpc_fields(surface: "Surface", renames: dict[str, str]) -> Iterator[None]:
    """Render a failed call's error in `surface`'s terms, with the service's field names respelled
    to the request's own (a service's `dataset_id` is seed 000's `testSet`)."""
    try:
        yield
    except grpc.RpcError as exc:
        failure = failure_of(exc)
        error = surface.from_rpc(failure)
        if error.kind == INTERNAL:
            log(logger, "backend failure", logging.ERROR, code=failure.code.name if failure.code else None,
                message=failure.message)
        if error.field:
            error.field = rename_field(error.field, renames)
        raise error from None


def kind_of_failure(failure: RpcFailure) -> str:
    """The kind of a gRPC failure; codes without a meaning for callers count as internal."""
    return KIND_OF_GRPC.get(failure.code, INTERNAL)


def error_of_rpc(failure: RpcFailure, field: str | None = None,
                 unavailable_kinds: tuple[str, ...] = (UNAVAILABLE,),
                 unavailable_message: str = "a backend service is unavailable; retry shortly") -> ApiError:
    """A failed gRPC call as an ApiError, for every surface's ``from_rpc``.

    ``field`` is the failure's field in the surface's spelling. The message never leaks a backend's
    internals (the request id lets an operator find the log line), and says "retry" when a backend
    is down, in the surface's words."""
    kind = kind_of_failure(failure)
    message = failure.message or (failure.code.name.lower() if failure.code else "backend failure")
    if kind == INTERNAL:
        message = "internal error"
    elif kind in unavailable_kinds and failure.reason != ServingFailure.reason:
        message = unavailable_message  # (a version that failed to serve is named: the caller can act on it)
    return ApiError(kind, message, field=field, issue=failure.message if field else None,
                    resource=failure.metadata.get("resource"))


class Surface(Protocol):
    """What a surface provides so that every error on its paths comes out in its shape."""

    name: str

    def from_rpc(self, failure: RpcFailure) -> ApiError: ...

    def from_validation(self, exc: RequestValidationError) -> ApiError: ...

    def render(self, error: ApiError, request_id: str) -> Response: ...


@dataclass
class SurfaceRegistry:
    """Longest-prefix dispatch from a request path to its surface; `default` for the rest."""

    default: Surface
    by_prefix: list[tuple[str, Surface]] = field(default_factory=list)

    def add(self, prefix: str, surface: Surface) -> None:
        self.by_prefix.append((prefix, surface))
        self.by_prefix.sort(key=lambda item: len(item[0]), reverse=True)

    def for_path(self, path: str) -> Surface:
        for prefix, surface in self.by_prefix:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return surface
        return self.default


def new_request_id() -> str:
    """A request id the gateway assigns (the request-context middleware; odd code paths below)."""
    return random_id("req")


def request_id_of(request: Request) -> str:
    """The id the request-context middleware assigned (or a fresh one for odd code paths)."""
    state = request.scope.get("state") or {}
    rid = state.get("request_id")
    return rid if isinstance(rid, str) else new_request_id()


def context_headers(request: Request) -> dict[str, str]:
    """Headers every response carries, for responses built outside the middleware (500s)."""
    state = request.scope.get("state") or {}
    headers = dict(state.get("extra_headers") or {})
    headers["X-Request-Id"] = request_id_of(request)
    return headers


def render_error(surfaces: SurfaceRegistry, path: str, request_id: str, error: ApiError) -> Response:
    """An error as the surface owning `path` renders it, with the error's own headers."""
    response = surfaces.for_path(path).render(error, request_id)
    for key, value in (error.headers or {}).items():
        response.headers[key] = value
    return response


def install_handlers(app: FastAPI, surfaces: SurfaceRegistry) -> None:
    """Register the exception handlers; each renders through the surface owning the path."""

    def render(request: Request, error: ApiError) -> Response:
        return render_error(surfaces, request.url.path, request_id_of(request), error)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return render(request, exc)

    @app.exception_handler(grpc.RpcError)
    async def _rpc_error(request: Request, exc: grpc.RpcError) -> Response:
        failure = failure_of(exc)
        error = surfaces.for_path(request.url.path).from_rpc(failure)
        if error.kind == INTERNAL:
            log(logger, "backend failure", logging.ERROR, path=request.url.path,
                code=failure.code.name if failure.code else None, message=failure.message,
                request_id=request_id_of(request))
        return render(request, error)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return render(request, surfaces.for_path(request.url.path).from_validation(exc))

    @app.exception_handler(BodyValidationError)
    async def _body_validation(request: Request, exc: BodyValidationError) -> Response:
        return render(request, surfaces.for_path(request.url.path).from_validation(RequestValidationError(exc.errors)))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        kind = {401: UNAUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND, 405: METHOD_NOT_ALLOWED,
                409: CONFLICT, 413: TOO_LARGE, 429: RATE_LIMITED}.get(exc.status_code)
        if kind is None:
            kind = INVALID if 400 <= exc.status_code < 500 else INTERNAL
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404:
            message = f"no route for {request.method} {request.url.path}"
        return render(request, ApiError(kind, message, headers=dict(exc.headers or {})))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Starlette's ServerErrorMiddleware calls this outside our middleware, so the response
        # adds the request id and rate-limit headers itself.
        rid = request_id_of(request)
        log(logger, "unhandled error", logging.ERROR, path=request.url.path, request_id=rid,
            error=type(exc).__name__)
        logger.error("unhandled error (request %s)", rid, exc_info=exc)
        error = ApiError(INTERNAL, f"internal error (request {rid})")
        response = surfaces.for_path(request.url.path).render(error, rid)
        response.headers.update(context_headers(request))
        return response
