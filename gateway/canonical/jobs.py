"""/v1/jobs: training jobs, their checkpoints, metric history and examples.

Pause and resume: ``POST /v1/jobs/{id}/pause`` is PauseJob: a running job writes a checkpoint of its
full training state (weights, optimizer, scheduler, RNG, budget; services/core/trainer/loop.py), its
slot is freed at once and the job reads state ``paused`` (not terminal: nothing starts it again by
itself). ``POST /v1/jobs/{id}/resume`` is ResumeJob: the job goes back to ``queued`` and continues
from its newest checkpoint, which the trainer restores bit-identically
(tests/trainer/test_checkpoint_resume.py).
"""
from __future__ import annotations

import os
import tempfile
from typing import Annotated, Any, Literal

import duckdb
from anyio import to_thread
from fastapi import Header, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, StrictStr
from trainhouse.v1 import training_service_pb2 as ts

from trainhouse.gateway.canonical.common import After, JobId, Limit, Page, page, path_id, router
from trainhouse.gateway.canonical.idempotency import idempotent
from trainhouse.gateway.canonical.protojson import enum_words, message_json, proto_model, response_model, to_proto
from trainhouse.gateway.canonical.versions import V1VersionOut, version_out
from trainhouse.gateway.convert import ts_iso
from trainhouse.gateway.deps import Services
from trainhouse.gateway.errors import INVALID, ApiError
from trainhouse.gateway.resources.jobs import checkpoint_fields, job_fields
from trainhouse.common.duckdb_store import insert_columns
from trainhouse.v1 import job_state_pb2

jobs = router("/jobs", "jobs")

# The body of a create is StartJobRequest itself; the account comes from the token.
V1CreateJobIn = proto_model(ts.StartJobRequest.DESCRIPTOR, exclude={"account_id"}, name="V1CreateJobIn")
JobStateWord = Literal[tuple(enum_words(job_state_pb2.JobState.DESCRIPTOR))]  # type: ignore[valid-type]


class V1JobOut(BaseModel):
    """A training job (trainhouse.gateway.resources.jobs.job_fields: the one mapping every surface starts from)."""

    job_id: str
    agent_id: str
    state: str
    status_reason: str | None = None
    error: str | None = None
    error_code: int | None = None
    percent_complete: float
    current_epoch: int
    total_epochs: int
    current_step: int
    total_steps: int
    current_iteration: int
    total_iterations: int
    estimated_time_remaining_ms: int | None = None
    estimate_basis: str | None = None
    metrics: dict[str, float | None]  # null: not computable (NaN), e.g. ECE on an empty split
    config: dict[str, Any] | None = Field(None, description="The resolved TrainingConfig (defaults filled in)")
    model_version_id: str | None = None
    best_checkpoint_id: str | None = None
    dataset_id: str | None = None
    train_examples: int
    validation_examples: int
    created_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    estimated_completion: str | None = None
    cost_usd: float
    budget_usd: float | None = None
    labels: dict[str, str]
    last_sequence: int = Field(description="Sequence of the job's newest event, read with the rest of this record: "
                               "GET /v1/jobs/{job_id}/events?after=<it> (or its stream) then returns only what "
                               "happened since, nothing missed or repeated")


class V1JobActionOut(BaseModel):
    job: V1JobOut
    checkpoint_saved: bool | None = None
    checkpoint_id: str | None = None


class V1CheckpointOut(BaseModel):
    checkpoint_id: str
    job_id: str
    epoch: int
    step: int
    metrics: dict[str, float | None]  # null: not computable (NaN), e.g. ECE on an empty split
    best: bool
    kind: str
    size_bytes: int
    created_at: str | None = None


class V1MetricPointOut(BaseModel):
    name: str
    value: float
    epoch: int
    step: int
    time: str | None = None


class V1CancelIn(BaseModel):
    reason: StrictStr | None = Field(None, max_length=500)


class V1RegisterCheckpointIn(BaseModel):
    note: StrictStr | None = Field(None, max_length=256, description="Kept as the version's tag 'note'")


ExampleOut = response_model(ts.ListJobExamplesResponse.DESCRIPTOR.fields_by_name["examples"].message_type)


def job_out(job: Any) -> dict[str, Any]:
    """job_fields plus the resolved training config (what the worker ran with: defaults filled in),
    which /v1 clients (the SDK, `trainhouse export mlflow`) read; the seed surfaces keep their shapes."""
    out = job_fields(job)
    out["config"] = message_json(job.config) if job.HasField("config") else None
    return out


@jobs.post("", operation_id="jobs.create", response_model=V1JobOut, status_code=201, summary="Start a training job",
           description="The body is StartJobRequest (agent_id, examples or dataset_id, config...). Send an "
                       "`Idempotency-Key` to make retries safe.")
