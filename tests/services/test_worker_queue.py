"""The worker's bounded message queue: backpressure without ever outliving the service."""
from __future__ import annotations

import multiprocessing as mp
import threading

from trainhouse.training.executors import queue_max
from trainhouse.training.worker import BoundedQueue

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
