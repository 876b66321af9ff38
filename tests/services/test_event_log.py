"""The training store's event log (event_log.py): an acknowledged append survives a crash of the
process before DuckDB got it, a torn last record is dropped, a segment already in DuckDB is not
written twice, and every read or other write sees what was acknowledged before it.

The crashes are real: a child process appends and leaves with os._exit, so neither close() nor
the indexer thread (its interval set to an hour) wrote anything to DuckDB."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trainhouse.common.pagination import PageRequest
from trainhouse.training import store as store_module
from trainhouse.training.event_log import EventLog
from trainhouse.training.store import JobStore

CHILD = textwrap.dedent("""
    import os, shutil, sys
    from pathlib import Path
    from trainhouse.training import store as store_module
    store_module.INDEX_INTERVAL_S = 3600.0
    from trainhouse.training.store import JobStore

    path, mode = Path(sys.argv[1]), sys.argv[2]
    s = JobStore(path)
    s.create_job({"job_id": "j", "agent_id": "a", "account_id": "x", "method": "supervised",
                  "state": "running", "config_json": "{}"})
    s.flush()  # the job row is in DuckDB; everything below is only in the log
    for epoch in range(1, 4):
        s.append_events("j", [
            ("epoch", {"epoch": epoch}, {"current_epoch": epoch}),
            ("metric", {"name": "loss", "value": 1.0 / epoch, "epoch": epoch, "step": epoch * 10}, {}),
            ("checkpoint", {"checkpoint_id": "best", "epoch": epoch, "kind": "best", "best": True,
                            "path": "/ckpt", "size_bytes": 10}, {}),
        ])
    if mode == "indexed":  # DuckDB committed them, the process died before deleting the segment
        log = path.with_name(path.stem + ".events")
        shutil.copytree(log, str(log) + ".copy")
        s.flush()
        shutil.rmtree(log)
        shutil.copytree(str(log) + ".copy", log)
    sys.stdout.flush()
    os._exit(0)
""")


def crashed_store(tmp_path: Path, mode: str = "plain") -> Path:
    path = tmp_path / "training.duckdb"
    subprocess.run([sys.executable, "-c", CHILD, str(path), mode], check=True, timeout=120)
    return path


def assert_three_epochs(s: JobStore) -> None:
    events = s.events_after("j", 0)
    assert [e["sequence"] for e in events] == list(range(1, 10))
    assert [e["kind"] for e in events[:3]] == ["epoch", "metric", "checkpoint"]
    job = s.get_job("j")
    assert (job["last_sequence"], job["current_epoch"]) == (9, 3)
    points = s.metrics("j", ["loss"], PageRequest(size=10)).rows
    assert [(p["value"], p["epoch"], p["step"]) for p in points] == [(1.0, 1, 10), (0.5, 2, 20), (1 / 3, 3, 30)]
    best = s.db.query("SELECT epoch, path FROM checkpoints WHERE job_id = 'j' AND checkpoint_id = 'best'")
    assert best == [(3, "/ckpt")]


def test_acknowledged_events_survive_a_crash_before_duckdb_had_them(tmp_path):
    path = crashed_store(tmp_path)
    log = path.with_name("training.events")
    assert EventLog(log).segments(), "the child's appends were only in the log"
    import duckdb
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT count(*) FROM job_events").fetchone()[0] == 0
    con.close()
    s = JobStore(path)
    try:
        assert_three_epochs(s)
        # Sequences and cursors continue after the recovered ones.
        assert s.append_event("j", "status", {"state": "running"}) == 10
        assert s.events_after("j", 9)[0]["cursor"] == 10
    finally:
        s.close()
    s = JobStore(path)  # the log's files still hold the recovered records: not written twice
    try:
        assert [e["sequence"] for e in s.events_after("j", 0)] == list(range(1, 11))
    finally:
        s.close()


def end_of_records(segment: Path) -> int:
    """Offset after the segment's last whole record (the format of event_log.py)."""
    import struct
    import zlib
    data = segment.read_bytes()
    seed, offset = zlib.crc32(data[:8]), 8
    while True:
        length, crc = struct.unpack_from("<II", data, offset)
        body = data[offset + 8:offset + 8 + length]
        if not length or zlib.crc32(body, seed) != crc:
            return offset
        offset += 8 + length


def test_a_torn_last_record_was_never_acknowledged_and_is_dropped(tmp_path):
    path = crashed_store(tmp_path)
    segment = EventLog(path.with_name("training.events")).segments()[-1]
    end = end_of_records(segment)
    data = bytearray(segment.read_bytes())
    first = data[8:end]  # a copy of the first record, written again but cut short inside its body
    data[end:end + 20] = first[:20]
    segment.write_bytes(bytes(data))
    s = JobStore(path)
    try:
        assert_three_epochs(s)
    finally:
        s.close()


def test_a_segment_already_in_duckdb_is_not_written_again(tmp_path):
    path = crashed_store(tmp_path, "indexed")
    assert EventLog(path.with_name("training.events")).segments()
    s = JobStore(path)  # would fail on the events' primary key if written twice
    try:
        assert_three_epochs(s)
    finally:
        s.close()


@pytest.fixture
def slow_indexer(monkeypatch):
    monkeypatch.setattr(store_module, "INDEX_INTERVAL_S", 3600.0)


