"""GRPO rollout shards as Ray tasks on a local Ray instance: the same batches and the same training
result as in-process shards, and a sharded GRPO job through the stack on the Ray executor."""
from __future__ import annotations

import os

import numpy as np
import pytest
from google.protobuf import struct_pb2

from trainhouse.launcher import Stack
from trainhouse.core.grpo import GRPOConfig, GRPOTrainer, LocalRolloutPool, RayRolloutPool
from tests.grpo.tasks import make_tasks
from tests.grpo.test_rollout_shards import DATA, assert_same_batch, history
from tests.grpo.test_training import SMALL, Recorder, same_weights, weights
from tests.services.test_paradigms import queries_pb
from tests.services.test_training_grpc import wait_terminal
from trainhouse.v1 import job_state_pb2, training_job_pb2, training_service_pb2, training_service_pb2_grpc

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_address():
    """One local Ray instance for the module (starting one costs ~10 s); the stack joins it too.

    Ray gives its raylet a fixed 30 s to register; on a loaded 2-core machine (the previous
    module's Ray instance still shutting down) that start has timed out, so a failed start is
    retried once after a clean shutdown."""
    for attempt in (1, 2):
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception:  # ray raises a bare Exception when its node does not come up in time
            ray.shutdown()
            if attempt == 2:
                raise
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def test_ray_pool_returns_the_local_pools_batches(ray_address):
    cfg = GRPOConfig(rollout_shards=3, **SMALL)
    local = GRPOTrainer(cfg, DATA, rollout_pool=LocalRolloutPool())
    remote = GRPOTrainer(cfg, DATA, rollout_pool=RayRolloutPool())
    policy = local.initial_policy()
    ids = np.random.default_rng(5).permutation(len(DATA))[:cfg.batch_size]
    for iteration in (1, 2):  # the environment is put once, the policy every iteration
        a, local_workers = local._rollout(policy, ids, np.random.default_rng(iteration), iteration)
        b, ray_workers = remote._rollout(policy, ids, np.random.default_rng(iteration), iteration)
        assert_same_batch(a, b)
        assert local_workers == ["in-process"] * 3
        assert len(ray_workers) == 3 and all(f"pid {os.getpid()}" not in w for w in ray_workers)  # ran elsewhere
        assert all(t.query is remote.train_queries[ids[t.group_index]] for t in b.trajectories)
        # the shards' own time on other workers is billed; in-process shards are on the run's clock
        assert "remote_seconds" not in a.extra and isinstance(b.extra["remote_seconds"], float)


def test_training_with_ray_shards_equals_training_with_local_shards(ray_address):
    cfg = GRPOConfig(n_iterations=3, checkpoint_interval=3, rollout_shards=2, **SMALL)
    local = GRPOTrainer(cfg, DATA, rollout_pool=LocalRolloutPool()).train()
    rec = Recorder()
    remote = GRPOTrainer(cfg, DATA, None, rec, rollout_pool=RayRolloutPool()).train()
    assert same_weights(weights(remote.policy), weights(local.policy)) and history(remote) == history(local)
    placement = [p["message"] for p in rec.of("log") if "shards" in p["message"]]
    assert len(placement) == 1 and placement[0].startswith("rollouts run as 2 shards per iteration on the ray pool")


def test_sharded_grpo_job_on_the_ray_executor(ray_address, tmp_path):
    stack = Stack(home=tmp_path / "home", log_dir=tmp_path / "logs",
                  extra_env={"TRAINHOUSE_EXECUTOR": "ray", "TRAINHOUSE_RAY_ADDRESS": ray_address}).start()
    try:
        stub = training_service_pb2_grpc.TrainingServiceStub(stack.channel("training"))
        options = struct_pb2.Struct()
        options.update({"hidden_sizes": [16], "featurizer": {"dim": 512}})
        grpo = training_job_pb2.GrpoConfig(n_iterations=3, batch_size=8, n_trajectories_per_query=4,
                                           learning_rate=0.03, max_steps_per_trajectory=4, checkpoint_interval=3,
                                           rollout_shards=2)
        job_id = stub.StartJob(training_service_pb2.StartJobRequest(
            agent_id="ray-grpo", training_queries=queries_pb(make_tasks(100, seed=4)),
            config=training_job_pb2.TrainingConfig(method=job_state_pb2.TRAINING_METHOD_GRPO, grpo=grpo,
                                                   options=options))).job.job_id
        final = wait_terminal(stub, job_id, timeout=300)
        assert final.state == job_state_pb2.JOB_STATE_COMPLETED, (final.status_reason, final.error.message)
        assert final.progress.current_iteration == 3 and final.model_version_id
        assert final.metrics["trajectories_generated"] == 3 * 8 * 4
        events = list(stub.WatchJob(training_service_pb2.WatchJobRequest(job_id=job_id)))
        logs = [e.log.message for e in events if e.WhichOneof("payload") == "log"]
        placement = [m for m in logs if "shards per iteration" in m]
        assert len(placement) == 1 and "2 shards per iteration on the ray pool" in placement[0], logs
    finally:
        stack.stop()
