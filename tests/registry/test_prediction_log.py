"""The registry's write-behind prediction log (services/registry/serving.py) on a real DuckDB file:
a lookup may wait for a record still on its way from a gateway's serving replica, sees it the
moment it is appended, finds it after a flush too, and bounds how many lookups wait at once."""
from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

from trainhouse.registry.serving import MAX_WAITING, PredictionLog
from trainhouse.registry.store import RegistryStore


def _row(prediction_id: str) -> tuple:
    return (prediction_id, "router", "v1.0.0", "", "stable", "production", "", "hello", "greet", 0.9, 0.3,
            dt.datetime(2026, 12, 4, 12, 0, 0), None)


def test_a_lookup_waits_for_a_record_appended_meanwhile(tmp_path: Path) -> None:
    log = PredictionLog(RegistryStore(tmp_path / "registry.duckdb"))
    threading.Timer(0.1, log.append, [[_row("pred-late")]]).start()
    started = time.monotonic()
    found = log.get("pred-late", wait_s=5.0)
    waited = time.monotonic() - started
    assert found is not None and found["output"] == "greet" and found["input"] == "hello"
    assert 0.05 <= waited < 2.0  # woken by the append, not by the deadline
    assert log.get("pred-never") is None  # without wait_s: at once


def test_a_record_flushed_while_waiting_is_found(tmp_path: Path) -> None:
    log = PredictionLog(RegistryStore(tmp_path / "registry.duckdb"))
    log.append([_row("pred-flushed")])
    assert log.flush() == 1
    assert log.get("pred-flushed", wait_s=1.0)["version_id"] == "v1.0.0"  # from the database, no wait


def test_an_unknown_id_waits_its_deadline_and_waiters_are_bounded(tmp_path: Path) -> None:
    log = PredictionLog(RegistryStore(tmp_path / "registry.duckdb"))
    results: list[float] = []

    def wait() -> None:
        t0 = time.monotonic()
        assert log.get("pred-unknown", wait_s=1.5) is None
        results.append(time.monotonic() - t0)

    waiters = [threading.Thread(target=wait) for _ in range(MAX_WAITING)]
    for t in waiters:
        t.start()
    deadline = time.monotonic() + 5
    while log._waiting < MAX_WAITING:  # every waiter is in (a real wait on the condition)
        assert time.monotonic() < deadline
        time.sleep(0.01)
    t0 = time.monotonic()
    assert log.get("pred-unknown-too", wait_s=1.5) is None
    assert time.monotonic() - t0 < 0.5  # one more: answered at once, no RPC thread held
    for t in waiters:
        t.join()
    assert len(results) == MAX_WAITING and all(1.4 <= r < 4.0 for r in results)
