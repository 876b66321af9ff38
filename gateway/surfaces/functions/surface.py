"""Seeds 001/002 function calls: the surface table (error shape, `{success, data, trace_id}`
envelope, snake_case parameters) every function module of this package answers with."""
from __future__ import annotations

from typing import Any, Generic, TypeVar

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from trainhouse.gateway import errors as E
from trainhouse.gateway.convert import finite
from trainhouse.gateway.errors import ApiError, request_id_of
from trainhouse.gateway.routing import GatewayRoute
from trainhouse.gateway.surfaces.validation import from_request_validation
from trainhouse.common.grpc_errors import RpcFailure

PREFIX = "/api/v1/functions"

T = TypeVar("T")


# ---- error shape ----------------------------------------------------------------------------

# kind -> (code, HTTP status, retryable). Seed 001's table, plus 403/405/413/503/504 in its style.
CODES: dict[str, tuple[str, int, bool]] = {
    E.INVALID: ("VALIDATION_ERROR", 422, False),
    E.MALFORMED: ("VALIDATION_ERROR", 400, False),
    E.UNAUTHENTICATED: ("UNAUTHORIZED", 401, False),
    E.FORBIDDEN: ("FORBIDDEN", 403, False),
    E.NOT_FOUND: ("NOT_FOUND", 404, False),
    E.METHOD_NOT_ALLOWED: ("METHOD_NOT_ALLOWED", 405, False),
    E.CONFLICT: ("CONFLICT", 409, False),
    E.PRECONDITION: ("PRECONDITION_FAILED", 412, False),
    E.TOO_LARGE: ("PAYLOAD_TOO_LARGE", 413, False),
    E.RATE_LIMITED: ("QUOTA_EXCEEDED", 429, True),
    E.INTERNAL: ("SERVER_ERROR", 500, True),
    E.NOT_IMPLEMENTED: ("NOT_IMPLEMENTED", 501, False),
    E.UNAVAILABLE: ("SERVICE_UNAVAILABLE", 503, True),
    E.TIMEOUT: ("TIMEOUT", 504, True),
}


def _hint(error: ApiError, code: str) -> str:
    if error.kind in (E.INVALID, E.MALFORMED):
        if error.field and error.field != "body":
            return f"Check '{error.field}': {error.issue or error.message}"
        return "Send a JSON object with the function's parameters as the body"
    if error.kind == E.UNAUTHENTICATED:
        return "Send 'Authorization: Bearer <token>' with a valid, unexpired token"
    if error.kind == E.FORBIDDEN:
        return "Use a token that has the required scope"
    if error.kind == E.NOT_FOUND:
        return error.issue or "Check the id; it may belong to another environment"
    if error.kind == E.PRECONDITION:
        return "The resource is not in a state that allows this; read its status first"
    if error.kind == E.CONFLICT:
        return "The resource already exists or changed; read it and retry if needed"
    if error.kind == E.RATE_LIMITED:
        return f"Retry after {error.retry_after} seconds" if error.retry_after else "Slow down and retry"
    if error.kind in (E.UNAVAILABLE, E.TIMEOUT):
        return "A backend service is unavailable; retry shortly"
    if error.kind == E.TOO_LARGE:
        return "Send a smaller body (at most 10 MiB)"
    return "Retry; if it persists, report the trace_id"


class FunctionsSurface:
    name = "functions"

    def from_rpc(self, failure: RpcFailure) -> ApiError:
        return E.error_of_rpc(failure, field=failure.field or None)

    def from_validation(self, exc: RequestValidationError) -> ApiError:
        return from_request_validation(exc)

    def render(self, error: ApiError, request_id: str) -> JSONResponse:
        code, status, retryable = CODES.get(error.kind, CODES[E.INTERNAL])
        body: dict[str, Any] = {"success": False, "code": code, "message": error.message,
                                "hint": _hint(error, code), "retryable": retryable, "trace_id": request_id}
        if error.field:
            body["field"] = error.field
        if error.retry_after is not None:
            body["retry_after"] = error.retry_after
        return JSONResponse(status_code=status, content=body)


FUNCTIONS_SURFACE = FunctionsSurface()


class FunctionError(BaseModel):
    success: bool = False
    code: str
    message: str
    hint: str
    retryable: bool
    trace_id: str
    field: str | None = None
    retry_after: int | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": FunctionError, "description": text}
    for status, text in (
        (400, "VALIDATION_ERROR: the body is not valid JSON"),
        (401, "UNAUTHORIZED"), (403, "FORBIDDEN: the token lacks the function's scope"),
        (404, "NOT_FOUND"), (409, "CONFLICT"), (412, "PRECONDITION_FAILED"), (413, "PAYLOAD_TOO_LARGE"),
        (422, "VALIDATION_ERROR: a parameter is missing or invalid (`field` names it)"),
        (429, "QUOTA_EXCEEDED"), (503, "SERVICE_UNAVAILABLE"),
    )
}

def new_router() -> APIRouter:
    """A router of this surface: its prefix, its error shape in /openapi.json, its route class."""
    return APIRouter(prefix=PREFIX, tags=["functions"], route_class=GatewayRoute, responses=ERROR_RESPONSES)


class Reply(BaseModel, Generic[T]):
    success: bool = True
    data: T
    trace_id: str


def reply(request: Request, data: Any) -> dict[str, Any]:
    return {"success": True, "data": finite(data), "trace_id": request_id_of(request)}


# ---- request models -------------------------------------------------------------------------

class SnakeModel(BaseModel):
    """Parameters exactly as the seeds name them; unknown extras are ignored (SDKs add some)."""

    model_config = ConfigDict(extra="ignore")
