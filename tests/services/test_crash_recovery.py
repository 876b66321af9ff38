"""kill -9 of the TrainingService while a job runs: nothing acknowledged is lost or duplicated."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from trainhouse.launcher import Stack
from tests.intents import make_examples
from tests.services.test_training_grpc import examples_pb, wait_terminal
from trainhouse.v1 import job_state_pb2, training_job_pb2, training_service_pb2, training_service_pb2_grpc

EPOCHS = 30


@pytest.fixture
def own_stack(tmp_path):
    stack = Stack(home=tmp_path / "home", log_dir=tmp_path / "logs").start()
    yield stack
    stack.stop()


def _children(pid: int) -> list[int]:
    """Child processes of any thread of `pid` (workers are started from the scheduler thread)."""
    return [int(p) for task in Path(f"/proc/{pid}/task").iterdir()
            for p in (task / "children").read_text().split()]


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def test_kill_9_then_restart_resumes_without_loss_or_duplicates(own_stack):
    stub = training_service_pb2_grpc.TrainingServiceStub(own_stack.channel("training"))
    cfg = training_job_pb2.TrainingConfig(epochs=EPOCHS, early_stopping=False, checkpoint_interval=3, seed=11)
    job_id = stub.StartJob(training_service_pb2.StartJobRequest(
        agent_id="crash-agent", examples=examples_pb(make_examples(120, seed=12)), config=cfg)).job.job_id
    deadline = time.monotonic() + 60
    while stub.GetJob(training_service_pb2.GetJobRequest(job_id=job_id)).job.progress.current_epoch < 7:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    service = own_stack.children["training"].proc
    workers = _children(service.pid)
    assert workers, "the job runs in a worker process"
    service.send_signal(signal.SIGKILL)
    service.wait(10)

    # While the service is down the gateway says so in the surface's shape, not with a 500.
    token = own_stack.admin_token_file.read_text().strip()
    resp = httpx.get(f"{own_stack.gateway_url}/api/v1/training/train-agent/{job_id}",
                     headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert resp.status_code == 503, resp.text
    assert resp.json()["success"] is False

    # The orphaned worker notices and leaves without touching the job folder again.
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "orphaned worker kept running"
        time.sleep(0.1)

    own_stack.restart("training")
    stub = training_service_pb2_grpc.TrainingServiceStub(own_stack.channel("training"))
    final = wait_terminal(stub, job_id)
    assert final.state == job_state_pb2.JOB_STATE_COMPLETED, final.error.message
    events = list(stub.WatchJob(training_service_pb2.WatchJobRequest(job_id=job_id)))
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    epochs = [e.epoch.epoch for e in events if e.WhichOneof("payload") == "epoch"]
    assert epochs == list(range(1, EPOCHS + 1))
    points = stub.ListMetrics(training_service_pb2.ListMetricsRequest(job_id=job_id, names=["loss"])).points
    assert [p.epoch for p in points] == list(range(1, EPOCHS + 1))
    assert any(e.WhichOneof("payload") == "status" and e.status.reason == "interrupted" for e in events)
    # and the gateway recovered by itself
    resp = httpx.get(f"{own_stack.gateway_url}/api/v1/training/train-agent/{job_id}",
                     headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert resp.status_code == 200 and resp.json()["data"]["status"] == "completed"
