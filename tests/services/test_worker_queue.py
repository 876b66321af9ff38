"""The worker's bounded message queue: backpressure without ever outliving the service."""
from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import time

from trainhouse.training.executors import queue_max
from trainhouse.training.worker import BoundedQueue, QueueCallbacks

ctx = mp.get_context("spawn")


def _put_into_full_queue(q, parent: int) -> None:
    BoundedQueue(q, parent).put(("event", "log", {"message": "never delivered"}))


def test_a_full_queue_makes_the_worker_wait_for_the_service():
    q = ctx.Queue(maxsize=1)
    q.put("first")
    bounded = BoundedQueue(q, None)
    done = threading.Event()
    threading.Thread(target=lambda: (bounded.put("second"), done.set()), daemon=True).start()
    assert not done.wait(1.5)  # waits while the service has not drained
    assert q.get(timeout=5) == "first"
    assert done.wait(5) and q.get(timeout=5) == "second"


def test_an_orphaned_worker_blocked_on_a_full_queue_exits():
    q = ctx.Queue(maxsize=1)
    q.put("first")
    # parent = a pid that is not the child's parent: exactly what a worker sees after kill -9
    proc = ctx.Process(target=_put_into_full_queue, args=(q, 1))
    proc.start()
    proc.join(timeout=30)
    assert proc.exitcode == 3


def test_queue_bound_is_configurable(monkeypatch):
    assert queue_max() == 1000
    monkeypatch.setenv("TRAINHOUSE_WORKER_QUEUE_MAX", "7")
    assert queue_max() == 7
    monkeypatch.setenv("TRAINHOUSE_WORKER_QUEUE_MAX", "0")
    assert queue_max() == 1


def _drain(q: queue.Queue) -> list:
    return [q.get_nowait() for _ in range(q.qsize())]


def test_progress_events_travel_together_and_in_the_order_they_were_made(tmp_path):
    """An epoch's events go as one message (one wake-up and one durable append in the service
    instead of ~9), and nothing overtakes anything: a checkpoint, a log line, the trainer's next
    step and any other message send what is kept first."""
    q: queue.Queue = queue.Queue()
    bounded = BoundedQueue(q, None)
    callbacks = QueueCallbacks(bounded, threading.Event(), threading.Event(), str(tmp_path), watch_parent=False)
    callbacks.on_event("epoch", {"epoch": 1, "loss": 0.5})
    callbacks.on_event("metric", {"name": "loss", "value": 0.5, "step": 3})
    callbacks.on_event("metric", {"name": "accuracy", "value": 0.9, "step": 3})
    assert q.empty()  # kept while the epoch's burst lasts
    callbacks.on_event("checkpoint", {"checkpoint_id": "best", "step": 3})  # cannot wait: all go, in order
    assert [[kind for kind, _ in m[1]] for m in _drain(q)] == [["epoch", "metric", "metric", "checkpoint"]]

    callbacks.on_event("step", {"step": 4, "total_steps": 4, "loss": 0.4})
    assert not callbacks.should_stop()  # the next step starts: what the last one made is sent
    assert _drain(q) == [("events", [("step", {"step": 4, "total_steps": 4, "loss": 0.4})])]

    callbacks.on_event("epoch", {"epoch": 2, "loss": 0.4})
    bounded.put(("event", "status", {"state": "validating"}))  # the worker's own message comes after it
    assert _drain(q) == [("events", [("epoch", {"epoch": 2, "loss": 0.4})]),
                         ("event", "status", {"state": "validating"})]


def test_kept_events_leave_when_they_are_many_or_old():
    q: queue.Queue = queue.Queue()
    bounded = BoundedQueue(q, None)
    for i in range(BoundedQueue.MAX_PENDING):
        bounded.put_event("metric", {"name": "loss", "value": float(i)})
    sent = _drain(q)
    assert len(sent) == 1 and [p["value"] for _, p in sent[0][1]] == [float(i) for i in range(BoundedQueue.MAX_PENDING)]
    bounded.put_event("metric", {"name": "loss", "value": 1.0})
    time.sleep(BoundedQueue.MAX_DELAY_S * 1.5)
    assert q.empty()
    bounded.put_event("metric", {"name": "loss", "value": 2.0})  # the first has waited long enough
    assert [[p["value"] for _, p in m[1]] for m in _drain(q)] == [[1.0, 2.0]]