async def create_job(body: V1CreateJobIn, request: Request, services: Services,  # type: ignore[valid-type]
                     idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None) -> Any:
    async def create() -> dict[str, Any]:
        msg = to_proto(body, ts.StartJobRequest)
        return job_out((await services.training.StartJob(msg, timeout=services.timeout_s)).job)
    return await idempotent(request, idempotency_key, body.model_dump(exclude_none=True), create)


@jobs.get("", operation_id="jobs.list", response_model=Page[V1JobOut], summary="List jobs (keyset pages)")
async def list_jobs(
    services: Services, response: Response,
    after: After = "", limit: Limit = 50,
    agent_id: Annotated[str, Query(max_length=128)] = "",
    state: Annotated[JobStateWord | None, Query()] = None,
    filter: Annotated[str, Query(max_length=4000, description="Search expression (docs/search.md)")] = "",
    order_by: Annotated[str, Query(max_length=500, description='e.g. "metrics.validation_accuracy.best desc"')] = "",
    include_total: bool = False,
) -> dict[str, Any]:
    req = ts.ListJobsRequest(page_size=limit, page_token=after, agent_id=agent_id, filter=filter, order_by=order_by,
                             include_total_size=include_total)
    if state:
        req.state = job_state_pb2.JobState.Value("JOB_STATE_" + state.upper())
    resp = await services.training.ListJobs(req, timeout=services.timeout_s)
    if include_total:
        response.headers["X-Total-Count"] = str(resp.total_size)
    return page([job_out(j) for j in resp.jobs], resp.next_page_token)


@jobs.get("/{job_id}", operation_id="jobs.get", response_model=V1JobOut, summary="Get a job")
async def get_job(job_id: JobId, services: Services) -> dict[str, Any]:
    return job_out((await services.training.GetJob(ts.GetJobRequest(job_id=job_id), timeout=services.timeout_s)).job)


@jobs.post("/{job_id}/cancel", operation_id="jobs.cancel", response_model=V1JobActionOut,
           summary="Cancel a job (a running job saves a checkpoint first)")
async def cancel_job(job_id: JobId, services: Services, body: V1CancelIn | None = None) -> dict[str, Any]:
    reason = (body.reason if body else None) or "cancelled via API"
    resp = await services.training.CancelJob(ts.CancelJobRequest(job_id=job_id, reason=reason),
                                             timeout=services.timeout_s)
    return {"job": job_out(resp.job), "checkpoint_saved": resp.checkpoint_saved,
            "checkpoint_id": resp.checkpoint_id or None}


@jobs.post("/{job_id}/pause", operation_id="jobs.pause", response_model=V1JobActionOut,
           summary="Pause a job: checkpoint its training state and free its slot (resume continues it)",
           description="PauseJob: the job reads state 'paused' (not terminal) until resumed; 409 when it "
                       "already ended or is paused.")
async def pause_job(job_id: JobId, services: Services) -> dict[str, Any]:
    resp = await services.training.PauseJob(ts.PauseJobRequest(job_id=job_id), timeout=services.timeout_s)
    return {"job": job_out(resp.job), "checkpoint_saved": resp.checkpoint_saved,
            "checkpoint_id": resp.checkpoint_id or None}


@jobs.post("/{job_id}/resume", operation_id="jobs.resume", response_model=V1JobActionOut,
           summary="Resume a paused, cancelled or failed job from its newest checkpoint")
async def resume_job(job_id: JobId, services: Services) -> dict[str, Any]:
    resp = await services.training.ResumeJob(ts.ResumeJobRequest(job_id=job_id), timeout=services.timeout_s)
    return {"job": job_out(resp.job), "checkpoint_id": resp.checkpoint_id or None}


@jobs.get("/{job_id}/checkpoints", operation_id="checkpoints.list", response_model=Page[V1CheckpointOut],
          summary="A job's checkpoints, oldest first")
async def list_checkpoints(job_id: JobId, services: Services, after: After = "", limit: Limit = 100) -> dict[str, Any]:
    resp = await services.training.ListCheckpoints(
        ts.ListCheckpointsRequest(job_id=job_id, page_size=limit, page_token=after), timeout=services.timeout_s)
    return page([checkpoint_fields(c) for c in resp.checkpoints], resp.next_page_token)


@jobs.post("/{job_id}/checkpoints/{checkpoint_id}/register", operation_id="checkpoints.register",
           response_model=V1VersionOut, status_code=201,
           summary="Register a checkpoint (an id, or 'best' / 'last') as a model version (idempotent)")
