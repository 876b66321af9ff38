"""OpenTelemetry traces across the stack: gateway -> service -> training worker -> ONNX Runtime.

Off unless ``TRAINHOUSE_TRACING=otlp``: then every process exports its spans with OTLP over HTTP
(``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` and the other standard
``OTEL_*`` variables, read by the OpenTelemetry SDK itself), as service ``trainhouse-<process>``.
The W3C ``traceparent`` travels in HTTP headers and gRPC metadata (the official instrumentations of
FastAPI and grpcio), and from TrainingService to a job's worker inside the job's launch spec.

The OpenTelemetry packages are the optional extra ``otel`` (``pip install 'trainhouse[otel]'``); asking
for tracing without them stops the process at start with that advice, like any bad setting. When
tracing is off, nothing here imports OpenTelemetry and every helper is a no-op, so the hot paths pay
nothing for it.
"""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

TRACING_VAR = "TRAINHOUSE_TRACING"
MODES = ("off", "otlp")

_provider: Any = None  # the SDK TracerProvider once configured, None while tracing is off


def mode() -> str:
    """The validated ``TRAINHOUSE_TRACING`` value (a bad one is an error, never silently off)."""
    value = os.environ.get(TRACING_VAR, "off").strip().lower() or "off"
    if value not in MODES:
        raise SystemExit(f"trainhouse: {TRACING_VAR}={value!r} is not one of {', '.join(MODES)}")
    return value


def enabled() -> bool:
    return _provider is not None


def configure(process: str) -> None:
    """Set up the tracer provider of this process (idempotent); a no-op when tracing is off."""
    global _provider
    if _provider is not None or mode() == "off":
        return
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as err:
        raise SystemExit(f"trainhouse: {TRACING_VAR}=otlp needs the OpenTelemetry packages "
                         f"(pip install 'trainhouse[otel]'): {err}") from None
    provider = TracerProvider(resource=Resource.create({"service.name": f"trainhouse-{process}"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider


def flush(timeout_s: float = 5.0) -> None:
    """Export what is buffered: processes leave with os._exit, which skips the SDK's atexit hook."""
    if _provider is not None:
        _provider.force_flush(int(timeout_s * 1000))


def server_interceptors() -> list[Any]:
    """A span per RPC served, continuing the caller's trace (gRPC metadata ``traceparent``)."""
    if _provider is None:
        return []
    from opentelemetry.instrumentation.grpc import server_interceptor

    return [server_interceptor(tracer_provider=_provider)]


def traced_channel(channel: Any) -> Any:
    """A blocking channel whose calls get a client span each and send ``traceparent`` in their
    metadata (the instrumentation's own channel wrapper: its interceptor is not a grpc one)."""
    if _provider is None:
        return channel
    from opentelemetry.instrumentation.grpc import client_interceptor
    from opentelemetry.instrumentation.grpc.grpcext import intercept_channel

    return intercept_channel(channel, client_interceptor(tracer_provider=_provider))


def aio_client_interceptors() -> list[Any]:
    """The same for the gateway's asyncio channels."""
    if _provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors as make

    return list(make(tracer_provider=_provider))


def instrument_app(app: Any) -> None:
    """A server span per HTTP request of the FastAPI app, continuing an incoming ``traceparent``."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=_provider, excluded_urls="healthz,metrics")


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the active span, to hand to work that runs elsewhere (a worker)."""
    if _provider is None:
        return None
    from opentelemetry.propagate import inject

    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent")


_NO_SPAN = contextlib.nullcontext()


def span(name: str, traceparent: str | None = None, **attributes: Any) -> contextlib.AbstractContextManager[Any]:
    """A span around a block (the child of ``traceparent`` when given, else of the active span).

    Without tracing it is one shared null context: it wraps every served prediction, where a
    generator-based context manager cost more than the rest of the bookkeeping."""
    if _provider is None:
        return _NO_SPAN
    return _span(name, traceparent, attributes)


@contextlib.contextmanager
def _span(name: str, traceparent: str | None, attributes: dict[str, Any]) -> Iterator[Any]:
    from opentelemetry import trace
    from opentelemetry.propagate import extract

    context = extract({"traceparent": traceparent}) if traceparent else None
    tracer = trace.get_tracer("trainhouse", tracer_provider=_provider)
    with tracer.start_as_current_span(name, context=context, attributes=_attrs(attributes)) as current:
        yield current


class Timeline:
    """Spans for stretches that are only known when they end (a trainer's epochs arrive as events).

    ``mark(name, ...)`` records a span from the previous mark (or the timeline's start) to now, as a
    child of the span that was active when the timeline was made."""

    def __init__(self) -> None:
        self._last = time.time_ns()
        self._context = None
        if _provider is not None:
            from opentelemetry import context

            self._context = context.get_current()

    def mark(self, name: str, **attributes: Any) -> None:
        now = time.time_ns()
        if _provider is not None:
            from opentelemetry import trace

            tracer = trace.get_tracer("trainhouse", tracer_provider=_provider)
            tracer.start_span(name, context=self._context, start_time=self._last,
                              attributes=_attrs(attributes)).end(end_time=now)
        self._last = now


def _attrs(attributes: dict[str, Any]) -> dict[str, Any]:
    """OpenTelemetry attribute values are str/bool/int/float: keep those, stringify the rest."""
    return {k: v if isinstance(v, (str, bool, int, float)) else str(v)
            for k, v in attributes.items() if v is not None}
