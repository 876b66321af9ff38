"""The seed-000 surface's error shape and its gRPC error mapping (Training REST v1).

Seed 000 errors look like::

    {"success": false,
     "error": {"code": "INVALID_CONFIG", "message": "...",
               "details": {"field": "learningRate", "issue": "Must be between 0 and 1"},
               "timestamp": "2025-12-30T15:00:00Z", "requestId": "req-12345"}}

`V1_SURFACE.from_rpc` is the one function that maps a failed gRPC call onto it.
"""
from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from trainhouse.gateway import errors as E
from trainhouse.gateway.fields import field_path, rpc_field
from trainhouse.common.grpc_errors import RpcFailure
from trainhouse.common.timeutil import iso, now

# kind -> (code, HTTP status). Seed 000 has no 412: a call that does not fit the resource's
# state (stopping a finished job) is a CONFLICT.
CODES: dict[str, tuple[str, int]] = {
    E.INVALID: ("INVALID_CONFIG", 400),
    E.MALFORMED: ("INVALID_CONFIG", 400),
    E.UNAUTHENTICATED: ("UNAUTHORIZED", 401),
    E.FORBIDDEN: ("FORBIDDEN", 403),
    E.NOT_FOUND: ("NOT_FOUND", 404),
    E.METHOD_NOT_ALLOWED: ("METHOD_NOT_ALLOWED", 405),
    E.CONFLICT: ("CONFLICT", 409),
    E.PRECONDITION: ("CONFLICT", 409),
    E.TOO_LARGE: ("PAYLOAD_TOO_LARGE", 413),
    E.RATE_LIMITED: ("RATE_LIMIT_EXCEEDED", 429),
    E.INTERNAL: ("INTERNAL_ERROR", 500),
    E.NOT_IMPLEMENTED: ("NOT_IMPLEMENTED", 501),
    E.UNAVAILABLE: ("SERVICE_UNAVAILABLE", 503),
    E.TIMEOUT: ("TIMEOUT", 504),
}
NOT_FOUND_CODES = {"job": "JOB_NOT_FOUND", "agent": "AGENT_NOT_FOUND"}

def validation_error(exc: RequestValidationError) -> E.ApiError:
    """FastAPI/pydantic request errors -> INVALID (400) naming the first offending field."""
    errs = exc.errors()
    if not errs:
        return E.ApiError(E.INVALID, "invalid request")
    first = errs[0]
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "JSON decode error")
        pos = first.get("loc", ("body", 0))[-1]
        return E.ApiError(E.INVALID, "Request body is not valid JSON", field="body",
                          issue=f"{reason} at position {pos}")
    loc = [p for p in first.get("loc", ()) if not (isinstance(p, str) and p.startswith("function-"))]
    field = field_path(loc, as_written=True) or "body"
    issue = str(first.get("msg", "invalid value"))
    return E.ApiError(E.INVALID, f"Invalid request: {field}: {issue}", field=field, issue=issue)


class V1Surface:
    name = "training-v1"

    def from_rpc(self, failure: RpcFailure) -> E.ApiError:
        return E.error_of_rpc(failure, field=rpc_field(failure.field))

    def from_validation(self, exc: RequestValidationError) -> E.ApiError:
        return validation_error(exc)

    def render(self, error: E.ApiError, request_id: str) -> JSONResponse:
        code, status = CODES.get(error.kind, CODES[E.INTERNAL])
        if error.kind == E.NOT_FOUND:
            code = NOT_FOUND_CODES.get(error.resource or "", code)
        body: dict[str, Any] = {
            "code": code,
            "message": error.message,
            "details": {"field": error.field, "issue": error.issue or error.message},
            "timestamp": iso(now().replace(microsecond=0)),
            "requestId": request_id,
        }
        if error.retry_after is not None:
            body["retryAfter"] = error.retry_after
        return JSONResponse(status_code=status, content={"success": False, "error": body})


V1_SURFACE = V1Surface()
