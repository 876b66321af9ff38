"""TrainingService's calls to its peers (DataService, ModelRegistry), over gRPC only."""
from __future__ import annotations

import datetime as dt
import hashlib
from functools import partial
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from trainhouse.common.clients import channel
from trainhouse.common.pagination import collect_pages
from trainhouse.common.timeutil import to_timestamp
from trainhouse.core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from trainhouse.common.grpc_errors import failure_of
from trainhouse.common.example_codec import example_dicts, example_proto
from trainhouse.v1 import (data_service_pb2, data_service_pb2_grpc, feedback_pb2, model_registry_pb2,
                           model_registry_pb2_grpc, model_version_pb2)

TIMEOUT_S = 30.0
FEEDBACK_PAGE = 1000
MAX_FEEDBACK = 100_000


def _unavailable(service: str, err: grpc.RpcError) -> Unavailable:
    return Unavailable(f"{service} is unavailable: {failure_of(err).message}")


def fetch_dataset(dataset_id: str) -> tuple[str, list[dict[str, Any]]]:
    """Resolve a dataset id ("latest" allowed) and read all its examples."""
    stub = data_service_pb2_grpc.DataServiceStub(channel("data"))
    try:
        ds = stub.GetDataset(data_service_pb2.GetDatasetRequest(dataset_id=dataset_id), timeout=TIMEOUT_S).dataset
        examples: list[dict[str, Any]] = []
        for batch in stub.StreamExamples(data_service_pb2.StreamExamplesRequest(dataset_id=ds.dataset_id),
                                         timeout=300):
            examples.extend(example_dicts(batch.examples))
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.NOT_FOUND:
            raise NotFound("dataset", dataset_id) from None
        raise _unavailable("DataService", err) from None
    return ds.dataset_id, examples


def module_dataset(module_id: str, count: int) -> tuple[str, list[dict[str, Any]]]:
    """The examples a training module stands for (see StartJobRequest.module_id): generated from
    its template once per (template, count), with a seed derived from both, and kept as a dataset
    so every job that names the module trains on the same, inspectable examples."""
    stub = data_service_pb2_grpc.DataServiceStub(channel("data"))
    try:
        module = stub.GetTrainingModule(data_service_pb2.GetTrainingModuleRequest(module_id=module_id),
                                        timeout=TIMEOUT_S).module
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.NOT_FOUND:
            raise NotFound("module", module_id) from None
        raise _unavailable("DataService", err) from None
    digest = hashlib.sha256(module.template.SerializeToString(deterministic=True)).hexdigest()
    dataset_id = f"module-{module_id}"[:96] + f"-{digest[:10]}-n{count}"
    try:
        return fetch_dataset(dataset_id)
    except NotFound:
        pass
    try:
        stub.GenerateSyntheticData(data_service_pb2.GenerateSyntheticDataRequest(
            module_id=module_id, count=count, seed=int(digest[10:22], 16) + count, dataset_id=dataset_id),
            timeout=300)
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.ALREADY_EXISTS:  # another job generated it first: fine
            raise _unavailable("DataService", err) from None
    return fetch_dataset(dataset_id)


def ensure_agent(agent_id: str, account: str) -> None:
    """Training an unknown agent registers it for the job's `account`, like a first model log in MLflow."""
    stub = model_registry_pb2_grpc.ModelRegistryStub(channel("registry"))
    try:
        stub.GetAgent(model_registry_pb2.GetAgentRequest(agent_id=agent_id), timeout=TIMEOUT_S)
        return
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.NOT_FOUND:
            raise _unavailable("ModelRegistry", err) from None
    try:
        stub.CreateAgent(model_registry_pb2.CreateAgentRequest(agent_id=agent_id, name=agent_id, account_id=account),
                         timeout=TIMEOUT_S)
        return
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise _unavailable("ModelRegistry", err) from None
    try:  # lost a race with another job of this account (fine), or the id is another account's
        stub.GetAgent(model_registry_pb2.GetAgentRequest(agent_id=agent_id), timeout=TIMEOUT_S)
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.NOT_FOUND:
            raise AlreadyExists(f"agent id '{agent_id}' is taken; choose another id", field="agent_id",
                                metadata={"resource": "agent", "id": agent_id}) from None
        raise _unavailable("ModelRegistry", err) from None


