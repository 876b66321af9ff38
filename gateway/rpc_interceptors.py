"""grpc.aio client interceptors of the gateway's backend channels: request ids and call timings.

The request-context middleware binds each HTTP request's id (X-Request-Id) to the contextvar
of trainhouse.common.request_context; every call made while serving that request carries it as
``x-request-id`` metadata, which the services log (and forward to their own peers), so one id
follows a request gateway -> service -> service. Calls made outside a request (the webhook
follower) carry none, and the service then makes its own.

The same interceptors time each call for /metrics (trainhouse.gateway.metrics): unary and client-streaming
calls by method and status code, server streams by how long they lived.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import grpc

from trainhouse.gateway.metrics import GatewayMetrics
from trainhouse.common.authn import AUTHORIZATION, forwarded_authorization
from trainhouse.common.request_context import REQUEST_ID_HEADER, request_id


def _method_name(details: grpc.aio.ClientCallDetails) -> str:
    method = details.method
    return method.decode() if isinstance(method, bytes) else str(method)


def with_request_id(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    """The call's details with the current request id as `x-request-id` (replacing any other) and
    the caller of the request being served (or the gateway's own SYSTEM identity outside requests:
    the webhook follower) as `authorization`."""
    rid = request_id.get()
    metadata = grpc.aio.Metadata()
    for key, value in details.metadata or ():
        if key not in (REQUEST_ID_HEADER, AUTHORIZATION):
            metadata.add(key, value)
    if rid:
        metadata.add(REQUEST_ID_HEADER, rid)
    metadata.add(AUTHORIZATION, forwarded_authorization())
    return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials,
                                      details.wait_for_ready)


class _Base:
    def __init__(self, metrics: GatewayMetrics | None):
        self.metrics = metrics

    async def _finish(self, call: Any, method: str, started: float, streaming: bool = False) -> None:
        if self.metrics is None:
            return
        code = await call.code()
        self.metrics.observe_rpc(method, code.name if code is not None else "UNKNOWN",
                                 time.perf_counter() - started, streaming)

    async def _complete(self, call: Any, method: str, started: float) -> Any:
        """Wait for a unary answer (a failure is re-raised by the caller's own `await`), time it."""
        try:
            await call
        except grpc.RpcError:
            pass
        await self._finish(call, method, started)
        return call


class RequestIdUnaryUnary(_Base, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Callable, client_call_details: Any, request: Any) -> Any:
        started = time.perf_counter()
        call = await continuation(with_request_id(client_call_details), request)
        return await self._complete(call, _method_name(client_call_details), started)


class RequestIdStreamUnary(_Base, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Callable, client_call_details: Any,
                                     request_iterator: Any) -> Any:
        started = time.perf_counter()
        call = await continuation(with_request_id(client_call_details), request_iterator)
        return await self._complete(call, _method_name(client_call_details), started)


class RequestIdUnaryStream(_Base, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Callable, client_call_details: Any, request: Any) -> Any:
        started = time.perf_counter()
        method = _method_name(client_call_details)
        call = await continuation(with_request_id(client_call_details), request)
        if self.metrics is not None:
            loop = asyncio.get_running_loop()
            tasks: set[asyncio.Task] = set()

            def done(finished: Any) -> None:
                if loop.is_closed():
                    return
                task = loop.create_task(self._finish(finished, method, started, streaming=True))
                tasks.add(task)  # keep a reference until it ran
                task.add_done_callback(tasks.discard)

            call.add_done_callback(done)
        return call


class RecordsFirst(grpc.aio.UnaryUnaryClientInterceptor):
    """On the registry's channel: the predictions this gateway's serving replica answered reach the
    registry before any other call of this gateway does, so what the caller reads next (feedback
    naming a prediction, a deployment's counts) includes them. ``replica`` is set once it exists."""

    SKIP = ("/trainhouse.v1.ModelRegistry/Predict", "/trainhouse.v1.ModelRegistry/RecordPredictions")

    def __init__(self) -> None:
        self.replica: Any = None

    async def intercept_unary_unary(self, continuation: Callable, client_call_details: Any, request: Any) -> Any:
        if self.replica is not None and _method_name(client_call_details) not in self.SKIP:
            # Bounded: with the registry unreachable the call itself reports that.
            await self.replica.flush(self.replica.timeout_s)
        return await continuation(client_call_details, request)


def interceptors(metrics: GatewayMetrics | None) -> list[grpc.aio.ClientInterceptor]:
    return [RequestIdUnaryUnary(metrics), RequestIdUnaryStream(metrics), RequestIdStreamUnary(metrics)]
