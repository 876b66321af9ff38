"""A sweep on the Ray executor (TRAINHOUSE_EXECUTOR=ray, local Ray): its trials are jobs, so they
run as Ray tasks like any job, and poor ones are still stopped early."""
from __future__ import annotations

import pytest

from services.launcher import Stack
from tests.intents import make_examples
from tests.services.test_sweeps import wait_sweep
from tests.services.test_training_grpc import examples_pb
from trainhouse.v1 import sweep_pb2, training_job_pb2, training_service_pb2, training_service_pb2_grpc

pytest.importorskip("ray")


def test_sweep_runs_on_ray(tmp_path):
    stack = Stack(home=tmp_path / "home", log_dir=tmp_path / "logs",
                  extra_env={"TRAINHOUSE_EXECUTOR": "ray", "RAY_ADDRESS": ""}).start()
    try:
        stub = training_service_pb2_grpc.TrainingServiceStub(stack.channel("training"))
        sweep = stub.CreateSweep(training_service_pb2.CreateSweepRequest(
            sweep=sweep_pb2.Sweep(
                agent_id="ray-sweep", max_trials=4, parallelism=2, seed=2,
                sampler=sweep_pb2.SWEEP_SAMPLER_GRID,
                space=[sweep_pb2.SweepParam(field="learning_rate", range=sweep_pb2.SweepRange(
                    low=0.0005, high=0.2, log=True, steps=4))],
                objective=sweep_pb2.SweepObjective(metric="validation_loss"),
                early_stopping=sweep_pb2.SweepEarlyStopping(rule=sweep_pb2.SWEEP_STOPPING_RULE_ASHA,
                                                            grace_epochs=2, reduction_factor=2),
                base_config=training_job_pb2.TrainingConfig(epochs=12, seed=0, early_stopping=False)),
            examples=examples_pb(make_examples(40, seed=5)))).sweep
        final = wait_sweep(stub, sweep.sweep_id, 400)
        assert final.state == sweep_pb2.SWEEP_STATE_COMPLETED, final.message
        assert len(final.trials) == 4 and final.best_trial.job_id
        lrs = sorted(t.params["learning_rate"] for t in final.trials)
        assert lrs[0] == pytest.approx(0.0005) and lrs[-1] == pytest.approx(0.2)
        # Ray runs the trials as it runs any job: their events come back through the same store.
        for trial in final.trials:
            events = list(stub.WatchJob(training_service_pb2.WatchJobRequest(job_id=trial.job_id)))
            assert any(e.WhichOneof("payload") == "epoch" for e in events)
        print("ray sweep:", [(round(t.params["learning_rate"], 4), t.objective, t.stopped_early) for t in final.trials])
    finally:
        stack.stop()
