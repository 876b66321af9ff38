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


@pytest.mark.parametrize("names,size", [(["loss"], 1000), (["validation_loss"], 7), (["loss", "validation_loss"], 333),
                                        ([], 5000)])
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
