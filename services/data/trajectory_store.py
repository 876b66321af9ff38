"""Trajectories in the DataService DuckDB file.

Filterable and sortable fields are columns; the whole trajectory is the serialised proto in
``body``. ``ordinal`` is the order of first ingest (stable across re-ingests), ``content_sha``
makes re-ingesting the same content a no-op.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from trainhouse.common.duckdb_store import DuckStore
from trainhouse.common.pagination import Order, Page, PageRequest, SortKey, fetch_page
from trainhouse.core.errors import NotFound
from trainhouse.common.timeutil import now
from trainhouse.common.duckdb_store import insert_columns
from trainhouse.data.trajectories import content_hash
from trainhouse.v1 import trajectory_pb2

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS trajectories (
        trajectory_id VARCHAR NOT NULL,
        agent_id VARCHAR,
        source VARCHAR,
        status INTEGER,
        job_id VARCHAR,
        iteration INTEGER,
        reward DOUBLE,
        success BOOLEAN,
        llm_call_count INTEGER,
        provider_access_count INTEGER,
        step_count INTEGER,
        create_time TIMESTAMP NOT NULL,
        update_time TIMESTAMP NOT NULL,
        ordinal BIGINT NOT NULL,
        content_sha VARCHAR NOT NULL,
        body BLOB NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS trajectories_id ON trajectories (trajectory_id)",
    "CREATE INDEX IF NOT EXISTS trajectories_job ON trajectories (job_id)",
    # The owning account (issue 15): a trajectory is keyed by (account_id, trajectory_id), and every
    # read is restricted to the caller's account by TrajectoryFilter.account_id.
    "ALTER TABLE trajectories ADD COLUMN IF NOT EXISTS account_id VARCHAR DEFAULT 'default'",
]

_SUMMARY = ("trajectory_id, agent_id, source, status, job_id, iteration, reward, success, llm_call_count, "
            "provider_access_count, step_count, create_time, update_time, ordinal")


@dataclass(frozen=True)
class TrajectoryFilter:
    agent_id: str = ""
    job_id: str = ""
    source: str = ""
    since: dt.datetime | None = None   # naive UTC, inclusive
    before: dt.datetime | None = None  # naive UTC, exclusive
    success_only: bool = False
    min_reward: float | None = None
    min_llm_calls: int = 0
    account_id: str | None = None  # None: every account (admin); else only this account's

    def sql(self) -> tuple[str, list[Any]]:
        clauses, params = self.conditions()
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params

    def conditions(self) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.account_id is not None:
            clauses.append("account_id = ?")
            params.append(self.account_id)
        for column in ("agent_id", "job_id", "source"):
            value = getattr(self, column)
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.since is not None:
            clauses.append("create_time >= ?")
            params.append(self.since)
        if self.before is not None:
            clauses.append("create_time < ?")
            params.append(self.before)
        if self.success_only:
            clauses.append("success = TRUE")
        if self.min_reward is not None:
            clauses.append("reward >= ?")
            params.append(self.min_reward)
        if self.min_llm_calls:
            clauses.append("llm_call_count >= ?")
            params.append(self.min_llm_calls)
        return clauses, params


@dataclass(frozen=True)
class IngestCounts:
    created: int
    updated: int
    unchanged: int


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value


def _row_columns(t: trajectory_pb2.Trajectory) -> dict[str, Any]:
    return {
        "agent_id": t.agent_id, "source": t.source, "status": int(t.status), "job_id": t.job_id,
        "iteration": t.iteration, "reward": t.reward if t.HasField("reward") else None,
        "success": t.success if t.HasField("success") else None, "llm_call_count": len(t.llm_calls),
        "provider_access_count": len(t.provider_accesses), "step_count": len(t.steps),
    }


class TrajectoryStore:
    def __init__(self, db: DuckStore):
        self.db = db
        for statement in SCHEMA:
            db.execute(statement)

    def ingest(self, trajectories: Sequence[trajectory_pb2.Trajectory], account: str) -> IngestCounts:
        """Upsert canonical trajectories of `account` atomically (ids are per account: another
        account's trajectory of the same id is neither seen nor touched). Counts follow the stream order (an id sent
        twice in one call is created, then updated or unchanged); the last copy of an id is stored.
        An updated trajectory keeps its create_time and its place (ordinal) in lists."""
        hashes = [content_hash(t) for t in trajectories]
        latest: dict[str, tuple[trajectory_pb2.Trajectory, str]] = {}
        for t, sha in zip(trajectories, hashes):
            latest[t.trajectory_id] = (t, sha)
        ids = list(latest)
        stamp = now().replace(tzinfo=None)
        with self.db.transaction() as con:
            known: dict[str, tuple[str, dt.datetime, int]] = {}
            for start in range(0, len(ids), 5000):
                chunk = ids[start:start + 5000]
                for tid, sha, created_at, ordinal in con.execute(
                        "SELECT trajectory_id, content_sha, create_time, ordinal FROM trajectories "
                        f"WHERE account_id = ? AND trajectory_id IN ({', '.join('?' * len(chunk))})",
                        [account, *chunk]).fetchall():
                    known[tid] = (sha, created_at, ordinal)
            created = updated = unchanged = 0
            state = {tid: v[0] for tid, v in known.items()}
            for t, sha in zip(trajectories, hashes):
                previous = state.get(t.trajectory_id)
                if previous is None:
                    created += 1
                elif previous == sha:
                    unchanged += 1
                else:
                    updated += 1
                state[t.trajectory_id] = sha
            next_ordinal = con.execute("SELECT coalesce(max(ordinal), 0) + 1 FROM trajectories").fetchall()[0][0]
            replace: list[str] = []
            rows: list[dict[str, Any]] = []
            for tid in ids:
                t, sha = latest[tid]
                if tid in known:
                    if known[tid][0] == sha:
                        continue
                    replace.append(tid)
                    created_at, ordinal = known[tid][1], known[tid][2]
                else:
                    created_at, ordinal = stamp, next_ordinal
                    next_ordinal += 1
                rows.append({"trajectory_id": tid, **_row_columns(t), "create_time": created_at,
                             "update_time": stamp, "ordinal": ordinal, "content_sha": sha,
                             "body": t.SerializeToString(deterministic=True), "account_id": account})
            for start in range(0, len(replace), 5000):
                chunk = replace[start:start + 5000]
                con.execute("DELETE FROM trajectories WHERE account_id = ? AND "
                            f"trajectory_id IN ({', '.join('?' * len(chunk))})", [account, *chunk])
            if rows:
                insert_columns(con, "trajectories", {k: [r[k] for r in rows] for k in rows[0]})
        return IngestCounts(created, updated, unchanged)

    def get(self, trajectory_id: str, account: str | None, full: bool = True) -> trajectory_pb2.Trajectory:
        """The trajectory as `account` sees it (None: admin, every account; the newest ingest of the
        id); NOT_FOUND when it does not exist or belongs to another account."""
        clause, params = TrajectoryFilter(account_id=account).sql()
        clause = f"{clause} AND trajectory_id = ?" if clause else "WHERE trajectory_id = ?"
        rows = self.db.query_dicts(f"SELECT {_SUMMARY}, body FROM trajectories {clause} ORDER BY ordinal DESC "
                                   "LIMIT 1", [*params, trajectory_id])
        if not rows:
            raise NotFound("trajectory", trajectory_id)
        return self._proto(rows[0], full)

    def count(self, where: TrajectoryFilter) -> int:
        clause, params = where.sql()
        return self.db.query(f"SELECT count(*) FROM trajectories {clause}", params)[0][0]

    def list(self, where: TrajectoryFilter, page: PageRequest, *, full: bool) -> Page:
        """A keyset page of trajectories, newest first by first ingest (ordinal: unique, kept by updates)."""
        clauses, params = where.conditions()
        found = fetch_page(self.db, "trajectories", clauses, params, Order((SortKey("ordinal", True, int),)), page,
                           columns=f"{_SUMMARY}, body")
        return found.map(lambda r: self._proto(r, full))

    def page(self, where: TrajectoryFilter, offset: int, limit: int, *, full: bool,
             order: str = "ordinal DESC") -> list[trajectory_pb2.Trajectory]:
        clause, params = where.sql()
        rows = self.db.query_dicts(
            f"SELECT {_SUMMARY}, body FROM trajectories {clause} ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, limit, offset])
        return [self._proto(r, full) for r in rows]

    def scan(self, where: TrajectoryFilter, offset: int, limit: int | None, *, order: str,
             batch: int = 200) -> Iterator[list[trajectory_pb2.Trajectory]]:
        """Pages of full trajectories; each page is one short query so ingests are not blocked."""
        done = 0
        while limit is None or done < limit:
            size = batch if limit is None else min(batch, limit - done)
            page = self.page(where, offset + done, size, full=True, order=order)
            if not page:
                return
            yield page
            done += len(page)
            if len(page) < size:
                return

    @staticmethod
    def _proto(row: dict[str, Any], full: bool) -> trajectory_pb2.Trajectory:
        t = trajectory_pb2.Trajectory.FromString(row["body"])
        if not full:
            for name in ("llm_calls", "provider_accesses", "steps", "metadata"):
                t.ClearField(name)
        t.llm_call_count = row["llm_call_count"]
        t.provider_access_count = row["provider_access_count"]
        t.step_count = row["step_count"]
        t.create_time.FromDatetime(_utc(row["create_time"]))
        t.update_time.FromDatetime(_utc(row["update_time"]))
        return t
