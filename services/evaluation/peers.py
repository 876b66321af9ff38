"""EvaluationService's calls to its peers (ModelRegistry, TrainingService, DataService), gRPC only.

Peer failures become our domain errors: NOT_FOUND keeps the peer's resource and id, a peer's
FAILED_PRECONDITION stays one (e.g. an agent with no trained version), anything else is
UNAVAILABLE. Predict is the serving path every evaluation goes through.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from trainhouse.common.clients import channel
from trainhouse.core.errors import FailedPrecondition, InvalidArgument, NotFound, TrainhouseError, Unavailable
from trainhouse.common.example_codec import example_dicts
from trainhouse.common.grpc_errors import failure_of
from trainhouse.common.pagination import collect_pages
from trainhouse.v1 import (data_service_pb2, data_service_pb2_grpc, example_pb2, job_state_pb2, model_registry_pb2,
                           model_registry_pb2_grpc, model_version_pb2, sweep_pb2, training_job_pb2,
                           training_service_pb2, training_service_pb2_grpc)

TIMEOUT_S = 60.0
PREDICT_BATCH = 1000  # ModelRegistry.Predict accepts at most 1000 inputs per call
JOB_STATE_NAMES = {v: k.removeprefix("JOB_STATE_").lower() for k, v in job_state_pb2.JobState.items()}


def peer_error(err: grpc.RpcError, resource: str, resource_id: str, field: str = "") -> TrainhouseError:
    failure = failure_of(err)
    if failure.code == grpc.StatusCode.NOT_FOUND:
        meta = failure.metadata
        return NotFound(meta.get("resource", resource), meta.get("id", resource_id), failure.message or None)
    if failure.code == grpc.StatusCode.FAILED_PRECONDITION:
        return FailedPrecondition(failure.message, metadata=failure.metadata)
    if failure.code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(field or failure.field or resource, failure.message)
    return Unavailable(f"peer call failed ({failure.code.name}): {failure.message}")


@dataclass
class Scored:
    """One version's answers to a list of inputs."""

    agent_id: str
    version_id: str
    labels: list[str]
    outputs: list[str]
    confidence: list[float]
    # Per input: output -> probability over the whole catalog.
    distributions: list[dict[str, float]]
    seconds: float  # wall time of the batched Predict calls
    # Per input: did the version abstain (top probability below its out-of-scope threshold)?
    # ``outputs`` are the catalogue's top answers either way, so accuracy measures the ranking.
    abstained: list[bool] = field(default_factory=list)


