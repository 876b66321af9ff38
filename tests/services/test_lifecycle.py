"""Process lifecycle: graceful stop checkpoints running jobs, restart resumes them, `trainhouse up`."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from trainhouse.launcher import Stack
from tests.intents import make_examples
from tests.services.test_training_grpc import examples_pb, wait_state, wait_terminal
from trainhouse.v1 import job_state_pb2, training_job_pb2, training_service_pb2, training_service_pb2_grpc


@pytest.fixture
def own_stack(tmp_path):
    stack = Stack(home=tmp_path / "home", log_dir=tmp_path / "logs").start()
    yield stack
    stack.stop()


def test_sigterm_checkpoints_running_job_and_restart_resumes_it(own_stack):
    stub = training_service_pb2_grpc.TrainingServiceStub(own_stack.channel("training"))
    cfg = training_job_pb2.TrainingConfig(epochs=40, early_stopping=False, checkpoint_interval=1000, seed=3)
    job_id = stub.StartJob(training_service_pb2.StartJobRequest(
        agent_id="restart-agent", examples=examples_pb(make_examples(150, seed=8)), config=cfg)).job.job_id
    wait_state(stub, job_id, job_state_pb2.JOB_STATE_RUNNING)
    deadline = time.monotonic() + 60
    while stub.GetJob(training_service_pb2.GetJobRequest(job_id=job_id)).job.progress.current_epoch < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child = own_stack.children["training"]
    child.proc.send_signal(signal.SIGTERM)
    assert child.proc.wait(60) == 0

    # The stopped service left a consistent, self-contained DuckDB file behind.
    con = duckdb.connect(str(own_stack.home / "training.duckdb"), read_only=True)
    state, last_seq = con.execute("SELECT state, last_sequence FROM jobs WHERE job_id = ?", [job_id]).fetchone()
    kinds = [k for (k,) in con.execute("SELECT kind FROM checkpoints WHERE job_id = ?", [job_id]).fetchall()]
    n_events = con.execute("SELECT count(*) FROM job_events WHERE job_id = ?", [job_id]).fetchone()[0]
    con.close()
    assert state == "queued"
    assert "shutdown" in kinds
    assert n_events == last_seq

    own_stack.restart("training")
    stub = training_service_pb2_grpc.TrainingServiceStub(own_stack.channel("training"))
    final = wait_terminal(stub, job_id)
    assert final.state == job_state_pb2.JOB_STATE_COMPLETED, final.error.message
    assert final.progress.current_epoch == 40
    events = list(stub.WatchJob(training_service_pb2.WatchJobRequest(job_id=job_id)))
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    epochs = [e.epoch.epoch for e in events if e.WhichOneof("payload") == "epoch"]
    assert epochs == list(range(1, 41)), "every epoch reported exactly once across the restart"
    assert any(e.WhichOneof("payload") == "status" and e.status.reason == "interrupted" for e in events)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _start_up(tmp_path: Path, **extra: str) -> subprocess.Popen:
    env = dict(os.environ, TRAINHOUSE_HOME=str(tmp_path / "home"), TRAINHOUSE_GATEWAY_PORT="0",
               TRAINHOUSE_TRAINING_PORT="0", TRAINHOUSE_DATA_PORT="0", TRAINHOUSE_EVALUATION_PORT="0",
               TRAINHOUSE_REGISTRY_PORT="0", **extra)
    for name in ("TRAINING", "DATA", "EVALUATION", "REGISTRY"):
        env.pop(f"TRAINHOUSE_{name}_ADDR", None)
    cli = Path(sys.executable).with_name("trainhouse")
    proc = subprocess.Popen([str(cli), "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "Press Ctrl-C" in line:
            break
    else:
        raise AssertionError("".join(lines) + proc.stderr.read())
    text = "".join(lines)
    for name in ("training", "data", "evaluation", "registry", "gateway", "admin token file"):
        assert name in text
    return proc


def test_trainhouse_up_stops_cleanly_on_ctrl_c(tmp_path):
    proc = _start_up(tmp_path)
    assert len(_children(proc.pid)) == 5
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    assert "trainhouse stopped" in out
    assert (tmp_path / "home" / "admin-token").stat().st_mode & 0o777 == 0o600


def test_trainhouse_up_stops_everything_when_restarts_run_out(tmp_path):
    # With no restarts allowed, the first death stops the stack (restarts: test_stack_operations.py).
    proc = _start_up(tmp_path, TRAINHOUSE_RESTART_MAX="0")
    children = _children(proc.pid)
    os.kill(children[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 1
    assert "exited with code -9 after 0 restarts" in err
    for pid in children[1:]:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
