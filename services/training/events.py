"""Append job events and let any number of watchers follow them live.

Appends go through the store (durable first), then wake the watchers; a watcher reads from the
store, so a late or reconnecting subscriber sees the same ordered history as a live one.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

from trainhouse.training.store import TERMINAL_STATES, JobStore


def _event(row: dict[str, Any]) -> dict[str, Any]:
    return {"sequence": row["sequence"], "time": row["time"], "kind": row["kind"],
            "payload": json.loads(row["payload_json"]), "cursor": row["cursor"],
            "agent_id": row["agent_id"], "account_id": row["account_id"]}


class EventHub:
    def __init__(self, store: JobStore):
        self.store = store
        self._changed = threading.Condition()
        self._closed = False
        self._version = 0  # bumped on every append, so a watcher never sleeps through one

    def append(self, job_id: str, kind: str, payload: dict[str, Any],
               job_fields: dict[str, Any] | None = None) -> int:
        seq = self.store.append_event(job_id, kind, payload, job_fields)
        with self._changed:
            self._version += 1
            self._changed.notify_all()
        return seq

    def append_many(self, job_id: str, events: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> int:
        if not events:
            return 0
        seq = self.store.append_events(job_id, events)
        with self._changed:
            self._version += 1
            self._changed.notify_all()
        return seq

    def status(self, job_id: str, state: str, reason: str = "", message: str = "",
               **job_fields: Any) -> int:
        terminal = state in TERMINAL_STATES
        payload = {"state": state, "reason": reason, "message": message, "terminal": terminal}
        return self.append(job_id, "status", payload, {"state": state, **job_fields})

    def close(self) -> None:
        """Wake every watcher so streams end promptly on shutdown."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def watch(self, job_id: str, after: int, alive: Callable[[], bool]) -> Iterator[dict[str, Any]]:
        """Yield stored events with sequence > after, then live ones, until the terminal status."""
        self.store.get_job(job_id)  # NOT_FOUND before the stream starts
        last = after
        while alive():
            with self._changed:
                seen = self._version
            batch = self.store.events_after(job_id, last)
            for row in batch:
                event = _event(row)
                yield event
                last = row["sequence"]
                # A terminal status ends the stream unless the job was resumed after it.
                if (event["kind"] == "status" and event["payload"].get("terminal")
                        and self.store.get_job(job_id)["last_sequence"] <= last):
                    return
            if batch:
                continue
            job = self.store.get_job(job_id)
            if job["state"] in TERMINAL_STATES and job["last_sequence"] <= last:
                return
            with self._changed:
                if self._closed:
                    return
                if self._version == seen:
                    self._changed.wait(timeout=1.0)

    def watch_all(self, after_cursor: int, account_id: str, alive: Callable[[], bool],
                  visible: str | None = None) -> Iterator[tuple[str, dict]]:
        """Yield (job_id, event) for every job's events after the cursor, then live ones, until closed;
        only the jobs of account `visible` when given (a non-admin caller's)."""
        last = self.store.last_cursor() if after_cursor < 0 else after_cursor
        while alive():
            with self._changed:
                seen = self._version
            batch = self.store.all_events_after(last, account_id, visible=visible)
            for row in batch:
                yield row["job_id"], _event(row)
                last = row["cursor"]
            if batch:
                continue
            with self._changed:
                if self._closed:
                    return
                if self._version == seen:
                    self._changed.wait(timeout=1.0)
