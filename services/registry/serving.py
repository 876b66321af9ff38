"""The Predict hot path's state, kept in memory so a prediction touches no database.

- SessionCache (trainhouse.core.serving, shared with a gateway's serving replica): warm ONNX
  Runtime sessions, each file checked against its recorded sha256 when loaded.
- Router: each agent's serving state per environment (stable version, rollout candidate and its
  share), loaded from the store on first use and dropped whenever a deployment changes it.
- PredictionLog: every served prediction gets an id at once and is written to DuckDB in batches
  by the background tick (write-behind); lookups see unflushed rows too. A crash loses at most the
  last tick's predictions (never feedback, which is written synchronously).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from trainhouse.core.serving import Route, Served
from trainhouse.registry.store import RegistryStore


def served_of(row: dict[str, Any]) -> Served:
    """A version row of the store as a servable version."""
    return Served(row["agent_id"], row["version_id"], row["path"], row["sha256"])


class Router:
    """The routes in memory. ``on_change(agent_id)`` runs after every invalidation, still on the
    thread that changed what serves (before its RPC answers): the serving feed (replicas.py) uses
    it to publish the change before the caller can act on it."""

    def __init__(self, load: Callable[[str, str], Route], on_change: Callable[[str], None] | None = None):
        self._load = load
        self._routes: dict[tuple[str, str], Route] = {}
        self._lock = threading.Lock()
        self._generation = 0
        self.on_change = on_change

    def route(self, agent_id: str, environment: str) -> Route:
        key = (agent_id, environment)
        route = self._routes.get(key)
        if route is not None:
            return route
        with self._lock:
            generation = self._generation
        route = self._load(agent_id, environment)
        with self._lock:
            if generation == self._generation:  # nothing changed while loading: safe to keep
                self._routes[key] = route
        return route

    def invalidate(self, agent_id: str) -> None:
        with self._lock:
            self._generation += 1
            for key in [k for k in self._routes if k[0] == agent_id]:
                del self._routes[key]
        if self.on_change is not None:
            self.on_change(agent_id)


# Lookups waiting for a record at once (PredictionLog.get); more answer at once (not found).
MAX_WAITING = 8


class PredictionLog:
    """Write-behind log of served predictions (see module doc)."""

    def __init__(self, store: RegistryStore):
        self.store = store
        self._pending: dict[str, tuple] = {}
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._waiting = 0
        self._flush_lock = threading.Lock()

    def append(self, rows: list[tuple]) -> None:
        with self._lock:
            for row in rows:
                self._pending[row[0]] = row
            self._arrived.notify_all()

    def get(self, prediction_id: str, wait_s: float = 0.0) -> dict[str, Any] | None:
        """The prediction's record, or None. ``wait_s``: how long an unknown id may still arrive.

        Why wait: a gateway's serving replica answers with the id at once and sends the record
        in a batch (RecordPredictions, within ~50 ms; docs/serving.md). The gateway sends it first
        when its own next call reaches this registry, but feedback sent here directly, right after
        the answer, would otherwise find nothing."""
        deadline = time.monotonic() + wait_s
        found = self._record(prediction_id)
        if found is not None or wait_s <= 0:
            return found
        with self._lock:
            if self._waiting >= MAX_WAITING:  # each waiter holds an RPC thread: unknown ids must not use them all
                return None
            self._waiting += 1
            try:
                while prediction_id not in self._pending:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._arrived.wait(remaining)
            finally:
                self._waiting -= 1
        return self._record(prediction_id)  # pending, or written by a flush while this waited

    def _record(self, prediction_id: str) -> dict[str, Any] | None:
        # Pending first: a flush removes a row from pending only after the database has it.
        with self._lock:
            row = self._pending.get(prediction_id)
        if row is not None:
            return dict(zip(RegistryStore.PREDICTION_COLUMNS, row))
        return self.store.get_prediction(prediction_id)

    def flush(self) -> int:
        """Write pending rows; they stay visible to `get` until they are in the database."""
        with self._flush_lock:
            with self._lock:
                rows = list(self._pending.values())
            if not rows:
                return 0
            self.store.insert_predictions(rows)
            with self._lock:
                for row in rows:
                    self._pending.pop(row[0], None)
            return len(rows)
