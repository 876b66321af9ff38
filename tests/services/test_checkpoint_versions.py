"""Any checkpoint as a version (issue 18 item 3), over real gRPC: a mid-run checkpoint is
registered with its lineage, serves exactly its own weights when pinned, is canary-deployed and
takes part of the traffic; registration is idempotent per (job, checkpoint, step); selectors and
errors; another account's job is NOT_FOUND."""
from __future__ import annotations

import os
import time
import uuid

import grpc
import httpx
import numpy as np
import pytest

from trainhouse.common.grpc_errors import failure_of
from trainhouse.core.featurizer import FeaturizerConfig
from trainhouse.core.trainer.checkpoint import load_checkpoint
from trainhouse.core.trainer.examples import LabelMap
from trainhouse.core.trainer.mlp import MLP, TrainedModel
from tests.cli.test_cli import ok_json
from tests.gateway.conftest import make_token
from tests.intents import make_examples
from tests.services.test_training_grpc import examples_pb, wait_terminal
from trainhouse.v1 import (deployment_pb2 as D, example_pb2, job_state_pb2, model_registry_pb2 as R,
                           model_registry_pb2_grpc, model_version_pb2 as VS, training_job_pb2,
                           training_service_pb2 as pb, training_service_pb2_grpc)

TEXTS = ["my parcel has not arrived", "I want my money back", "reset my password please", "what time do you open"]


def interval_checkpoints(training, job_id: str) -> list:
    listed = training.ListCheckpoints(pb.ListCheckpointsRequest(job_id=job_id)).checkpoints
    return [c for c in listed if c.kind == "interval"]


@pytest.fixture(scope="module")
def running(training):
    """A long supervised job, RUNNING with at least two interval checkpoints; cancelled at the end."""
    agent = f"ckpt-{uuid.uuid4().hex[:8]}"
    config = training_job_pb2.TrainingConfig(epochs=10000, early_stopping=False, checkpoint_interval=3,
                                             learning_rate=0.01, batch_size=16, seed=5)
    job = training.StartJob(pb.StartJobRequest(agent_id=agent, examples=examples_pb(make_examples(60, seed=3)),
                                               config=config)).job
    deadline = time.monotonic() + 120
    while len(interval_checkpoints(training, job.job_id)) < 2:
        assert time.monotonic() < deadline, "the job wrote no two checkpoints"
        time.sleep(0.2)
    yield agent, job.job_id
    try:
        training.CancelJob(pb.CancelJobRequest(job_id=job.job_id))
    except grpc.RpcError:
        pass


def register(training, job_id: str, **selector) -> VS.ModelVersion:
    return training.RegisterCheckpoint(pb.RegisterCheckpointRequest(job_id=job_id, **selector)).version


def checkpoint_model(stack, job_id: str, checkpoint_id: str, temperature: float) -> TrainedModel:
    folder = stack.home / "training" / "jobs" / job_id / "checkpoints"
    state = load_checkpoint(str(folder / f"{checkpoint_id}.npz"))
    mlp = MLP.from_state_dict(state.params)
    return TrainedModel(params=mlp.params, label_map=LabelMap.from_list(state.label_map),
                        featurizer_config=FeaturizerConfig.from_dict(state.featurizer),
                        hidden_sizes=tuple(mlp.hidden_sizes), metadata={}, temperature=temperature)


