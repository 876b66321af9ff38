"""Seeds 001 + 002 (and seed 000's SDK names): ``POST /api/v1/functions/{name}``.

Success: ``{"success": true, "data": {...}, "trace_id": "..."}`` with snake_case fields.
Errors (seed 002's shape, seed 001's codes)::

    {"success": false, "code": "VALIDATION_ERROR", "message": "...", "hint": "...",
     "retryable": false, "trace_id": "...", "field": "config.epochs"}

Each function is its own route with its own request model, so /openapi.json documents it; a
name without a route reaches the catch-all, which answers 404 listing the names that exist.
`trainAgent` and `getTrainingStatus` are also what seed 000's SDK invokes with camelCase
arguments (``{agentId, config}``, ``{jobId}``); called that way they answer in seed 000's
camelCase fields, so that SDK works unchanged.
"""
from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictStr,
    Tag,
)
from trainhouse.v1 import (
    data_service_pb2,
    evaluation_service_pb2,
    job_state_pb2,
    training_analysis_pb2,
    training_job_pb2,
    training_service_pb2,
)

from gateway import errors as E
from gateway.convert import duration_s, enum_word, finite, ts_iso
from gateway.deps import Caller, Services
from gateway.errors import (
    INVALID,
    ApiError,
    encoding_request,
    request_id_of,
    rpc_fields,
)
from gateway.examples import (
    ExampleIn,
    example_to_json,
    examples_to_proto,
    examples_to_rated,
)
from gateway.models import Int, Int64, Number
from gateway.ratelimit import EVALUATIONS
from gateway.resources.datasets import generate, generated_json, generation_request
from gateway.resources.jobs import (
    checkpoint_fields,
    estimated_duration,
    job_status,
    state_word,
)
from gateway.resources.tables import FieldTable
from gateway.routing import GatewayRoute, spend
from gateway.surfaces.training_v1 import (
    MethodName,
    TrainingConfigIn,
    config_json,
    config_to_proto,
)
from gateway.surfaces.validation import from_request_validation
from services.common.grpc_errors import RpcFailure

PREFIX = "/api/v1/functions"

T = TypeVar("T")


# ---- error shape ----------------------------------------------------------------------------

# kind -> (code, HTTP status, retryable). Seed 001's table, plus 403/405/413/503/504 in its style.
CODES: dict[str, tuple[str, int, bool]] = {
    E.INVALID: ("VALIDATION_ERROR", 422, False),
    E.MALFORMED: ("VALIDATION_ERROR", 400, False),
    E.UNAUTHENTICATED: ("UNAUTHORIZED", 401, False),
    E.FORBIDDEN: ("FORBIDDEN", 403, False),
    E.NOT_FOUND: ("NOT_FOUND", 404, False),
    E.METHOD_NOT_ALLOWED: ("METHOD_NOT_ALLOWED", 405, False),
    E.CONFLICT: ("CONFLICT", 409, False),
    E.PRECONDITION: ("PRECONDITION_FAILED", 412, False),
    E.TOO_LARGE: ("PAYLOAD_TOO_LARGE", 413, False),
    E.RATE_LIMITED: ("QUOTA_EXCEEDED", 429, True),
    E.INTERNAL: ("SERVER_ERROR", 500, True),
    E.NOT_IMPLEMENTED: ("NOT_IMPLEMENTED", 501, False),
    E.UNAVAILABLE: ("SERVICE_UNAVAILABLE", 503, True),
    E.TIMEOUT: ("TIMEOUT", 504, True),
}


