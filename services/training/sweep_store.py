"""Where sweeps live: their spec, state, trials and events in DuckDB (``sweeps.duckdb`` beside the
job store), so a TrainingService restart resumes every sweep that was queued or running.

A sweep row keeps the trial template (the StartJobRequest every trial copies: agent, data, base
config) as protobuf bytes, and the validated spec (space, objective, sampler, rule) as JSON.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from trainhouse.common.duckdb_store import DuckStore
from trainhouse.common.pagination import Order, Page, PageRequest, SortKey, fetch_page
from trainhouse.common.timeutil import now
from trainhouse.core.errors import NotFound

SWEEP_TERMINAL = ("completed", "failed", "cancelled")
MAX_EVENTS = 200

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS sweeps (
        sweep_id VARCHAR PRIMARY KEY,
        account_id VARCHAR NOT NULL,
        agent_id VARCHAR NOT NULL,
        display_name VARCHAR,
        state VARCHAR NOT NULL,
        spec_json VARCHAR NOT NULL,
        template BLOB NOT NULL,
        message VARCHAR DEFAULT '',
        best_trial INTEGER,
        create_time TIMESTAMP NOT NULL,
        update_time TIMESTAMP NOT NULL,
        end_time TIMESTAMP
    )""",
    """CREATE TABLE IF NOT EXISTS sweep_trials (
        sweep_id VARCHAR NOT NULL,
        number INTEGER NOT NULL,
        job_id VARCHAR NOT NULL,
        params_json VARCHAR NOT NULL,
        state VARCHAR NOT NULL,
        objective DOUBLE,
        curve_json VARCHAR DEFAULT '[]',
        stopped_early BOOLEAN DEFAULT FALSE,
        stop_reason VARCHAR DEFAULT '',
        PRIMARY KEY (sweep_id, number)
    )""",
    """CREATE TABLE IF NOT EXISTS sweep_events (
        sweep_id VARCHAR NOT NULL,
        time TIMESTAMP NOT NULL,
        kind VARCHAR NOT NULL,
        message VARCHAR NOT NULL,
        job_id VARCHAR DEFAULT ''
    )""",
]

_UPDATABLE = {"state", "message", "best_trial", "end_time"}
_TRIAL_UPDATABLE = {"state", "objective", "curve_json", "stopped_early", "stop_reason"}


def utc_now() -> dt.datetime:
    """Now, as the naive UTC timestamp DuckDB columns hold."""
    return now().astimezone(dt.timezone.utc).replace(tzinfo=None)


class SweepStore:
    def __init__(self, path: Path):
        self.db = DuckStore(path, SCHEMA)

    def close(self) -> None:
        self.db.close()

    def create(self, row: dict[str, Any]) -> None:
        t = utc_now()
        row = {**row, "create_time": t, "update_time": t}
        self.db.execute(f"INSERT INTO sweeps ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                        list(row.values()))

    def get(self, sweep_id: str, visible: str | None = None) -> dict[str, Any]:
        """The sweep; with ``visible`` (the caller's account filter, None for admin) NOT_FOUND for another
        account's sweep, exactly as for one that does not exist."""
        where, params = "sweep_id = ?", [sweep_id]
        if visible is not None:
            where, params = where + " AND account_id = ?", params + [visible]
        rows = self.db.query_dicts(f"SELECT * FROM sweeps WHERE {where}", params)
        if not rows:
            raise NotFound("sweep", sweep_id)
        return rows[0]

    def list(self, page: PageRequest, *, agent_id: str = "", state: str = "", visible: str | None = None) -> Page:
        """A keyset page of sweeps, newest first; only ``visible``'s when given."""
        where, params = [], []
        for col, value in (("agent_id", agent_id), ("state", state), ("account_id", visible)):
            if value:
                where.append(f"{col} = ?")
                params.append(value)
        order = Order((SortKey("create_time", True, dt.datetime), SortKey("sweep_id", True)))
        return fetch_page(self.db, "sweeps", where, params, order, page)

    def in_states(self, states: tuple[str, ...]) -> list[dict[str, Any]]:
        marks = ", ".join("?" for _ in states)
        return self.db.query_dicts(f"SELECT * FROM sweeps WHERE state IN ({marks}) ORDER BY create_time",
                                   list(states))

    def update(self, sweep_id: str, **fields: Any) -> None:
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {unknown}")
        fields["update_time"] = utc_now()
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE sweeps SET {sets} WHERE sweep_id = ?", list(fields.values()) + [sweep_id])

    # --- trials ----------------------------------------------------------------------------------
    def add_trial(self, sweep_id: str, number: int, job_id: str, params: dict[str, Any]) -> None:
        self.db.execute("INSERT INTO sweep_trials (sweep_id, number, job_id, params_json, state) "
                        "VALUES (?, ?, ?, ?, 'queued')", [sweep_id, number, job_id, json.dumps(params)])

    def trials(self, sweep_id: str) -> list[dict[str, Any]]:
        rows = self.db.query_dicts("SELECT * FROM sweep_trials WHERE sweep_id = ? ORDER BY number", [sweep_id])
        for r in rows:
            r["params"] = json.loads(r.pop("params_json"))
            r["curve"] = json.loads(r.pop("curve_json") or "[]")
        return rows

    def update_trial(self, sweep_id: str, number: int, **fields: Any) -> None:
        unknown = set(fields) - _TRIAL_UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {unknown}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE sweep_trials SET {sets} WHERE sweep_id = ? AND number = ?",
                        list(fields.values()) + [sweep_id, number])

    # --- events ----------------------------------------------------------------------------------
    def add_event(self, sweep_id: str, kind: str, message: str, job_id: str = "") -> None:
        self.db.execute("INSERT INTO sweep_events VALUES (?, ?, ?, ?, ?)", [sweep_id, utc_now(), kind, message, job_id])

    def events(self, sweep_id: str) -> list[dict[str, Any]]:
        """The newest MAX_EVENTS events, oldest first."""
        rows = self.db.query_dicts("SELECT * FROM sweep_events WHERE sweep_id = ? ORDER BY time DESC LIMIT ?",
                                   [sweep_id, MAX_EVENTS])
        return rows[::-1]
