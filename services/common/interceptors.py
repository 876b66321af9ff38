"""Wrap a gRPC method handler of any arity in a context manager, once for every interceptor.

An interceptor then only says what happens around a call (bind a request id, map errors) and
not how unary and streaming handlers are rebuilt.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

import grpc

Around = Callable[[grpc.ServicerContext], AbstractContextManager]


def wrap_handler(handler: grpc.RpcMethodHandler | None, around: Around) -> grpc.RpcMethodHandler | None:
    if handler is None:
        return None
    if handler.unary_unary:
        unary = handler.unary_unary

        def unary_unary(request, context):
            with around(context):
                return unary(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, handler.request_deserializer,
                                                   handler.response_serializer)
    if handler.unary_stream:
        stream = handler.unary_stream

        def unary_stream(request, context):
            with around(context):
                yield from stream(request, context)

        return grpc.unary_stream_rpc_method_handler(unary_stream, handler.request_deserializer,
                                                    handler.response_serializer)
    if handler.stream_unary:
        client_stream = handler.stream_unary

        def stream_unary(request_iterator, context):
            with around(context):
                return client_stream(request_iterator, context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, handler.request_deserializer,
                                                    handler.response_serializer)
    return handler


class WrappedHandlers:
    """Each method's wrapped handler, built once: grpc asks the interceptors for a handler on every
    call, and rebuilding the closures and method handlers per call was measurable on GetJob.

    Keyed by method and checked against the handler the continuation returned (the same object
    for a registered method), so a different handler is wrapped afresh."""

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler | None]] = {}
        self._lock = threading.Lock()

    def get(self, method: str, handler: grpc.RpcMethodHandler | None,
            make: Callable[[grpc.RpcMethodHandler], grpc.RpcMethodHandler | None]) -> grpc.RpcMethodHandler | None:
        if handler is None:
            return None
        hit = self._wrapped.get(method)
        if hit is not None and hit[0] is handler:
            return hit[1]
        wrapped = make(handler)
        with self._lock:
            self._wrapped[method] = (handler, wrapped)
        return wrapped
