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


def _wait_for(q: queue.Queue, timeout: float = 5.0) -> list:
    deadline = time.monotonic() + timeout
    while q.empty() and time.monotonic() < deadline:
        time.sleep(0.001)
    return _drain(q)


def test_progress_events_travel_together_and_in_the_order_they_were_made(tmp_path):
    """An epoch's events go as one message (one wake-up and one durable append in the service
    instead of ~9), and nothing overtakes anything: a checkpoint, a log line and any other
    message send what is kept first."""
    q: queue.Queue = queue.Queue()
    bounded = BoundedQueue(q, None)
    callbacks = QueueCallbacks(bounded, threading.Event(), threading.Event(), str(tmp_path), watch_parent=False)
    callbacks.on_event("epoch", {"epoch": 1, "loss": 0.5})
    callbacks.on_event("metric", {"name": "loss", "value": 0.5, "step": 3})
    callbacks.on_event("metric", {"name": "accuracy", "value": 0.9, "step": 3})
    assert q.empty()  # kept while the epoch's burst lasts
    callbacks.on_event("checkpoint", {"checkpoint_id": "best", "step": 3})  # cannot wait: all go, in order
    assert [[kind for kind, _ in m[1]] for m in _drain(q)] == [["epoch", "metric", "metric", "checkpoint"]]

    callbacks.on_event("epoch", {"epoch": 2, "loss": 0.4})
    bounded.put(("event", "status", {"state": "validating"}))  # the worker's own message comes after it
    assert _drain(q) == [("events", [("epoch", {"epoch": 2, "loss": 0.4})]),
                         ("event", "status", {"state": "validating"})]


def test_a_step_sends_what_has_lingered_and_keeps_what_is_fresh(tmp_path):
    q: queue.Queue = queue.Queue()
    bounded = BoundedQueue(q, None)
    callbacks = QueueCallbacks(bounded, threading.Event(), threading.Event(), str(tmp_path), watch_parent=False)
    with bounded._lock:  # the linger thread waits: only the trainer's step check may send
        callbacks.on_event("step", {"step": 4, "total_steps": 4, "loss": 0.4})
        assert not callbacks.should_stop()
        assert q.empty()  # a fast step: the next steps' events join it
        time.sleep(BoundedQueue.LINGER_S * 1.5)
        assert not callbacks.should_stop()  # lingered long enough: the step check sends it
        assert _drain(q) == [("events", [("step", {"step": 4, "total_steps": 4, "loss": 0.4})])]


def test_kept_events_leave_when_they_are_many():
    q: queue.Queue = queue.Queue()
    bounded = BoundedQueue(q, None)
    with bounded._lock:  # no lingering meanwhile: only the count sends them
        for i in range(BoundedQueue.MAX_PENDING):
            bounded.put_event("metric", {"name": "loss", "value": float(i)})
        sent = _drain(q)
    assert len(sent) == 1 and [p["value"] for _, p in sent[0][1]] == [float(i) for i in range(BoundedQueue.MAX_PENDING)]


def test_kept_events_leave_after_lingering_even_if_the_trainer_is_busy():
    """A long step or validation pass makes no call to the queue: the linger thread sends what
    waits, so a watcher sees the last events within ~LINGER_S, not when the trainer next emits."""
    q: queue.Queue = queue.Queue()
    bounded = BoundedQueue(q, None)
    t0 = time.monotonic()
    bounded.put_event("metric", {"name": "loss", "value": 1.0})
    bounded.put_event("metric", {"name": "loss", "value": 2.0})
    sent = _wait_for(q)
    waited = time.monotonic() - t0
    assert [[p["value"] for _, p in m[1]] for m in sent] == [[1.0, 2.0]]
    assert BoundedQueue.LINGER_S * 0.9 <= waited < 2.0
    bounded.put_event("metric", {"name": "loss", "value": 3.0})  # the thread serves the next batch too
    assert [[p["value"] for _, p in m[1]] for m in _wait_for(q)] == [[3.0]]


def test_events_from_the_trainer_and_the_linger_thread_never_reorder():
    q: queue.Queue = queue.Queue()
    bounded = BoundedQueue(q, None)
    for i in range(20000):
        bounded.put_event("metric", {"name": "loss", "value": float(i)})
        if i % 997 == 0:
            time.sleep(BoundedQueue.LINGER_S)  # let the thread send some batches
    bounded.put(("stopped", {}))
    values = []
    for message in _wait_for(q):
        if message[0] == "events":
            values.extend(p["value"] for _, p in message[1])
        else:
            assert message == ("stopped", {})
    assert values == [float(i) for i in range(20000)]


def test_event_payloads_are_what_a_json_round_trip_gives():
    """Events leave the worker as plain JSON values (worker._plain builds them directly)."""
    import json

    import numpy as np

    from trainhouse.training.worker import _plain

    payloads = [
        {"name": "loss", "value": np.float32(0.25), "epoch": np.int64(3), "step": 7, "best": np.bool_(True)},
        {"metrics": {"kl": np.float64(1e-9), "rewards": np.array([0.5, 1.0]), "pair": (1, None)}},
        {1: "int key", "nan": float("nan"), "odd": object}, np.float16(1.5), [np.array(2), "x"],
    ]
    for payload in payloads:
        expected = json.loads(json.dumps(payload, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
        assert repr(_plain(payload)) == repr(expected)
        assert json.dumps(_plain(payload)) == json.dumps(expected)


def test_closing_sends_what_is_kept_and_ends_the_linger_thread():
    """A Ray worker process runs job after job: each job's queue wrapper leaves no thread behind."""
    q: queue.Queue = queue.Queue()
    bounded = BoundedQueue(q, None)
    bounded.put_event("metric", {"name": "loss", "value": 1.0})
    linger = bounded._linger
    assert linger is not None and linger.is_alive()
    bounded.close()
    assert [[p["value"] for _, p in m[1]] for m in _drain(q)] == [[1.0]]
    assert not linger.is_alive()