def _hint(error: ApiError, code: str) -> str:
    if error.kind in (E.INVALID, E.MALFORMED):
        if error.field and error.field != "body":
            return f"Check '{error.field}': {error.issue or error.message}"
        return "Send a JSON object with the function's parameters as the body"
    if error.kind == E.UNAUTHENTICATED:
        return "Send 'Authorization: Bearer <token>' with a valid, unexpired token"
    if error.kind == E.FORBIDDEN:
        return "Use a token that has the required scope"
    if error.kind == E.NOT_FOUND:
        return error.issue or "Check the id; it may belong to another environment"
    if error.kind == E.PRECONDITION:
        return "The resource is not in a state that allows this; read its status first"
    if error.kind == E.CONFLICT:
        return "The resource already exists or changed; read it and retry if needed"
    if error.kind == E.RATE_LIMITED:
        return f"Retry after {error.retry_after} seconds" if error.retry_after else "Slow down and retry"
    if error.kind in (E.UNAVAILABLE, E.TIMEOUT):
        return "A backend service is unavailable; retry shortly"
    if error.kind == E.TOO_LARGE:
        return "Send a smaller body (at most 10 MiB)"
    return "Retry; if it persists, report the trace_id"


class FunctionsSurface:
    name = "functions"

    def from_rpc(self, failure: RpcFailure) -> ApiError:
        kind = E.kind_of_failure(failure)
        message = failure.message or (failure.code.name.lower() if failure.code else "backend failure")
        if kind == E.INTERNAL:
            message = "internal error"
        if kind == E.UNAVAILABLE:
            message = "a backend service is unavailable; retry shortly"
        field = failure.field or None
        return ApiError(kind, message, field=field, issue=failure.message if field else None,
                        resource=failure.metadata.get("resource"))

    def from_validation(self, exc: RequestValidationError) -> ApiError:
        return from_request_validation(exc)

    def render(self, error: ApiError, request_id: str) -> JSONResponse:
        code, status, retryable = CODES.get(error.kind, CODES[E.INTERNAL])
        body: dict[str, Any] = {"success": False, "code": code, "message": error.message,
                                "hint": _hint(error, code), "retryable": retryable, "trace_id": request_id}
        if error.field:
            body["field"] = error.field
        if error.retry_after is not None:
            body["retry_after"] = error.retry_after
        return JSONResponse(status_code=status, content=body)


FUNCTIONS_SURFACE = FunctionsSurface()


class FunctionError(BaseModel):
    success: bool = False
    code: str
    message: str
    hint: str
    retryable: bool
    trace_id: str
    field: str | None = None
    retry_after: int | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": FunctionError, "description": text}
    for status, text in (
        (400, "VALIDATION_ERROR: the body is not valid JSON"),
        (401, "UNAUTHORIZED"), (403, "FORBIDDEN: the token lacks the function's scope"),
        (404, "NOT_FOUND"), (409, "CONFLICT"), (412, "PRECONDITION_FAILED"), (413, "PAYLOAD_TOO_LARGE"),
        (422, "VALIDATION_ERROR: a parameter is missing or invalid (`field` names it)"),
        (429, "QUOTA_EXCEEDED"), (503, "SERVICE_UNAVAILABLE"),
    )
}

router = APIRouter(prefix=PREFIX, tags=["functions"], route_class=GatewayRoute, responses=ERROR_RESPONSES)


class Reply(BaseModel, Generic[T]):
    success: bool = True
    data: T
    trace_id: str


def reply(request: Request, data: Any) -> dict[str, Any]:
    return {"success": True, "data": finite(data), "trace_id": request_id_of(request)}


# ---- request models -------------------------------------------------------------------------

class SnakeModel(BaseModel):
    """Parameters exactly as the seeds name them; unknown extras are ignored (SDKs add some)."""

    model_config = ConfigDict(extra="ignore")


class FunctionConfigIn(TrainingConfigIn):
    """Seed 001's `config` (camelCase, as documented there; snake_case is accepted too)."""

    training_type: MethodName | None = Field(None, description="Training paradigm (seed 001's trainingType)")


