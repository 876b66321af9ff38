"""TRAINHOUSE_EXECUTOR=ray: a job runs as a Ray task on a local Ray instance and reports back."""
from __future__ import annotations

import pytest

from trainhouse.launcher import Stack
from tests.intents import make_examples
from tests.services.test_training_grpc import examples_pb, wait_state, wait_terminal
from trainhouse.v1 import job_state_pb2, training_job_pb2, training_service_pb2, training_service_pb2_grpc

pytest.importorskip("ray")


def test_jobs_run_and_cancel_on_ray(tmp_path):
    stack = Stack(home=tmp_path / "home", log_dir=tmp_path / "logs",
                  extra_env={"TRAINHOUSE_EXECUTOR": "ray", "RAY_ADDRESS": ""}).start()
    try:
        stub = training_service_pb2_grpc.TrainingServiceStub(stack.channel("training"))
        job_id = stub.StartJob(training_service_pb2.StartJobRequest(
            agent_id="ray-agent", examples=examples_pb(make_examples(40, seed=2)),
            config=training_job_pb2.TrainingConfig(epochs=6, seed=1))).job.job_id
        final = wait_terminal(stub, job_id, timeout=300)
        assert final.state == job_state_pb2.JOB_STATE_COMPLETED, final.error.message
        assert final.model_version_id
        events = list(stub.WatchJob(training_service_pb2.WatchJobRequest(job_id=job_id)))
        assert [e.epoch.epoch for e in events if e.WhichOneof("payload") == "epoch"] == list(range(1, 7))

        long_id = stub.StartJob(training_service_pb2.StartJobRequest(
            agent_id="ray-agent", examples=examples_pb(make_examples(100, seed=3)),
            config=training_job_pb2.TrainingConfig(epochs=5000, early_stopping=False))).job.job_id
        wait_state(stub, long_id, job_state_pb2.JOB_STATE_RUNNING, timeout=120)
        cancelled = stub.CancelJob(training_service_pb2.CancelJobRequest(job_id=long_id))
        assert cancelled.job.state == job_state_pb2.JOB_STATE_CANCELLED and cancelled.checkpoint_saved
    finally:
        stack.stop()
