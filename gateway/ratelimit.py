"""Per-token request budget (seed 000: 1000 requests per hour) as a token bucket.

A bucket rather than a fixed window: a burst at the end of one hour and the start of the next
cannot double the budget, and a caller that slows down regains requests gradually. Kept in
memory: the gateway is one process, and a restart giving everyone a full bucket is harmless.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

WINDOW_S = 3600.0


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_epoch: int       # when the bucket is full again (X-RateLimit-Reset, Unix seconds)
    retry_after: int       # seconds until one more request is allowed (0 when allowed)

    def headers(self) -> dict[str, str]:
        out = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
               "X-RateLimit-Reset": str(self.reset_epoch)}
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


class RateLimiter:
    def __init__(self, clock=time.monotonic, wall=time.time):
        self._clock = clock
        self._wall = wall
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int) -> Decision:
        """Spend one request of `key`'s budget of `limit` per hour."""
        rate = limit / WINDOW_S
        with self._lock:
            t = self._clock()
            tokens, last = self._buckets.get(key, (float(limit), t))
            tokens = min(float(limit), tokens + (t - last) * rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key] = (tokens, t)
        retry_after = 0 if allowed else max(1, math.ceil((1.0 - tokens) / rate))
        reset = self._wall() + (limit - tokens) / rate
        return Decision(allowed, limit, int(tokens), math.ceil(reset), retry_after)