async def register_checkpoint(job_id: JobId, checkpoint_id: Annotated[str, path_id("A checkpoint id, or best / last")],
                              services: Services, body: V1RegisterCheckpointIn | None = None) -> dict[str, Any]:
    cp = checkpoint_id
    req = ts.RegisterCheckpointRequest(job_id=job_id, note=(body.note if body else None) or "")
    if cp in ("best", "last"):
        req.which = cp
    else:
        req.checkpoint_id = cp
    return version_out((await services.training.RegisterCheckpoint(req, timeout=services.timeout_s)).version)


MetricsFormat = Literal["json", "csv", "parquet"]
EXPORT_PAGE = 10000
EXPORT_MAX_POINTS = 5_000_000


@jobs.get("/{job_id}/metrics", operation_id="metrics.list", response_model=Page[V1MetricPointOut],
          summary="Metric history: JSON pages, or the whole history as CSV or Parquet",
          responses={200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}}}})
async def list_metrics(
    job_id: JobId, services: Services,
    names: Annotated[list[str], Query(max_length=100, description="Only these metric names (repeatable)")] = [],  # noqa: B006
    after: After = "", limit: Annotated[int | None, Query(ge=1, le=10000, description="default 1000")] = None,
    format: MetricsFormat = "json",
    max_points_per_metric: Annotated[int, Query(
        ge=0, le=10000, description="At most this many points per metric name, evenly spaced over its history, "
                                    "first and last always included: one page (no after/limit). 0: every point")] = 0,
) -> Any:
    if format == "json":
        if max_points_per_metric:
            for param, value in (("limit", limit), ("after", after)):
                if value:  # the service would name its own fields (page_size, page_token)
                    raise ApiError(INVALID, f"a sampled history (max_points_per_metric) is one page: no '{param}'",
                                   field=param)
            req = ts.ListMetricsRequest(job_id=job_id, names=names, max_points_per_metric=max_points_per_metric)
        else:
            req = ts.ListMetricsRequest(job_id=job_id, names=names, page_size=limit or 1000, page_token=after)
        resp = await services.training.ListMetrics(req, timeout=services.timeout_s)
        return page([_point(p) for p in resp.points], resp.next_page_token)
    if max_points_per_metric:
        raise ApiError(INVALID, "CSV and Parquet exports hold the whole history: no 'max_points_per_metric'",
                       field="max_points_per_metric")
    if after:
        raise ApiError(INVALID, "CSV and Parquet exports hold the whole history: no 'after'", field="after")
    points: list[Any] = []
    token = ""
    while True:
        resp = await services.training.ListMetrics(
            ts.ListMetricsRequest(job_id=job_id, names=names, page_size=EXPORT_PAGE, page_token=token),
            timeout=services.timeout_s)
        points.extend(resp.points)
        token = resp.next_page_token
        if not token or len(points) > EXPORT_MAX_POINTS:
            break
    data = await to_thread.run_sync(export_points, points, format)
    media = "text/csv" if format == "csv" else "application/vnd.apache.parquet"
    return Response(data, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{job_id}-metrics.{format}"'})


def _point(p: Any) -> dict[str, Any]:
    return {"name": p.name, "value": p.value, "epoch": p.epoch, "step": p.step, "time": ts_iso(p.time)}


def export_points(points: list[Any], fmt: str) -> bytes:
    """The points as CSV or Parquet, written by DuckDB (columns name, value, epoch, step, time)."""
    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE m (name VARCHAR, value DOUBLE, epoch INTEGER, step BIGINT, time VARCHAR)")
        insert_columns(con, "m", {"name": [p.name for p in points], "value": [p.value for p in points],
                                  "epoch": [p.epoch for p in points], "step": [p.step for p in points],
                                  "time": [ts_iso(p.time) for p in points]})
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, f"metrics.{fmt}")
            options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
            con.execute(f"COPY (SELECT name, value, epoch, step, CAST(time AS TIMESTAMPTZ) AS time FROM m) "
                        f"TO '{path}' ({options})")
            with open(path, "rb") as fh:
                return fh.read()
    finally:
        con.close()


@jobs.get("/{job_id}/examples", operation_id="jobs.examples", response_model=Page[ExampleOut],  # type: ignore[valid-type]
          summary="The examples a job trained ('train') or validated ('validation') on")
async def list_examples(job_id: JobId, services: Services, after: After = "",
                        limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
                        split: Literal["all", "train", "validation"] = "all") -> dict[str, Any]:
    resp = await services.training.ListJobExamples(
        ts.ListJobExamplesRequest(job_id=job_id, split=split, page_size=limit, page_token=after),
        timeout=services.timeout_s)
    return page([message_json(e) for e in resp.examples], resp.next_page_token)
