"""Real jobs for the evaluation tests, trained once through TrainingService on the session stack.

``weak`` and ``strong`` train the same agent on the same examples with the same seed (so they
hold out the same validation examples): weak for 1 epoch at a tiny learning rate, strong for 12.
weak finishes first, so its version serves first and strong's is the agent's newest; strong's is
then deployed, so it is also what the agent serves. Two more agents give the
platform more models to rank benchmark scores against, and ``garbage`` learns the same task with
every label rotated to another intent: a model that is systematically wrong on the real task.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import grpc
import pytest

from tests.intents import make_examples
from trainhouse.v1 import (data_service_pb2, data_service_pb2_grpc, evaluation_service_pb2, evaluation_service_pb2_grpc, example_pb2,
                           job_state_pb2, model_registry_pb2, model_registry_pb2_grpc, training_job_pb2, training_service_pb2,
                           training_service_pb2_grpc)

AGENT = "eval-router"
GARBAGE_AGENT = "eval-garbage"
TERMINAL = {job_state_pb2.JOB_STATE_COMPLETED, job_state_pb2.JOB_STATE_FAILED, job_state_pb2.JOB_STATE_CANCELLED}


def examples_pb(items: list[dict]) -> list[example_pb2.Example]:
    return [example_pb2.Example(input=e["input"], expected_output=e["expected_output"],
                                feedback=e.get("feedback", "")) for e in items]


def wait_done(training, job_id: str, timeout: float = 180) -> training_job_pb2.TrainingJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = training.GetJob(training_service_pb2.GetJobRequest(job_id=job_id)).job
        if job.state in TERMINAL:
            assert job.state == job_state_pb2.JOB_STATE_COMPLETED, job.error.message
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


@dataclass
class Trained:
    weak: training_job_pb2.TrainingJob
    strong: training_job_pb2.TrainingJob
    other: training_job_pb2.TrainingJob      # another agent, other examples
    extra: list[training_job_pb2.TrainingJob]
    garbage: training_job_pb2.TrainingJob     # trained on rotated labels
    dataset_id: str


def _evaluation_reaches_training(stack) -> bool:  # noqa: ANN001
    with stack.channel("evaluation") as ch:
        stub = evaluation_service_pb2_grpc.EvaluationServiceStub(ch)
        try:
            stub.EvaluateTrainingResults(evaluation_service_pb2.EvaluateTrainingResultsRequest(job_id="job-probe"),
                                         timeout=30)
        except grpc.RpcError as err:
            return err.code() != grpc.StatusCode.UNAVAILABLE
    return True


@pytest.fixture(scope="package")
def channels(stack):
    # services/launcher.py starts EvaluationService before TrainingService, so with port 0 the
    # evaluation process has no TRAINHOUSE_TRAINING_ADDR. Restarting it once (same port) hands it
    # every peer's address. Remove when the launcher starts "evaluation" after "training".
    if not _evaluation_reaches_training(stack):
        stack.launcher.restart("evaluation")
    chans = {name: stack.channel(name) for name in ("training", "evaluation", "registry", "data")}
    yield chans
    for ch in chans.values():
        ch.close()


@pytest.fixture(scope="package")
def training(channels):
    return training_service_pb2_grpc.TrainingServiceStub(channels["training"])


@pytest.fixture(scope="package")
def ev(channels):
    return evaluation_service_pb2_grpc.EvaluationServiceStub(channels["evaluation"])


@pytest.fixture(scope="package")
def registry(channels):
    return model_registry_pb2_grpc.ModelRegistryStub(channels["registry"])


@pytest.fixture(scope="package")
def trained(training, channels) -> Trained:
    data = make_examples(30, seed=11)

    def start(agent: str, examples: list[dict], **config) -> str:
        cfg = training_job_pb2.TrainingConfig(batch_size=16, seed=3, validation_split=0.25, **config)
        return training.StartJob(training_service_pb2.StartJobRequest(
            agent_id=agent, examples=examples_pb(examples), config=cfg)).job.job_id

    weak_id = start(AGENT, data, epochs=1, learning_rate=0.0002, early_stopping=False)
    others = [start("eval-router-other", make_examples(30, seed=12), epochs=8, learning_rate=0.01)]
    others += [start(f"eval-bench-{i}", make_examples(15, seed=20 + i), epochs=3 + 2 * i, learning_rate=0.01)
               for i in range(2)]
    intents = sorted({e["expected_output"] for e in data})
    rotated = {label: intents[(i + 1) % len(intents)] for i, label in enumerate(intents)}
    others.append(start(GARBAGE_AGENT, [{**e, "expected_output": rotated[e["expected_output"]]} for e in data],
                        epochs=8, learning_rate=0.01))
    weak = wait_done(training, weak_id)
    strong = wait_done(training, start(AGENT, data, epochs=12, learning_rate=0.01))
    # weak's version serves as the agent's first; the newer one serves only once deployed.
    model_registry_pb2_grpc.ModelRegistryStub(channels["registry"]).DeployVersion(
        model_registry_pb2.DeployVersionRequest(agent_id=AGENT, version_id=strong.model_version_id, actor="tests"))
    done = [wait_done(training, job_id) for job_id in others]
    data_stub = data_service_pb2_grpc.DataServiceStub(channels["data"])
    ds = data_stub.CreateDataset(data_service_pb2.CreateDatasetRequest(
        dataset_id="eval-testset-v1", examples=examples_pb(make_examples(10, seed=99)))).dataset
    return Trained(weak=weak, strong=strong, other=done[0], extra=done[1:3], garbage=done[3],
                   dataset_id=ds.dataset_id)