def agent_account(agent_id: str) -> str | None:
    """The account owning `agent_id` (as the caller sees it); None when there is no such agent."""
    stub = model_registry_pb2_grpc.ModelRegistryStub(channel("registry"))
    try:
        return stub.GetAgent(model_registry_pb2.GetAgentRequest(agent_id=agent_id),
                             timeout=TIMEOUT_S).agent.account_id or None
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise _unavailable("ModelRegistry", err) from None


def serving_version(agent_id: str) -> str:
    """The version that serves the agent's production ('' when nothing does)."""
    stub = model_registry_pb2_grpc.ModelRegistryStub(channel("registry"))
    try:
        return stub.GetAgent(model_registry_pb2.GetAgentRequest(agent_id=agent_id),
                             timeout=TIMEOUT_S).agent.active_version_id
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.NOT_FOUND:
            raise NotFound("agent", agent_id) from None
        raise _unavailable("ModelRegistry", err) from None


def recorded_feedback(agent_id: str, since: dt.datetime | None,
                      before: dt.datetime | None = None) -> list[feedback_pb2.FeedbackRecord]:
    """The agent's feedback records created at or after `since` (None: any time) and, when given,
    before `before` (at most MAX_FEEDBACK, newest first).

    ListFeedback answers newest first, so paging stops at the first older record. NOT_FOUND for an
    unknown agent: adapting needs an agent whose answers were judged.
    """
    stub = model_registry_pb2_grpc.ModelRegistryStub(channel("registry"))
    out: list[feedback_pb2.FeedbackRecord] = []
    token = ""
    while True:
        try:
            resp = stub.ListFeedback(model_registry_pb2.ListFeedbackRequest(
                agent_id=agent_id, page_size=FEEDBACK_PAGE, page_token=token), timeout=TIMEOUT_S)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound("agent", agent_id) from None
            raise _unavailable("ModelRegistry", err) from None
        for record in resp.feedback:
            created = record.create_time.ToDatetime(tzinfo=dt.timezone.utc)
            if since is not None and created < since:
                return out
            if before is None or created < before:
                out.append(record)
        token = resp.next_page_token
        if not token or len(out) >= MAX_FEEDBACK:
            return out[:MAX_FEEDBACK]


def get_agent(agent_id: str) -> model_version_pb2.Agent:
    """The registry's agent (its serving version is `active_version_id`); NOT_FOUND when unknown."""
    stub = model_registry_pb2_grpc.ModelRegistryStub(channel("registry"))
    try:
        return stub.GetAgent(model_registry_pb2.GetAgentRequest(agent_id=agent_id), timeout=TIMEOUT_S).agent
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.NOT_FOUND:
            raise NotFound("agent", agent_id) from None
        raise _unavailable("ModelRegistry", err) from None


def list_agents() -> list[model_version_pb2.Agent]:
    """Every agent the registry knows, oldest first."""
    stub = model_registry_pb2_grpc.ModelRegistryStub(channel("registry"))
    try:
        return collect_pages(partial(stub.ListAgents, timeout=TIMEOUT_S), model_registry_pb2.ListAgentsRequest(),
                             "agents", 1000)
    except grpc.RpcError as err:
        raise _unavailable("ModelRegistry", err) from None


def get_version(agent_id: str, version_id: str) -> model_version_pb2.ModelVersion:
    stub = model_registry_pb2_grpc.ModelRegistryStub(channel("registry"))
    try:
        return stub.GetVersion(model_registry_pb2.GetVersionRequest(agent_id=agent_id, version_id=version_id),
                               timeout=TIMEOUT_S).version
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.NOT_FOUND:
            raise NotFound("version", f"{agent_id}/{version_id}") from None
        raise _unavailable("ModelRegistry", err) from None