def test_mid_run_checkpoint_registers_serves_and_canaries(stack, training, registry, running):
    agent, job_id = running
    first, second = interval_checkpoints(training, job_id)[:2]
    assert training.GetJob(pb.GetJobRequest(job_id=job_id)).job.state == job_state_pb2.JOB_STATE_RUNNING

    v1 = register(training, job_id, step=first.step, note="early look")
    assert (v1.job_id, v1.checkpoint.checkpoint_id, v1.checkpoint.step, v1.checkpoint.epoch, v1.checkpoint.kind) == \
        (job_id, first.checkpoint_id, first.step, first.epoch, "interval")
    assert v1.tags["note"] == "early look" and v1.method == "supervised"
    assert v1.metrics["validation_loss"] == pytest.approx(first.metrics["validation_loss"])
    assert "temperature" in v1.metrics and "out_of_scope_threshold" in v1.metrics
    # The agent served nothing: the first-version rule applies to a checkpoint version as to any.
    assert v1.active and v1.serving_status == VS.SERVING_STATUS_SERVING

    v2 = register(training, job_id, checkpoint_id=second.checkpoint_id)
    assert v2.version_id != v1.version_id and v2.checkpoint.step == second.step
    assert not v2.active and v2.serving_status == VS.SERVING_STATUS_REGISTERED  # never serves by itself

    # Pinned, v2 answers with the checkpoint's own weights (calibrated at registration).
    expected = checkpoint_model(stack, job_id, second.checkpoint_id, v2.metrics["temperature"]).predict_proba(TEXTS)
    served = registry.Predict(R.PredictRequest(agent_id=agent, inputs=TEXTS, version_id=v2.version_id, top_k=1))
    assert served.version_id == v2.version_id
    labels = list(v2.labels)
    for row, prediction in zip(expected, served.predictions):
        assert prediction.top[0].output == labels[int(np.argmax(row))]
        assert prediction.top[0].probability == pytest.approx(float(row.max()), abs=1e-4)
    other = registry.Predict(R.PredictRequest(agent_id=agent, inputs=TEXTS, version_id=v1.version_id, top_k=1))
    assert [p.top[0].probability for p in other.predictions] != [p.top[0].probability for p in served.predictions]

    # Canary: half the keys go to the checkpoint version.
    canary = registry.DeployVersion(R.DeployVersionRequest(
        agent_id=agent, version_id=v2.version_id, actor="tester",
        rollout=D.RolloutSpec(strategy=D.ROLLOUT_STRATEGY_CANARY, percentage=50, duration_text="1h"))).deployment
    assert canary.state == D.DEPLOYMENT_STATE_ROLLING_OUT and canary.previous_version_id == v1.version_id
    routed = [registry.Predict(R.PredictRequest(agent_id=agent, inputs=TEXTS[:1], request_key=f"user-{i}"))
              for i in range(40)]
    on_canary = [r for r in routed if r.version_id == v2.version_id]
    assert 5 <= len(on_canary) <= 35
    assert all(r.arm == D.SERVING_ARM_CANDIDATE and r.deployment_id == canary.deployment_id for r in on_canary)
    assert {r.version_id for r in routed} == {v1.version_id, v2.version_id}


def test_registration_is_idempotent_per_checkpoint(training, running):
    _, job_id = running
    first = interval_checkpoints(training, job_id)[0]
    by_step = register(training, job_id, step=first.step)
    by_id = register(training, job_id, checkpoint_id=first.checkpoint_id)
    assert by_step.version_id == by_id.version_id


def test_the_jobs_own_registration_is_not_answered_by_a_checkpoint_version(stack, training, running):
    """The registry's idempotency is per (job, checkpoint, step): the job's final model (no checkpoint)
    is its own version even after checkpoint versions of the job exist."""
    agent, job_id = running
    big = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
    registry = model_registry_pb2_grpc.ModelRegistryStub(stack.channel("registry", options=big))
    checkpoint_version = register(training, job_id, step=interval_checkpoints(training, job_id)[0].step)
    artifact = registry.GetVersionArtifact(R.GetVersionArtifactRequest(
        agent_id=agent, version_id=checkpoint_version.version_id)).onnx_model
    final = registry.RegisterVersion(R.RegisterVersionRequest(agent_id=agent, onnx_model=artifact, job_id=job_id,
                                                              method="supervised")).version
    assert final.version_id != checkpoint_version.version_id and not final.HasField("checkpoint")
    again = registry.RegisterVersion(R.RegisterVersionRequest(agent_id=agent, onnx_model=artifact, job_id=job_id,
                                                              method="supervised")).version
    assert again.version_id == final.version_id
    with pytest.raises(grpc.RpcError) as err:
        registry.RegisterVersion(R.RegisterVersionRequest(
            agent_id=agent, onnx_model=artifact, checkpoint=VS.CheckpointLineage(checkpoint_id="epoch-0003", step=12)))
    assert failure_of(err.value).field == "job_id"


