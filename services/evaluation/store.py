"""EvaluationService state in its own DuckDB file."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from services.common.duckdb_store import DuckStore
from services.common.errors import NotFound
from services.common.timeutil import now

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS evaluations (
        evaluation_id VARCHAR PRIMARY KEY,
        agent_id VARCHAR NOT NULL,
        version_id VARCHAR NOT NULL,
        dataset_id VARCHAR,
        example_count INTEGER,
        metrics_json VARCHAR,
        create_time TIMESTAMP NOT NULL
    )""",
]


class EvaluationStore:
    def __init__(self, path: Path):
        self.db = DuckStore(path, SCHEMA)

    def close(self) -> None:
        self.db.close()

    def add(self, row: dict[str, Any]) -> dict[str, Any]:
        row = dict(row)
        row["metrics_json"] = json.dumps(row.pop("metrics"))
        row["create_time"] = now().replace(tzinfo=None)
        self.db.execute(f"INSERT INTO evaluations ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                        list(row.values()))
        return self.get(row["evaluation_id"])

    def get(self, evaluation_id: str) -> dict[str, Any]:
        rows = self.db.query_dicts("SELECT * FROM evaluations WHERE evaluation_id = ?", [evaluation_id])
        if not rows:
            raise NotFound("evaluation", evaluation_id)
        return rows[0]

    def list(self, agent_id: str, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        where, params = ("WHERE agent_id = ?", [agent_id]) if agent_id else ("", [])
        total = self.db.query(f"SELECT count(*) FROM evaluations {where}", params)[0][0]
        rows = self.db.query_dicts(f"SELECT * FROM evaluations {where} ORDER BY create_time DESC LIMIT ? OFFSET ?",
                                   params + [limit, offset])
        return rows, total


def created(row: dict[str, Any]) -> dt.datetime:
    value = row["create_time"]
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value
