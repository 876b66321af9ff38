"""Seed 004, the agent runtime's REST surface: ``/api/training/...``.

Bare shapes (``{"job": {...}}``, ``{"jobs": [...]}``, ``{"datasets": [...]}``,
``{"models": [...]}``), 201 on create, times as Unix epoch milliseconds, camelCase fields.
Errors: ``{"error": "<message>", "code": "<CODE>"}`` (+ ``field`` when one is to blame,
``retryAfter`` on 429) with the seed's table: INVALID_REQUEST 400, UNAUTHORIZED 401,
NOT_FOUND 404, TRAINING_FAILED 500, SERVICE_UNAVAILABLE 503 (a backing service is down),
INTERNAL_ERROR 500; and, for what the seed leaves open, FORBIDDEN 403, PAYLOAD_TOO_LARGE 413,
RATE_LIMIT_EXCEEDED 429. A call that does not fit the resource's state (cancelling a finished
job) is the caller's INVALID_REQUEST, not a server failure.

Seed 004 describes a runtime serving one agent, so it names none: jobs started here train
$TRAINHOUSE_RUNTIME_AGENT_ID ("runtime-agent") unless `model` names another model (below).
Models are the registry's versions across agents, with the id ``<agentId>@<versionId>``.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

import grpc
from fastapi import APIRouter, Body, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr
from trainhouse.v1 import (
    data_service_pb2,
    evaluation_service_pb2,
    job_state_pb2,
    model_registry_pb2,
    model_version_pb2,
    training_job_pb2,
    training_service_pb2,
    trajectory_pb2,
)

from trainhouse.gateway import errors as E
from trainhouse.gateway.convert import epoch_ms, finite, iso_epoch_ms
from trainhouse.gateway.deps import Caller, Services
from trainhouse.gateway.errors import ApiError, encoding_request, rpc_fields
from trainhouse.gateway.fields import field_path, rpc_field
from trainhouse.gateway.models import Id, id_path, Int, MODEL_ID_PATTERN, ModelRef, Number, RESOURCE_ID_MAX
from trainhouse.gateway.ratelimit import EVALUATIONS
from trainhouse.gateway.resources.agents import version_fields
from trainhouse.gateway.resources.jobs import job_fields, seed_state_word, seed_word
from trainhouse.gateway.resources.tables import FieldTable
from trainhouse.gateway.resources.trajectories import basic_json, full_json, trajectory_from_json
from trainhouse.gateway.routing import GatewayRoute, spend
from trainhouse.gateway.surfaces.validation import from_request_validation
from trainhouse.common.grpc_errors import RpcFailure, failure_of
from trainhouse.core.configs import SupervisedConfig, optional_type

PREFIX = "/api/training"
BACKEND_DOC = ("'native' (the default) and 'cpu' both run trainhouse's own trainer: a NumPy classifier over the "
               "dataset's examples on the CPU, exported to ONNX. It is not prompt optimisation (MIPRO/GEPA), and "
               "no GPU backend (mlx, cuda) exists here; those are refused.")
MODEL_DOC = ("The base model. '<agentId>@<versionId>' (a trainhouse model) is fine-tuned by transfer; any other "
             "name (e.g. 'eliza-1-2b', an LLM) is kept as the job's base_model label: trainhouse trains the "
             "runtime agent's small classifier, not that model's weights.")
BACKEND = "cpu"  # trainhouse trains with NumPy on the CPU; "native" is accepted as the default name

CODES: dict[str, tuple[str, int]] = {
    E.INVALID: ("INVALID_REQUEST", 400),
    E.MALFORMED: ("INVALID_REQUEST", 400),
    E.CONFLICT: ("INVALID_REQUEST", 400),
    E.PRECONDITION: ("INVALID_REQUEST", 400),
    E.UNAUTHENTICATED: ("UNAUTHORIZED", 401),
    E.FORBIDDEN: ("FORBIDDEN", 403),
    E.NOT_FOUND: ("NOT_FOUND", 404),
    E.METHOD_NOT_ALLOWED: ("METHOD_NOT_ALLOWED", 405),
    E.TOO_LARGE: ("PAYLOAD_TOO_LARGE", 413),
    E.RATE_LIMITED: ("RATE_LIMIT_EXCEEDED", 429),
    E.INTERNAL: ("INTERNAL_ERROR", 500),
    E.NOT_IMPLEMENTED: ("NOT_IMPLEMENTED", 501),
    E.UNAVAILABLE: ("SERVICE_UNAVAILABLE", 503),
    E.TIMEOUT: ("SERVICE_UNAVAILABLE", 503),
}
# Set on ApiError.resource by routes whose internal failure is the seed's TRAINING_FAILED.
TRAINING = "training"


class RuntimeSurface:
    name = "runtime"

    def from_rpc(self, failure: RpcFailure) -> ApiError:
        return E.error_of_rpc(failure, field=rpc_field(failure.field), unavailable_kinds=(E.UNAVAILABLE, E.TIMEOUT),
                              unavailable_message="training service is not available")

    def from_validation(self, exc: RequestValidationError) -> ApiError:
        return from_request_validation(exc, field_path)

    def render(self, error: ApiError, request_id: str) -> JSONResponse:
        code, status = CODES.get(error.kind, CODES[E.INTERNAL])
        if error.kind == E.INTERNAL and error.resource == TRAINING:
            code = "TRAINING_FAILED"
        body: dict[str, Any] = {"error": error.message, "code": code}
        if error.field:
            body["field"] = error.field
        if error.retry_after is not None:
            body["retryAfter"] = error.retry_after
        return JSONResponse(status_code=status, content=body)


RUNTIME_SURFACE = RuntimeSurface()


class RuntimeError_(BaseModel):
    error: str
    code: str
    field: str | None = None
    retryAfter: int | None = None  # noqa: N815


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": RuntimeError_, "description": text}
    for status, text in (
        (400, "INVALID_REQUEST"), (401, "UNAUTHORIZED"), (403, "FORBIDDEN"), (404, "NOT_FOUND"),
        (413, "PAYLOAD_TOO_LARGE"), (429, "RATE_LIMIT_EXCEEDED"), (503, "SERVICE_UNAVAILABLE"),
    )
}

router = APIRouter(prefix=PREFIX, tags=["runtime"], route_class=GatewayRoute, responses=ERROR_RESPONSES)


# ---- models ---------------------------------------------------------------------------------

class CamelIn(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StartJobIn(CamelIn):
    datasetId: Id | None = Field(None, description="Dataset to train on (the newest if omitted)")  # noqa: N815
    maxTrajectories: Int | None = Field(  # noqa: N815
        None, ge=1, le=100_000, description="Train on a dataset built now from the newest this-many recorded "
                                            "trajectories (without datasetId)")
    backend: Literal["native", "cpu"] | None = Field(None, description=BACKEND_DOC)
    model: ModelRef | None = Field(None, description=MODEL_DOC)
    # The training config's own rules (services/core/configs), under seed 004's names.
    iterations: optional_type(SupervisedConfig, "epochs", description="Epochs, 1..10000") = None
    batchSize: optional_type(SupervisedConfig, "batch_size") = None  # noqa: N815
    learningRate: optional_type(SupervisedConfig, "learning_rate") = None  # noqa: N815


class StatusOut(BaseModel):
    runningJobs: int  # noqa: N815
    queuedJobs: int  # noqa: N815
    completedJobs: int  # noqa: N815
    failedJobs: int  # noqa: N815
    cancelledJobs: int  # noqa: N815
    modelCount: int  # noqa: N815
    datasetCount: int  # noqa: N815
    runtimeAvailable: bool  # noqa: N815


class JobOut(BaseModel):
    id: str
    status: str
    datasetId: str | None = None  # noqa: N815
    backend: str | None = None
    backendDetail: str | None = Field(None, description="What backend 'native' runs here")  # noqa: N815
    model: str | None = Field(None, description="The base model the job was asked to train from (its `model`), "
                                                "else the agent it trains")
    agentId: str | None = Field(None, description="The agent the job trains (the runtime agent unless `model` "  # noqa: N815
                                                  "named one of ours)")
    progress: float | None = None
    currentIteration: int | None = None  # noqa: N815
    totalIterations: int | None = None  # noqa: N815
    loss: float | None = None
    createdAt: int | None = None  # noqa: N815
    completedAt: int | None = None  # noqa: N815
    modelId: str | None = None  # noqa: N815
    error: str | None = None


class JobEnvelope(BaseModel):
    job: JobOut


class JobsOut(BaseModel):
    jobs: list[JobOut]


class DatasetOut(BaseModel):
    id: str
    createdAt: int | None = None  # noqa: N815
    trajectoryCount: int  # noqa: N815
    exampleCount: int  # noqa: N815
    source: str | None = None


def dataset_json(d: Any) -> dict[str, Any]:
    return {"id": d.dataset_id, "createdAt": epoch_ms(d.create_time), "trajectoryCount": d.trajectory_count,
            "exampleCount": d.statistics.example_count, "source": d.source or None}


class DatasetsOut(BaseModel):
    datasets: list[DatasetOut]


class ModelOut(BaseModel):
    id: str
    jobId: str | None = None  # noqa: N815
    name: str
    agentId: str  # noqa: N815
    versionId: str  # noqa: N815
    createdAt: int | None = None  # noqa: N815
    active: bool


class ModelsOut(BaseModel):
    models: list[ModelOut]


# ---- translation ----------------------------------------------------------------------------

def model_id(agent_id: str, version_id: str) -> str:
    return f"{agent_id}@{version_id}"


# Seed 004's model: one version of one agent, named "<agentId>@<versionId>".
MODEL_RUNTIME = FieldTable(camel_case=True, drop_none=True,
                           values={"created_at": iso_epoch_ms}).restricted(
    ("job_id", "agent_id", "version_id", "created_at"))


def model_json(v: model_version_pb2.ModelVersion) -> dict[str, Any]:
    """`active`: production serves it (the registry's serving pointer, not the newest version)."""
    out = {"id": model_id(v.agent_id, v.version_id), "name": f"{v.agent_id}-{v.version_id}",
           **MODEL_RUNTIME.render(version_fields(v))}
    out["active"] = v.active
    return out


# Seed 004's job: camelCase, "id"/"status"/"model", times in epoch milliseconds, unset fields left out.
JOB_RUNTIME = FieldTable({"job_id": "id", "state": "status", "ended_at": "completed_at"},
                         camel_case=True, drop_none=True,
                         values={"created_at": iso_epoch_ms, "ended_at": iso_epoch_ms,
                                 "state": seed_word}).restricted(
    ("job_id", "state", "dataset_id", "agent_id", "created_at", "ended_at"))
JOB_RUNTIME_DETAIL = JOB_RUNTIME.restricted(JOB_RUNTIME.only | {"current_iteration", "total_iterations"})


def job_json(job: training_job_pb2.TrainingJob, detail: bool = False) -> dict[str, Any]:
    fields = job_fields(job)
    out = (JOB_RUNTIME_DETAIL if detail else JOB_RUNTIME).render(fields)
    # `model` is what the job was asked to train from (seed 004's base model); agentId is what it trains.
    out["model"] = fields["labels"].get("base_model") or fields["agent_id"]
    out["backend"] = BACKEND
    if fields["labels"].get("backend") == "native":
        out["backendDetail"] = BACKEND_DOC
    if fields["model_version_id"]:
        out["modelId"] = model_id(job.agent_id, fields["model_version_id"])
    if detail:
        out["progress"] = round(min(1.0, max(0.0, fields["percent_complete"] / 100.0)), 4)
        if "loss" in fields["metrics"]:
            out["loss"] = fields["metrics"]["loss"]
    if out["status"] == "failed":
        out["error"] = fields["error"] or fields["status_reason"] or "training failed"
    return {k: v for k, v in finite(out).items() if v is not None}


async def _count_jobs(services: Services, state: int) -> int:
    resp = await services.training.ListJobs(training_service_pb2.ListJobsRequest(page_size=1, state=state,
                                                                                 include_total_size=True),
                                            timeout=services.timeout_s)
    return resp.total_size


async def _agents(services: Services) -> list[Any]:
    agents: list[Any] = []
    token = ""
    while True:
        resp = await services.registry.ListAgents(
            model_registry_pb2.ListAgentsRequest(page_size=100, page_token=token), timeout=services.timeout_s)
        agents.extend(resp.agents)
        token = resp.next_page_token
        if not token:
            return agents


class TrajectoriesOut(BaseModel):
    available: bool
    total: int
    trajectories: list[dict[str, Any]]


class TrajectoryOut(BaseModel):
    trajectory: dict[str, Any]


INGEST_DOC = ("One of three shapes, all the same to the store: {\"trajectories\": [trajectory, ...]}, "
              "{\"trajectory\": trajectory}, or one trajectory object itself (seed 004 / 003 fields).")
MAX_INGESTED = 1000


def ingest_items(body: Any) -> list[tuple[str, Any]]:
    """(field path, trajectory) for each trajectory of a request in any of the three shapes."""
    if not isinstance(body, dict):
        raise ApiError(E.INVALID, "the body must be a JSON object: " + INGEST_DOC, field="body",
                       issue="must be an object")
    if "trajectories" in body:
        items = body["trajectories"]
        if not isinstance(items, list) or not items:
            raise ApiError(E.INVALID, "trajectories: must be a non-empty list", field="trajectories",
                           issue="must be a non-empty list")
        if len(items) > MAX_INGESTED:
            raise ApiError(E.INVALID, f"trajectories: at most {MAX_INGESTED} per request", field="trajectories",
                           issue=f"at most {MAX_INGESTED} per request")
        return [(f"trajectories[{i}]", t) for i, t in enumerate(items)]
    if "trajectory" in body:
        return [("trajectory", body["trajectory"])]
    if not body:
        raise ApiError(E.INVALID, "the body is empty: " + INGEST_DOC, field="body", issue="is empty")
    return [("body", body)]


class IngestOut(BaseModel):
    received: int
    created: int
    updated: int
    unchanged: int
    trajectoryIds: list[str]  # noqa: N815


class BuildIn(CamelIn):
    limit: Int | None = Field(None, ge=0, description="Maximum number of trajectories to include (newest first)")
    minLlmCallsPerTrajectory: Int | None = Field(None, ge=0)  # noqa: N815
    datasetId: Id | None = None  # noqa: N815


class DatasetEnvelope(BaseModel):
    dataset: DatasetOut


# ---- routes ---------------------------------------------------------------------------------

@router.get("/status", response_model=StatusOut, summary="Counts of jobs, models and datasets")
async def status(services: Services) -> dict[str, Any]:
    health = await services.health()
    counts = {name: await _count_jobs(services, state) for name, state in (
        ("runningJobs", job_state_pb2.JOB_STATE_RUNNING), ("queuedJobs", job_state_pb2.JOB_STATE_QUEUED),
        ("completedJobs", job_state_pb2.JOB_STATE_COMPLETED), ("failedJobs", job_state_pb2.JOB_STATE_FAILED),
        ("cancelledJobs", job_state_pb2.JOB_STATE_CANCELLED))}
    # Seed 004 says "cancelled" for a paused job (resources/jobs.py SEED_STATES): count it there too.
    counts["cancelledJobs"] += await _count_jobs(services, job_state_pb2.JOB_STATE_PAUSED)
    datasets = await services.data.ListDatasets(
        data_service_pb2.ListDatasetsRequest(page_size=1, include_total_size=True), timeout=services.timeout_s)
    models = sum(a.version_count for a in await _agents(services))
    return {**counts, "modelCount": models, "datasetCount": datasets.total_size,
            "runtimeAvailable": all(s == "SERVING" for s in health.values())}


# Seed 004 lists have no paging: everything, up to this many items.
MAX_LISTED = 10_000


async def _all_pages(call: Any, field: str) -> list[Any]:
    """Follow next_page_token through a List RPC; `call(token)` awaits one page."""
    items: list[Any] = []
    token = ""
    while True:
        resp = await call(token)
        items.extend(getattr(resp, field))
        token = resp.next_page_token
        if not token or len(items) >= MAX_LISTED:
            return items[:MAX_LISTED]


@router.get("/datasets", response_model=DatasetsOut, response_model_exclude_none=True,
            summary="All datasets, newest first")
async def list_datasets(services: Services) -> dict[str, Any]:
    datasets = await _all_pages(lambda token: services.data.ListDatasets(
        data_service_pb2.ListDatasetsRequest(page_size=100, page_token=token), timeout=services.timeout_s), "datasets")
    return {"datasets": [dataset_json(d) for d in datasets]}


SEARCH_MAX = 4096  # characters of `filter` or `orderBy`, as TrainingService allows


@router.get("/jobs", response_model=JobsOut, response_model_exclude_none=True, summary="All training jobs")
async def list_jobs(services: Services,
                    filter_: Annotated[str, Query(alias="filter", max_length=SEARCH_MAX, description=(
                        'Optional job search (docs/search.md), e.g. `state = "completed" AND '
                        '(labels.team IN ("a", "b") OR metrics.validation_accuracy.best > 0.8)`. '
                        "A malformed one is 400 naming the line and column."))] = "",
                    orderBy: Annotated[str, Query(max_length=SEARCH_MAX, description=(
                        "Optional `<field> [asc|desc], ...` over the search's fields; default "
                        "`create_time desc`."))] = "") -> dict[str, Any]:
    with rpc_fields(RUNTIME_SURFACE, {"order_by": "orderBy"}):
        jobs = await _all_pages(lambda token: services.training.ListJobs(
            training_service_pb2.ListJobsRequest(page_size=1000, page_token=token, filter=filter_, order_by=orderBy),
            timeout=services.timeout_s), "jobs")
    return {"jobs": [job_json(j) for j in jobs]}


@router.post("/jobs", response_model=JobEnvelope, response_model_exclude_none=True, status_code=201,
             summary="Start a training job (on the newest dataset when datasetId is omitted)")
async def start_job(body: StartJobIn, request: Request, caller: Caller, services: Services) -> dict[str, Any]:
    if body.maxTrajectories is not None and body.datasetId:
        raise ApiError(E.INVALID, "maxTrajectories builds a dataset from the newest recorded trajectories; give it "
                       "without datasetId", field="maxTrajectories", issue="conflicts with datasetId")
    if body.maxTrajectories is not None:
        with encoding_request():
            built = await services.data.BuildDatasetFromTrajectories(
                data_service_pb2.BuildDatasetFromTrajectoriesRequest(limit=body.maxTrajectories),
                timeout=services.timeout_s)
        dataset_id = built.dataset.dataset_id
    else:
        dataset_id = (await services.data.GetDataset(
            data_service_pb2.GetDatasetRequest(dataset_id=body.datasetId or "latest"),
            timeout=services.timeout_s)).dataset.dataset_id
    agent_id = request.app.state.gate.settings.runtime_agent_id
    base_version = ""
    config = training_job_pb2.TrainingConfig()
    labels = {"backend": body.backend or "native"}
    if body.model:
        agent, sep, version = body.model.partition("@")
        if sep:  # one of our models: fine-tune it by transfer
            agent_id, base_version = agent, version
            config.method = job_state_pb2.TRAINING_METHOD_TRANSFER
        labels["base_model"] = body.model
    if body.iterations is not None:
        config.epochs = body.iterations
    if body.batchSize is not None:
        config.batch_size = body.batchSize
    if body.learningRate is not None:
        config.learning_rate = body.learningRate
    with encoding_request():
        grpc_request = training_service_pb2.StartJobRequest(
            agent_id=agent_id, dataset_id=dataset_id, config=config, labels=labels,
            base_version_id=base_version)
    try:
        job = (await services.training.StartJob(grpc_request, timeout=services.timeout_s)).job
    except grpc.RpcError as exc:
        error = RUNTIME_SURFACE.from_rpc(failure_of(exc))
        if error.kind == E.INTERNAL:  # the seed's TRAINING_FAILED: the job could not be started
            error.resource = TRAINING
            error.message = "training job failed to start"
        if body.model and error.field in ("agentId", "method", "baseVersionId"):
            error.field = "model"
        if error.field == "epochs":
            error.field = "iterations"
        raise error from None
    return {"job": job_json(job)}


JobId = Annotated[str, id_path("id", "Training job id")]


@router.get("/jobs/{id}", response_model=JobEnvelope, response_model_exclude_none=True,
            summary="A training job's status")
async def get_job(job_id: JobId, services: Services) -> dict[str, Any]:
    resp = await services.training.GetJob(training_service_pb2.GetJobRequest(job_id=job_id),
                                          timeout=services.timeout_s)
    return {"job": job_json(resp.job, detail=True)}


@router.post("/jobs/{id}/cancel", response_model=JobEnvelope, response_model_exclude_none=True,
             summary="Cancel a queued or running job")
async def cancel_job(job_id: JobId, services: Services) -> dict[str, Any]:
    resp = await services.training.CancelJob(
        training_service_pb2.CancelJobRequest(job_id=job_id, reason="cancelled via runtime API"),
        timeout=services.timeout_s)
    return {"job": {"id": resp.job.job_id, "status": seed_state_word(resp.job.state)}}


@router.get("/models", response_model=ModelsOut, response_model_exclude_none=True,
            summary="Every model version of every agent, newest first per agent")
async def list_models(services: Services) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    for agent in await _agents(services):
        if not agent.version_count:
            continue
        token = ""
        while True:
            resp = await services.registry.ListVersions(
                model_registry_pb2.ListVersionsRequest(agent_id=agent.agent_id, page_size=100, page_token=token),
                timeout=services.timeout_s)
            out.extend(model_json(v) for v in resp.versions)
            token = resp.next_page_token
            if not token:
                break
    return {"models": out}


@router.get("/trajectories", response_model=TrajectoriesOut, summary="Trajectories, newest first (limit/offset)")
async def list_trajectories(services: Services, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                            offset: Annotated[int, Query(ge=0, le=2 ** 31 - 1)] = 0) -> dict[str, Any]:
    resp = await services.data.ListTrajectories(
        data_service_pb2.ListTrajectoriesRequest(page_size=limit, skip=offset, include_total_size=True,
                                                 view=trajectory_pb2.TRAJECTORY_VIEW_BASIC),
        timeout=services.timeout_s)
    return {"available": True, "total": resp.total_size, "trajectories": [basic_json(t) for t in resp.trajectories]}


@router.get("/trajectories/{id}", response_model=TrajectoryOut, summary="One trajectory with its LLM calls")
async def get_trajectory(trajectory_id: Annotated[str, id_path("id", "Trajectory id")], services: Services) -> dict[str, Any]:
    resp = await services.data.GetTrajectory(
        data_service_pb2.GetTrajectoryRequest(trajectory_id=trajectory_id, view=trajectory_pb2.TRAJECTORY_VIEW_FULL),
        timeout=services.timeout_s)
    return {"trajectory": full_json(resp.trajectory)}


@router.post("/trajectories", response_model=IngestOut, status_code=201,
             summary="Record agent trajectories (idempotent per id; times in epoch ms)")
async def ingest_trajectories(services: Services, body: Annotated[Any, Body(description=INGEST_DOC)]) -> dict[str, Any]:
    parsed = [trajectory_from_json(t, where) for where, t in ingest_items(body)]
    request = data_service_pb2.IngestTrajectoriesRequest(trajectories=parsed)
    resp = await services.data.IngestTrajectories(iter([request]), timeout=services.timeout_s)
    return {"received": resp.received, "created": resp.created, "updated": resp.updated,
            "unchanged": resp.unchanged, "trajectoryIds": list(resp.trajectory_ids)}


@router.post("/datasets/build", response_model=DatasetEnvelope, status_code=201,
             summary="Build a dataset from the recorded trajectories")
async def build_dataset(body: BuildIn, services: Services) -> dict[str, Any]:
    with encoding_request():
        request = data_service_pb2.BuildDatasetFromTrajectoriesRequest(
            dataset_id=body.datasetId or "", limit=body.limit or 0,
            min_llm_calls_per_trajectory=body.minLlmCallsPerTrajectory or 0)
    resp = await services.data.BuildDatasetFromTrajectories(request, timeout=services.timeout_s)
    out = dataset_json(resp.dataset)
    out["trajectoryCount"] = resp.trajectory_count
    return {"dataset": {k: v for k, v in out.items() if v is not None}}


# ---- model management and auto-training -----------------------------------------------------

class ActivateIn(CamelIn):
    providerModel: StrictStr | None = None  # noqa: N815


class ActivateOut(BaseModel):
    ok: bool
    activeModel: str  # noqa: N815


class OllamaIn(CamelIn):
    modelName: StrictStr | None = None  # noqa: N815
    baseModel: StrictStr | None = None  # noqa: N815
    ollamaUrl: StrictStr | None = Field(None, description="Must be a loopback host")  # noqa: N815


class OllamaOut(BaseModel):
    model: dict[str, Any]


class AutoConfigIn(CamelIn):
    threshold: Int | None = None
    cooldownHours: Number | None = None  # noqa: N815
    enabled: StrictBool | None = None


class AutoConfigOut(BaseModel):
    threshold: int
    cooldownHours: float  # noqa: N815
    enabled: bool


class AutoConfigUpdated(BaseModel):
    ok: bool
    config: AutoConfigOut


ModelId = Annotated[str, id_path("id", "Model id '<agentId>@<versionId>'", MODEL_ID_PATTERN, 2 * RESOURCE_ID_MAX + 2)]


@router.post("/models/{id}/activate", response_model=ActivateOut, summary="Make a model the one the agent serves")
async def activate_model(model: ModelId, caller: Caller, services: Services,
                         body: ActivateIn | None = None) -> dict[str, Any]:
    with encoding_request():
        req = model_registry_pb2.ActivateVersionRequest(model_id=model, actor=caller.name,
                                                        provider_model=(body.providerModel if body else None) or "")
    resp = await services.registry.ActivateVersion(req, timeout=services.timeout_s)
    return {"ok": True, "activeModel": resp.active_model}


@router.post("/models/{id}/import-ollama", response_model=OllamaOut,
             summary="Import a model into a local Ollama: its output catalogue and demonstrations as the system "
                     "prompt of an Ollama model over an LLM base model (no weights are copied)")
async def import_ollama(model: ModelId, caller: Caller, services: Services,
                        body: OllamaIn | None = None) -> dict[str, Any]:
    body = body or OllamaIn()
    with encoding_request():
        req = model_registry_pb2.ImportToOllamaRequest(
            model_id=model, model_name=body.modelName or "", base_model=body.baseModel or "",
            ollama_url=body.ollamaUrl or "", actor=caller.name)
    imp = getattr(await services.registry.ImportToOllama(req, timeout=services.timeout_s), "import")
    return {"model": {"id": imp.model_id, "ollamaName": imp.ollama_name, "importedAt": epoch_ms(imp.import_time),
                      "baseModel": imp.base_model, "ollamaUrl": imp.ollama_url,
                      "demonstrationCount": imp.demonstration_count,
                      "carries": f"the version's output catalogue and {imp.demonstration_count} demonstrations in "
                                 f"the system prompt of an Ollama model over {imp.base_model}; no weights (a "
                                 "trainhouse version is a small classifier, not LLM weights)"}}


# The suites seed 004's benchmark reports (0..1 each), in the seed's order.
RUNTIME_SUITES = ("coherence", "consistency", "helpfulness")


class BenchmarkOut(BaseModel):
    modelId: str  # noqa: N815
    scores: dict[str, float]
    completedAt: int | None = None  # noqa: N815
    benchmarkId: str  # noqa: N815
    overallRank: str  # noqa: N815


@router.post("/models/{id}/benchmark", response_model=BenchmarkOut, response_model_exclude_none=True,
             summary="Benchmark a model on coherence, consistency and helpfulness (scores 0..1; 100/day)")
async def benchmark_model(model: ModelId, request: Request, services: Services) -> dict[str, Any]:
    spend(request, EVALUATIONS)
    with encoding_request():
        req = evaluation_service_pb2.RunBenchmarkRequest(model_id=model, suites=RUNTIME_SUITES)
    with rpc_fields(RUNTIME_SURFACE, {"modelId": "id"}):
        run = (await services.evaluation.RunBenchmark(req, timeout=services.timeout_s)).run
    # EvaluationService scores 0..100; seed 004 shows 0..1.
    return {"modelId": model, "scores": {s.suite: round(s.score / 100, 4) for s in run.results},
            "completedAt": epoch_ms(run.create_time), "benchmarkId": run.benchmark_id,
            "overallRank": run.overall_rank}


def auto_json(c: Any) -> dict[str, Any]:
    return {"threshold": c.threshold, "cooldownHours": c.cooldown_hours, "enabled": c.enabled}


@router.get("/auto/config", response_model=AutoConfigOut, summary="Auto-training thresholds and cooldown")
async def get_auto_config(services: Services) -> dict[str, Any]:
    resp = await services.training.GetAutoTrainingConfig(training_service_pb2.GetAutoTrainingConfigRequest(),
                                                          timeout=services.timeout_s)
    return auto_json(resp.config)


@router.put("/auto/config", response_model=AutoConfigUpdated, summary="Update the auto-training configuration")
async def put_auto_config(body: AutoConfigIn, caller: Caller, services: Services) -> dict[str, Any]:
    req = training_service_pb2.UpdateAutoTrainingConfigRequest(actor=caller.name)
    if body.threshold is not None:
        req.threshold = body.threshold
    if body.cooldownHours is not None:
        req.cooldown_hours = body.cooldownHours
    if body.enabled is not None:
        req.enabled = body.enabled
    with encoding_request():
        resp = await services.training.UpdateAutoTrainingConfig(req, timeout=services.timeout_s)
    return {"ok": True, "config": auto_json(resp.config)}
