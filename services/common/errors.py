"""Domain errors shared by every service and the gateway.

Each error carries both its gRPC status code name and its HTTP status so that one table
decides how a failure looks on every surface (Feast's habit). The module imports nothing
from gRPC: the trainer core raises these without depending on the transport.
"""
from __future__ import annotations

from typing import Any


class TrainhouseError(Exception):
    """Base class: a failure the caller can act on, never a crash."""

    grpc_code: str = "INTERNAL"
    http_status: int = 500
    reason: str = "INTERNAL"

    def __init__(self, message: str, *, field: str | None = None, metadata: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.metadata: dict[str, str] = dict(metadata or {})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reason": self.reason, "message": self.message}
        if self.field:
            out["field"] = self.field
        if self.metadata:
            out["metadata"] = self.metadata
        return out


class InvalidArgument(TrainhouseError):
    grpc_code = "INVALID_ARGUMENT"
    http_status = 400
    reason = "INVALID_ARGUMENT"

    def __init__(self, field: str, message: str, metadata: dict[str, str] | None = None):
        super().__init__(message, field=field, metadata=metadata)


class NotFound(TrainhouseError):
    grpc_code = "NOT_FOUND"
    http_status = 404
    reason = "NOT_FOUND"

    def __init__(self, resource: str, resource_id: str, message: str | None = None):
        super().__init__(message or f"{resource} '{resource_id}' not found",
                         metadata={"resource": resource, "id": resource_id})
        self.resource = resource
        self.resource_id = resource_id


class AlreadyExists(TrainhouseError):
    grpc_code = "ALREADY_EXISTS"
    http_status = 409
    reason = "ALREADY_EXISTS"


class FailedPrecondition(TrainhouseError):
    grpc_code = "FAILED_PRECONDITION"
    http_status = 412
    reason = "FAILED_PRECONDITION"


class ResourceExhausted(TrainhouseError):
    grpc_code = "RESOURCE_EXHAUSTED"
    http_status = 429
    reason = "RESOURCE_EXHAUSTED"


class Unavailable(TrainhouseError):
    grpc_code = "UNAVAILABLE"
    http_status = 503
    reason = "UNAVAILABLE"