class TrainingDataIn(BaseModel):
    """Seed 001's `training_data` object."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    examples: list[ExampleIn] | None = None
    validation_examples: list[ExampleIn] | None = Field(
        None, validation_alias=AliasChoices("validationExamples", "validation_examples"))
    module_id: StrictStr | None = Field(None, validation_alias=AliasChoices("moduleId", "module_id"),
                                        description="Training module reference: the job also trains on examples "
                                                    "generated from the module (TrainingService StartJob.module_id)")


def _shape(value: Any) -> str:
    return "[array]" if isinstance(value, list) else "{object}"


# Discriminated by JSON type so an error names the field, not every union member.
TrainingDataUnion = Annotated[
    Annotated[list[ExampleIn], Tag("[array]")] | Annotated[TrainingDataIn, Tag("{object}")],
    Discriminator(_shape)]


class StartTrainingJobIn(SnakeModel):
    agent_id: StrictStr
    training_data: TrainingDataIn
    config: FunctionConfigIn | None = None


class TrainAgentIn(SnakeModel):
    """Seed 002 (`agent_id`, `training_data` array, `training_type`, `config`) or seed 000's SDK
    (`agentId`, `config` with `method`, `dataset`, ...)."""

    agent_id: StrictStr | None = None
    agentId: StrictStr | None = None  # noqa: N815 - the seed-000 SDK's spelling
    training_data: TrainingDataUnion | None = Field(
        None, description="Seed 002: an array of examples; seed 001: {examples, validationExamples}")
    examples: list[ExampleIn] | None = Field(None, description="Inline examples (seed-000 form)")
    training_type: MethodName | None = None
    config: FunctionConfigIn | None = None


class GetTrainingStatusIn(SnakeModel):
    jobId: StrictStr | None = None  # noqa: N815 - the seed-000 SDK's spelling
    job_id: StrictStr | None = None


class MonitorIn(SnakeModel):
    job_id: StrictStr
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

def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(round(seconds * 1000))


def progress_snake(job: training_job_pb2.TrainingJob) -> dict[str, Any]:
    p = job.progress
    return {"current_epoch": p.current_epoch, "total_epochs": p.total_epochs, "current_step": p.current_step,
            "total_steps": p.total_steps, "percent_complete": round(p.percent_complete, 2),
            "estimated_time_remaining_ms": _ms(duration_s(p.estimated_time_remaining))
            if p.HasField("estimated_time_remaining") else None}


def started_job(job: training_job_pb2.TrainingJob, sent_examples: int) -> dict[str, Any]:
    total = job.train_examples + job.validation_examples
    estimates: dict[str, Any] = {
        "total_samples": total or sent_examples or None,
        "training_samples": job.train_examples or None,
        "validation_samples": job.validation_examples or None,
        "estimated_duration_ms": _ms(duration_s(job.progress.estimated_time_remaining))
        if job.progress.HasField("estimated_time_remaining") else None,
    }
    return {"job_id": job.job_id, "agent_id": job.agent_id, "status": state_word(job.state),
            "config": config_json(job.config, job.dataset_id), "progress": progress_snake(job),
            "estimates": estimates, "started_at": ts_iso(job.start_time) or ts_iso(job.create_time)}


def job_snake(job: training_job_pb2.TrainingJob) -> dict[str, Any]:
    """A job's status with snake_case fields (seeds 001/002)."""
    out: dict[str, Any] = {
        "job_id": job.job_id, "agent_id": job.agent_id, "status": state_word(job.state),
        "progress": progress_snake(job), "metrics": dict(job.metrics),
        "model_version": job.model_version_id or None, "status_reason": job.status_reason or None,
        "created_at": ts_iso(job.create_time), "started_at": ts_iso(job.start_time),
        "completed_at": ts_iso(job.end_time), "best_checkpoint_id": job.best_checkpoint_id or None,
        "dataset_id": job.dataset_id or None,
    }
    if out["status"] == "failed":
        out["error"] = {"code": "TRAINING_FAILED", "message": job.error.message or "training failed",
                        "reason": job.status_reason or None}
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
            agent_id=agent_id, dataset_id=cfg.dataset or "", config=config, account_id=caller.account,
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
                "status": state_word(job.state), "estimatedDuration": estimated_duration(job),
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


