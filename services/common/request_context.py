"""Request ids across hops: the gateway sends `x-request-id`; every service logs it and passes it on.

A contextvar holds the id for the duration of one RPC handler, the JSON log formatter adds it to
every line, and channels made by trainhouse.common.clients forward it to the next service.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import time
import uuid
from collections import namedtuple
from collections.abc import Iterator

import grpc

from trainhouse.common.interceptors import wrap_handler

REQUEST_ID_HEADER = "x-request-id"
logger = logging.getLogger("trainhouse.rpc")
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def _incoming_id(context: grpc.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_HEADER and value:
            return value[:128]
    return f"req-{uuid.uuid4().hex[:16]}"


def _log_rpc(method: str, started: float, failed: bool) -> None:
    from trainhouse.common.logs import log  # logs imports this module for the request id

    # Successful calls at DEBUG: one formatted line per Predict/GetJob costs more than the call.
    log(logger, "rpc", logging.WARNING if failed else logging.DEBUG, method=method,
        duration_ms=round((time.perf_counter() - started) * 1000, 2), outcome="error" if failed else "ok")


@contextlib.contextmanager
def _bound(context: grpc.ServicerContext, method: str) -> Iterator[None]:
    token = request_id.set(_incoming_id(context))
    started, failed = time.perf_counter(), True
    try:
        yield
        failed = False
    finally:
        _log_rpc(method, started, failed)
        request_id.reset(token)


class RequestIdServerInterceptor(grpc.ServerInterceptor):
    """Binds the caller's request id (or a new one) to the handler's context and writes one
    access-log line per RPC with its duration, so a request can be followed across services."""

    def intercept_service(self, continuation, handler_call_details):  # noqa: ANN001 - gRPC API
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if not method.startswith("/trainhouse."):
            return handler
        return wrap_handler(handler, lambda context: _bound(context, method))


class CallDetails(namedtuple("CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready",
                                             "compression")), grpc.ClientCallDetails):
    pass


class RequestIdClientInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                                 grpc.StreamUnaryClientInterceptor):
    """Adds the current request id to outgoing calls so one id follows a request through every hop."""

    def _with_id(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        rid = request_id.get()
        if rid is None:
            return details
        metadata = [m for m in (details.metadata or []) if m[0] != REQUEST_ID_HEADER]
        metadata.append((REQUEST_ID_HEADER, rid))
        return CallDetails(details.method, details.timeout, metadata, details.credentials,
                        getattr(details, "wait_for_ready", None), getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation, client_call_details, request):  # noqa: ANN001
        return continuation(self._with_id(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):  # noqa: ANN001
        return continuation(self._with_id(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):  # noqa: ANN001
        return continuation(self._with_id(client_call_details), request_iterator)
