"""The one mapping between domain errors and gRPC statuses, both directions.

Servers: an interceptor turns a raised TrainhouseError into a google.rpc.Status with a
BadRequest field violation and an ErrorInfo, so every RPC reports the offending field the
same way. Clients (other services, the gateway): `failure_of` reads those details back into
a plain record; exceptions are not rebuilt from wire data.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from trainhouse.core.errors import TrainhouseError
from trainhouse.common.interceptors import wrap_handler
from trainhouse.common.logs import log

logger = logging.getLogger("trainhouse.errors")
DOMAIN = "trainhouse.dev"

def to_rpc_status(err: TrainhouseError) -> status_pb2.Status:
    code = getattr(code_pb2, err.grpc_code)
    details = []
    if err.field:
        bad = error_details_pb2.BadRequest(
            field_violations=[error_details_pb2.BadRequest.FieldViolation(field=err.field, description=err.message)]
        )
        packed = any_pb2.Any()
        packed.Pack(bad)
        details.append(packed)
    info = error_details_pb2.ErrorInfo(reason=err.reason, domain=DOMAIN, metadata=err.metadata)
    packed = any_pb2.Any()
    packed.Pack(info)
    details.append(packed)
    return status_pb2.Status(code=code, message=err.message, details=details)


def _abort(context: grpc.ServicerContext, err: TrainhouseError) -> None:
    context.abort_with_status(rpc_status.to_status(to_rpc_status(err)))


def _internal(context: grpc.ServicerContext, method: str) -> None:
    incident = uuid.uuid4().hex[:12]
    log(logger, "unhandled error", logging.ERROR, method=method, incident=incident)
    logger.exception("unhandled error in %s (incident %s)", method, incident)
    context.abort(grpc.StatusCode.INTERNAL, f"internal error (incident {incident})")


@contextlib.contextmanager
def _mapped_errors(context: grpc.ServicerContext, method: str) -> Iterator[None]:
    try:
        yield
    except TrainhouseError as err:
        _abort(context, err)
    except Exception:
        if context.code() is None:  # not an abort issued by the servicer itself
            _internal(context, method)
        raise


class ErrorInterceptor(grpc.ServerInterceptor):
    """Wrap our own RPCs (not health/reflection) so domain errors become rich statuses."""

    def __init__(self, prefix: str = "/trainhouse."):
        self.prefix = prefix

    def intercept_service(self, continuation, handler_call_details):  # noqa: ANN001 - gRPC API
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if not method.startswith(self.prefix):
            return handler
        return wrap_handler(handler, lambda context: _mapped_errors(context, method))


@dataclass
class RpcFailure:
    """What a client needs to know about a failed call, read from the status details."""

    code: grpc.StatusCode
    message: str
    field: str | None = None
    reason: str | None = None
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)


def failure_of(error: grpc.RpcError) -> RpcFailure:
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = error.details() if hasattr(error, "details") else str(error)
    failure = RpcFailure(code=code, message=message or "")
    try:
        status = rpc_status.from_call(error)
    except Exception:  # a status without rich details (transport errors)
        status = None
    if status is None:
        return failure
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            if bad.field_violations:
                failure.field = bad.field_violations[0].field
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            failure.reason = info.reason
            failure.metadata = dict(info.metadata)
    return failure
