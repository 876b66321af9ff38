"""Gateway settings read once from TRAINHOUSE_* variables (through services.common.config)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from services.common import config

MiB = 1024 * 1024


@dataclass(frozen=True)
class GatewaySettings:
    home: Path
    # Bodies above this are refused with 413 before anything parses them (contract: 10 MiB).
    max_body_bytes: int
    # Deadline of every unary gRPC call, so a wedged service answers 504 instead of hanging.
    rpc_timeout_s: float
    # Default per-token budget (seed 000: 1000 requests per hour); 0 disables the limiter.
    rate_limit_per_hour: int
    jwt_secret: str | None
    bootstrap_token: str | None
    # SSE comment sent when a job is quiet, so proxies and clients keep the stream open.
    sse_keepalive_s: float

    @classmethod
    def from_env(cls) -> "GatewaySettings":
        return cls(
            home=config.home(),
            max_body_bytes=config.env_int("MAX_BODY_BYTES", 10 * MiB),
            rpc_timeout_s=config.env_float("RPC_TIMEOUT_S", 30.0),
            rate_limit_per_hour=config.env_int("RATE_LIMIT_PER_HOUR", 1000),
            jwt_secret=os.environ.get("TRAINHOUSE_JWT_SECRET") or None,
            bootstrap_token=os.environ.get("TRAINHOUSE_BOOTSTRAP_TOKEN") or None,
            sse_keepalive_s=config.env_float("SSE_KEEPALIVE_S", 15.0),
        )
