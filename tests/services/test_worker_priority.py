"""Local job workers run below the service's priority (TRAINHOUSE_TRAINING_WORKER_NICE) and, when
the operator says so, on the CPUs given to them (TRAINHOUSE_TRAINING_WORKER_CPUS): training takes
every core it can, and the service must still answer RPCs and store the jobs' events."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from trainhouse.common.config import TrainingSettings
from tests.conftest import started_stack
from tests.intents import make_examples
from trainhouse.v1 import (example_pb2, job_state_pb2, training_job_pb2, training_service_pb2,
                          training_service_pb2_grpc)


@pytest.mark.parametrize("raw,expected", [("", 10), ("0", 0), ("19", 19)])
def test_setting_parses(monkeypatch, raw, expected):
    monkeypatch.setenv("TRAINHOUSE_TRAINING_WORKER_NICE", raw)
    assert TrainingSettings.from_env().worker_nice == expected


@pytest.mark.parametrize("raw", ["20", "-1", "low"])
def test_bad_value_stops_the_process(monkeypatch, raw):
    monkeypatch.setenv("TRAINHOUSE_TRAINING_WORKER_NICE", raw)
    with pytest.raises(SystemExit, match="TRAINHOUSE_TRAINING_WORKER_NICE"):
        TrainingSettings.from_env()


CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
needs_affinity = pytest.mark.skipif(not CPUS, reason="this platform cannot pin processes to CPUs")
FIRST, LAST = (CPUS[0], CPUS[-1]) if CPUS else (0, 0)


@needs_affinity
@pytest.mark.parametrize("raw,expected", [
    ("", None), (str(LAST), {LAST}), (f"{FIRST}-{LAST}", set(range(FIRST, LAST + 1))),
    (",".join(map(str, CPUS)), set(CPUS))])
def test_worker_cpus_parse(monkeypatch, raw, expected):
    monkeypatch.setenv("TRAINHOUSE_TRAINING_WORKER_CPUS", raw)
    if expected is not None and not expected <= set(CPUS):
        pytest.skip("this process may not run on every CPU of the range")
    assert TrainingSettings.from_env().worker_cpus == (frozenset(expected) if expected else None)


@needs_affinity
@pytest.mark.parametrize("raw,says", [
    ("one", "not a CPU number"), ("1-0", "runs backwards"), ("0,", "not a CPU number"), ("-1", "not a CPU"),
    ("4096", "not available to this process")])
def test_bad_worker_cpus_stop_the_process(monkeypatch, raw, says):
    monkeypatch.setenv("TRAINHOUSE_TRAINING_WORKER_CPUS", raw)
    with pytest.raises(SystemExit, match=f"TRAINHOUSE_TRAINING_WORKER_CPUS.*{says}"):
        TrainingSettings.from_env()


@needs_affinity
def test_worker_cpus_with_ray_is_refused_not_ignored(monkeypatch):
    monkeypatch.setenv("TRAINHOUSE_TRAINING_WORKER_CPUS", str(CPUS[0]))
    monkeypatch.setenv("TRAINHOUSE_EXECUTOR", "ray")
    with pytest.raises(SystemExit, match="local workers only"):
        TrainingSettings.from_env()


def _stat(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2:].split()


def _running_job(training, agent_id: str) -> str:  # noqa: ANN001
    """A long job started and running: its worker has set its priority and CPUs and is training."""
    examples = [example_pb2.Example(input=e["input"], expected_output=e["expected_output"])
                for e in make_examples(40, seed=3)]
    job_id = training.StartJob(training_service_pb2.StartJobRequest(
        agent_id=agent_id, examples=examples,
        config=training_job_pb2.TrainingConfig(epochs=5000, early_stopping=False))).job.job_id
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and training.GetJob(training_service_pb2.GetJobRequest(
            job_id=job_id)).job.state != job_state_pb2.JOB_STATE_RUNNING:
        time.sleep(0.05)
    return job_id


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
    job_id = _running_job(training, "nice-worker")
    try:
        workers = _workers_of(training_pid)
        assert workers, "no worker process appeared under the TrainingService"
        # the session stack runs with the default setting: 10 below the service (at most 19)
        assert set(workers.values()) == {min(19, service_nice + 10)}
        assert os.getpriority(os.PRIO_PROCESS, training_pid) == service_nice  # the service itself is not
        # and by default on every CPU the service may use
        assert all(os.sched_getaffinity(w) == os.sched_getaffinity(training_pid) for w in workers)
    finally:
        training.CancelJob(training_service_pb2.CancelJobRequest(job_id=job_id), timeout=120)


@needs_affinity
@pytest.mark.skipif(len(CPUS) < 2, reason="keeping workers off a core needs two cores")
def test_workers_run_only_on_the_cpus_given_to_them(tmp_path):
    with started_stack(tmp_path / "home", {"TRAINHOUSE_TRAINING_WORKER_CPUS": str(LAST)}) as stack:
        training_pid = stack.launcher.children["training"].proc.pid
        training = training_service_pb2_grpc.TrainingServiceStub(stack.channel("training"))
        job_id = _running_job(training, "pinned-worker")
        try:
            workers = _workers_of(training_pid)
            assert workers, "no worker process appeared under the TrainingService"
            assert {w: os.sched_getaffinity(w) for w in workers} == {w: {LAST} for w in workers}
            assert os.sched_getaffinity(training_pid) == set(CPUS)  # the service keeps every core
            deadline = time.monotonic() + 60  # and trains there
            while training.GetJob(training_service_pb2.GetJobRequest(job_id=job_id)).job.progress.current_epoch < 2:
                assert time.monotonic() < deadline, "the pinned worker made no progress"
                time.sleep(0.05)
        finally:
            training.CancelJob(training_service_pb2.CancelJobRequest(job_id=job_id), timeout=120)

