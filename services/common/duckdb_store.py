"""One embedded DuckDB file per service, guarded by a lock; column-wise bulk inserts.

DuckDB allows a single writing process per file, so each service opens its own file under
$TRAINHOUSE_HOME and serialises access from its RPC threads through one connection.

``executemany`` inserts row by row (~4k rows/s, and every row holds the connection's lock);
registering the columns as NumPy object arrays and inserting with one ``INSERT ... SELECT`` takes
~0.1 s for 100k rows (~11 ms for a training worker's batch of 500 events and 500 metric points,
against ~600 ms row by row). Every bulk write goes through ``insert_columns``.
"""
from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np


class DuckStore:
    def __init__(self, path: Path, schema: Sequence[str]):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._con = duckdb.connect(str(path))
        self._lock = threading.RLock()
        with self._lock:
            for statement in schema:
                self._con.execute(statement)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        with self._lock:
            return self._con.execute(sql, params or []).fetchall()

    def query_dicts(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._con.execute(sql, params or [])
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self._lock:
            self._con.execute(sql, params or [])

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        with self._lock:
            self._con.executemany(sql, rows)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Run several statements atomically; the lock keeps other threads out meanwhile."""
        with self._lock:
            self._con.execute("BEGIN TRANSACTION")
            try:
                yield self._con
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            self._con.execute("COMMIT")

    def close(self) -> None:
        """Checkpoint the WAL into the file so a clean stop leaves one self-contained file."""
        with self._lock:
            try:
                self._con.execute("CHECKPOINT")
            finally:
                self._con.close()


# Up to this many rows, one multi-row VALUES statement beats registering the columns as a view.
SMALL_INSERT = 32


def _objects(values: Sequence[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def insert_columns(con: duckdb.DuckDBPyConnection, table: str, columns: Mapping[str, Sequence[Any]]) -> None:
    """Insert rows given as equally long columns (None = NULL); call inside the store's lock."""
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise ValueError(f"columns of unequal length: {lengths}")
    n = lengths.pop()
    if not n:
        return
    names = ", ".join(columns)
    if n <= SMALL_INSERT:  # registering a view costs ~1 ms: a few rows go as one VALUES statement
        row = f"({', '.join('?' for _ in columns)})"
        con.execute(f"INSERT INTO {table} ({names}) VALUES " + ", ".join(row for _ in range(n)),
                    [v for values in zip(*columns.values()) for v in values])
        return
    view = f"_bulk_{uuid.uuid4().hex}"
    con.register(view, {name: _objects(values) for name, values in columns.items()})
    try:
        con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {view}")
    finally:
        con.unregister(view)
