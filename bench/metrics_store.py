"""DuckDB metric history: append rate through the job store, and history queries on 1M points.

Baselines measured in the same run: a bare DuckDB executemany into an equivalent table (append),
and a bare SELECT over the same 1M rows (query).

The history page holds its rows as the NumPy columns DuckDB filled (a ColumnRows: row dicts are
built only when read), so its figure is the query and the column fetch; ListMetrics turns the
columns into protos, which a line measures end to end (store page + 10k MetricPoints)
against the bare SELECT's rows turned into MetricPoints one by one, to_timestamp per row. The
last line is a chart's sampled history (JobStore.sampled_metrics) against reading every point.
"""
from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

from _common import result

import duckdb
from trainhouse.common.pagination import PageRequest
from trainhouse.common.timeutil import to_timestamp
from trainhouse.training.convert import add_metric_points
from trainhouse.training.store import JobStore
from trainhouse.v1 import training_job_pb2, training_service_pb2

APPENDS = 3000
BATCH, BATCHES = 500, 20
POINTS = 1_000_000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = JobStore(Path(tmp) / "training.duckdb")
        store.create_job({"job_id": "job-bench", "agent_id": "a", "account_id": "x", "method": "supervised",
                          "state": "running", "config_json": "{}"})
        t0 = time.perf_counter()
        for i in range(APPENDS):
            store.append_event("job-bench", "metric", {"name": "loss", "value": 1.0 / (i + 1), "epoch": i, "step": i})
        store.flush()  # timed until every point is in DuckDB, not only in the event log
        ours = APPENDS / (time.perf_counter() - t0)

        bare = duckdb.connect(str(Path(tmp) / "bare.duckdb"))
        bare.execute("CREATE TABLE m (job_id VARCHAR, sequence BIGINT, name VARCHAR, value DOUBLE, epoch INTEGER, "
                     "step BIGINT, time TIMESTAMP)")
        t0 = time.perf_counter()
        for i in range(APPENDS):
            bare.execute("INSERT INTO m VALUES (?, ?, ?, ?, ?, ?, ?)", ["j", i, "loss", 1.0, i, i, dt.datetime.now()])
        bare_rate = APPENDS / (time.perf_counter() - t0)
        result("metric event append (store: one fsync'd log record each, DuckDB in batches, flush timed)", ours, "points/s", bare_rate,
               "bare single-row INSERT")

        # What a worker's pump does: everything the worker sent since the last write in one
        # record (up to runner.MAX_BATCH messages), against the same batch inserted row by row.
        batches = [[("metric", {"name": "loss", "value": 1.0 / (b * BATCH + i + 1), "epoch": i, "step": i}, {})
                    for i in range(BATCH)] for b in range(BATCHES)]
        t0 = time.perf_counter()
        for batch in batches:
            store.append_events("job-bench", batch)
        store.flush()
        batched = BATCHES * BATCH / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for b in range(BATCHES):
            bare.execute("BEGIN")
            bare.executemany("INSERT INTO m VALUES (?, ?, ?, ?, ?, ?, ?)",
                             [["j", i, "loss", 1.0, i, i, dt.datetime.now()] for i in range(BATCH)])
            bare.execute("COMMIT")
        bare_batched = BATCHES * BATCH / (time.perf_counter() - t0)
        result(f"metric event append, batches of {BATCH} (store: one log record each, DuckDB in batches, flush timed)", batched,
               "points/s", bare_batched, "bare executemany of the same batches")

        # 1M-point history, bulk-loaded with SQL, then queried through the store's own query. The job
        # row says how far its events go (last_sequence), as a real job's does.
        store.create_job({"job_id": "job-big", "agent_id": "a", "account_id": "x", "method": "supervised",
                          "state": "completed", "config_json": "{}"})
        store.db.execute("UPDATE jobs SET last_sequence = ? WHERE job_id = 'job-big'", [POINTS])
        store.db.execute(
            "INSERT INTO metrics SELECT 'job-big', i, "
            "['loss', 'accuracy', 'validation_loss', 'learning_rate'][(i % 4) + 1], random(), i // 4, i // 4, "
            f"TIMESTAMP '2026-01-01' FROM range({POINTS}) t(i)")
        con = store.db._con
        total = store.metrics("job-big", ["loss"], PageRequest(size=1, with_total=True)).total_size
        ours_q = bare_q = float("inf")
        for _ in range(5):  # alternating, best of 5 each
            t0 = time.perf_counter()
            store.metrics("job-big", ["loss"], PageRequest(size=10_000))
            ours_q = min(ours_q, time.perf_counter() - t0)
            t0 = time.perf_counter()
            con.execute("SELECT name, value, epoch, step, time FROM metrics WHERE job_id = 'job-big' "
                        "AND name = 'loss' LIMIT 10000").fetchall()
            bare_q = min(bare_q, time.perf_counter() - t0)
        result(f"history page (10k of {total:,} loss points, 1M-point job)", ours_q * 1000, "ms", bare_q * 1000,
               "bare SELECT without ordering/count")

        # What ListMetrics answers: the same page as a response of MetricPoints (what the servicer
        # runs), against the bare SELECT's rows converted one by one.
        ours_r = bare_r = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            page = store.metrics("job-big", ["loss"], PageRequest(size=10_000))
            response = training_service_pb2.ListMetricsResponse(next_page_token=page.next_page_token)
            add_metric_points(response.points, page.rows)
            ours_r = min(ours_r, time.perf_counter() - t0)
            t0 = time.perf_counter()
            rows = con.execute("SELECT name, value, epoch, step, time FROM metrics WHERE job_id = 'job-big' "
                               "AND name = 'loss' LIMIT 10000").fetchall()
            training_service_pb2.ListMetricsResponse(points=[
                training_job_pb2.MetricPoint(name=n, value=v, epoch=e or 0, step=s or 0, time=to_timestamp(t))
                for n, v, e, s, t in rows])
            bare_r = min(bare_r, time.perf_counter() - t0)
        assert len(response.points) == 10_000
        result("ListMetrics response (10k-point history page as MetricPoints)", ours_r * 1000, "ms", bare_r * 1000,
               "bare SELECT + MetricPoint per row")

        # A chart's sampled history (ListMetrics max_points_per_metric=1000, every name): one window
        # query over the job's 1M points, against the least reading every point costs (a bare
        # SELECT of the job's 1M rows as NumPy columns, no order, no ranks).
        ours_s = bare_s = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            sampled = store.sampled_metrics("job-big", [], 1000)
            ours_s = min(ours_s, time.perf_counter() - t0)
            t0 = time.perf_counter()
            con.execute("SELECT name, value, epoch, step, time FROM metrics WHERE job_id = 'job-big'").fetchnumpy()
            bare_s = min(bare_s, time.perf_counter() - t0)
        assert len(sampled) == 4 * 1000
        result("sampled history (1000 points of each of 4 names, 1M-point job)", ours_s * 1000, "ms", bare_s * 1000,
               "bare SELECT of all 1M points (columns)")
        store.close()


if __name__ == "__main__":
    main()