def count_feedback(agent_id: str, since: dt.datetime | None, before: dt.datetime) -> int:
    """The agent's feedback records created in [since, before) (ModelRegistry.CountFeedback)."""
    stub = model_registry_pb2_grpc.ModelRegistryStub(channel("registry"))
    request = model_registry_pb2.CountFeedbackRequest(agent_id=agent_id, before=to_timestamp(before),
                                                      since=to_timestamp(since))
    try:
        return int(stub.CountFeedback(request, timeout=TIMEOUT_S).count)
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.NOT_FOUND:
            raise NotFound("agent", agent_id) from None
        raise _unavailable("ModelRegistry", err) from None


def _trajectory_window(agent_id: str, since: dt.datetime | None,
                       before: dt.datetime) -> data_service_pb2.TrajectoryFilter:
    return data_service_pb2.TrajectoryFilter(agent_id=agent_id, since=to_timestamp(since),
                                             before=to_timestamp(before))


def count_trajectories(agent_id: str, since: dt.datetime | None, before: dt.datetime) -> int | None:
    """The agent's trajectories first recorded in [since, before) (DataService.CountTrajectories);
    None when the DataService cannot answer."""
    stub = data_service_pb2_grpc.DataServiceStub(channel("data"))
    request = data_service_pb2.CountTrajectoriesRequest(filter=_trajectory_window(agent_id, since, before))
    try:
        return int(stub.CountTrajectories(request, timeout=5.0).count)
    except grpc.RpcError:
        return None


def trajectory_examples(agent_id: str, since: dt.datetime | None, before: dt.datetime, dataset_id: str,
                        limit: int) -> tuple[str, list[dict[str, Any]]]:
    """Examples the dataset builder extracts from the agent's trajectories of [since, before) (the
    newest `limit`), kept as the dataset `dataset_id`: (its id, its examples); ("", []) when none
    of them gives an example (the builder's FAILED_PRECONDITION)."""
    stub = data_service_pb2_grpc.DataServiceStub(channel("data"))
    request = data_service_pb2.BuildDatasetFromTrajectoriesRequest(
        dataset_id=dataset_id, limit=limit, filter=_trajectory_window(agent_id, since, before))
    try:
        built = stub.BuildDatasetFromTrajectories(request, timeout=300).dataset
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.FAILED_PRECONDITION:
            return "", []
        raise _unavailable("DataService", err) from None
    return fetch_dataset(built.dataset_id)


HOLDOUT_CAP, DEMOS_PER_OUTPUT = 5000, 20


def demonstrations(train: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Up to DEMOS_PER_OUTPUT positive training examples per output, in the split's order."""
    out: list[dict[str, Any]] = []
    per: dict[str, int] = {}
    for e in train:
        label = e.get("expected_output")
        if label and (e.get("feedback") or "correct") in ("correct", "partial") and per.get(label, 0) < DEMOS_PER_OUTPUT:
            per[label] = per.get(label, 0) + 1
            out.append(e)
    return out


def _registration(job: dict[str, Any], onnx_model: bytes, metrics: dict[str, float],
                  resolved_config: dict[str, Any],
                  split: dict[str, list[dict[str, Any]]] | None) -> model_registry_pb2.RegisterVersionRequest:
    """The RegisterVersionRequest of a model of `job`: its lineage, metrics and held-out examples.

    The job's validation split goes with it as the version's held-out examples (the registry's
    promotion gate scores on them, an Ollama import takes demonstrations from them), plus a few
    training examples per output. A model refit on all its examples (config ``refit``) has no
    held-out examples left: none are sent, and the gate cannot promote it over a serving version.
    """
    config = struct_pb2.Struct()
    config.update(resolved_config)
    split = split or {}
    holdout = [] if resolved_config.get("refit") else split.get("validation", [])[:HOLDOUT_CAP]
    return model_registry_pb2.RegisterVersionRequest(
        agent_id=job["agent_id"], onnx_model=onnx_model, job_id=job["job_id"], dataset_id=job["dataset_id"] or "",
        parent_version_id=job["base_version_id"] or "", method=job["method"],
        metrics={k: float(v) for k, v in metrics.items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool)},
        training_config=config, holdout_examples=[example_proto(e) for e in holdout],
        demonstration_examples=[example_proto(e) for e in demonstrations(split.get("train", []))])


