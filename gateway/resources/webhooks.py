"""Webhook subscriptions and their deliveries: the canonical fields (a subscription's secret is
never among them; the creation answer adds a generated one once).

What a webhook *sends* (the event payload in the subscriber's seed shape) is
``gateway/webhooks/payloads.py``, built on the event mapping of ``gateway/resources/events.py``.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from trainhouse.gateway.resources.tables import FieldTable
from trainhouse.gateway.webhooks.store import Webhook
from trainhouse.common.timeutil import iso


def _iso(seconds: float | None) -> str | None:
    """The webhook store keeps epoch seconds."""
    return None if seconds is None else iso(dt.datetime.fromtimestamp(seconds, dt.timezone.utc))


def webhook_fields(h: Webhook) -> dict[str, Any]:
    return {"webhook_id": h.webhook_id, "url": h.url, "events": list(h.events), "format": h.format,
            "progress_every": h.progress_every, "account": h.account, "created_at": _iso(h.created_at)}


def delivery_fields(row: dict[str, Any]) -> dict[str, Any]:
    """One row of the delivery log; the next attempt only while the delivery is pending."""
    return {"delivery_id": row["delivery_id"], "event_id": row["event_id"], "event": row["event"],
            "job_id": row["job_id"], "status": row["status"], "attempts": row["attempts"],
            "response_status": row["last_status_code"], "last_error": row["last_error"],
            "created_at": _iso(row["created_at"]), "delivered_at": _iso(row["delivered_at"]),
            "next_attempt_at": _iso(row["next_attempt_at"]) if row["status"] == "pending" else None}


WEBHOOK_V1 = FieldTable(camel_case=True)
