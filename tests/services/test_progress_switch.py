"""TRAINHOUSE_TRAINING_PROGRESS_EVENTS: validated, and off really stops progress events at the worker."""
from __future__ import annotations

import queue
import threading

import pytest

from trainhouse.common.config import TrainingSettings
from trainhouse.training.worker import BoundedQueue, QueueCallbacks


@pytest.mark.parametrize("raw,expected", [("", True), ("false", False), ("0", False), ("On", True)])
def test_setting_parses(monkeypatch, raw, expected):
    monkeypatch.setenv("TRAINHOUSE_TRAINING_PROGRESS_EVENTS", raw)
    assert TrainingSettings.from_env().progress_events is expected


def test_bad_value_stops_the_process(monkeypatch):
    monkeypatch.setenv("TRAINHOUSE_TRAINING_PROGRESS_EVENTS", "sometimes")
    with pytest.raises(SystemExit, match="TRAINHOUSE_TRAINING_PROGRESS_EVENTS"):
        TrainingSettings.from_env()


@pytest.mark.parametrize("on", [True, False])
def test_off_sends_no_progress_event(on, tmp_path):
    q: queue.Queue = queue.Queue()
    cb = QueueCallbacks(BoundedQueue(q, None), threading.Event(), threading.Event(), str(tmp_path),
                        watch_parent=False, progress_events=on)
    cb.on_event("epoch", {"epoch": 1, "loss": 0.5})
    cb.on_event("step", {"step": 1, "total_steps": 1})
    cb.on_event("metric", {"name": "loss", "value": 0.5, "step": 1})
    cb.on_event("checkpoint", {"checkpoint_id": "c", "step": 1})
    cb.on_event("log", {"message": "hi"})
    cb.should_stop()
    kinds = [kind for _ in range(q.qsize()) for kind, _ in q.get_nowait()[1]]
    assert kinds == (["epoch", "step", "metric", "checkpoint", "log"] if on else ["checkpoint", "log"])