def test_reads_and_writes_see_every_acknowledged_append(tmp_path, slow_indexer):
    s = JobStore(tmp_path / "training.duckdb")
    try:
        s.create_job({"job_id": "j", "agent_id": "a", "account_id": "x", "method": "supervised",
                      "state": "queued", "config_json": "{}"})
        s.append_event("j", "status", {"state": "running"}, {"state": "running"})
        s.append_event("j", "metric", {"name": "loss", "value": 0.5, "epoch": 1, "step": 1})
        assert s.get_job("j")["state"] == "running"  # a read: the pending record went first
        s.append_event("j", "status", {"state": "validating"}, {"state": "validating"})
        s.update_job("j", state="failed")  # a later direct write wins over the earlier append
        assert s.get_job("j")["state"] == "failed"
        assert s.get_job("j")["last_sequence"] == 3
        assert [p["value"] for p in s.metrics("j", [], PageRequest(size=10)).rows] == [0.5]
    finally:
        s.close()


def test_an_append_the_database_would_refuse_is_refused_before_it_is_logged(tmp_path, slow_indexer):
    s = JobStore(tmp_path / "training.duckdb")
    try:
        s.create_job({"job_id": "j", "agent_id": "a", "account_id": "x", "method": "supervised",
                      "state": "queued", "config_json": "{}"})
        with pytest.raises(ValueError):
            s.append_event("j", "status", {"state": "running"}, {"no_such_column": 1})
        with pytest.raises(ValueError):
            s.append_event("j", "metric", {"name": "loss", "value": "not a number"})
        assert s.append_event("j", "status", {"state": "running"}) == 1
        assert [e["sequence"] for e in s.events_after("j", 0)] == [1]
    finally:
        s.close()


def test_segment_files_are_reused_not_grown(tmp_path, slow_indexer):
    """Each DuckDB write frees the segment it wrote; the next append restarts a free file (an
    overwrite, no new blocks), so a long-running store keeps a couple of preallocated files."""
    s = JobStore(tmp_path / "training.duckdb")
    s.create_job({"job_id": "j", "agent_id": "a", "account_id": "x", "method": "supervised",
                  "state": "queued", "config_json": "{}"})
    for i in range(50):
        s.append_event("j", "metric", {"name": "loss", "value": float(i), "epoch": i, "step": i})
        s.flush()
    files = sorted((tmp_path / "training.events").glob("wal-*.log"))
    assert 1 <= len(files) <= 2
    s.close()
    s = JobStore(tmp_path / "training.duckdb")
    try:
        assert [p["value"] for p in s.metrics("j", [], PageRequest(size=100)).rows] == [float(i) for i in range(50)]
    finally:
        s.close()


ROWS_CHILD = textwrap.dedent("""
    import datetime, os, sys
    from pathlib import Path
    from trainhouse.training import store as store_module
    store_module.INDEX_INTERVAL_S = 3600.0
    from trainhouse.training.store import JobStore, _Record

    s = JobStore(Path(sys.argv[1]))
    s.create_job({"job_id": "j", "agent_id": "a", "account_id": "x", "method": "supervised",
                  "state": "running", "config_json": "{}"})
    s.flush()
    t = datetime.datetime(2026, 12, 1)
    # A record as the version before metric columns logged it: metric points as row tuples.
    s._log.append(_Record(events=(["j", "j"], [1, 2], [t, t], ["metric", "metric"],
                                  ['{"name": "loss", "value": 0.5}', '{"name": "loss", "value": 0.25}'], [1, 2]),
                          metrics=[("j", 1, "loss", 0.5, 1, 10, t), ("j", 2, "loss", 0.25, 2, 20, t)],
                          checkpoints={}, jobs={"j": {"last_sequence": 2}}))
    os._exit(0)
""")


def test_a_log_written_before_metric_columns_is_recovered(tmp_path):
    """An upgrade after a crash: the new version reads the old record shape, losing no point."""
    path = tmp_path / "training.duckdb"
    subprocess.run([sys.executable, "-c", ROWS_CHILD, str(path)], check=True, timeout=120)
    s = JobStore(path)
    try:
        points = s.metrics("j", ["loss"], PageRequest(size=10)).rows
        assert [(p["value"], p["epoch"], p["step"]) for p in points] == [(0.5, 1, 10), (0.25, 2, 20)]
        assert s.get_job("j")["last_sequence"] == 2
    finally:
        s.close()


def test_payloads_read_back_exactly_as_appended(tmp_path, slow_indexer):
    """Payload JSON is written by orjson where that is exact, by json where orjson would change
    the value (NaN and infinities become null there) or refuses it: every payload reads back equal,
    as watchers get it (the rows the append publishes) and as DuckDB holds it."""
    import json
    import math
    s = JobStore(tmp_path / "training.duckdb")
    try:
        s.create_job({"job_id": "j", "agent_id": "a", "account_id": "x", "method": "supervised",
                      "state": "running", "config_json": "{}"})
        payloads = [
            {"name": "loss", "value": 0.1, "epoch": 1, "step": 2},
            {"name": "loss", "value": float("nan"), "epoch": None, "step": 3},
            {"name": "loss", "value": float("inf"), "epoch": 2, "step": 4},
            {"epoch": 3, "metrics": {"loss": 1e-12, "big": 2**70, "text": "null é \u2028"}},
        ]
        kinds = ["metric", "metric", "metric", "epoch"]
        published = s.append_event_groups([("j", [(kind, p, {}) for kind, p in zip(kinds, payloads)])])[0]
        for rows in (published, s.events_after("j", 0)):
            read = [json.loads(row["payload_json"]) for row in rows]
            assert len(read) == 4
            assert math.isnan(read[1]["value"]) and read[1]["epoch"] is None
            assert read[2]["value"] == math.inf
            assert [read[0], read[3]] == [payloads[0], payloads[3]]
        assert [p["value"] for p in s.metrics("j", ["loss"], PageRequest(size=10)).rows][0] == 0.1
    finally:
        s.close()
