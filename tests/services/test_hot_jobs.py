"""The in-memory job rows (services/training/hot_jobs.py) on a real JobStore file: every write of a
job is seen by the next read, the account check is the store's, and no write path is left unwrapped."""
from __future__ import annotations

import inspect
import re
import threading

import pytest

from trainhouse.core.errors import NotFound
from trainhouse.training.hot_jobs import WRITERS, HotJobs
from trainhouse.training.store import JobStore


def _job(job_id: str, account: str = "acme") -> dict:
    return {"job_id": job_id, "agent_id": "a", "account_id": account, "method": "sft", "state": "queued",
            "config_json": "{}", "total_epochs": 2}


@pytest.fixture()
def store(tmp_path):
    s = JobStore(tmp_path / "training.duckdb")
    hot = HotJobs.install(s)
    yield s, hot
    s.close()


def test_reads_see_every_write(store):
    s, hot = store
    s.create_job(_job("j1"))
    assert s.get_job("j1")["state"] == "queued"
    assert s.get_job("j1")["state"] == "queued"
    assert hot.hits >= 1
    s.update_job("j1", state="running", current_epoch=1)
    row = s.get_job("j1")
    assert (row["state"], row["current_epoch"]) == ("running", 1)
    before = row["last_sequence"]
    s.append_event("j1", "status", {"state": "running"}, {"current_step": 7})
    row = s.get_job("j1")
    assert row["last_sequence"] == before + 1 and row["current_step"] == 7
    s.append_events("j1", [("status", {"state": "completed"}, {"state": "completed"})])
    assert s.get_job("j1")["state"] == "completed"


def test_appends_update_the_cached_row_as_the_file_has_it(store):
    """Event appends write their columns through to the cached row (no DuckDB read per GetJob of a
    streaming job): after every append the memory row equals the file's, value and type."""
    s, hot = store
    s.create_job(_job("jw"))
    s.get_job("jw")  # cached
    appends = [
        [("status", {"state": "running"}, {"state": "running"})],
        [("epoch", {"epoch": 1}, {"current_epoch": 1, "total_epochs": 2, "current_step": 4, "total_steps": 8,
                                   "metrics_json": '{"loss": 0.5}'}),
         ("metric", {"name": "cost_usd", "value": 0.25}, {"cost_usd": 0.25})],
        [("checkpoint", {"checkpoint_id": "ck-1", "step": 4, "best": True}, {"best_checkpoint_id": "ck-1"})],
    ]
    for events in appends:
        misses = hot.misses
        s.append_event_groups([("jw", events)])
        cached = s.get_job("jw")
        assert hot.misses == misses  # served from memory
        on_file = hot._read("jw")
        assert cached == on_file
        assert {k: type(v) for k, v in cached.items()} == {k: type(v) for k, v in on_file.items()}
    # a failed append drops the row instead: the next read goes to the file
    with pytest.raises(NotFound):
        s.append_event_groups([("jw", [("log", {"message": "x"}, {})]), ("missing", [("log", {}, {})])])
    misses = hot.misses
    assert s.get_job("jw") == hot._read("jw") and hot.misses == misses + 1


def test_rows_are_copies(store):
    s, _ = store
    s.create_job(_job("j2"))
    s.get_job("j2")["state"] = "mutated by a caller"
    assert s.get_job("j2")["state"] == "queued"


def test_account_check_matches_the_store(store):
    s, _ = store
    s.create_job(_job("j3", account="acme"))
    assert s.get_job("j3", "acme")["job_id"] == "j3"
    s.get_job("j3")  # cached now: the account check must still apply
    with pytest.raises(NotFound):
        s.get_job("j3", "other")
    with pytest.raises(NotFound):
        s.get_job("missing")


def test_concurrent_writes_are_never_hidden(store):
    """Readers hammer the row while a writer advances it: after the writer is done, every read
    shows its last write (a row read before a commit must not be cached after it)."""
    s, _ = store
    s.create_job(_job("j4"))
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            s.get_job("j4")

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    for step in range(1, 60):
        s.update_job("j4", current_epoch=step)
        assert s.get_job("j4")["current_epoch"] == step
    done.set()
    for t in readers:
        t.join()
    assert s.get_job("j4")["current_epoch"] == 59


def test_every_job_write_path_is_wrapped():
    """A JobStore method whose SQL writes the jobs table must be a wrapped writer or go through one."""
    writes = re.compile(r"(UPDATE|INSERT INTO|DELETE FROM)\s+jobs\b", re.IGNORECASE)
    for name, method in inspect.getmembers(JobStore, inspect.isfunction):
        source = inspect.getsource(method)
        if writes.search(source):
            assert name in WRITERS, f"JobStore.{name} writes jobs but hot_jobs does not wrap it"
    # append_event delegates to append_events (wrapped): it must not write on its own.
    assert "append_events" in inspect.getsource(JobStore.append_event)


def test_finished_answers_follow_the_row(store):
    """A finished job's GetJob answer is built once per row content: any column change rebuilds it."""
    from trainhouse.training.convert import job_proto
    from trainhouse.training.hot_jobs import FinishedAnswers

    s, _ = store
    s.create_job(_job("j5"))
    s.update_job("j5", state="completed", current_epoch=2)
    answers, built = FinishedAnswers(), []

    def build(row: dict):
        built.append(row["job_id"])
        return job_proto(row)

    first = answers.get(s.get_job("j5"), build)
    assert answers.get(s.get_job("j5"), build) is first and len(built) == 1
    s.update_job("j5", model_version_id="v1.0.0")
    again = answers.get(s.get_job("j5"), build)
    assert again is not first and again.model_version_id == "v1.0.0" and len(built) == 2
