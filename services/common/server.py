"""How a service process lives: build, bind, report its port, serve, stop gracefully.

Following grpc/grpc examples: a factory returns the server and its bound port (tests bind
port 0 and read it back); health starts SERVING once everything is registered; on SIGTERM or
SIGINT, health goes NOT_SERVING first, then the service's own shutdown hook runs (running
jobs checkpoint), then in-flight RPCs get a grace period.
"""
from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from trainhouse.common import config, tls, tracing
from trainhouse.common.authn import AuthInterceptor, ServiceAuthenticator
from trainhouse.common.grpc_errors import ErrorInterceptor
from trainhouse.common.heap import freeze_startup_objects
from trainhouse.common.logs import configure, log
from trainhouse.common.request_context import RequestIdServerInterceptor
from trainhouse.common.stop_signals import StopSignals

logger = logging.getLogger("trainhouse.server")

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
GRPC_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]
# gRPC sets SO_REUSEPORT on Linux by default, so a second stack on the same ports would come up and
# share the connections with the first (clients get either stack's answers). Servers bind alone.
SERVER_OPTIONS = GRPC_OPTIONS + [("grpc.so_reuseport", 0)]


class BindError(SystemExit):
    """The service's address is taken (or not ours to bind): one line for stderr, exit non-zero."""


@dataclass
class ServiceApp:
    """What a service module hands to `serve`: its registrations and its shutdown hook."""

    # (add_XServicer_to_server, servicer instance, full service name)
    registrations: list[tuple[Callable, object, str]]
    # Runs after health went NOT_SERVING, before in-flight RPCs drain (stop jobs, wake streams).
    on_shutdown: Callable[[], None] = lambda: None
    # Runs after the server stopped (close stores: no RPC can touch them any more).
    on_stopped: Callable[[], None] = lambda: None
    extra: dict = field(default_factory=dict)


def create_server(app: ServiceApp, address: str, authenticator: ServiceAuthenticator,
                  max_workers: int = 32) -> tuple[grpc.Server, int, health.HealthServicer]:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc"),
        # Authentication inside the error mapping, so its refusals are rich statuses like any other.
        # The tracing span (when configured) outermost, so it times and records everything below.
        interceptors=[*tracing.server_interceptors(), RequestIdServerInterceptor(), ErrorInterceptor(),
                      AuthInterceptor(authenticator)],
        options=SERVER_OPTIONS,
    )
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
    for add, servicer, name in app.registrations:
        add(servicer, server)
        names.append(name)
    reflection.enable_server_reflection(names, server)
    try:
        port = tls.add_port(server, address)
    except RuntimeError:  # grpcio raises when the bind fails, older versions return 0
        port = 0
    if port == 0:
        raise BindError(f"trainhouse: cannot listen on {address}: the address is in use (another stack or "
                        f"program on this port?) or not available")
    return server, port, health_servicer


def serve(service: str, build: Callable[[], ServiceApp], grace_s: float = 10.0) -> None:
    """Run one service until SIGTERM/SIGINT; exit 0 after a clean stop."""
    configure(service)
    tracing.configure(service)  # a bad TRAINHOUSE_TRACING stops the process here
    tls.TlsSettings.from_env()  # a bad TLS setting stops the process before build() opens anything
    authenticator = ServiceAuthenticator.from_env()  # so does a missing internal key
    app = build()
    address = f"127.0.0.1:{config.service_port(service)}"
    host = os.environ.get("TRAINHOUSE_BIND_HOST")
    if host:
        address = f"{host}:{config.service_port(service)}"
    try:
        server, port, health_servicer = create_server(app, address, authenticator)
    except BindError as err:
        log(logger, "cannot listen", logging.ERROR, service=service, address=address)
        try:  # what build() started (stores, executors) must not keep the process alive
            app.on_shutdown()
        finally:
            app.on_stopped()
        raise err
    frozen = freeze_startup_objects()  # before the first call: full collections skip all of it
    server.start()
    for _, _, name in app.registrations:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    port_file = os.environ.get("TRAINHOUSE_PORT_FILE")
    if port_file:
        tmp = Path(port_file + ".tmp")
        tmp.write_text(str(port))
        tmp.replace(port_file)
    log(logger, "listening", service=service, port=port, pid=os.getpid(), frozen_objects=frozen)

    stop = StopSignals()
    stop.wait()
    log(logger, "signal received", signal=stop.names())
    health_servicer.enter_graceful_shutdown()
    try:
        app.on_shutdown()
    finally:
        server.stop(grace_s).wait(grace_s + 5)
        app.on_stopped()
    log(logger, "stopped", service=service)
    _exit_now()


def _exit_now() -> None:
    """Exit 0 without interpreter finalisation, once everything is stopped and stored.

    Finalisation tears down daemon threads (gRPC's and the HTTP client's pollers) while they are
    inside C++ code, which aborts the process now and then ("FATAL: exception not rethrown",
    SIGABRT) after a clean stop; with nothing left to save, skipping it is the clean exit."""
    tracing.flush()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)