class Peers:
    def registry(self) -> model_registry_pb2_grpc.ModelRegistryStub:
        return model_registry_pb2_grpc.ModelRegistryStub(channel("registry"))

    def training(self) -> training_service_pb2_grpc.TrainingServiceStub:
        return training_service_pb2_grpc.TrainingServiceStub(channel("training"))

    def data(self) -> data_service_pb2_grpc.DataServiceStub:
        return data_service_pb2_grpc.DataServiceStub(channel("data"))

    # --- registry ---------------------------------------------------------------------------
    def agent(self, agent_id: str) -> model_version_pb2.Agent:
        try:
            return self.registry().GetAgent(model_registry_pb2.GetAgentRequest(agent_id=agent_id),
                                            timeout=TIMEOUT_S).agent
        except grpc.RpcError as err:
            raise peer_error(err, "agent", agent_id) from None

    def version(self, agent_id: str, version_id: str) -> model_version_pb2.ModelVersion:
        try:
            return self.registry().GetVersion(model_registry_pb2.GetVersionRequest(
                agent_id=agent_id, version_id=version_id), timeout=TIMEOUT_S).version
        except grpc.RpcError as err:
            raise peer_error(err, "version", f"{agent_id}/{version_id}") from None

    def versions(self, agent_id: str) -> list[model_version_pb2.ModelVersion]:
        """Every version of the agent, newest first."""
        try:
            return collect_pages(partial(self.registry().ListVersions, timeout=TIMEOUT_S),
                                 model_registry_pb2.ListVersionsRequest(agent_id=agent_id, order_by="version_id desc"),
                                 "versions", 100)
        except grpc.RpcError as err:
            raise peer_error(err, "agent", agent_id) from None

    def serving_version(self, agent_id: str, version_id: str = "") -> model_version_pb2.ModelVersion:
        """The named version, else the active one, else the newest (as Predict chooses)."""
        if version_id:
            return self.version(agent_id, version_id)
        agent = self.agent(agent_id)
        if agent.active_version_id:
            return self.version(agent_id, agent.active_version_id)
        versions = self.versions(agent_id)
        if not versions:
            raise FailedPrecondition(f"agent '{agent_id}' has no trained version yet",
                                     metadata={"resource": "agent", "id": agent_id})
        return versions[0]

    def predict(self, agent_id: str, version_id: str, inputs: list[str], catalog_size: int) -> Scored:
        """Answers of one pinned version to every input, with the full distribution, in batches."""
        outputs: list[str] = []
        confidence: list[float] = []
        distributions: list[dict[str, float]] = []
        labels: list[str] = []
        abstained: list[bool] = []
        elapsed = 0.0
        stub = self.registry()
        try:
            for start in range(0, len(inputs), PREDICT_BATCH):
                t0 = time.perf_counter()
                resp = stub.Predict(model_registry_pb2.PredictRequest(
                    agent_id=agent_id, inputs=inputs[start:start + PREDICT_BATCH], version_id=version_id,
                    top_k=max(catalog_size, 1)), timeout=TIMEOUT_S)
                elapsed += time.perf_counter() - t0
                version_id = resp.version_id
                for p in resp.predictions:
                    outputs.append(p.top[0].output if p.out_of_scope and p.top else p.output)
                    abstained.append(bool(p.out_of_scope))
                    confidence.append(p.probability)
                    distributions.append({s.output: s.probability for s in p.top})
        except grpc.RpcError as err:
            raise peer_error(err, "agent", agent_id) from None
        if distributions:
            labels = sorted(distributions[0])
        return Scored(agent_id, version_id, labels, outputs, confidence, distributions, elapsed, abstained)

    def time_single_predictions(self, agent_id: str, version_id: str, inputs: list[str]) -> list[float]:
        """Seconds per single-input Predict round trip (the serving path a task takes)."""
        stub = self.registry()
        samples = []
        try:
            for text in inputs:
                t0 = time.perf_counter()
                stub.Predict(model_registry_pb2.PredictRequest(agent_id=agent_id, inputs=[text],
                                                               version_id=version_id, top_k=1), timeout=TIMEOUT_S)
                samples.append(time.perf_counter() - t0)
        except grpc.RpcError as err:
            raise peer_error(err, "agent", agent_id) from None
        return samples

    def version_artifact(self, agent_id: str, version_id: str) -> tuple[model_version_pb2.ModelVersion, bytes]:
        """The registered ONNX bytes of a version: exactly what Predict serves."""
        try:
            resp = self.registry().GetVersionArtifact(model_registry_pb2.GetVersionArtifactRequest(
                agent_id=agent_id, version_id=version_id), timeout=TIMEOUT_S)
        except grpc.RpcError as err:
            raise peer_error(err, "version", f"{agent_id}/{version_id}") from None
        return resp.version, resp.onnx_model

    # --- training ---------------------------------------------------------------------------
    def export_policy(self, job_id: str, checkpoint_id: str) -> training_service_pb2.ExportPolicyResponse:
        """A GRPO job's policy at a checkpoint ("" = best, "initial" = untrained) as ONNX."""
        try:
            return self.training().ExportPolicy(training_service_pb2.ExportPolicyRequest(
                job_id=job_id, checkpoint_id=checkpoint_id), timeout=TIMEOUT_S)
        except grpc.RpcError as err:
            raise peer_error(err, "job", job_id, field="checkpoint_id" if checkpoint_id else "job_id") from None

    def job(self, job_id: str) -> training_job_pb2.TrainingJob:
        try:
            return self.training().GetJob(training_service_pb2.GetJobRequest(job_id=job_id), timeout=TIMEOUT_S).job
        except grpc.RpcError as err:
            raise peer_error(err, "job", job_id) from None

    def completed_job(self, job_id: str, field: str) -> training_job_pb2.TrainingJob:
        """The job, or FAILED_PRECONDITION naming its state when it has not completed."""
        job = self.job(job_id)
        if job.state != job_state_pb2.JOB_STATE_COMPLETED or not job.model_version_id:
            state = JOB_STATE_NAMES.get(job.state, "unknown")
            raise FailedPrecondition(f"job '{job_id}' is {state}; only completed jobs can be evaluated",
                                     field=field, metadata={"resource": "job", "id": job_id, "state": state})
        return job

    def jobs(self, agent_id: str) -> list[training_job_pb2.TrainingJob]:
        try:
            return collect_pages(partial(self.training().ListJobs, timeout=TIMEOUT_S),
                                 training_service_pb2.ListJobsRequest(agent_id=agent_id), "jobs", 1000)
        except grpc.RpcError as err:
            raise peer_error(err, "agent", agent_id) from None

    def metric_points(self, job_id: str) -> list[tuple[str, int, float]]:
        try:
            points = collect_pages(partial(self.training().ListMetrics, timeout=TIMEOUT_S),
                                   training_service_pb2.ListMetricsRequest(job_id=job_id), "points", 10000)
        except grpc.RpcError as err:
            raise peer_error(err, "job", job_id) from None
        return [(p.name, p.epoch, p.value) for p in points]

    def _job_example_messages(self, job_id: str, split: str, field: str) -> list[example_pb2.Example]:
        try:
            return collect_pages(partial(self.training().ListJobExamples, timeout=TIMEOUT_S),
                                 training_service_pb2.ListJobExamplesRequest(job_id=job_id, split=split),
                                 "examples", 10000)
        except grpc.RpcError as err:
            raise peer_error(err, "job", job_id, field=field) from None

    def job_examples(self, job_id: str, split: str) -> list[dict[str, Any]]:
        return example_dicts(self._job_example_messages(job_id, split, "test_set_split"))

    def create_sweep(self, sweep: sweep_pb2.Sweep, job: training_job_pb2.TrainingJob) -> sweep_pb2.Sweep:
        """Starts `sweep` on `job`'s data: its dataset when it had one, else the examples it resolved,
        its validation split passed as the sweep's validation set, so every trial is judged on the
        examples the job itself was judged on."""
        request = training_service_pb2.CreateSweepRequest(sweep=sweep)
        if job.dataset_id:
            request.sweep.dataset_id = job.dataset_id
        else:
            request.examples.extend(self._job_example_messages(job.job_id, "train", "start_sweep"))
            request.validation_examples.extend(self._job_example_messages(job.job_id, "validation", "start_sweep"))
        try:
            return self.training().CreateSweep(request, timeout=TIMEOUT_S).sweep
        except grpc.RpcError as err:
            raise peer_error(err, "sweep", sweep.agent_id, field="start_sweep") from None

    # --- data -------------------------------------------------------------------------------
    def dataset_examples(self, dataset_id: str) -> tuple[str, list[dict[str, Any]]]:
        stub = self.data()
        try:
            ds = stub.GetDataset(data_service_pb2.GetDatasetRequest(dataset_id=dataset_id), timeout=TIMEOUT_S).dataset
            out: list[dict[str, Any]] = []
            for batch in stub.StreamExamples(data_service_pb2.StreamExamplesRequest(dataset_id=ds.dataset_id),
                                             timeout=300):
                out.extend(example_dicts(batch.examples))
        except grpc.RpcError as err:
            raise peer_error(err, "dataset", dataset_id, field="dataset_id") from None
        return ds.dataset_id, out


def job_config(job: training_job_pb2.TrainingJob) -> dict[str, Any]:
    """The job's resolved config as snake_case JSON values (enums as names)."""
    return MessageToDict(job.config, preserving_proto_field_name=True)


def job_state_name(job: training_job_pb2.TrainingJob) -> str:
    return JOB_STATE_NAMES.get(job.state, "unknown")
