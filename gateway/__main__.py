"""`python -m trainhouse.gateway`: serve create_app() on 127.0.0.1:$TRAINHOUSE_GATEWAY_PORT until SIGTERM/SIGINT.

We bind the socket ourselves so port 0 works: the kernel picks a free port, we read it back and,
once uvicorn is listening, write it to $TRAINHOUSE_PORT_FILE (tmp + rename, so a reader never sees
a half-written number). Exit code 0 after a clean stop.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from pathlib import Path

import uvicorn

from trainhouse.gateway.app import create_app
from trainhouse.common import config
from trainhouse.common.heap import freeze_startup_objects
from trainhouse.common.logs import configure, log

logger = logging.getLogger("trainhouse.gateway")

# Open SSE streams would otherwise keep a stopping gateway alive until their jobs end.
GRACEFUL_TIMEOUT_S = 5


def write_port_file(path: str, port: int) -> None:
    tmp = Path(f"{path}.{os.getpid()}.tmp")
    tmp.write_text(str(port))
    os.replace(tmp, path)


class _Server(uvicorn.Server):
    """uvicorn.Server that reports the bound port once it accepts connections."""

    def __init__(self, cfg: uvicorn.Config, port: int):
        super().__init__(cfg)
        self.port = port

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit:
            frozen = freeze_startup_objects()  # the app and its clients are built: see common/heap.py
            port_file = os.environ.get("TRAINHOUSE_PORT_FILE")
            if port_file:
                write_port_file(port_file, self.port)
            log(logger, "listening", service="gateway", port=self.port, pid=os.getpid(), frozen_objects=frozen)


def main() -> int:
    configure("gateway")
    host = os.environ.get("TRAINHOUSE_BIND_HOST") or "127.0.0.1"
    # IPPROTO_TCP (not 0): asyncio only sets TCP_NODELAY on accepted sockets of a TCP-proto
    # listener; without it every response waits out the client's 40 ms delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, config.gateway_port()))
    except OSError as exc:
        log(logger, "cannot bind", logging.ERROR, host=host, port=config.gateway_port(), error=str(exc))
        return 1
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    # httptools (C HTTP parser) and uvloop (libuv event loop, which grpc.aio runs on too) instead of
    # h11 and asyncio's pure-Python loop: bench/gateway_throughput.py in the README's benchmark notes.
    cfg = uvicorn.Config(create_app(), host=host, port=port, loop="uvloop", http="httptools", lifespan="on",
                         log_config=None, access_log=False, timeout_graceful_shutdown=GRACEFUL_TIMEOUT_S)
    server = _Server(cfg, port)
    # uvicorn re-raises the signal it stopped on after a clean shutdown, which would end the
    # process with -SIGTERM; with these handlers in place that re-raise is a no-op and we exit 0.
    signal.signal(signal.SIGTERM, lambda *_: None)
    signal.signal(signal.SIGINT, lambda *_: None)
    server.run(sockets=[sock])
    if not server.started:
        return 1
    log(logger, "stopped", service="gateway")
    return 0


if __name__ == "__main__":
    sys.exit(main())
