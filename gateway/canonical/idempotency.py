"""``Idempotency-Key`` on creates: the same key and body answer the first response again; the same
key with another body is 409 ``idempotency_key_reused``; a retry while the first is still running
is 409 ``request_in_progress`` (the SDK retries that one).

Where the keys live, and why: a table in gateway.duckdb (the gateway's home dir, next to its tokens
and webhooks), not an in-memory map. A create starts training jobs, evaluations and deployments, so
a client that retries across a gateway restart (the moment retries happen most) must not start a
second job; an in-memory map would forget the key exactly then. Rows expire after
``TRAINHOUSE_IDEMPOTENCY_TTL_S`` (default 86400 s, Stripe's 24 h), removed lazily on writes.

Keys are per account and route, so two accounts (or two routes) never collide. A failed create
(4xx/5xx) releases its key: the retry runs again, as nothing was created.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from anyio import to_thread
from fastapi import Request

from trainhouse.gateway import errors as E
from trainhouse.gateway.canonical.common import IDEMPOTENCY_KEY_REUSED, REQUEST_IN_PROGRESS, CanonicalError
from trainhouse.common.duckdb_store import DuckStore

SCHEMA = """CREATE TABLE IF NOT EXISTS idempotency_keys (
    account VARCHAR NOT NULL,
    route VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    body_sha256 VARCHAR NOT NULL,
    status INTEGER,
    response VARCHAR,
    created_at DOUBLE NOT NULL,
    PRIMARY KEY (account, route, key)
)"""
MAX_KEY = 255


def ttl_s() -> float:
    raw = os.environ.get("TRAINHOUSE_IDEMPOTENCY_TTL_S", "86400")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"TRAINHOUSE_IDEMPOTENCY_TTL_S must be a number of seconds, got {raw!r}") from None
    if not 60 <= value <= 30 * 86400:
        raise ValueError(f"TRAINHOUSE_IDEMPOTENCY_TTL_S must be between 60 and 2592000, got {raw!r}")
    return value


TTL_S = ttl_s()  # read at import: a bad value stops the gateway's start with its reason


class IdempotencyStore:
    def __init__(self, db: DuckStore, ttl: float = TTL_S):
        self.db = db
        self.ttl = ttl
        db.execute(SCHEMA)

    def claim(self, account: str, route: str, key: str, digest: str) -> tuple[int, Any] | None:
        """None when this call owns the key now; the stored (status, body) to answer again otherwise."""
        now = time.time()
        with self.db.transaction() as con:
            con.execute("DELETE FROM idempotency_keys WHERE created_at < ?", [now - self.ttl])
            row = con.execute("SELECT body_sha256, status, response FROM idempotency_keys "
                              "WHERE account = ? AND route = ? AND key = ?", [account, route, key]).fetchone()
            if row is None:
                con.execute("INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, NULL, NULL, ?)",
                            [account, route, key, digest, now])
                return None
        if row[0] != digest:
            raise CanonicalError(E.CONFLICT, IDEMPOTENCY_KEY_REUSED,
                                 "this Idempotency-Key was used with another request body", field="Idempotency-Key")
        if row[1] is None:
            raise CanonicalError(E.CONFLICT, REQUEST_IN_PROGRESS,
                                 "a request with this Idempotency-Key is still running; retry shortly",
                                 field="Idempotency-Key")
        return row[1], json.loads(row[2])

    def complete(self, account: str, route: str, key: str, status: int, body: Any) -> None:
        self.db.execute("UPDATE idempotency_keys SET status = ?, response = ? WHERE account = ? AND route = ? "
                        "AND key = ?", [status, json.dumps(body, default=str), account, route, key])

    def release(self, account: str, route: str, key: str) -> None:
        self.db.execute("DELETE FROM idempotency_keys WHERE account = ? AND route = ? AND key = ?",
                        [account, route, key])


def store_of(request: Request) -> IdempotencyStore:
    """The app's store, made on first use over the gateway's own DuckDB file (gateway.duckdb)."""
    state = request.app.state
    store = getattr(state, "idempotency", None)
    if store is None:
        store = state.idempotency = IdempotencyStore(state.gate.store.db)
    return store


async def idempotent(request: Request, key: str | None, body: Any,
                     create: Callable[[], Awaitable[Any]]) -> Any:
    """Run `create` once per (account, route, key, body); without a key, just run it."""
    if key is None:
        return await create()
    if not key or len(key) > MAX_KEY:
        raise E.ApiError(E.INVALID, f"Idempotency-Key must be 1..{MAX_KEY} characters", field="Idempotency-Key")
    principal = (request.scope.get("state") or {}).get("principal")
    account = principal.account if principal is not None else ""
    route = f"{request.method} {request.scope.get('route').path if request.scope.get('route') else request.url.path}"
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    store = store_of(request)
    stored = await to_thread.run_sync(store.claim, account, route, key, digest)
    if stored is not None:
        request.scope.setdefault("state", {}).setdefault("extra_headers", {})["Idempotent-Replayed"] = "true"
        return stored[1]
    try:
        result = await create()
    except BaseException:
        await to_thread.run_sync(store.release, account, route, key)
        raise
    await to_thread.run_sync(store.complete, account, route, key, 200, _plain(result))
    return result


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value
