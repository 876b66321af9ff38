"""Gateway settings read once from TRAINHOUSE_* variables (through trainhouse.common.config)."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from trainhouse.gateway.json_limits import CEILING_MAX_DEPTH, DEFAULT_MAX_DEPTH
from trainhouse.gateway.ratelimit import Limit, limits_from_env
from trainhouse.common import config, secret_checks
from trainhouse.common.logs import log

logger = logging.getLogger("trainhouse.gateway")

MiB = 1024 * 1024


@dataclass(frozen=True)
class WebhookSettings:
    # Allow URLs that resolve to private, loopback or link-local addresses (tests, on-prem).
    allow_private: bool = False
    # Default `progressEvery`: a training.progress event every N epochs / iterations (seed 003: 10).
    progress_every: int = 10
    # Attempts per delivery before it is marked failed.
    max_attempts: int = 8
    # Backoff before attempt n+1: base * 2**(n-1), capped, with jitter in [50%, 100%].
    backoff_base_s: float = 2.0
    backoff_max_s: float = 3600.0
    timeout_s: float = 10.0
    # How long the event follower waits before reconnecting to TrainingService.
    reconnect_s: float = 1.0

    @classmethod
    def from_env(cls) -> "WebhookSettings":
        return cls(
            allow_private=config.env_str("WEBHOOK_ALLOW_PRIVATE", "0").lower() in ("1", "true", "yes"),
            progress_every=max(1, config.env_int("WEBHOOK_PROGRESS_EVERY", 10)),
            max_attempts=max(1, config.env_int("WEBHOOK_MAX_ATTEMPTS", 8)),
            backoff_base_s=max(0.0, config.env_float("WEBHOOK_BACKOFF_S", 2.0)),
            backoff_max_s=max(0.0, config.env_float("WEBHOOK_BACKOFF_MAX_S", 3600.0)),
            timeout_s=max(0.1, config.env_float("WEBHOOK_TIMEOUT_S", 10.0)),
            reconnect_s=max(0.05, config.env_float("WEBHOOK_RECONNECT_S", 1.0)),
        )


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
    # Every rate-limit group (gateway.ratelimit); `requests` follows rate_limit_per_hour.
    limits: dict[str, Limit] = field(default_factory=dict)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    # Lifetime of signed dataset download URLs (seed 000 shows one day).
    download_url_ttl_s: int = 86400
    # The agent the runtime surface (seed 004, which names no agent) trains and lists.
    runtime_agent_id: str = "runtime-agent"
    # How often rate-limit buckets are written to gateway.duckdb (and always on shutdown).
    rate_flush_s: float = 1.0
    # GET /metrics without a token (TRAINHOUSE_METRICS_PUBLIC=1); otherwise it needs `admin`.
    metrics_public: bool = False
    # How long /metrics reuses TrainingService's job counts before asking again.
    metrics_cache_s: float = 5.0
    # Deepest nesting of arrays/objects a JSON body may have (gateway.json_limits); deeper -> 400.
    # At most 32: protobuf carries a JSON level of a free-form map in three message levels of 100.
    max_json_depth: int = DEFAULT_MAX_DEPTH
    # A JWKS file path or http(s) URL: RS256 JWTs signed by one of its keys (by kid) are accepted.
    jwt_jwks: str | None = None
    # Routed Predict answered in the gateway's process (gateway/serving_replica.py, docs/serving.md);
    # false: every Predict goes to the registry.
    serving_replica: bool = True

    @classmethod
    def from_env(cls) -> "GatewaySettings":
        # Weak operator secrets stop the gateway here, with a one-line reason (secret_checks).
        for problem in secret_checks.require_strong():
            log(logger, "weak secret accepted because TRAINHOUSE_INSECURE_DEV=1", logging.WARNING, problem=problem)
        return cls(
            home=config.home(),
            max_body_bytes=config.env_int("MAX_BODY_BYTES", 10 * MiB),
            rpc_timeout_s=config.env_float("RPC_TIMEOUT_S", 30.0),
            rate_limit_per_hour=config.env_int("RATE_LIMIT_PER_HOUR", 1000),
            jwt_secret=os.environ.get("TRAINHOUSE_JWT_SECRET") or None,
            bootstrap_token=os.environ.get("TRAINHOUSE_BOOTSTRAP_TOKEN") or None,
            sse_keepalive_s=config.env_float("SSE_KEEPALIVE_S", 15.0),
            limits=limits_from_env(),
            webhooks=WebhookSettings.from_env(),
            download_url_ttl_s=max(1, config.env_int("DOWNLOAD_URL_TTL_S", 86400)),
            runtime_agent_id=config.env_str("RUNTIME_AGENT_ID", "runtime-agent"),
            rate_flush_s=max(0.05, config.env_float("RATE_LIMIT_FLUSH_S", 1.0)),
            metrics_public=config.env_str("METRICS_PUBLIC", "0").lower() in ("1", "true", "yes"),
            metrics_cache_s=max(0.0, config.env_float("METRICS_CACHE_S", 5.0)),
            max_json_depth=_max_json_depth(),
            jwt_jwks=os.environ.get("TRAINHOUSE_JWT_JWKS") or None,
            serving_replica=config.env_flag("GATEWAY_SERVING_REPLICA", True),
        )


def _max_json_depth() -> int:
    depth = config.env_int("MAX_JSON_DEPTH", DEFAULT_MAX_DEPTH)
    if not 2 <= depth <= CEILING_MAX_DEPTH:
        raise SystemExit(f"TRAINHOUSE_MAX_JSON_DEPTH must be between 2 and {CEILING_MAX_DEPTH}, got {depth}")
    return depth
