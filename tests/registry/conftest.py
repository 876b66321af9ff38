"""Shared pieces for the registry tests: stubs on the session stack and versions trained for real.

Every agent's versions come from real TrainingService jobs, started together once per session
(the first batch concurrently on two accounts, so the 2-core machine trains them in parallel).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import grpc
import pytest

from trainhouse.common.grpc_errors import failure_of
from trainhouse.common.server import GRPC_OPTIONS
from tests.intents import make_examples
from trainhouse.v1 import (example_pb2, job_state_pb2, model_registry_pb2, model_registry_pb2_grpc, training_job_pb2,
                           training_service_pb2, training_service_pb2_grpc)

TERMINAL = {job_state_pb2.JOB_STATE_COMPLETED, job_state_pb2.JOB_STATE_FAILED, job_state_pb2.JOB_STATE_CANCELLED}
THREE_INTENTS = ("billing", "technical", "shipping")


def examples_pb(items: list[dict]) -> list[example_pb2.Example]:
    return [example_pb2.Example(input=e["input"], expected_output=e["expected_output"]) for e in items]


def start_job(training, agent_id: str, seed: int, account: str, intents: tuple[str, ...] | None = None) -> str:
    data = make_examples(25, seed=seed)
    if intents is not None:
        data = [e for e in data if e["expected_output"] in intents]
    config = training_job_pb2.TrainingConfig(epochs=6, learning_rate=0.02, batch_size=16, seed=seed,
                                             checkpoint_interval=100)
    return training.StartJob(training_service_pb2.StartJobRequest(
        agent_id=agent_id, examples=examples_pb(data), config=config, account_id=account)).job.job_id


def wait_jobs(training, job_ids: list[str], timeout: float = 180) -> list[training_job_pb2.TrainingJob]:
    deadline = time.monotonic() + timeout
    done: dict[str, training_job_pb2.TrainingJob] = {}
    while time.monotonic() < deadline and len(done) < len(job_ids):
        for job_id in job_ids:
            if job_id not in done:
                job = training.GetJob(training_service_pb2.GetJobRequest(job_id=job_id)).job
                if job.state in TERMINAL:
                    assert job.state == job_state_pb2.JOB_STATE_COMPLETED, (job_id, job.error.message)
                    done[job_id] = job
        time.sleep(0.2)
    assert len(done) == len(job_ids), "jobs did not finish"
    return [done[j] for j in job_ids]


@dataclass
class Trained:
    """agent id -> version ids in registration order (and their jobs)."""

    versions: dict[str, list[str]]
    jobs: dict[str, list[str]]


@pytest.fixture(scope="session")
def training_stub(stack):
    with stack.channel("training") as ch:
        yield training_service_pb2_grpc.TrainingServiceStub(ch)


@pytest.fixture(scope="session")
def registry(stack):
    with stack.channel("registry", options=GRPC_OPTIONS) as ch:  # artifacts are > 4 MiB
        yield model_registry_pb2_grpc.ModelRegistryStub(ch)


@pytest.fixture(scope="session")
def trained(training_stub) -> Trained:
    """reg-ver: v1.0.0, v1.1.0 (four intents), then v2.0.0 (three intents: an output removed);
    reg-dep, reg-canary: two four-intent versions each; reg-auto, reg-ollama: one each."""
    t = training_stub
    first = {
        "reg-ver": [start_job(t, "reg-ver", 1, "reg-a")],
        "reg-dep": [start_job(t, "reg-dep", 3, "reg-a"), start_job(t, "reg-dep", 4, "reg-a")],
        "reg-canary": [start_job(t, "reg-canary", 5, "reg-b"), start_job(t, "reg-canary", 6, "reg-b")],
        "reg-auto": [start_job(t, "reg-auto", 7, "reg-b")],
    }
    jobs = {agent: wait_jobs(t, ids) for agent, ids in first.items()}
    # Sequential on purpose: the version rule compares each version with the agent's newest.
    jobs["reg-ver"] += wait_jobs(t, [start_job(t, "reg-ver", 2, "reg-a")])
    jobs["reg-ver"] += wait_jobs(t, [start_job(t, "reg-ver", 8, "reg-a", THREE_INTENTS)])
    versions = {agent: [j.model_version_id for j in js] for agent, js in jobs.items()}
    for agent in ("reg-dep", "reg-canary"):
        versions[agent].sort(key=lambda v: tuple(int(x) for x in v[1:].split(".")))
    return Trained(versions, {agent: [j.job_id for j in js] for agent, js in jobs.items()})


def rpc_failure(call, *args, **kwargs):
    """Run a call that must fail; its RpcFailure (code, field, message)."""
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kwargs)
    return failure_of(info.value)


def predict(registry, agent_id: str, key: str = "", text: str = "my parcel has not arrived", **kw):
    return registry.Predict(model_registry_pb2.PredictRequest(agent_id=agent_id, inputs=[text], request_key=key,
                                                              **kw))
