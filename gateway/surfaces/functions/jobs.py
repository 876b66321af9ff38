"""Training-job functions: startTrainingJob, trainAgent, getTrainingStatus, monitorTrainingProgress
(TrainingService), in seed 001's snake_case shapes (and seed 000's when its SDK calls them)."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import Request
from pydantic import AliasChoices, BaseModel, ConfigDict, Discriminator, Field, StrictBool, Tag
from trainhouse.v1 import job_state_pb2, training_job_pb2, training_service_pb2

from trainhouse.gateway.convert import ts_iso
from trainhouse.gateway.deps import Caller, Services
from trainhouse.gateway.errors import INVALID, ApiError, encoding_request, rpc_fields
from trainhouse.gateway.examples import ExampleIn, examples_to_proto, examples_to_rated
from trainhouse.gateway.resources.jobs import (checkpoint_fields, estimated_duration, failure_block, job_fields, job_status,
                                    seed_state_word, seed_word)
from trainhouse.gateway.resources.tables import FieldTable
from trainhouse.gateway.resources.training_config import MethodName, TrainingConfigIn, config_json, config_to_proto
from trainhouse.gateway.surfaces.functions.surface import FUNCTIONS_SURFACE, Reply, SnakeModel, new_router, reply
from trainhouse.gateway.models import Id

router = new_router()


class FunctionConfigIn(TrainingConfigIn):
    """Seed 001's `config` (camelCase, as documented there; snake_case is accepted too)."""

    training_type: MethodName | None = Field(None, description="Training paradigm (seed 001's trainingType)")