class GenerationParametersIn(SnakeModel):
    """Seed 002's `parameters`."""

    difficulty: Literal["easy", "medium", "hard"] | None = None
    topics: list[StrictStr] | None = None
    edge_cases: StrictBool | None = None
    edge_case_rate: Number | None = None
    diversity: Number | None = None
    max_length: Int | None = None
    languages: list[StrictStr] | None = None
    seed: Int64 | None = None
    label_by: Literal["output", "topic"] | None = None


class GenerateSyntheticIn(SnakeModel):
    """Seed 001 ({module_id, sample_count 1..50, difficulty}), seed 002 ({data_type, count, parameters})
    or seed 000's SDK ({scenarioType, count, ...}, answered in camelCase)."""

    module_id: StrictStr | None = None
    sample_count: Int | None = None
    difficulty: Literal["easy", "medium", "hard"] | None = None
    data_type: StrictStr | None = None
    count: Int | None = None
    parameters: GenerationParametersIn | None = None
    scenarioType: StrictStr | None = None  # noqa: N815 - seed 000's spelling
    edgeCases: StrictBool | None = None  # noqa: N815
    diversity: Number | None = None
    template: dict[str, Any] | None = None
    seed: Int64 | None = None


INLINE_EXAMPLES = 100  # generated sets up to this size come back inline too


@router.post("/generateSyntheticTrainingData", response_model=Reply[dict[str, Any]],
             response_model_exclude_none=True,
             summary="Generate synthetic examples (seed 001 module form, seed 002 data_type form, seed 000 SDK)")
async def generate_synthetic_training_data(body: GenerateSyntheticIn, request: Request,
                                           services: Services) -> dict[str, Any]:
    forms = [name for name in ("module_id", "data_type", "scenarioType") if getattr(body, name) is not None]
    if len(forms) != 1:
        raise ApiError(INVALID, "give exactly one of 'module_id' (seed 001), 'data_type' (seed 002) or "
                       "'scenarioType'", field="module_id", issue="exactly one generator is required")
    p = body.parameters or GenerationParametersIn()
    if body.module_id is not None:
        req = generation_request(module_id=body.module_id, count=body.sample_count, max_count=50,
                                 difficulty=body.difficulty)
    elif body.data_type is not None:
        if body.count is None:
            raise ApiError(INVALID, "count is required", field="count", issue="is required")
        req = generation_request(data_type=body.data_type, count=body.count, difficulty=p.difficulty,
                                 edge_cases=p.edge_cases, edge_case_rate=p.edge_case_rate, diversity=p.diversity,
                                 max_length=p.max_length, languages=p.languages, topics=p.topics, seed=p.seed,
                                 label_by=p.label_by)
    else:
        req = generation_request(scenario_type=body.scenarioType, count=body.count, difficulty=body.difficulty,
                                 edge_cases=body.edgeCases, diversity=body.diversity, template=body.template,
                                 seed=body.seed)
    # Seed 001 calls the count `sample_count` (DataService: `count`, with its limit in metadata).
    with rpc_fields(FUNCTIONS_SURFACE, {"count": "sample_count"} if body.module_id is not None else {}):
        resp = await generate(request, services, req)
    data = generated_json(request, resp)
    if body.scenarioType is not None:
        return reply(request, data)
    out: dict[str, Any] = {
        "dataset_id": data["datasetId"], "generated": data["generated"], "status": data["status"],
        "download_url": data["downloadUrl"], "expires_at": data["expiresAt"], "seed": data["seed"],
        "scenario": data["scenario"],
        "statistics": {"generated": resp.statistics.generated, "average_length": resp.statistics.average_length,
                       "unique_scenarios": resp.statistics.unique_scenarios,
                       "edge_cases": resp.statistics.edge_cases, "diversity": resp.statistics.diversity,
                       "distinct_1": resp.statistics.distinct_1, "distinct_2": resp.statistics.distinct_2,
                       "level_counts": data["statistics"]["levelCounts"],
                       "topic_counts": data["statistics"]["topicCounts"]},
    }
    if resp.statistics.generated <= INLINE_EXAMPLES:
        stream = services.data.StreamExamples(
            data_service_pb2.StreamExamplesRequest(dataset_id=resp.dataset.dataset_id),
            timeout=services.timeout_s)
        out["examples"] = [example_to_json(ex) async for batch in stream for ex in batch.examples]
    return reply(request, out)


