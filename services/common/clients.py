"""gRPC channels to the other services, shared so every caller gets the same options."""
from __future__ import annotations

import threading

import grpc

from services.common import config
from services.common.server import GRPC_OPTIONS

_channels: dict[str, grpc.Channel] = {}
_lock = threading.Lock()


def channel(service: str, address: str | None = None) -> grpc.Channel:
    """One long-lived channel per target; gRPC reconnects it by itself after a restart."""
    target = address or config.service_address(service)
    with _lock:
        ch = _channels.get(target)
        if ch is None:
            ch = grpc.insecure_channel(target, options=GRPC_OPTIONS)
            _channels[target] = ch
        return ch