def test_best_and_last_selectors(training, running):
    _, job_id = running
    best = register(training, job_id, which="best")
    assert best.checkpoint.checkpoint_id == "best" and best.checkpoint.kind == "best"
    last = register(training, job_id, which="last")
    assert last.checkpoint.step >= interval_checkpoints(training, job_id)[1].step
    assert last.job_id == best.job_id == job_id


@pytest.mark.parametrize("selector, code, field", [
    ({}, grpc.StatusCode.INVALID_ARGUMENT, "selector"),
    ({"step": 0}, grpc.StatusCode.INVALID_ARGUMENT, "step"),
    ({"which": "worst"}, grpc.StatusCode.INVALID_ARGUMENT, "which"),
    ({"checkpoint_id": " "}, grpc.StatusCode.INVALID_ARGUMENT, "checkpoint_id"),
    ({"checkpoint_id": "epoch-9999999"}, grpc.StatusCode.NOT_FOUND, None),
    ({"step": 10 ** 12}, grpc.StatusCode.NOT_FOUND, None),
])
def test_bad_selectors(training, running, selector, code, field):
    with pytest.raises(grpc.RpcError) as err:
        register(training, running[1], **selector)
    failure = failure_of(err.value)
    assert failure.code == code, failure
    if field:
        assert failure.field == field, failure


