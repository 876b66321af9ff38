"""The training store's metric history and event batches on a real DuckDB file: pages of a long
history (windowed by sequence, see JobStore.metrics) are exactly the unbounded ordered query's."""
from __future__ import annotations

import pytest

from trainhouse.common.pagination import PageRequest, _decode_token
from trainhouse.training.store import JobStore

NAMES = ("loss", "accuracy", "validation_loss", "learning_rate")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = JobStore(tmp_path_factory.mktemp("metrics") / "training.duckdb")
    for job in ("job-a", "job-b"):
        s.create_job({"job_id": job, "agent_id": "a", "account_id": "x", "method": "supervised",
                      "state": "running", "config_json": "{}"})
    # Two jobs' histories interleaved batch by batch, as two pumps write them; "validation_loss"
    # is rare (one point per 50 steps), so its pages need a widened window.
    for b in range(30):
        for job in ("job-a", "job-b"):
            batch = []
            for i in range(b * 400, (b + 1) * 400):
                for name in ("loss", "accuracy", "learning_rate"):
                    batch.append(("metric", {"name": name, "value": float(i), "epoch": i // 100, "step": i}, {}))
                if i % 50 == 0:
                    batch.append(("metric", {"name": "validation_loss", "value": -i, "epoch": i // 100, "step": i},
                                  {}))
            s.append_events(job, batch)
    yield s
    s.close()


def all_pages(store: JobStore, job: str, names: list[str], size: int) -> list[tuple]:
    out, after = [], None
    while True:
        page = store.metrics(job, names, PageRequest(size=size, after=after))
        out += [(r["name"], r["value"], r["step"]) for r in page.rows]
        if not page.next_page_token:
            return out
        after = _decode_token(page.next_page_token)[0]


@pytest.mark.parametrize("names,size", [(["loss"], 1000), (["validation_loss"], 7), (["validation_loss"], 100),
                                        (["loss", "validation_loss"], 333), ([], 5000)])
def test_pages_equal_the_ordered_history(store, names, size):
    expected = store.db.query(
        "SELECT name, value, step FROM metrics WHERE job_id = 'job-b' "
        + (f"AND name IN ({', '.join(repr(n) for n in names)}) " if names else "") + "ORDER BY sequence")
    got = all_pages(store, "job-b", names, size)
    assert got == [tuple(r) for r in expected]
    assert len(got) > size  # several pages, several windows


def test_total_and_skip_still_answer(store):
    page = store.metrics("job-a", ["validation_loss"], PageRequest(size=10, skip=5, with_total=True))
    assert page.total_size == 30 * 8
    assert [r["step"] for r in page.rows] == list(range(250, 750, 50))


def test_rows_read_from_columns_are_the_rows_fetchall_gives(store):
    """The page's rows are held as columns; read as dicts they are exactly the row query's dicts
    (Python types, None for a NULL epoch or step), by iteration, by index and by slice."""
    store.create_job({"job_id": "job-nulls", "agent_id": "a", "account_id": "x", "method": "supervised",
                      "state": "running", "config_json": "{}"})
    store.append_events("job-nulls", [("metric", {"name": "loss", "value": 0.5 * i,
                                                  **({"epoch": i} if i % 3 else {}), **({"step": i} if i % 2 else {})},
                                       {}) for i in range(40)])
    expected = store.db.query_dicts("SELECT name, value, epoch, step, time FROM metrics WHERE job_id = 'job-nulls' "
                                    "ORDER BY sequence LIMIT 25")
    assert any(r["epoch"] is None for r in expected) and any(r["step"] is None for r in expected)
    rows = store.metrics("job-nulls", [], PageRequest(size=25)).rows
    assert len(rows) == 25
    assert list(rows) == expected
    assert [rows[i] for i in range(-25, 25)] == expected + expected
    assert rows[3:9] == expected[3:9]
    assert all(type(r["value"]) is float and type(r["name"]) is str for r in rows)
    with pytest.raises(IndexError):
        rows[25]


def test_metric_points_built_from_columns_equal_the_per_row_protos(store):
    """ListMetrics' points from whole columns are the protos the per-row conversion gives: NULL
    epoch/step as 0, times (before 1970 too, to the microsecond) as to_timestamp makes them."""
    from trainhouse.common.timeutil import to_timestamp
    from trainhouse.training.convert import add_metric_points
    from trainhouse.v1 import training_job_pb2, training_service_pb2

    store.create_job({"job_id": "job-times", "agent_id": "a", "account_id": "x", "method": "supervised",
                      "state": "running", "config_json": "{}"})
    store.db.execute(
        "INSERT INTO metrics SELECT 'job-times', i, 'loss', i / 7, CASE WHEN i % 3 = 0 THEN NULL ELSE i END, "
        "CASE WHEN i % 4 = 0 THEN NULL ELSE i * 1000 END, "
        "TIMESTAMP '1969-12-31 23:59:58' + INTERVAL (i * 333333) MICROSECOND FROM range(30) t(i)")
    page = store.metrics("job-times", [], PageRequest(size=30))
    built = training_service_pb2.ListMetricsResponse()
    add_metric_points(built.points, page.rows)
    per_row = [training_job_pb2.MetricPoint(name=r["name"], value=r["value"], epoch=r["epoch"] or 0,
                                            step=r["step"] or 0, time=to_timestamp(r["time"])) for r in page.rows]
    assert len(built.points) == 30
    assert list(built.points) == per_row
    assert built.points[0].time.seconds < 0 <= built.points[0].time.nanos  # before 1970: nanos stay >= 0
    empty = training_service_pb2.ListMetricsResponse()
    add_metric_points(empty.points, store.metrics("job-none", [], PageRequest(size=5)).rows)
    assert len(empty.points) == 0
