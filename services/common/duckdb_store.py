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
from collections.abc import Callable, Iterator, Mapping, Sequence
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
        self._local = threading.local()
        self._readers: list[duckdb.DuckDBPyConnection] = []
        # Reads in flight on the readers; close() waits for them (DuckDB aborts the process when a
        # connection closes under a running query).
        self._reads = threading.Condition()
        self._active_reads = 0
        self._closed = False
        # Called before every read and write outside a transaction (set by the owner of a write
        # path that acknowledges before it writes here: the training store's event log), so every
        # query sees everything acknowledged.
        self.before_access: Callable[[], None] | None = None
        with self._lock:
            for statement in schema:
                self._con.execute(statement)

    def _reader(self) -> duckdb.DuckDBPyConnection | None:
        """This thread's read connection (a cursor on the same database), or None inside a
        transaction of this thread, whose uncommitted writes only the main connection sees.

        Reads run on their own connection so an RPC never waits for a worker's event batch to
        commit: DuckDB's MVCC gives them the last committed state."""
        if getattr(self._local, "depth", 0):
            return None
        reader = getattr(self._local, "reader", None)
        if reader is None:
            with self._lock:
                if self._closed:
                    raise duckdb.ConnectionException("the store is closed")
                reader = self._local.reader = self._con.cursor()
                self._readers.append(reader)
        return reader

    @contextlib.contextmanager
    def _read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The connection a read runs on: this thread's reader (counted, so close() can wait for
        it) or, inside this thread's transaction, the main connection under the lock."""
        self._barrier()
        reader = self._reader()
        if reader is None:
            with self._lock:
                yield self._con
            return
        with self._reads:
            if self._closed:
                raise duckdb.ConnectionException("the store is closed")
            self._active_reads += 1
        try:
            yield reader
        finally:
            with self._reads:
                self._active_reads -= 1
                self._reads.notify_all()

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        with self._read() as con:
            return con.execute(sql, params or []).fetchall()

    def query_dicts(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        with self._read() as con:
            cur = con.execute(sql, params or [])
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    def query_rows(self, sql: str, params: Sequence[Any] | None = None) -> tuple[list[str], list[tuple]]:
        """(column names, row tuples): for callers that build their own row objects."""
        with self._read() as con:
            cur = con.execute(sql, params or [])
            return [d[0] for d in cur.description], cur.fetchall()

    def query_columns(self, sql: str, params: Sequence[Any] | None = None) -> dict[str, np.ndarray]:
        """The result as one NumPy array per column (masked where a value is NULL), in select order:
        for callers that read whole columns, so no Python object is built per row (DuckDB fills
        the arrays itself; fetchall builds a tuple and a Python value per cell)."""
        with self._read() as con:
            cur = con.execute(sql, params or [])
            columns = cur.fetchnumpy()
            names = [d[0] for d in cur.description]
            if list(columns) != names:  # two columns of one name (DuckDB renames the second)
                raise ValueError("query_columns needs distinct column names: " + ", ".join(names))
            return columns

    def _barrier(self) -> None:
        if self.before_access is not None and not getattr(self._local, "depth", 0):
            self.before_access()

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self._barrier()
        with self._lock:
            self._con.execute(sql, params or [])

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        self._barrier()
        with self._lock:
            self._con.executemany(sql, rows)

    @contextlib.contextmanager
    def transaction(self, barrier: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """Run several statements atomically; the lock keeps other threads out meanwhile.
        ``barrier=False`` is for the before_access hook's own write."""
        if barrier:
            self._barrier()
        with self._lock:
            self._local.depth = getattr(self._local, "depth", 0) + 1
            try:
                self._con.execute("BEGIN TRANSACTION")
                try:
                    yield self._con
                except BaseException:
                    self._con.execute("ROLLBACK")
                    raise
                self._con.execute("COMMIT")
            finally:
                self._local.depth -= 1

    def close(self) -> None:
        """Checkpoint the WAL into the file so a clean stop leaves one self-contained file."""
        with self._reads:
            self._closed = True
            self._reads.wait_for(lambda: self._active_reads == 0, timeout=30)
        with self._lock:
            self._closed = True
            for reader in self._readers:
                try:
                    reader.close()
                except duckdb.Error:
                    pass
            self._readers.clear()
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


def _column(values: Sequence[Any]) -> np.ndarray:
    """A typed NumPy column where the values allow it (all int, or all float: DuckDB scans those
    without touching a Python object, ~10x faster than an object column), else an object column."""
    kinds = set(map(type, values))
    if kinds == {int}:
        try:
            return np.fromiter(values, dtype=np.int64, count=len(values))
        except OverflowError:
            return _objects(values)
    if kinds and kinds <= {float, int}:
        return np.fromiter(values, dtype=np.float64, count=len(values))
    return _objects(values)


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
    con.register(view, {name: _column(values) for name, values in columns.items()})
    try:
        con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {view}")
    finally:
        con.unregister(view)
