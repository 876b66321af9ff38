"""The canonical API's conventions, in one place: its error shape, its router, keyset pages.

Error shape (every status, every route under /v1)::

    {"error": {"code": "not_found", "message": "...", "param": "job_id", "request_id": "req-..."}}

``code`` is a stable lower-case word (the ``ApiError`` kind, or a finer code such as
``idempotency_key_reused``); ``param`` names the offending field in the request's own (snake_case)
spelling or is null. A 429 also carries ``Retry-After``.

Pages: ``?after=<cursor>&limit=<n>`` -> ``{"data": [...], "has_more": bool, "next_cursor": str|null}``.
The cursor is opaque to clients: it is the service's keyset page token (jobs, versions, ...) or an
event sequence number; passing ``next_cursor`` as ``after`` gives the next page.
"""
from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, Path, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from trainhouse.gateway import errors as E
from trainhouse.gateway.convert import finite
from trainhouse.gateway.fields import join_path
from trainhouse.gateway.models import ID_HELP, ID_PATTERN
from trainhouse.gateway.routing import GatewayRoute
from trainhouse.common.grpc_errors import RpcFailure
from trainhouse.common.validation import RESOURCE_ID_MAX

PREFIX = "/v1"
T = TypeVar("T")

# kind -> (code, HTTP status). A call that does not fit the resource's state (cancelling a finished
# job) is 409 failed_precondition, as Stripe and OpenAI answer it.
CODES: dict[str, tuple[str, int]] = {
    E.INVALID: ("invalid_request", 400),
    E.MALFORMED: ("invalid_json", 400),
    E.UNAUTHENTICATED: ("unauthenticated", 401),
    E.FORBIDDEN: ("permission_denied", 403),
    E.NOT_FOUND: ("not_found", 404),
    E.METHOD_NOT_ALLOWED: ("method_not_allowed", 405),
    E.CONFLICT: ("conflict", 409),
    E.PRECONDITION: ("failed_precondition", 409),
    E.TOO_LARGE: ("payload_too_large", 413),
    E.RATE_LIMITED: ("rate_limited", 429),
    E.INTERNAL: ("internal_error", 500),
    E.NOT_IMPLEMENTED: ("not_implemented", 501),
    E.UNAVAILABLE: ("unavailable", 503),
    E.TIMEOUT: ("timeout", 504),
}
# Codes finer than a kind (CanonicalError.code).
IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
REQUEST_IN_PROGRESS = "request_in_progress"


class CanonicalError(E.ApiError):
    """An ApiError with a code of its own (the kind still decides the status)."""

    def __init__(self, kind: str, code: str, message: str, *, field: str | None = None):
        super().__init__(kind, message, field=field)
        self.code = code


class ErrorBody(BaseModel):
    code: str
    message: str
    param: str | None = None
    request_id: str


class ErrorOut(BaseModel):
    """The one error shape of /v1."""

    error: ErrorBody


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text} for status, text in (
        (400, "invalid_request / invalid_json"), (401, "unauthenticated"), (403, "permission_denied"),
        (404, "not_found"), (409, "conflict / failed_precondition / idempotency_key_reused / request_in_progress"),
        (429, "rate_limited (Retry-After)"), (503, "unavailable (retry)"))}


class CanonicalSurface:
    name = "canonical"

    def from_rpc(self, failure: RpcFailure) -> E.ApiError:
        return E.error_of_rpc(failure, field=failure.field or None)

    def from_validation(self, exc: RequestValidationError) -> E.ApiError:
        errs = exc.errors()
        if not errs:
            return E.ApiError(E.INVALID, "invalid request")
        first = errs[0]
        if first.get("type") == "json_invalid":
            return E.ApiError(E.MALFORMED, "request body is not valid JSON", field="body")
        loc = [p for p in first.get("loc", ()) if not (isinstance(p, str) and p.startswith("function-"))]
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]
        # pydantic names the member of a union/literal it tried ("str", "literal['a']"): not a field
        loc = [p for p in loc if not (isinstance(p, str) and ("[" in p or p in ("str", "int", "float", "bool")))]
        param = join_path(loc) or "body"
        issue = str(first.get("msg", "invalid value"))
        return E.ApiError(E.INVALID, f"{param}: {issue}", field=param, issue=issue)

    def render(self, error: E.ApiError, request_id: str) -> JSONResponse:
        code, status = CODES.get(error.kind, CODES[E.INTERNAL])
        code = getattr(error, "code", None) or code
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
        return JSONResponse(status_code=status, headers=headers, content={"error": {
            "code": code, "message": error.message, "param": error.field, "request_id": request_id}})


SURFACE = CanonicalSurface()


def router(prefix: str, tag: str) -> APIRouter:
    return APIRouter(prefix=PREFIX + prefix, tags=[tag], route_class=GatewayRoute, responses=ERRORS)


def path_id(description: str = ID_HELP) -> Any:
    return Path(description=description, min_length=1, max_length=RESOURCE_ID_MAX, pattern=ID_PATTERN)


JobId = Annotated[str, path_id("A training job id")]
AgentId = Annotated[str, path_id("An agent id")]
VersionId = Annotated[str, Path(description="A version id, or an alias after '@' ('@champion')", min_length=1,
                                 max_length=RESOURCE_ID_MAX + 1, pattern=f"^@?{ID_PATTERN[1:-1]}$")]


# ---- keyset pages -----------------------------------------------------------------------------

class Page(BaseModel, Generic[T]):
    """One page of a list: pass ``next_cursor`` back as ``after`` for the next one."""

    data: list[T]
    has_more: bool
    next_cursor: str | None = None


After = Annotated[str, Query(max_length=2000, description="`next_cursor` of the previous page (none: first page)")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page (1..1000)")]


def page(data: list[Any], next_cursor: str | int | None) -> dict[str, Any]:
    """THE page builder of /v1; every list answers through it."""
    cursor = None if next_cursor in (None, "", 0) else str(next_cursor)
    return {"data": finite(data), "has_more": cursor is not None, "next_cursor": cursor}
