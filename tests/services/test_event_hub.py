"""EventHub on a real JobStore: live watchers get every committed event once, in order, whether
it comes from the in-memory tail or the store, and a terminal status ends the stream."""
from __future__ import annotations

import threading

import pytest

from trainhouse.training import events as events_module
from trainhouse.training.events import EventHub
from trainhouse.training.store import JobStore


@pytest.fixture
def hub(tmp_path):
    store = JobStore(tmp_path / "training.duckdb")
    for job in ("job-a", "job-b"):
        store.create_job({"job_id": job, "agent_id": "a", "account_id": "x", "method": "supervised",
                          "state": "running", "config_json": "{}"})
    h = EventHub(store)
    yield h
    h.close()
    store.close()


def watch_in_thread(hub: EventHub, job_id: str, after: int = 0) -> tuple[list[dict], threading.Thread]:
    got: list[dict] = []
    t = threading.Thread(target=lambda: got.extend(hub.watch(job_id, after, lambda: True)), daemon=True)
    t.start()
    return got, t


def test_live_watchers_see_every_event_once_in_order(hub, monkeypatch):
    monkeypatch.setattr(events_module, "TAIL_EVENTS", 50)  # watchers also fall back to the store
    hub.append("job-a", "log", {"message": "before the watchers"})
    early, t1 = watch_in_thread(hub, "job-a")
    for i in range(300):
        hub.append_many("job-a", [("metric", {"name": "loss", "value": i, "step": i}, {})] * (1 + i % 3))
        hub.append("job-b", "log", {"message": str(i)})  # another job's appends wake every watcher
        if i == 150:
            late, t2 = watch_in_thread(hub, "job-a", after=7)
    hub.status("job-a", "completed")
    t1.join(30)
    t2.join(30)
    assert not t1.is_alive() and not t2.is_alive()  # the terminal status ended both streams
    last = hub.store.get_job("job-a")["last_sequence"]
    assert [e["sequence"] for e in early] == list(range(1, last + 1))
    assert [e["sequence"] for e in late] == list(range(8, last + 1))
    assert early[-1]["kind"] == "status" and early[-1]["payload"]["terminal"]
    stored = hub.store.events_after("job-a", 0, limit=10_000)
    assert [(e["sequence"], e["kind"], e["cursor"]) for e in early] == [
        (r["sequence"], r["kind"], r["cursor"]) for r in stored]


def test_a_finished_job_ends_a_caught_up_watcher(hub):
    hub.append("job-a", "log", {"message": "x"})
    last = hub.status("job-a", "failed", reason="trainer_error")
    got, t = watch_in_thread(hub, "job-a", after=last)
    t.join(30)
    assert not t.is_alive() and got == []