def test_unknown_and_other_accounts_jobs_are_not_found(stack, training, running):
    with pytest.raises(grpc.RpcError) as err:
        register(training, "job-missing", which="last")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        token = make_token(client, stack.admin_token, ["training:start", "training:view"],
                           account=f"ckpt-other-{uuid.uuid4().hex[:6]}")
    other = training_service_pb2_grpc.TrainingServiceStub(stack.channel("training", token=token))
    with pytest.raises(grpc.RpcError) as err:
        other.RegisterCheckpoint(pb.RegisterCheckpointRequest(job_id=running[1], which="last"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_gateway_route(stack, training, running):
    _, job_id = running
    second = interval_checkpoints(training, job_id)[1]
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    base = f"/api/v1/training/train-agent/{job_id}/checkpoints"
    with httpx.Client(base_url=stack.gateway_url, timeout=60, headers=headers) as client:
        r = client.post(f"{base}/{second.checkpoint_id}/register", json={"note": "from http"})
        assert r.status_code == 201, r.text
        version = r.json()["data"]
        assert version["jobId"] == job_id and version["status"] in ("registered", "deployed")
        assert version["checkpoint"] == {"checkpointId": second.checkpoint_id, "step": second.step,
                                         "epoch": second.epoch, "kind": "interval"}
        by_grpc = register(training, job_id, step=second.step)
        assert version["versionId"] == by_grpc.version_id  # one version per checkpoint, whatever the door
        best = client.post(f"{base}/best/register")
        assert best.status_code == 201 and best.json()["data"]["checkpoint"]["kind"] == "best"
        assert client.post(f"{base}/epoch-9999999/register").status_code == 404
        assert client.post("/api/v1/training/train-agent/job-missing/checkpoints/last/register").status_code == 404


def test_cli_over_both_transports(stack, training, running):
    _, job_id = running
    first = interval_checkpoints(training, job_id)[0]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TRAINHOUSE_")}
    environment.update(TRAINHOUSE_HOME=str(stack.home), COLUMNS="200",
                       TRAINHOUSE_GATEWAY_PORT=stack.gateway_url.rsplit(":", 1)[1],
                       **{f"TRAINHOUSE_{n.upper()}_ADDR": stack.address(n)
                          for n in ("training", "data", "evaluation", "registry")})
    over_grpc = ok_json(environment, "register-checkpoint", job_id, "--step", str(first.step))
    assert over_grpc["job_id"] == job_id and over_grpc["checkpoint"]["step"] == first.step
    over_http = ok_json(environment, "register-checkpoint", job_id, "--step", str(first.step),
                        "--url", stack.gateway_url, "--token", stack.admin_token)
    assert over_http["version_id"] == over_grpc["version_id"]
    assert over_http["checkpoint"] == over_grpc["checkpoint"]
    named = ok_json(environment, "register-checkpoint", job_id, "-c", first.checkpoint_id,
                    "--url", stack.gateway_url, "--token", stack.admin_token)
    assert named["version_id"] == over_grpc["version_id"]


def test_cancelled_job_checkpoint_registers(training, running):
    """Any state: after the cancel, the cancel checkpoint is the job's last."""
    _, job_id = running
    training.CancelJob(pb.CancelJobRequest(job_id=job_id))
    job = wait_terminal(training, job_id)
    assert job.state == job_state_pb2.JOB_STATE_CANCELLED
    last = register(training, job_id, which="last")
    assert last.checkpoint.kind == "cancel" and last.checkpoint.checkpoint_id.startswith("cancel-step-")


def test_other_paradigms_register_their_checkpoints(training, registry):
    """A GRPO policy's checkpoint registers as the policy graph the registry serves for a GRPO job;
    a reinforcement checkpoint as its weights, uncalibrated as reinforcement's own model is."""
    from tests.grpo.tasks import make_tasks
    from tests.services.test_paradigms import queries_pb

    M = job_state_pb2
    grpo = training_job_pb2.GrpoConfig(n_iterations=6, batch_size=8, n_trajectories_per_query=4, learning_rate=0.03,
                                       max_steps_per_trajectory=4, checkpoint_interval=3)
    agent = f"ckpt-grpo-{uuid.uuid4().hex[:6]}"
    job = training.StartJob(pb.StartJobRequest(
        agent_id=agent, training_queries=queries_pb(make_tasks(100, seed=1)),
        evaluation_queries=queries_pb(make_tasks(8, seed=2, held_out=True)),
        config=training_job_pb2.TrainingConfig(method=M.TRAINING_METHOD_GRPO, grpo=grpo))).job
    assert wait_terminal(training, job.job_id, timeout=300).state == M.JOB_STATE_COMPLETED
    policy = register(training, job.job_id, step=3)
    assert policy.method == "grpo" and policy.checkpoint.checkpoint_id == "iter-00003"
    best = register(training, job.job_id, which="best")
    assert best.checkpoint.kind == "best"
    served = registry.Predict(R.PredictRequest(agent_id=agent, inputs=["what is 3 plus 4"],
                                               version_id=policy.version_id))
    assert served.version_id == policy.version_id and served.predictions[0].output

    rated = []
    for i, e in enumerate(make_examples(20, seed=25)):
        good = i % 2 == 0
        wrong = "billing" if e["expected_output"] != "billing" else "shipping"
        served_output = e["expected_output"] if good else wrong
        rated.append(example_pb2.RatedExample(input=e["input"], output=served_output, rating=5 if good else 1))
    agent = f"ckpt-rl-{uuid.uuid4().hex[:6]}"
    config = training_job_pb2.TrainingConfig(method=M.TRAINING_METHOD_REINFORCEMENT, epochs=4, checkpoint_interval=2)
    job = training.StartJob(pb.StartJobRequest(agent_id=agent, rated_examples=rated, config=config)).job
    assert wait_terminal(training, job.job_id, timeout=300).state == M.JOB_STATE_COMPLETED
    version = register(training, job.job_id, checkpoint_id="epoch-0002")
    assert version.method == "reinforcement" and "temperature" not in version.metrics
    assert registry.Predict(R.PredictRequest(agent_id=agent, inputs=TEXTS[:1],
                                             version_id=version.version_id)).version_id == version.version_id
