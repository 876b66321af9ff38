"""EvaluationService state in its own DuckDB file.

Results are stored as their proto's JSON (``proto_json``), next to the columns lists filter
on, so a stored evaluation, benchmark run or comparison reads back exactly as it was returned.
``benchmark_scores`` keeps one row per (run, suite) so a percentile can also rank a score against
the other models benchmarked on a suite (benchmarks.py says when they join the population).
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from trainhouse.common import identity
from trainhouse.common.duckdb_store import DuckStore
from trainhouse.common.pagination import Order, Page, PageRequest, SortKey, fetch_page
from trainhouse.core.errors import AlreadyExists, NotFound
from trainhouse.common.timeutil import now
from trainhouse.v1 import benchmark_pb2, evaluation_pb2, run_comparison_pb2

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
    # Added after the first version of this table; existing files gain the columns.
    "ALTER TABLE evaluations ADD COLUMN IF NOT EXISTS job_id VARCHAR",
    "ALTER TABLE evaluations ADD COLUMN IF NOT EXISTS proto_json VARCHAR",
    """CREATE TABLE IF NOT EXISTS training_results (
        evaluation_id VARCHAR PRIMARY KEY,
        job_id VARCHAR NOT NULL,
        response_json VARCHAR NOT NULL,
        create_time TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS benchmark_runs (
        benchmark_id VARCHAR PRIMARY KEY,
        agent_id VARCHAR NOT NULL,
        version_id VARCHAR NOT NULL,
        proto_json VARCHAR NOT NULL,
        create_time TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS benchmark_scores (
        benchmark_id VARCHAR NOT NULL,
        suite VARCHAR NOT NULL,
        suite_version VARCHAR NOT NULL,
        agent_id VARCHAR NOT NULL,
        version_id VARCHAR NOT NULL,
        score DOUBLE NOT NULL,
        create_time TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS comparisons (
        comparison_id VARCHAR PRIMARY KEY,
        run_ids VARCHAR NOT NULL,
        proto_json VARCHAR NOT NULL,
        create_time TIMESTAMP NOT NULL
    )""",
    # The owning account (the caller's at creation): the isolation boundary (services.common.identity).
    *(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS account_id VARCHAR DEFAULT 'default'"
      for table in ("evaluations", "training_results", "benchmark_runs", "comparisons")),
]

# What a stored result is called in errors, and its id column, by table.
_KINDS = {"evaluations": ("evaluation", "evaluation_id"), "training_results": ("evaluation", "evaluation_id"),
          "benchmark_runs": ("benchmark", "benchmark_id"), "comparisons": ("comparison", "comparison_id")}


def _owner() -> str:
    """The account a new stored result belongs to: the caller's."""
    return identity.current().account


def _visible(table: str) -> tuple[str, list[Any]]:
    """A WHERE clause keeping the rows of `table` the caller sees (all of them for admin)."""
    account = identity.current().account_filter
    if account is None:
        return "TRUE", []
    return "coalesce(account_id, 'default') = ?", [account]


def _json(message) -> str:
    return json_format.MessageToJson(message, preserving_proto_field_name=True, indent=None)


def _naive_now() -> dt.datetime:
    return now().replace(tzinfo=None)


class EvaluationStore:
    def __init__(self, path: Path):
        self.db = DuckStore(path, SCHEMA)

    def close(self) -> None:
        self.db.close()

    def check_id_free(self, table: str, resource_id: str) -> None:
        """Ids are global: naming an id another account's result uses is ALREADY_EXISTS "... is
        taken; choose another id" (nothing else about it is told). Called before an idempotent create."""
        kind, column = _KINDS[table]
        where, params = _visible(table)
        rows = self.db.query(f"SELECT ({where}) FROM {table} WHERE {column} = ?", [*params, resource_id])
        if rows and not rows[0][0]:
            raise AlreadyExists(f"{kind} id '{resource_id}' is taken; choose another id", field=column,
                                metadata={"resource": kind, "id": resource_id})

    # --- evaluations --------------------------------------------------------------------------
    def add_evaluation(self, ev: evaluation_pb2.Evaluation) -> None:
        self.db.execute(
            "INSERT INTO evaluations (evaluation_id, agent_id, version_id, dataset_id, example_count, metrics_json,"
            " create_time, job_id, proto_json, account_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [ev.evaluation_id, ev.agent_id, ev.version_id, ev.dataset_id, ev.example_count,
             json.dumps(dict(ev.metrics)), ev.create_time.ToDatetime(), ev.job_id, _json(ev), _owner()])

    def _evaluation(self, row: dict[str, Any]) -> evaluation_pb2.Evaluation:
        if row.get("proto_json"):
            return json_format.Parse(row["proto_json"], evaluation_pb2.Evaluation())
        ev = evaluation_pb2.Evaluation(  # a row written before proto_json existed
            evaluation_id=row["evaluation_id"], agent_id=row["agent_id"], version_id=row["version_id"],
            dataset_id=row["dataset_id"] or "", example_count=row["example_count"] or 0,
            metrics=json.loads(row["metrics_json"] or "{}"))
        ev.create_time.FromDatetime(row["create_time"])
        return ev

    def find(self, evaluation_id: str) -> evaluation_pb2.Evaluation | None:
        """The evaluation, None when unknown or another account's (the caller cannot tell them apart)."""
        where, params = _visible("evaluations")
        rows = self.db.query_dicts(f"SELECT * FROM evaluations WHERE evaluation_id = ? AND {where}",
                                   [evaluation_id, *params])
        return self._evaluation(rows[0]) if rows else None

    def get(self, evaluation_id: str) -> evaluation_pb2.Evaluation:
        found = self.find(evaluation_id)
        if found is None:
            raise NotFound("evaluation", evaluation_id)
        return found

    def list(self, page: PageRequest, agent_id: str = "", job_id: str = "", version_id: str = "") -> Page:
        """A keyset page of evaluations (as protos), newest first; ties by evaluation_id ascending."""
        clauses, params = [], []
        for column, value in (("agent_id", agent_id), ("job_id", job_id), ("version_id", version_id)):
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        where, more = _visible("evaluations")
        clauses.append(where)
        params += more
        order = Order((SortKey("create_time", True, dt.datetime), SortKey("evaluation_id")))
        return fetch_page(self.db, "evaluations", clauses, params, order, page).map(self._evaluation)

    def latest_evaluation(self, agent_id: str, version_id: str) -> evaluation_pb2.Evaluation | None:
        where, params = _visible("evaluations")
        rows = self.db.query_dicts(f"SELECT * FROM evaluations WHERE agent_id = ? AND version_id = ? AND {where} "
                                   "ORDER BY create_time DESC LIMIT 1", [agent_id, version_id, *params])
        return self._evaluation(rows[0]) if rows else None

    # --- training results -----------------------------------------------------------------------
    def add_training_result(self, evaluation_id: str, job_id: str, response_json: str) -> None:
        self.db.execute("INSERT INTO training_results (evaluation_id, job_id, response_json, create_time, account_id) "
                        "VALUES (?, ?, ?, ?, ?)", [evaluation_id, job_id, response_json, _naive_now(), _owner()])

    def find_training_result(self, evaluation_id: str) -> tuple[str, str] | None:
        where, params = _visible("training_results")
        rows = self.db.query(f"SELECT job_id, response_json FROM training_results WHERE evaluation_id = ? AND {where}",
                             [evaluation_id, *params])
        return (rows[0][0], rows[0][1]) if rows else None

    # --- benchmarks -------------------------------------------------------------------------------
    def add_benchmark_run(self, run: benchmark_pb2.BenchmarkRun) -> None:
        with self.db.transaction() as con:
            con.execute("INSERT INTO benchmark_runs (benchmark_id, agent_id, version_id, proto_json, create_time, "
                        "account_id) VALUES (?, ?, ?, ?, ?, ?)",
                        [run.benchmark_id, run.agent_id, run.version_id, _json(run), run.create_time.ToDatetime(),
                         _owner()])
            for r in run.results:
                con.execute("INSERT INTO benchmark_scores VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [run.benchmark_id, r.suite, r.suite_version, run.agent_id, run.version_id, r.score,
                             run.create_time.ToDatetime()])

    def get_benchmark_run(self, benchmark_id: str) -> benchmark_pb2.BenchmarkRun:
        where, params = _visible("benchmark_runs")
        rows = self.db.query(f"SELECT proto_json FROM benchmark_runs WHERE benchmark_id = ? AND {where}",
                             [benchmark_id, *params])
        if not rows:
            raise NotFound("benchmark", benchmark_id)
        # Runs stored before the reference ladder carry models_compared / percentile_note (now
        # reserved); they read back without them.
        return json_format.Parse(rows[0][0], benchmark_pb2.BenchmarkRun(), ignore_unknown_fields=True)

    def suite_scores(self, suite: str, suite_version: str) -> dict[tuple[str, str], float]:
        """The newest score of every model (agent, version) benchmarked on the suite version that the
        caller sees: its account's (an admin's: every account's). Another account's models are its
        own: their scores in a percentile would tell a caller where theirs stand."""
        where, params = _visible("benchmark_runs")
        rows = self.db.query(
            "SELECT s.agent_id, s.version_id, arg_max(s.score, s.create_time) FROM benchmark_scores s "
            f"JOIN benchmark_runs USING (benchmark_id) WHERE s.suite = ? AND s.suite_version = ? AND {where} "
            "GROUP BY s.agent_id, s.version_id", [suite, suite_version, *params])
        return {(r[0], r[1]): float(r[2]) for r in rows}

    # --- comparisons ------------------------------------------------------------------------------
    def add_comparison(self, comparison: run_comparison_pb2.RunComparison) -> None:
        self.db.execute("INSERT INTO comparisons (comparison_id, run_ids, proto_json, create_time, account_id) "
                        "VALUES (?, ?, ?, ?, ?)",
                        [comparison.comparison_id, json.dumps([r.job_id for r in comparison.runs]),
                         _json(comparison), comparison.create_time.ToDatetime(), _owner()])

    def find_comparison(self, comparison_id: str) -> run_comparison_pb2.RunComparison | None:
        where, params = _visible("comparisons")
        rows = self.db.query(f"SELECT proto_json FROM comparisons WHERE comparison_id = ? AND {where}",
                             [comparison_id, *params])
        return json_format.Parse(rows[0][0], run_comparison_pb2.RunComparison()) if rows else None

    def get_comparison(self, comparison_id: str) -> run_comparison_pb2.RunComparison:
        found = self.find_comparison(comparison_id)
        if found is None:
            raise NotFound("comparison", comparison_id)
        return found
