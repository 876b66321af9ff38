"""Local job workers run below the service's priority (TRAINHOUSE_TRAINING_WORKER_NICE): training
takes every core it can, and the service must still answer RPCs and store the jobs' events."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from trainhouse.common.config import TrainingSettings
from tests.intents import make_examples
from trainhouse.v1 import example_pb2, job_state_pb2, training_job_pb2, training_service_pb2


@pytest.mark.parametrize("raw,expected", [("", 10), ("0", 0), ("19", 19)])
def test_setting_parses(monkeypatch, raw, expected):
    monkeypatch.setenv("TRAINHOUSE_TRAINING_WORKER_NICE", raw)
    assert TrainingSettings.from_env().worker_nice == expected


@pytest.mark.parametrize("raw", ["20", "-1", "low"])
def test_bad_value_stops_the_process(monkeypatch, raw):
    monkeypatch.setenv("TRAINHOUSE_TRAINING_WORKER_NICE", raw)
    with pytest.raises(SystemExit, match="TRAINHOUSE_TRAINING_WORKER_NICE"):
        TrainingSettings.from_env()


def _stat(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2:].split()


def _workers_of(parent: int) -> dict[int, int]:
    """pid -> nice of the multiprocessing workers the process `parent` spawned."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(int(entry.name))
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # exited meanwhile
            continue
        if int(fields[1]) == parent and b"spawn_main" in cmdline:
            out[int(entry.name)] = int(fields[16])
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process priorities from /proc")
def test_a_running_jobs_worker_is_niced_below_the_service(stack, training):
    training_pid = stack.launcher.children["training"].proc.pid
    service_nice = int(_stat(training_pid)[16])
    examples = [example_pb2.Example(input=e["input"], expected_output=e["expected_output"])
                for e in make_examples(40, seed=3)]
    job = training.StartJob(training_service_pb2.StartJobRequest(
        agent_id="nice-worker", examples=examples,
        config=training_job_pb2.TrainingConfig(epochs=5000, early_stopping=False))).job
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and training.GetJob(training_service_pb2.GetJobRequest(
                job_id=job.job_id)).job.state != job_state_pb2.JOB_STATE_RUNNING:
            time.sleep(0.05)  # running: the worker has set its priority and started training
        workers = _workers_of(training_pid)
        assert workers, "no worker process appeared under the TrainingService"
        # the session stack runs with the default setting: 10 below the service (at most 19)
        assert set(workers.values()) == {min(19, service_nice + 10)}
        assert os.getpriority(os.PRIO_PROCESS, training_pid) == service_nice  # the service itself is not
    finally:
        training.CancelJob(training_service_pb2.CancelJobRequest(job_id=job.job_id), timeout=120)

