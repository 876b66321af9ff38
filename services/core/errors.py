"""Domain errors shared by every service and the gateway.

Each error names its gRPC status code; services/common/grpc_errors.py is the one place that
turns it into a rich status, and the gateway maps statuses to each surface's HTTP shape. The
module imports nothing from gRPC: the trainer core raises these without the transport.
"""
from __future__ import annotations

from typing import Any


class TrainhouseError(Exception):
    """Base class: a failure the caller can act on, never a crash."""

    grpc_code: str = "INTERNAL"
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
    reason = "INVALID_ARGUMENT"

    def __init__(self, field: str, message: str, metadata: dict[str, str] | None = None):
        super().__init__(message, field=field, metadata=metadata)


class NotFound(TrainhouseError):
    grpc_code = "NOT_FOUND"
    reason = "NOT_FOUND"

    def __init__(self, resource: str, resource_id: str, message: str | None = None):
        super().__init__(message or f"{resource} '{resource_id}' not found",
                         metadata={"resource": resource, "id": resource_id})
        self.resource = resource
        self.resource_id = resource_id


class AlreadyExists(TrainhouseError):
    grpc_code = "ALREADY_EXISTS"
    reason = "ALREADY_EXISTS"


class FailedPrecondition(TrainhouseError):
    grpc_code = "FAILED_PRECONDITION"
    reason = "FAILED_PRECONDITION"


class Unauthenticated(TrainhouseError):
    """No credential, or one that is invalid, revoked or expired (never says which)."""

    grpc_code = "UNAUTHENTICATED"
    reason = "UNAUTHENTICATED"


class PermissionDenied(TrainhouseError):
    """A valid caller without the scope the call needs. Another account's resource is NotFound instead,
    so ids of other accounts cannot be probed."""

    grpc_code = "PERMISSION_DENIED"
    reason = "PERMISSION_DENIED"


class ResourceExhausted(TrainhouseError):
    grpc_code = "RESOURCE_EXHAUSTED"
    reason = "RESOURCE_EXHAUSTED"


class Unavailable(TrainhouseError):
    grpc_code = "UNAVAILABLE"
    reason = "UNAVAILABLE"


class ServingFailure(Unavailable):
    """A model version could not answer a request it was routed (an exception, an invalid
    output, a deadline that passed). Its message is the registry's own words, safe to show."""

    reason = "SERVING_FAILED"
