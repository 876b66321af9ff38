"""DataService state in its own DuckDB file: immutable datasets and their examples, training modules.

Trajectories live in the same file (one writer per file), in trajectory_store.py, sharing the
``DuckStore`` opened here.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from trainhouse.common.duckdb_store import DuckStore
from trainhouse.common.pagination import Order, Page, PageRequest, SortKey, fetch_page
from trainhouse.core.errors import AlreadyExists, NotFound
from trainhouse.common.timeutil import now
from trainhouse.common.duckdb_store import insert_columns

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS datasets (
        dataset_id VARCHAR PRIMARY KEY,
        source VARCHAR,
        stats_json VARCHAR,
        sha256 VARCHAR,
        create_time TIMESTAMP NOT NULL,
        ordinal BIGINT NOT NULL
    )""",
    "ALTER TABLE datasets ADD COLUMN IF NOT EXISTS trajectory_count BIGINT DEFAULT 0",
    "ALTER TABLE datasets ADD COLUMN IF NOT EXISTS labels_json VARCHAR DEFAULT '{}'",
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
    """CREATE TABLE IF NOT EXISTS training_modules (
        module_id VARCHAR PRIMARY KEY,
        display_name VARCHAR,
        description VARCHAR,
        template_json VARCHAR NOT NULL,
        create_time TIMESTAMP NOT NULL,
        ordinal BIGINT NOT NULL
    )""",
    # The owning account (issue 15): every read below is restricted by `_owned` to the caller's.
    "ALTER TABLE datasets ADD COLUMN IF NOT EXISTS account_id VARCHAR DEFAULT 'default'",
    "ALTER TABLE training_modules ADD COLUMN IF NOT EXISTS account_id VARCHAR DEFAULT 'default'",
]


def _dataset_exists(dataset_id: str) -> AlreadyExists:
    return AlreadyExists(f"dataset '{dataset_id}' already exists (datasets are immutable; "
                         "upload a new version under a new id)", metadata={"resource": "dataset", "id": dataset_id})


# Creation order, newest first: ordinal is max + 1 at insert, so unique among the rows that exist.
NEWEST_FIRST = Order((SortKey("ordinal", True, int),))


def _naive_utc() -> dt.datetime:
    return now().replace(tzinfo=None)


def _owned(where: list[str], params: list[Any], account: str | None) -> tuple[list[str], list[Any]]:
    """`where` restricted to `account`'s rows (None: every account, for admin). The one place the
    DataStore enforces isolation: another account's row reads exactly like one that does not exist."""
    if account is None:
        return where, params
    return [*where, "account_id = ?"], [*params, account]


def _sql(where: list[str]) -> str:
    return ("WHERE " + " AND ".join(where)) if where else ""


