"""Webhook subscriptions, their delivery log and the event cursor, in gateway.duckdb.

Why the cursor and the deliveries share one transaction: an event is either not yet seen (the
cursor is before it, so it is read again after a restart) or its deliveries exist. Deliveries
are unique per (webhook, event id), so reading an event twice never sends it twice as two
events: at-least-once, with the event id in every attempt for the receiver's dedup.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from trainhouse.common.duckdb_store import DuckStore
from trainhouse.core.ids import random_id

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS webhooks (
        webhook_id VARCHAR PRIMARY KEY,
        account VARCHAR NOT NULL,
        url VARCHAR NOT NULL,
        events_json VARCHAR NOT NULL,
        secret VARCHAR NOT NULL,
        format VARCHAR NOT NULL,
        progress_every INTEGER NOT NULL,
        created_at DOUBLE NOT NULL,
        created_by VARCHAR NOT NULL,
        active BOOLEAN NOT NULL DEFAULT TRUE
    )""",
    """CREATE TABLE IF NOT EXISTS webhook_deliveries (
        delivery_id VARCHAR PRIMARY KEY,
        webhook_id VARCHAR NOT NULL,
        event_id VARCHAR NOT NULL,
        event VARCHAR NOT NULL,
        job_id VARCHAR NOT NULL,
        payload VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at DOUBLE NOT NULL,
        last_status_code INTEGER,
        last_error VARCHAR,
        created_at DOUBLE NOT NULL,
        delivered_at DOUBLE,
        UNIQUE (webhook_id, event_id)
    )""",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at)",
    "CREATE TABLE IF NOT EXISTS webhook_state (name VARCHAR PRIMARY KEY, value BIGINT NOT NULL)",
]

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
CANCELLED = "cancelled"
CURSOR = "events-cursor"


@dataclass(frozen=True)
class Webhook:
    webhook_id: str
    account: str
    url: str
    events: tuple[str, ...]
    secret: str
    format: str
    progress_every: int
    created_at: float
    active: bool


@dataclass(frozen=True)
class NewDelivery:
    webhook_id: str
    event_id: str
    event: str
    job_id: str
    payload: str


_HOOK_COLUMNS = "webhook_id, account, url, events_json, secret, format, progress_every, created_at, active"


def _hook(row: tuple) -> Webhook:
    wid, account, url, events, secret, fmt, every, created, active = row
    return Webhook(wid, account, url, tuple(json.loads(events)), secret, fmt, int(every), float(created), bool(active))


class WebhookStore:
    def __init__(self, db: DuckStore):
        self.db = db
        for statement in SCHEMA:
            db.execute(statement)
        self.version = 0  # bumped on every subscription change, so callers can cache active hooks

    # ---- subscriptions --------------------------------------------------------------------

    def create(self, account: str, url: str, events: list[str], secret: str | None, fmt: str,
               progress_every: int, created_by: str, at: float) -> tuple[Webhook, str | None]:
        """Store a subscription; returns it and the secret when one was generated (shown once)."""
        generated = None
        if not secret:
            secret = generated = "whsec_" + secrets.token_urlsafe(32)
        webhook_id = random_id("wh")
        self.db.execute(
            f"INSERT INTO webhooks ({_HOOK_COLUMNS}, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, TRUE, ?)",
            [webhook_id, account, url, json.dumps(sorted(set(events))), secret, fmt, progress_every, at, created_by])
        self.version += 1
        hook = self.get(webhook_id)
        assert hook is not None
        return hook, generated

    def get(self, webhook_id: str) -> Webhook | None:
        rows = self.db.query(f"SELECT {_HOOK_COLUMNS} FROM webhooks WHERE webhook_id = ?", [webhook_id])
        return _hook(rows[0]) if rows else None

    def list(self, account: str | None) -> list[Webhook]:
        if account is None:
            rows = self.db.query(f"SELECT {_HOOK_COLUMNS} FROM webhooks WHERE active ORDER BY created_at")
        else:
            rows = self.db.query(f"SELECT {_HOOK_COLUMNS} FROM webhooks WHERE active AND account = ? "
                                 "ORDER BY created_at", [account])
        return [_hook(r) for r in rows]

    def active(self) -> list[Webhook]:
        return self.list(None)

    def delete(self, webhook_id: str) -> None:
        """Deactivate: the delivery log stays readable; pending deliveries are cancelled."""
        with self.db.transaction() as con:
            con.execute("UPDATE webhooks SET active = FALSE WHERE webhook_id = ?", [webhook_id])
            con.execute("UPDATE webhook_deliveries SET status = ? WHERE webhook_id = ? AND status = ?",
                        [CANCELLED, webhook_id, PENDING])
        self.version += 1

    # ---- the event cursor and new deliveries ----------------------------------------------

    def cursor(self) -> int:
        rows = self.db.query("SELECT value FROM webhook_state WHERE name = ?", [CURSOR])
        return int(rows[0][0]) if rows else 0

    def record(self, cursor: int, deliveries: list[NewDelivery], at: float) -> None:
        """Advance the cursor and add the event's deliveries atomically (duplicates ignored)."""
        with self.db.transaction() as con:
            for d in deliveries:
                con.execute(
                    "INSERT OR IGNORE INTO webhook_deliveries (delivery_id, webhook_id, event_id, event, job_id, "
                    "payload, status, attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                    [random_id("dlv"), d.webhook_id, d.event_id, d.event, d.job_id, d.payload,
                     PENDING, at, at])
            con.execute("INSERT INTO webhook_state (name, value) VALUES (?, ?) "
                        "ON CONFLICT (name) DO UPDATE SET value = excluded.value", [CURSOR, cursor])

    # ---- sending --------------------------------------------------------------------------

    def due(self, at: float, limit: int) -> list[dict[str, Any]]:
        return self.db.query_dicts(
            "SELECT d.*, w.url, w.secret FROM webhook_deliveries d JOIN webhooks w USING (webhook_id) "
            "WHERE d.status = ? AND d.next_attempt_at <= ? AND w.active "
            "ORDER BY d.next_attempt_at, d.created_at LIMIT ?", [PENDING, at, limit])

    def next_due(self) -> float | None:
        rows = self.db.query("SELECT min(next_attempt_at) FROM webhook_deliveries WHERE status = ?", [PENDING])
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    def attempted(self, delivery_id: str, status: str, attempts: int, next_at: float,
                  code: int | None, error: str | None, delivered_at: float | None) -> None:
        self.db.execute(
            "UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, last_status_code = ?, "
            "last_error = ?, delivered_at = ? WHERE delivery_id = ? AND status = ?",
            [status, attempts, next_at, code, error, delivered_at, delivery_id, PENDING])

    def deliveries(self, webhook_id: str, status: str | None, limit: int, offset: int) -> tuple[list[dict], int]:
        where = "webhook_id = ?" + (" AND status = ?" if status else "")
        params: list[Any] = [webhook_id] + ([status] if status else [])
        total = self.db.query(f"SELECT count(*) FROM webhook_deliveries WHERE {where}", params)[0][0]
        rows = self.db.query_dicts(
            f"SELECT * FROM webhook_deliveries WHERE {where} ORDER BY created_at DESC, delivery_id "
            "LIMIT ? OFFSET ?", params + [limit, offset])
        return rows, int(total)
