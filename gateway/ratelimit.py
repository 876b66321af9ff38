"""Per-token budgets, one token bucket per (token, group), persisted in the gateway's DuckDB file.

Groups and their defaults come from the seeds:
- ``requests``: every authenticated HTTP request, 1000 per hour (seed 000);
- ``generation``: generated examples, 10,000 per hour, spent by the example count (seed 000);
- ``evaluations``: 100 per day (seed 000);
- ``rpc:<method>``: the JSON-RPC per-method table, per minute (seed 003).
(Seed 000's "5 concurrent training jobs per account" is a running-job cap, enforced by
TrainingService where the jobs are.)

A bucket rather than a fixed window: a burst at the end of one window and the start of the next
cannot double the budget, and a caller that slows down regains requests gradually.

Why persisted: a restart must not hand every caller a fresh budget (a restart loop would then
be a way around the limit). Buckets live in memory (one process, one lock, so a burst of
parallel requests can never be admitted past the limit) and are written to DuckDB by a periodic
flush and on shutdown, and read back at start-up. Time is wall-clock so a stored bucket keeps
meaning across processes; a clock stepping backwards never adds tokens.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from trainhouse.common import config
from trainhouse.common.duckdb_store import DuckStore

REQUESTS = "requests"
GENERATION = "generation"
EVALUATIONS = "evaluations"

HOUR = 3600.0
DAY = 86400.0
MINUTE = 60.0

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS rate_buckets (
        bucket_key VARCHAR PRIMARY KEY,
        tokens DOUBLE NOT NULL,
        updated_at DOUBLE NOT NULL
    )""",
]

# JSON-RPC methods of seed 003 -> (env variable suffix, requests per minute).
RPC_DEFAULTS: dict[str, tuple[str, int]] = {
    "training.start_grpo": ("START_GRPO", 10),
    "training.get_status": ("GET_STATUS", 100),
    "training.cancel": ("CANCEL", 20),
    "training.evaluate": ("EVALUATE", 5),
    "training.export_trajectories": ("EXPORT_TRAJECTORIES", 10),
}


def rpc_group(method: str) -> str:
    return f"rpc:{method}"


@dataclass(frozen=True)
class Limit:
    """`capacity` units per `window_s` seconds; capacity 0 disables the limit."""

    capacity: int
    window_s: float

    @property
    def rate(self) -> float:
        return self.capacity / self.window_s


def limits_from_env() -> dict[str, Limit]:
    """Each group's limit, configurable with TRAINHOUSE_RATE_LIMIT_* (0 disables a group)."""
    limits = {
        REQUESTS: Limit(config.env_int("RATE_LIMIT_PER_HOUR", 1000), HOUR),
        GENERATION: Limit(config.env_int("RATE_LIMIT_GENERATED_EXAMPLES_PER_HOUR", 10_000), HOUR),
        EVALUATIONS: Limit(config.env_int("RATE_LIMIT_EVALUATIONS_PER_DAY", 100), DAY),
    }
    for method, (suffix, default) in RPC_DEFAULTS.items():
        limits[rpc_group(method)] = Limit(config.env_int(f"RATE_LIMIT_RPC_{suffix}_PER_MINUTE", default), MINUTE)
    return limits


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_epoch: int       # when the bucket is full again (X-RateLimit-Reset, Unix seconds)
    retry_after: int       # seconds until the request would be allowed (0 when allowed)
    group: str = REQUESTS
    # The cost can never fit (e.g. more examples than the whole hourly budget).
    impossible: bool = False

    def headers(self) -> dict[str, str]:
        out = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
               "X-RateLimit-Reset": str(self.reset_epoch)}
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


def tightest(decisions: list[Decision]) -> Decision:
    """The decision to show in X-RateLimit-*: a refusal first, else the one with least left."""
    refused = [d for d in decisions if not d.allowed]
    if refused:
        return max(refused, key=lambda d: d.retry_after)
    return min(decisions, key=lambda d: (d.remaining / max(d.limit, 1), d.remaining))


class RateLimiter:
    def __init__(self, limits: dict[str, Limit] | None = None, db: DuckStore | None = None,
                 wall: Callable[[], float] = time.time):
        self.limits = limits if limits is not None else limits_from_env()
        self._wall = wall
        self._db = db
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)
        self._dirty: set[str] = set()
        self._lock = threading.Lock()
        if db is not None:
            for statement in SCHEMA:
                db.execute(statement)
            for key, tokens, updated in db.query("SELECT bucket_key, tokens, updated_at FROM rate_buckets"):
                self._buckets[key] = (float(tokens), float(updated))

    def limit_of(self, group: str, override_per_hour: int | None = None) -> Limit | None:
        """The group's limit, or None when disabled. A per-token hourly budget replaces the
        `requests` default; a token whose budget is 0 is exempt from every group."""
        if override_per_hour is not None:
            if override_per_hour <= 0:
                return None
            if group == REQUESTS:
                return Limit(override_per_hour, HOUR)
        limit = self.limits.get(group)
        return limit if limit is not None and limit.capacity > 0 else None

    def hit(self, key: str, limit: Limit, cost: float = 1.0, group: str = REQUESTS) -> Decision:
        """Spend `cost` units of `key`'s bucket, atomically: all or nothing."""
        rate = limit.rate
        capacity = float(limit.capacity)
        bucket_key = f"{group}|{key}"
        with self._lock:
            t = self._wall()
            tokens, last = self._buckets.get(bucket_key, (capacity, t))
            tokens = min(capacity, tokens + max(0.0, t - last) * rate)
            impossible = cost > capacity
            allowed = not impossible and tokens >= cost
            if allowed:
                tokens -= cost
            self._buckets[bucket_key] = (tokens, t)
            self._dirty.add(bucket_key)
        if allowed:
            retry_after = 0
        elif impossible:
            retry_after = math.ceil(limit.window_s)
        else:
            retry_after = max(1, math.ceil((cost - tokens) / rate))
        reset = t + (capacity - tokens) / rate
        return Decision(allowed, limit.capacity, int(tokens), math.ceil(reset), retry_after, group, impossible)

    def refund(self, key: str, limit: Limit, cost: float, group: str) -> None:
        """Give back units spent for work that was then refused for another reason."""
        bucket_key = f"{group}|{key}"
        with self._lock:
            tokens, last = self._buckets.get(bucket_key, (float(limit.capacity), self._wall()))
            self._buckets[bucket_key] = (min(float(limit.capacity), tokens + cost), last)
            self._dirty.add(bucket_key)

    def flush(self) -> int:
        """Write the buckets changed since the last flush; returns how many."""
        if self._db is None:
            return 0
        with self._lock:
            rows = [(k, *self._buckets[k]) for k in self._dirty]
            self._dirty.clear()
        if rows:
            with self._db.transaction() as con:
                con.executemany(
                    "INSERT INTO rate_buckets (bucket_key, tokens, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (bucket_key) DO UPDATE SET tokens = excluded.tokens, "
                    "updated_at = excluded.updated_at", rows)
        return len(rows)