class DataStore:
    def __init__(self, path: Path):
        self.db = DuckStore(path, SCHEMA)

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ datasets
    def create(self, dataset_id: str, source: str, examples: list[dict[str, Any]], stats: dict[str, Any],
               sha256: str, *, account: str, labels: dict[str, str] | None = None,
               trajectory_count: int = 0) -> dict[str, Any]:
        """Store a dataset and its examples atomically; ALREADY_EXISTS when the id is taken."""
        columns = {
            "dataset_id": [dataset_id] * len(examples),
            "idx": list(range(len(examples))),
            "input": [e["input"] for e in examples],
            "expected_output": [e["expected_output"] for e in examples],
            "feedback": [e.get("feedback") or "correct" for e in examples],
            "weight": [float(e.get("weight", 1.0)) for e in examples],
            "level": [int(e.get("level", 1)) for e in examples],
            "metadata_json": [json.dumps(e.get("metadata") or {}, ensure_ascii=False) for e in examples],
        }
        with self.db.transaction() as con:
            if con.execute("SELECT 1 FROM datasets WHERE dataset_id = ?", [dataset_id]).fetchall():
                raise _dataset_exists(dataset_id)
            ordinal = con.execute("SELECT coalesce(max(ordinal), 0) + 1 FROM datasets").fetchall()[0][0]
            con.execute("INSERT INTO datasets (dataset_id, source, stats_json, sha256, create_time, ordinal, "
                        "trajectory_count, labels_json, account_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [dataset_id, source, json.dumps(stats), sha256, _naive_utc(), ordinal,
                         trajectory_count, json.dumps(labels or {}), account])
            insert_columns(con, "examples", columns)
        return self.get(dataset_id, account)

    def ensure_new(self, dataset_id: str) -> None:
        """ALREADY_EXISTS early, before expensive work whose result would be refused (create checks again)."""
        if self.db.query("SELECT 1 FROM datasets WHERE dataset_id = ?", [dataset_id]):
            raise _dataset_exists(dataset_id)

    def get(self, dataset_id: str, account: str | None) -> dict[str, Any]:
        """The dataset `dataset_id` ("latest": the newest) as `account` sees it (None: admin, every
        account); NOT_FOUND when it does not exist or belongs to another account."""
        where, params = _owned([] if dataset_id == "latest" else ["dataset_id = ?"],
                               [] if dataset_id == "latest" else [dataset_id], account)
        rows = self.db.query_dicts(f"SELECT * FROM datasets {_sql(where)} ORDER BY ordinal DESC LIMIT 1", params)
        if not rows:
            raise NotFound("dataset", dataset_id)
        return rows[0]

    def list(self, page: PageRequest, account: str | None, source: str = "") -> Page:
        """A keyset page of `account`'s datasets (None: every account), newest first (by ordinal)."""
        where, params = _owned(["source = ?"] if source else [], [source] if source else [], account)
        return fetch_page(self.db, "datasets", where, params, NEWEST_FIRST, page)

    def delete(self, dataset_id: str, account: str | None) -> None:
        with self.db.transaction() as con:
            where, params = _owned(["dataset_id = ?"], [dataset_id], account)
            if not con.execute(f"SELECT 1 FROM datasets {_sql(where)}", params).fetchall():
                raise NotFound("dataset", dataset_id)
            con.execute("DELETE FROM examples WHERE dataset_id = ?", [dataset_id])
            con.execute("DELETE FROM datasets WHERE dataset_id = ?", [dataset_id])

    def examples(self, dataset_id: str, offset: int, limit: int) -> list[dict[str, Any]]:
        return self.db.query_dicts(
            "SELECT input, expected_output, feedback, weight, level, metadata_json FROM examples "
            "WHERE dataset_id = ? AND idx >= ? ORDER BY idx LIMIT ?", [dataset_id, offset, limit])

    def all_examples(self, dataset_id: str) -> list[dict[str, Any]]:
        return self.db.query_dicts(
            "SELECT input, expected_output, feedback FROM examples WHERE dataset_id = ? ORDER BY idx", [dataset_id])

    # ------------------------------------------------------------------ training modules
    def create_module(self, module_id: str, display_name: str, description: str,
                      template: dict[str, Any], *, account: str) -> dict[str, Any]:
        with self.db.transaction() as con:
            if con.execute("SELECT 1 FROM training_modules WHERE module_id = ?", [module_id]).fetchall():
                raise AlreadyExists(f"training module '{module_id}' already exists (modules are immutable; "
                                    "create a new one under a new id)",
                                    metadata={"resource": "training_module", "id": module_id})
            ordinal = con.execute("SELECT coalesce(max(ordinal), 0) + 1 FROM training_modules").fetchall()[0][0]
            con.execute("INSERT INTO training_modules (module_id, display_name, description, template_json, "
                        "create_time, ordinal, account_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [module_id, display_name, description, json.dumps(template), _naive_utc(), ordinal,
                         account])
        return self.get_module(module_id, account)

    def get_module(self, module_id: str, account: str | None) -> dict[str, Any]:
        where, params = _owned(["module_id = ?"], [module_id], account)
        rows = self.db.query_dicts(f"SELECT * FROM training_modules {_sql(where)}", params)
        if not rows:
            raise NotFound("training_module", module_id)
        return rows[0]

    def list_modules(self, page: PageRequest, account: str | None) -> Page:
        """A keyset page of `account`'s training modules (None: every account), newest first."""
        where, params = _owned([], [], account)
        return fetch_page(self.db, "training_modules", where, params, NEWEST_FIRST, page)

    def delete_module(self, module_id: str, account: str | None) -> None:
        with self.db.transaction() as con:
            where, params = _owned(["module_id = ?"], [module_id], account)
            if not con.execute(f"SELECT 1 FROM training_modules {_sql(where)}", params).fetchall():
                raise NotFound("training_module", module_id)
            con.execute("DELETE FROM training_modules WHERE module_id = ?", [module_id])


def created(row: dict[str, Any]) -> dt.datetime:
    value = row["create_time"]
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value
