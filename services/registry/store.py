"""ModelRegistry state in its own DuckDB file: agents and their immutable versions.

Artifacts live beside it under $TRAINHOUSE_HOME/registry/artifacts/<agent>/<version>.onnx,
named by content hash in the row so a served file can always be checked against its record.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from services.common.duckdb_store import DuckStore
from services.common.errors import AlreadyExists, NotFound
from services.common.timeutil import now

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS agents (
        agent_id VARCHAR PRIMARY KEY,
        name VARCHAR,
        description VARCHAR,
        active_version_id VARCHAR,
        create_time TIMESTAMP NOT NULL,
        update_time TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS versions (
        agent_id VARCHAR NOT NULL,
        version_id VARCHAR NOT NULL,
        ordinal INTEGER NOT NULL,
        state VARCHAR NOT NULL,
        metrics_json VARCHAR,
        config_json VARCHAR,
        job_id VARCHAR,
        dataset_id VARCHAR,
        parent_version_id VARCHAR,
        method VARCHAR,
        labels_json VARCHAR,
        featurizer_json VARCHAR,
        size_bytes BIGINT,
        sha256 VARCHAR,
        path VARCHAR,
        create_time TIMESTAMP NOT NULL,
        PRIMARY KEY (agent_id, version_id)
    )""",
]


def _t() -> dt.datetime:
    return now().replace(tzinfo=None)


class RegistryStore:
    def __init__(self, path: Path):
        self.db = DuckStore(path, SCHEMA)

    def close(self) -> None:
        self.db.close()

    def create_agent(self, agent_id: str, name: str, description: str) -> dict[str, Any]:
        with self.db.transaction() as con:
            if con.execute("SELECT 1 FROM agents WHERE agent_id = ?", [agent_id]).fetchone():
                raise AlreadyExists(f"agent '{agent_id}' already exists", metadata={"resource": "agent", "id": agent_id})
            t = _t()
            con.execute("INSERT INTO agents VALUES (?, ?, ?, NULL, ?, ?)", [agent_id, name, description, t, t])
        return self.get_agent(agent_id)

    def get_agent(self, agent_id: str) -> dict[str, Any]:
        rows = self.db.query_dicts(
            "SELECT a.*, (SELECT count(*) FROM versions v WHERE v.agent_id = a.agent_id) AS version_count "
            "FROM agents a WHERE agent_id = ?", [agent_id])
        if not rows:
            raise NotFound("agent", agent_id)
        return rows[0]

    def list_agents(self, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        total = self.db.query("SELECT count(*) FROM agents")[0][0]
        rows = self.db.query_dicts(
            "SELECT a.*, (SELECT count(*) FROM versions v WHERE v.agent_id = a.agent_id) AS version_count "
            "FROM agents a ORDER BY create_time, agent_id LIMIT ? OFFSET ?", [limit, offset])
        return rows, total

    def version_for_job(self, agent_id: str, job_id: str) -> dict[str, Any] | None:
        rows = self.db.query_dicts("SELECT * FROM versions WHERE agent_id = ? AND job_id = ?", [agent_id, job_id])
        return rows[0] if rows else None

    def add_version(self, row: dict[str, Any]) -> dict[str, Any]:
        """Assign the next semantic version id and insert, atomically per agent."""
        with self.db.transaction() as con:
            ordinal = con.execute("SELECT coalesce(max(ordinal), 0) + 1 FROM versions WHERE agent_id = ?",
                                  [row["agent_id"]]).fetchone()[0]
            version_id = f"v1.{ordinal - 1}.0"
            full = {**row, "version_id": version_id, "ordinal": ordinal, "state": "registered",
                    "create_time": _t()}
            cols = ", ".join(full)
            con.execute(f"INSERT INTO versions ({cols}) VALUES ({', '.join('?' for _ in full)})", list(full.values()))
            con.execute("UPDATE agents SET update_time = ? WHERE agent_id = ?", [_t(), row["agent_id"]])
        return self.get_version(row["agent_id"], version_id)

    def get_version(self, agent_id: str, version_id: str) -> dict[str, Any]:
        rows = self.db.query_dicts("SELECT * FROM versions WHERE agent_id = ? AND version_id = ?",
                                   [agent_id, version_id])
        if not rows:
            raise NotFound("version", f"{agent_id}/{version_id}")
        return rows[0]

    def newest_version(self, agent_id: str) -> dict[str, Any] | None:
        rows = self.db.query_dicts("SELECT * FROM versions WHERE agent_id = ? ORDER BY ordinal DESC LIMIT 1",
                                   [agent_id])
        return rows[0] if rows else None

    def list_versions(self, agent_id: str, state: str, order_col: str, descending: bool, offset: int,
                      limit: int) -> tuple[list[dict[str, Any]], int]:
        where, params = "agent_id = ?", [agent_id]
        if state:
            where += " AND state = ?"
            params.append(state)
        total = self.db.query(f"SELECT count(*) FROM versions WHERE {where}", params)[0][0]
        direction = "DESC" if descending else "ASC"
        rows = self.db.query_dicts(
            f"SELECT * FROM versions WHERE {where} ORDER BY {order_col} {direction}, ordinal {direction} "
            "LIMIT ? OFFSET ?", params + [limit, offset])
        return rows, total


def loads(value: str | None, default: Any) -> Any:
    return json.loads(value) if value else default