class TrainingDataIn(BaseModel):
    """Seed 001's `training_data` object."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    examples: list[ExampleIn] | None = None
    validation_examples: list[ExampleIn] | None = Field(
        None, validation_alias=AliasChoices("validationExamples", "validation_examples"))
    module_id: Id | None = Field(None, validation_alias=AliasChoices("moduleId", "module_id"),
                                        description="Training module reference: the job also trains on examples "
                                                    "generated from the module (TrainingService StartJob.module_id)")


def _shape(value: Any) -> str:
    return "[array]" if isinstance(value, list) else "{object}"


# Discriminated by JSON type so an error names the field, not every union member.
TrainingDataUnion = Annotated[
    Annotated[list[ExampleIn], Tag("[array]")] | Annotated[TrainingDataIn, Tag("{object}")],
    Discriminator(_shape)]


class StartTrainingJobIn(SnakeModel):
    agent_id: Id
    training_data: TrainingDataIn
    config: FunctionConfigIn | None = None


class TrainAgentIn(SnakeModel):
    """Seed 002 (`agent_id`, `training_data` array, `training_type`, `config`) or seed 000's SDK
    (`agentId`, `config` with `method`, `dataset`, ...)."""

    agent_id: Id | None = None
    agentId: Id | None = None  # noqa: N815 - the seed-000 SDK's spelling
    training_data: TrainingDataUnion | None = Field(
        None, description="Seed 002: an array of examples; seed 001: {examples, validationExamples}")
    examples: list[ExampleIn] | None = Field(None, description="Inline examples (seed-000 form)")
    training_type: MethodName | None = None
    config: FunctionConfigIn | None = None


class GetTrainingStatusIn(SnakeModel):
    jobId: Id | None = None  # noqa: N815 - the seed-000 SDK's spelling
    job_id: Id | None = None


class MonitorIn(SnakeModel):
    job_id: Id
    include_checkpoints: StrictBool = False
    include_history: StrictBool = False


# ---- response models ------------------------------------------------------------------------

class ProgressOut(BaseModel):
    current_epoch: int
    total_epochs: int
    current_step: int
    total_steps: int
    percent_complete: float
    estimated_time_remaining_ms: int | None = None


class EstimatesOut(BaseModel):
    total_samples: int | None = None
    training_samples: int | None = None
    validation_samples: int | None = None
    estimated_duration_ms: int | None = None


class StartedJobOut(BaseModel):
    job_id: str
    agent_id: str
    status: str
    config: dict[str, Any]
    progress: ProgressOut
    estimates: EstimatesOut
    started_at: str | None = None


# Seed 001's checkpoint rows: the checkpoint resource's fields, "id" for its id, no job or size.
CHECKPOINT = FieldTable({"checkpoint_id": "id"}).restricted(
    ("checkpoint_id", "epoch", "step", "metrics", "best", "kind", "created_at"))


class CheckpointSnake(BaseModel):
    id: str
    epoch: int
    step: int
    metrics: dict[str, float | None]
    best: bool
    kind: str
    created_at: str | None = None


class HistoryPoint(BaseModel):
    name: str
    value: float | None
    epoch: int
    step: int
    time: str | None = None


class MonitorOut(BaseModel):
    job_id: str
    agent_id: str
    status: str
    progress: ProgressOut
    metrics: dict[str, float | None]
    checkpoints: list[CheckpointSnake] | None = None
    history: list[HistoryPoint] | None = None
    model_version: str | None = None
    status_reason: str | None = None
    error: dict[str, Any] | None = None


# ---- translation ----------------------------------------------------------------------------

# Seed 001's progress block and job status: snake_case, "status", "model_version", "completed_at".
PROGRESS = FieldTable().restricted(("current_epoch", "total_epochs", "current_step", "total_steps",
                                    "percent_complete", "estimated_time_remaining_ms"))
JOB = FieldTable({"state": "status", "model_version_id": "model_version", "ended_at": "completed_at"},
                 values={"state": seed_word}).restricted(
    ("job_id", "agent_id", "state", "metrics", "model_version_id", "status_reason", "created_at", "started_at",
     "ended_at", "best_checkpoint_id", "dataset_id"))


def progress_snake(job: training_job_pb2.TrainingJob) -> dict[str, Any]:
    return PROGRESS.render(job_fields(job))


def started_job(job: training_job_pb2.TrainingJob, sent_examples: int) -> dict[str, Any]:
    total = job.train_examples + job.validation_examples
    estimates: dict[str, Any] = {
        "total_samples": total or sent_examples or None,
        "training_samples": job.train_examples or None,
        "validation_samples": job.validation_examples or None,
        "estimated_duration_ms": job_fields(job)["estimated_time_remaining_ms"],
    }
    return {"job_id": job.job_id, "agent_id": job.agent_id, "status": seed_state_word(job.state),
            "config": config_json(job.config, job.dataset_id), "progress": progress_snake(job),
            "estimates": estimates, "started_at": ts_iso(job.start_time) or ts_iso(job.create_time)}


def job_snake(job: training_job_pb2.TrainingJob) -> dict[str, Any]:
    """A job's status with snake_case fields (seeds 001/002)."""
    fields = job_fields(job)
    out = JOB.render(fields)
    out["progress"] = PROGRESS.render(fields)
    if fields["state"] == "failed":
        out["error"] = failure_block(fields)
    return out


def _method_override(config: FunctionConfigIn | None, training_type: str | None) -> FunctionConfigIn:
    cfg = config or FunctionConfigIn()
    method = training_type or cfg.training_type or cfg.method
    return cfg.model_copy(update={"method": method}) if method else cfg


async def _start(services: Services, caller: Caller, agent_id: str, examples: list[ExampleIn] | None,
                 validation: list[ExampleIn] | None, cfg: FunctionConfigIn,
                 module_id: str | None = None) -> training_job_pb2.TrainingJob:
    with encoding_request():
        config = config_to_proto(cfg)
        request = training_service_pb2.StartJobRequest(
            agent_id=agent_id, dataset_id=cfg.dataset or "", config=config,
            module_id=module_id or "")
        if config.method == job_state_pb2.TRAINING_METHOD_REINFORCEMENT:
            request.rated_examples.extend(examples_to_rated(examples))
        else:
            request.examples.extend(examples_to_proto(examples))
            request.validation_examples.extend(examples_to_proto(validation))
    with rpc_fields(FUNCTIONS_SURFACE, {"module_id": "training_data.moduleId"}):
        return (await services.training.StartJob(request, timeout=services.timeout_s)).job


# ---- routes ---------------------------------------------------------------------------------

@router.post("/startTrainingJob", response_model=Reply[StartedJobOut], response_model_exclude_none=True,
             summary="Start a training job (seed 001)")