def register_version(job: dict[str, Any], artifact_path: str, metrics: dict[str, float],
                     resolved_config: dict[str, Any], split: dict[str, list[dict[str, Any]]] | None,
                     promotion: dict[str, Any] | None) -> tuple[str, dict[str, Any] | None]:
    """Register the job's model; (version id, the promotion gate's decision or None)."""
    request = _registration(job, Path(artifact_path).read_bytes(), metrics, resolved_config, split)
    if promotion:
        request.promotion.CopyFrom(model_version_pb2.PromotionPolicy(**promotion))
    stub = model_registry_pb2_grpc.ModelRegistryStub(channel("registry"))
    # Idempotent on the registry side by job id, so a retry after a timeout cannot duplicate.
    version = stub.RegisterVersion(request, timeout=TIMEOUT_S,
                                   metadata=[("x-idempotency-key", hashlib.sha256(
                                       (job["job_id"]).encode()).hexdigest())]).version
    decision = MessageToDict(version.promotion, preserving_proto_field_name=True,
                             always_print_fields_with_no_presence=True) if version.HasField("promotion") else None
    return version.version_id, decision


def register_checkpoint(job: dict[str, Any], onnx_model: bytes, metrics: dict[str, float],
                        resolved_config: dict[str, Any], split: dict[str, list[dict[str, Any]]] | None,
                        lineage: model_version_pb2.CheckpointLineage, note: str) -> model_version_pb2.ModelVersion:
    """Register one checkpoint of `job` as a version (idempotent on the registry side per job,
    checkpoint id and step); `note` becomes its tag "note" on the first registration only."""
    request = _registration(job, onnx_model, metrics, resolved_config, split)
    request.checkpoint.CopyFrom(lineage)
    stub = model_registry_pb2_grpc.ModelRegistryStub(channel("registry"))
    try:
        version = stub.RegisterVersion(request, timeout=TIMEOUT_S).version
        if note and "note" not in version.tags:
            version = stub.UpdateVersionTags(model_registry_pb2.UpdateVersionTagsRequest(
                agent_id=version.agent_id, version_id=version.version_id, set={"note": note},
                actor="register-checkpoint"), timeout=TIMEOUT_S).version
    except grpc.RpcError as err:
        if err.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
            raise FailedPrecondition(f"the registry refused checkpoint {lineage.checkpoint_id}: "
                                     f"{failure_of(err).message}") from None
        raise _unavailable("ModelRegistry", err) from None
    return version


def fetch_base_model(agent_id: str, version_id: str) -> tuple[str, bytes] | None:
    """The ONNX artifact of `version_id` (or of the version the agent serves when empty).

    None when the agent has no version yet; NOT_FOUND when a named version does not exist.
    """
    stub = model_registry_pb2_grpc.ModelRegistryStub(channel("registry"))
    try:
        resp = stub.GetVersionArtifact(model_registry_pb2.GetVersionArtifactRequest(
            agent_id=agent_id, version_id=version_id), timeout=TIMEOUT_S)
    except grpc.RpcError as err:
        code = err.code()
        if code == grpc.StatusCode.NOT_FOUND and version_id:
            raise NotFound("version", f"{agent_id}/{version_id}") from None
        if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
            return None
        if code == grpc.StatusCode.INVALID_ARGUMENT:  # the caller's version name, not a registry outage
            raise InvalidArgument("base_version_id", err.details() or "is not a valid version") from None
        raise _unavailable("ModelRegistry", err) from None
    return resp.version.version_id, resp.onnx_model


def ingest_trajectories(job: dict[str, Any], trajectories: list[dict[str, Any]]) -> None:
    """Send a GRPO job's trajectories to DataService (idempotent per trajectory id)."""
    from trainhouse.training.trajectory_codec import trajectory_proto

    stub = data_service_pb2_grpc.DataServiceStub(channel("data"))
    request = data_service_pb2.IngestTrajectoriesRequest(
        trajectories=[trajectory_proto(job, t) for t in trajectories])
    stub.IngestTrajectories(iter([request]), timeout=TIMEOUT_S)
