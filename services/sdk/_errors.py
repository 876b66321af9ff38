"""Errors the SDK raises: the server's error (code, status, request id) as typed exceptions."""
from __future__ import annotations

from typing import Any


class TrainhouseError(Exception):
    """Base of every SDK error."""


class APIConnectionError(TrainhouseError):
    """The gateway could not be reached (after the retries)."""


class APITimeoutError(APIConnectionError):
    """The request timed out (after the retries)."""


class APIStatusError(TrainhouseError):
    """The gateway answered an error: ``{"error": {"code", "message", "param", "request_id"}}``."""

    def __init__(self, status_code: int, code: str, message: str, param: str | None = None,
                 request_id: str | None = None, body: Any = None):
        super().__init__(f"{status_code} {code}: {message}" + (f" (request {request_id})" if request_id else ""))
        self.status_code = status_code
        self.code = code
        self.message = message
        self.param = param
        self.request_id = request_id
        self.body = body


class BadRequestError(APIStatusError):
    pass


class AuthenticationError(APIStatusError):
    pass


class PermissionDeniedError(APIStatusError):
    pass


class NotFoundError(APIStatusError):
    pass


class ConflictError(APIStatusError):
    pass


class RateLimitError(APIStatusError):
    pass


class InternalServerError(APIStatusError):
    pass


class OperationFailedError(TrainhouseError):
    """An operation (evaluation, report...) ended failed; ``error`` is its error body."""

    def __init__(self, operation: Any):
        err = operation.error or {}
        get = err.get if isinstance(err, dict) else (lambda k, d=None: getattr(err, k, d))
        super().__init__(f"operation {operation.operation_id} failed: {get('code')}: {get('message')}")
        self.operation = operation
        self.code = get("code")


# The canonical API's error codes and their HTTP statuses (docs/api.md): an error that arrives inside
# an event stream has no HTTP status of its own, so its code gives it one (a 503 is worth retrying).
STATUS_OF_CODE = {"invalid_request": 400, "invalid_json": 400, "unauthenticated": 401, "permission_denied": 403,
                  "not_found": 404, "method_not_allowed": 405, "conflict": 409, "failed_precondition": 409,
                  "idempotency_key_reused": 409, "request_in_progress": 409, "payload_too_large": 413,
                  "rate_limited": 429, "internal_error": 500, "not_implemented": 501, "unavailable": 503,
                  "timeout": 504}

BY_STATUS = {400: BadRequestError, 401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
             409: ConflictError, 429: RateLimitError}


def status_error(status: int, body: Any, request_id: str | None) -> APIStatusError:
    """The exception for an error response (any body: a proxy's HTML page is still an error)."""
    err = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
    code = str(err.get("code") or f"http_{status}")
    message = str(err.get("message") or (body if isinstance(body, str) else "request failed"))[:2000]
    cls = BY_STATUS.get(status, InternalServerError if status >= 500 else APIStatusError)
    return cls(status, code, message, err.get("param"), err.get("request_id") or request_id, body)