async def start_training_job(body: StartTrainingJobIn, request: Request, caller: Caller,
                             services: Services) -> dict[str, Any]:
    cfg = _method_override(body.config, None)
    data = body.training_data
    job = await _start(services, caller, body.agent_id, data.examples, data.validation_examples, cfg, data.module_id)
    sent = len(data.examples or []) + len(data.validation_examples or [])
    return reply(request, started_job(job, sent))


@router.post("/trainAgent", response_model=Reply[dict[str, Any]], response_model_exclude_none=True,
             summary="Train an agent (seed 002; seed 000's SDK form answers in camelCase)")
async def train_agent(body: TrainAgentIn, request: Request, caller: Caller, services: Services) -> dict[str, Any]:
    if (body.agent_id is None) == (body.agentId is None):
        raise ApiError(INVALID, "give exactly one of 'agent_id' or 'agentId'", field="agent_id",
                       issue="is required")
    camel_form = body.agentId is not None
    agent_id = body.agentId or body.agent_id or ""
    module_id = None
    if isinstance(body.training_data, TrainingDataIn):
        examples, validation = body.training_data.examples, body.training_data.validation_examples
        module_id = body.training_data.module_id
    else:
        examples, validation = body.training_data, None
    if body.examples is not None:
        examples = (examples or []) + body.examples
    cfg = _method_override(body.config, body.training_type)
    job = await _start(services, caller, agent_id, examples, validation, cfg, module_id)
    if camel_form:
        data = {"jobId": job.job_id, "trainingJobId": job.job_id, "agentId": job.agent_id,
                "status": seed_state_word(job.state), "estimatedDuration": estimated_duration(job),
                "startTime": ts_iso(job.start_time) or ts_iso(job.create_time),
                "config": config_json(job.config, job.dataset_id)}
    else:
        data = {"training_id": job.job_id, **started_job(job, len(examples or []) + len(validation or []))}
    return reply(request, data)


@router.post("/getTrainingStatus", response_model=Reply[dict[str, Any]], response_model_exclude_none=True,
             summary="A training job's status (seed 000's SDK: {jobId} -> camelCase; {job_id} -> snake_case)")
async def get_training_status(body: GetTrainingStatusIn, request: Request, services: Services) -> dict[str, Any]:
    if (body.job_id is None) == (body.jobId is None):
        raise ApiError(INVALID, "give exactly one of 'jobId' or 'job_id'", field="jobId", issue="is required")
    job_id = body.jobId or body.job_id or ""
    job = (await services.training.GetJob(training_service_pb2.GetJobRequest(job_id=job_id),
                                          timeout=services.timeout_s)).job
    return reply(request, job_status(job) if body.jobId is not None else job_snake(job))


@router.post("/monitorTrainingProgress", response_model=Reply[MonitorOut], response_model_exclude_none=True,
             summary="Progress, latest metrics and optionally checkpoints/history of a job (seed 001)")
async def monitor_training_progress(body: MonitorIn, request: Request, services: Services) -> dict[str, Any]:
    job = (await services.training.GetJob(training_service_pb2.GetJobRequest(job_id=body.job_id),
                                          timeout=services.timeout_s)).job
    data = job_snake(job)
    data.pop("created_at"), data.pop("started_at"), data.pop("completed_at")
    # Seed 001's name for the tokens the job has processed so far (whitespace tokens of the inputs
    # trained on, the price model's unit; 0 before the first epoch is accounted).
    data["metrics"]["token_usage"] = int(job.metrics.get("tokens_processed", 0))
    if body.include_checkpoints:
        resp = await services.training.ListCheckpoints(
            training_service_pb2.ListCheckpointsRequest(job_id=job.job_id, page_size=1000),
            timeout=services.timeout_s)
        data["checkpoints"] = [CHECKPOINT.render(checkpoint_fields(cp)) for cp in resp.checkpoints]
    if body.include_history:
        resp = await services.training.ListMetrics(
            training_service_pb2.ListMetricsRequest(job_id=job.job_id, page_size=10000),
            timeout=services.timeout_s)
        data["history"] = [{"name": p.name, "value": p.value, "epoch": p.epoch, "step": p.step,
                            "time": ts_iso(p.time)} for p in resp.points]
    return reply(request, data)
