"""The issue's sweep on the Ray executor (TRAINHOUSE_EXECUTOR=ray, local Ray): the same 12-trial
sweep as the gateway test in test_sweeps.py, through this stack's gateway. Its trials are jobs, so
they run as Ray tasks like any job, and poor ones are still stopped early."""
from __future__ import annotations

import pytest

from tests.conftest import started_stack
from tests.services.test_sweeps import run_twelve_trial_sweep
from trainhouse.v1 import training_service_pb2, training_service_pb2_grpc

pytest.importorskip("ray")


def test_twelve_trial_sweep_runs_on_ray(tmp_path):
    with started_stack(tmp_path / "home", {"TRAINHOUSE_EXECUTOR": "ray", "RAY_ADDRESS": ""}) as stack, \
            stack.channel("training") as channel:
        training = training_service_pb2_grpc.TrainingServiceStub(channel)
        sweep = run_twelve_trial_sweep(stack, training, "ray-sweep", timeout=300)
        # Ray ran the trials as it runs any job: their epochs come back through the same store.
        for trial in sweep["trials"]:
            events = list(training.WatchJob(training_service_pb2.WatchJobRequest(job_id=trial["jobId"])))
            assert any(e.WhichOneof("payload") == "epoch" for e in events)
