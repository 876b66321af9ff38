"""Wrap a gRPC method handler of any arity in a context manager, once for every interceptor.

An interceptor then only says what happens around a call (bind a request id, map errors) and
not how unary and streaming handlers are rebuilt.
"""
from __future__ import annotations

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