class EvaluateTrainingResultsIn(SnakeModel):
    job_id: StrictStr
    test_data: list[ExampleIn] | None = None
    evaluation_criteria: list[StrictStr] | None = None
    benchmark_against: StrictStr | None = None


@router.post("/evaluateTrainingResults", response_model=Reply[dict[str, Any]], response_model_exclude_none=True,
             summary="Evaluate a completed job: scores, grade, curve analysis, advice (seed 001; 100/day)")
async def evaluate_training_results(body: EvaluateTrainingResultsIn, request: Request,
                                    services: Services) -> dict[str, Any]:
    spend(request, EVALUATIONS)
    with encoding_request():
        req = evaluation_service_pb2.EvaluateTrainingResultsRequest(
            job_id=body.job_id, test_data=examples_to_proto(body.test_data),
            evaluation_criteria=body.evaluation_criteria or [], benchmark_against=body.benchmark_against or "")
    resp = await services.evaluation.EvaluateTrainingResults(req, timeout=services.timeout_s)
    a = resp.analysis
    data: dict[str, Any] = {
        "job_id": resp.job_id,
        "evaluation": {"evaluation_id": resp.evaluation.evaluation_id, "overall_score": resp.overall_score,
                       "quality_grade": resp.quality_grade, "metric_scores": dict(resp.metric_scores),
                       "summary": resp.summary},
        "analysis": {"convergence_status": enum_word(training_analysis_pb2.ConvergenceStatus.Name(a.convergence_status),
                                                     "CONVERGENCE_STATUS_"),
                     "overfitting_risk": enum_word(training_analysis_pb2.RiskLevel.Name(a.overfitting_risk), "RISK_LEVEL_"),
                     "underfitting_risk": enum_word(training_analysis_pb2.RiskLevel.Name(a.underfitting_risk),
                                                    "RISK_LEVEL_"),
                     "training_efficiency": a.training_efficiency, "signals": dict(a.signals),
                     "explanations": list(a.explanations), "epochs_analyzed": a.epochs_analyzed},
        "strengths": list(resp.strengths), "weaknesses": list(resp.weaknesses),
        "recommendations": [{"priority": r.priority, "category": r.category, "recommendation": r.recommendation,
                             "expected_impact": r.expected_impact} for r in resp.recommendations],
    }
    if resp.HasField("benchmark_comparison"):
        b = resp.benchmark_comparison
        data["benchmark_comparison"] = {"baseline_job_id": b.baseline_job_id,
                                        "baseline_version_id": b.baseline_version_id,
                                        "accuracy_improvement": b.accuracy_improvement,
                                        "loss_reduction": b.loss_reduction, "paired_examples": b.paired_examples}
    return reply(request, data)


def function_names() -> list[str]:
    """The functions this server has (every route of both functions routers but the catch-all)."""
    from gateway.surfaces import (
        functions_more,  # imports this module: resolved at call time
    )

    routes = [*router.routes, *functions_more.router.routes]
    return sorted(r.path.removeprefix(PREFIX + "/") for r in routes  # type: ignore[attr-defined]
                  if "{" not in r.path)  # type: ignore[attr-defined]


@router.post("/{name}", response_model=FunctionError, status_code=404,
             summary="Unknown function: 404 NOT_FOUND listing the functions that exist")
async def unknown_function(name: str) -> None:
    names = function_names()
    raise ApiError(E.NOT_FOUND, f"function '{name[:100]}' not found; available: {', '.join(names)}",
                   field="name", issue="available functions: " + ", ".join(names))
