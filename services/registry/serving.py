"""The Predict hot path's state, kept in memory so a prediction touches no database.

- SessionCache: warm ONNX Runtime sessions, keyed by artifact sha256; a file is checked against
  its recorded sha256 when loaded, so a served model is always the registered one.
- Router: each agent's serving state per environment (stable version, rollout candidate and its
  share), loaded from the store on first use and dropped whenever a deployment changes it.
- PredictionLog: every served prediction gets an id at once and is written to DuckDB in batches
  by the background tick (write-behind); lookups see unflushed rows too. A crash loses at most the
  last tick's predictions (never feedback, which is written synchronously).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainhouse.core.errors import FailedPrecondition
from trainhouse.core.onnx_model import OnnxModel
from trainhouse.registry.store import RegistryStore


class SessionCache:
    def __init__(self, capacity: int = 32):
        self.capacity = capacity
        self._models: OrderedDict[str, OnnxModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str, sha256: str, label: str = "") -> OnnxModel:
        """The warm session for an artifact; loads and verifies it on first use."""
        with self._lock:
            model = self._models.get(sha256)
            if model is not None:
                self._models.move_to_end(sha256)
                return model
        model = self._load(path, sha256, label)  # loaded outside the lock: other versions keep serving
        with self._lock:
            self._models[sha256] = model
            self._models.move_to_end(sha256)
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
        return model

    @classmethod
    def _load(cls, path: str, sha256: str, label: str) -> OnnxModel:
        return OnnxModel.from_bytes(cls.read_verified(path, sha256, label))

    @staticmethod
    def read_verified(path: str, sha256: str, label: str) -> bytes:
        """The artifact's bytes, refused unless they still hash to the registered sha256."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise FailedPrecondition(f"artifact of {label or path} cannot be read: {exc.strerror}",
                                     metadata={"artifact": path}) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise FailedPrecondition(
                f"artifact of {label or path} failed its integrity check (sha256 {actual[:12]}..., "
                f"registered {sha256[:12]}...); it will not be served", metadata={"artifact": path})
        return data

    def loaded(self, sha256: str) -> bool:
        with self._lock:
            return sha256 in self._models


@dataclass(frozen=True)
class Served:
    """A version ready to serve: what Predict needs, and nothing that can change."""

    agent_id: str
    version_id: str
    path: str
    sha256: str

    @classmethod
    def of(cls, row: dict[str, Any]) -> "Served":
        return cls(row["agent_id"], row["version_id"], row["path"], row["sha256"])


@dataclass(frozen=True)
class Route:
    """An environment's serving state: `stable` serves unless the request key's bucket falls in
    the candidate's `percentage` of a rollout."""

    stable: Served | None
    candidate: Served | None = None
    deployment_id: str = ""
    percentage: float = 0.0
    # When the rollout next needs a look (a step or its end falls due); None outside rollouts.
    next_due: dt.datetime | None = None


class Router:
    def __init__(self, load: Callable[[str, str], Route]):
        self._load = load
        self._routes: dict[tuple[str, str], Route] = {}
        self._lock = threading.Lock()
        self._generation = 0

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


class PredictionLog:
    """Write-behind log of served predictions (see module doc)."""

    def __init__(self, store: RegistryStore):
        self.store = store
        self._pending: dict[str, tuple] = {}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()

    def append(self, rows: list[tuple]) -> None:
        with self._lock:
            for row in rows:
                self._pending[row[0]] = row

    def get(self, prediction_id: str) -> dict[str, Any] | None:
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
