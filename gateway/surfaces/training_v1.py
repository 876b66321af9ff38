"""Seed 000 training jobs: /api/v1/training/train-agent[/{jobId}[/stop|/events|/checkpoints|/metrics]].

Each handler validates the HTTP shape (pydantic), calls TrainingService, and reshapes the answer.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import grpc
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import Field, StrictStr
from trainhouse.v1 import training_job_pb2, training_service_pb2

from trainhouse.gateway.convert import finite, ts_iso
from trainhouse.gateway.deps import Caller, Services
from trainhouse.gateway.errors import INVALID, ApiError, encoding_request
from trainhouse.gateway.examples import ExampleIn, examples_to_proto
from trainhouse.gateway.models import CamelModel, Envelope, envelope, Id, id_path, VersionRef
from trainhouse.gateway.resources.agents import version_v1
from trainhouse.gateway.resources.events import sse_event
from trainhouse.gateway.resources.jobs import checkpoint_fields, estimated_duration, job_status, seed_state_word
from trainhouse.gateway.resources.tables import FieldTable
from trainhouse.gateway.resources.training_config import TrainingConfigIn, config_json, config_to_proto
from trainhouse.gateway.routing import GatewayRoute
from trainhouse.gateway.surfaces.common import ERROR_RESPONSES
from trainhouse.gateway.surfaces.models_v1 import VersionOut
from trainhouse.common.grpc_errors import failure_of

router = APIRouter(prefix="/api/v1/training", tags=["training"], route_class=GatewayRoute,
                   responses=ERROR_RESPONSES)

class TrainingDataIn(CamelModel):
    examples: list[ExampleIn] | None = None
    validation_examples: list[ExampleIn] | None = None


class TrainAgentRequest(CamelModel):
    agent_id: Id
    config: TrainingConfigIn = Field(default_factory=TrainingConfigIn)
    examples: list[ExampleIn] | None = Field(None, description="Inline examples (trainhouse extension)")
    validation_examples: list[ExampleIn] | None = None
    training_data: TrainingDataIn | None = None
    display_name: StrictStr | None = None
    base_version_id: VersionRef | None = Field(None, description="transfer: version to start from")


# ---- response models ------------------------------------------------------------------------

class TrainAgentData(CamelModel):
    training_job_id: str
    agent_id: str
    status: str
    estimated_duration: str
    start_time: str | None = None
    config: dict[str, Any]


class StatusMetrics(CamelModel):
    training_loss: float | None = None
    validation_loss: float | None = None
    accuracy: float | None = None
    validation_accuracy: float | None = None
    learning_rate: float | None = None


class JobErrorOut(CamelModel):
    code: str
    message: str
    reason: str | None = None


class JobStatusData(CamelModel):
    job_id: str
    agent_id: str
    status: str
    progress: float
    current_epoch: int
    total_epochs: int
    current_step: int
    total_steps: int
    metrics: StatusMetrics
    estimated_completion: str | None = None
    created_at: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    model_version: str | None = None
    best_checkpoint_id: str | None = None
    dataset_id: str | None = None
    train_examples: int | None = None
    validation_examples: int | None = None
    status_reason: str | None = None
    error: JobErrorOut | None = None


class StopData(CamelModel):
    job_id: str
    status: str
    progress: float
    checkpoint_saved: bool
    checkpoint_id: str | None = None


class CheckpointOut(CamelModel):
    checkpoint_id: str
    job_id: str
    epoch: int
    step: int
    metrics: dict[str, float]
    best: bool
    kind: str
    size_bytes: int
    created_at: str | None = None


class CheckpointsData(CamelModel):
    job_id: str
    checkpoints: list[CheckpointOut]
    next_page_token: str | None = None


class MetricPointOut(CamelModel):
    name: str
    value: float
    epoch: int
    step: int
    time: str | None = None


class MetricsData(CamelModel):
    job_id: str
    points: list[MetricPointOut]
    next_page_token: str | None = None


# ---- translation ----------------------------------------------------------------------------

CAMEL = FieldTable(camel_case=True)


def checkpoint_json(cp: training_job_pb2.Checkpoint) -> dict[str, Any]:
    return CAMEL.render(checkpoint_fields(cp))


def sse_frame(event: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    data = finite(data)
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), allow_nan=False, default=str))
    return ("\n".join(lines) + "\n\n").encode()


# ---- routes ---------------------------------------------------------------------------------

JobId = Annotated[str, id_path("jobId", "Training job id")]
CheckpointId = Annotated[str, id_path("checkpointId", "A checkpoint id, or 'best' / 'last'")]


@router.post("/train-agent", response_model=Envelope[TrainAgentData], response_model_exclude_none=True,
             summary="Start a training job")
async def train_agent(body: TrainAgentRequest, caller: Caller, services: Services) -> dict[str, Any]:
    data = body.training_data or TrainingDataIn()
    examples = body.examples if body.examples is not None else data.examples
    validation = body.validation_examples if body.validation_examples is not None else data.validation_examples
    with encoding_request():
        request = training_service_pb2.StartJobRequest(
            agent_id=body.agent_id,
            examples=examples_to_proto(examples),
            validation_examples=examples_to_proto(validation),
            dataset_id=body.config.dataset or "",
            config=config_to_proto(body.config),
            display_name=body.display_name or "",
            base_version_id=body.base_version_id or "",
        )
    job = (await services.training.StartJob(request, timeout=services.timeout_s)).job
    return envelope({
        "trainingJobId": job.job_id,
        "agentId": job.agent_id,
        "status": seed_state_word(job.state),
        "estimatedDuration": estimated_duration(job),
        "startTime": ts_iso(job.start_time) or ts_iso(job.create_time),
        "config": config_json(job.config, job.dataset_id),
    })


@router.get("/train-agent/{jobId}", response_model=Envelope[JobStatusData], response_model_exclude_none=True,
            summary="Get a training job's status")
async def get_training_status(job_id: JobId, services: Services) -> dict[str, Any]:
    resp = await services.training.GetJob(training_service_pb2.GetJobRequest(job_id=job_id),
                                          timeout=services.timeout_s)
    return envelope(job_status(resp.job))


@router.post("/train-agent/{jobId}/stop", response_model=Envelope[StopData], response_model_exclude_none=True,
             summary="Stop (cancel) a training job; a running job saves a checkpoint first")
async def stop_training(job_id: JobId, services: Services) -> dict[str, Any]:
    resp = await services.training.CancelJob(
        training_service_pb2.CancelJobRequest(job_id=job_id, reason="stopped via API"),
        timeout=services.timeout_s)
    job = resp.job
    return envelope({
        "jobId": job.job_id,
        "status": seed_state_word(job.state),
        "progress": round(min(1.0, max(0.0, job.progress.percent_complete / 100.0)), 4),
        "checkpointSaved": resp.checkpoint_saved,
        "checkpointId": resp.checkpoint_id or None,
    }, message="Training job stopped successfully")


@router.get("/train-agent/{jobId}/events", response_class=StreamingResponse, response_model=None,
            summary="Server-Sent Events of the job (WatchJob)",
            responses={200: {"description": "`text/event-stream`: `id: <sequence>`, `event: <status|epoch|step|"
                                            "metric|checkpoint|log>`, `data: <JSON>`; ends after the terminal "
                                            "status. Resume with `Last-Event-ID` or `?afterSequence=`.",
                             "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
async def job_events(
    request: Request,
    job_id: JobId,
    services: Services,
    after_sequence: Annotated[int | None, Query(alias="afterSequence", ge=0, le=2 ** 63 - 1)] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    after = after_sequence or 0
    if last_event_id is not None and last_event_id.strip():
        # A reconnecting EventSource sends the header; it is newer than the URL's query.
        if not last_event_id.strip().isdigit():
            raise ApiError(INVALID, "Last-Event-ID must be a non-negative integer", field="Last-Event-ID",
                           issue="must be a non-negative integer")
        after = int(last_event_id.strip())
    # Resolve unknown jobs to a proper 404 before the 200 and the stream start.
    await services.training.GetJob(training_service_pb2.GetJobRequest(job_id=job_id), timeout=services.timeout_s)
    call = services.training.WatchJob(training_service_pb2.WatchJobRequest(job_id=job_id, after_sequence=after))
    keepalive = request.app.state.gate.settings.sse_keepalive_s
    return StreamingResponse(_sse(call, keepalive), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _sse(call: grpc.aio.UnaryStreamCall, keepalive_s: float) -> AsyncIterator[bytes]:
    """Relay the gRPC stream as SSE frames; cancel the gRPC call whenever the relay stops.

    A reader task fills a queue so that quiet periods can send keep-alive comments without
    cancelling a pending gRPC read. When the HTTP client disconnects, Starlette cancels this
    generator and the `finally` cancels the call, so the TrainingService stops streaming too.
    """
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=1024)

    async def pump() -> None:
        try:
            async for event in call:
                await queue.put(("event", event))
            await queue.put(("end", None))
        except grpc.RpcError as err:
            await queue.put(("error", err))

    reader = asyncio.create_task(pump())
    try:
        yield b"retry: 2000\n\n"
        while True:
            try:
                kind, item = await asyncio.wait_for(queue.get(), timeout=keepalive_s)
            except asyncio.TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if kind == "end":
                return
            if kind == "error":
                failure = failure_of(item)
                yield sse_frame("error", {"code": failure.code.name if failure.code else "UNKNOWN",
                                          "message": failure.message})
                return
            name, data = sse_event(item)
            yield sse_frame(name, data, event_id=item.sequence)
    finally:
        call.cancel()
        reader.cancel()


@router.get("/train-agent/{jobId}/checkpoints", response_model=Envelope[CheckpointsData],
            response_model_exclude_none=True, summary="List a job's checkpoints")
async def list_checkpoints(
    job_id: JobId, services: Services,
    page_size: Annotated[int, Query(alias="pageSize", ge=0, le=1000)] = 0,
    page_token: Annotated[str, Query(alias="pageToken", max_length=1000)] = "",
) -> dict[str, Any]:
    resp = await services.training.ListCheckpoints(
        training_service_pb2.ListCheckpointsRequest(job_id=job_id, page_size=page_size, page_token=page_token),
        timeout=services.timeout_s)
    return envelope({"jobId": job_id, "checkpoints": [checkpoint_json(c) for c in resp.checkpoints],
                     "nextPageToken": resp.next_page_token or None})


class RegisterCheckpointIn(CamelModel):
    note: StrictStr | None = Field(None, max_length=256, description="Kept as the version's tag 'note'")


@router.post("/train-agent/{jobId}/checkpoints/{checkpointId}/register", response_model=Envelope[VersionOut],
             response_model_exclude_none=True, status_code=201,
             summary="Register a checkpoint as a model version",
             description="checkpointId is a checkpoint id, or 'best' / 'last'. Any job state; idempotent per "
                         "checkpoint and step. The version serves nothing until deployed (unless it is the "
                         "agent's first version and the agent serves its first version).")
async def register_checkpoint(
    job_id: JobId, checkpoint_id: CheckpointId, services: Services, body: RegisterCheckpointIn | None = None,
) -> dict[str, Any]:
    request = training_service_pb2.RegisterCheckpointRequest(job_id=job_id, note=(body.note if body else None) or "")
    if checkpoint_id in ("best", "last"):
        request.which = checkpoint_id  # the job's best checkpoint is also the id "best": the same one
    else:
        request.checkpoint_id = checkpoint_id
    resp = await services.training.RegisterCheckpoint(request, timeout=services.timeout_s)
    return envelope(version_v1(resp.version))


@router.get("/train-agent/{jobId}/metrics", response_model=Envelope[MetricsData],
            response_model_exclude_none=True, summary="A job's metric history")
async def list_metrics(
    job_id: JobId, services: Services,
    names: Annotated[str, Query(description="Comma-separated metric names (default: all)", max_length=2000)] = "",
    page_size: Annotated[int, Query(alias="pageSize", ge=0, le=10000)] = 0,
    page_token: Annotated[str, Query(alias="pageToken", max_length=1000)] = "",
    max_points_per_metric: Annotated[int, Query(
        alias="maxPointsPerMetric", ge=0, le=10000,
        description="At most this many points per metric name, evenly spaced over its history, first and last "
                    "always included; one page (not with pageSize/pageToken). 0: every point, paged")] = 0,
) -> dict[str, Any]:
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    resp = await services.training.ListMetrics(
        training_service_pb2.ListMetricsRequest(job_id=job_id, names=wanted, page_size=page_size,
                                                page_token=page_token, max_points_per_metric=max_points_per_metric),
        timeout=services.timeout_s)
    points = [{"name": p.name, "value": p.value, "epoch": p.epoch, "step": p.step, "time": ts_iso(p.time)}
              for p in resp.points]
    return envelope({"jobId": job_id, "points": points, "nextPageToken": resp.next_page_token or None})
