"""DataService state in its own DuckDB file: immutable datasets and their examples."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from services.common.duckdb_store import DuckStore
from services.common.errors import AlreadyExists, NotFound
from services.common.timeutil import now

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS datasets (
        dataset_id VARCHAR PRIMARY KEY,
        source VARCHAR,
        stats_json VARCHAR,
        sha256 VARCHAR,
        create_time TIMESTAMP NOT NULL,
        ordinal BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS examples (
        dataset_id VARCHAR NOT NULL,
        idx INTEGER NOT NULL,
        input VARCHAR NOT NULL,
        expected_output VARCHAR NOT NULL,
        feedback VARCHAR,
        weight DOUBLE,
        level INTEGER,
        metadata_json VARCHAR,
        PRIMARY KEY (dataset_id, idx)
    )""",
]


class DataStore:
    def __init__(self, path: Path):
        self.db = DuckStore(path, SCHEMA)

    def close(self) -> None:
        self.db.close()

    def create(self, dataset_id: str, source: str, examples: list[dict[str, Any]], stats: dict[str, Any],
               sha256: str) -> dict[str, Any]:
        rows = [(dataset_id, i, e["input"], e["expected_output"], e.get("feedback") or "correct",
                 float(e.get("weight", 1.0)), int(e.get("level", 1)), json.dumps(e.get("metadata") or {}))
                for i, e in enumerate(examples)]
        with self.db.transaction() as con:
            if con.execute("SELECT 1 FROM datasets WHERE dataset_id = ?", [dataset_id]).fetchone():
                raise AlreadyExists(f"dataset '{dataset_id}' already exists (datasets are immutable; "
                                    "upload a new version under a new id)",
                                    metadata={"resource": "dataset", "id": dataset_id})
            ordinal = con.execute("SELECT coalesce(max(ordinal), 0) + 1 FROM datasets").fetchone()[0]
            con.execute("INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?)",
                        [dataset_id, source, json.dumps(stats), sha256, now().replace(tzinfo=None), ordinal])
            con.executemany("INSERT INTO examples VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return self.get(dataset_id)

    def get(self, dataset_id: str) -> dict[str, Any]:
        if dataset_id == "latest":
            rows = self.db.query_dicts("SELECT * FROM datasets ORDER BY ordinal DESC LIMIT 1")
        else:
            rows = self.db.query_dicts("SELECT * FROM datasets WHERE dataset_id = ?", [dataset_id])
        if not rows:
            raise NotFound("dataset", dataset_id)
        return rows[0]

    def list(self, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        total = self.db.query("SELECT count(*) FROM datasets")[0][0]
        rows = self.db.query_dicts("SELECT * FROM datasets ORDER BY ordinal DESC LIMIT ? OFFSET ?", [limit, offset])
        return rows, total

    def delete(self, dataset_id: str) -> None:
        self.get(dataset_id)
        with self.db.transaction() as con:
            con.execute("DELETE FROM examples WHERE dataset_id = ?", [dataset_id])
            con.execute("DELETE FROM datasets WHERE dataset_id = ?", [dataset_id])

    def examples(self, dataset_id: str, offset: int, limit: int) -> list[dict[str, Any]]:
        return self.db.query_dicts(
            "SELECT input, expected_output, feedback, weight, level, metadata_json FROM examples "
            "WHERE dataset_id = ? AND idx >= ? ORDER BY idx LIMIT ?", [dataset_id, offset, limit])


def created(row: dict[str, Any]) -> dt.datetime:
    value = row["create_time"]
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value
