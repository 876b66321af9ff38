"""Seed 003: JSON-RPC 2.0 at ``POST /api/v1/jsonrpc``.

Exactly the JSON-RPC 2.0 rules: ids are echoed as sent (string, number or null); a request
without an ``id`` is a notification and gets no reply (a request made only of notifications
answers 204 with no body); a batch answers an array in request order, mixing results and
errors; an empty batch is one -32600 error; unparseable JSON (NaN/Infinity literals included) is
-32700 with a null id, and a body nested deeper than TRAINHOUSE_MAX_JSON_DEPTH one -32600. A number
JSON cannot echo (``1e309`` reads as inf; integers beyond int64) fails only its own call: -32600
with a null id when it is the id, -32602 naming the parameter when it is in params.

Error codes: the spec's (-32700, -32600, -32601, -32602, -32603), the seed's (-32001 not found,
-40001 budget exceeded, -40002 validation failed, -40003 cannot cancel, -40004 evaluation
failed, -40005 export limit exceeded), each with ``data.field`` / ``data.error``, and three of
ours for what the seed leaves open: -32010 unauthorized, -32011 forbidden (the method's scope),
-32029 rate limited (``data.retryAfter``). When a single, non-batch call fails with one of those
three, the HTTP status says so too (401 / 403 / 429 + Retry-After); everything else is 200.

Which scope each method needs is in trainhouse.gateway.scopes (one table with the HTTP routes); the
per-method rate limits are trainhouse.gateway.ratelimit's ``rpc:<method>`` groups (seed 003's table).
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import grpc
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    create_model,
)
from trainhouse.v1 import (
    data_service_pb2,
    evaluation_pb2,
    evaluation_service_pb2,
    example_pb2,
    job_state_pb2,
    training_job_pb2,
    training_service_pb2,
)

from trainhouse.gateway import errors as E
from trainhouse.gateway import json_limits
from trainhouse.gateway.auth import Principal
from trainhouse.gateway.backends import Backends
from trainhouse.gateway.convert import finite, ts_iso, usd_text
from trainhouse.gateway.errors import ApiError, request_id_of
from trainhouse.gateway.json_limits import number_problem
from trainhouse.gateway.models import Id, Int, Number
from trainhouse.gateway.ratelimit import rpc_group
from trainhouse.gateway.resources.evaluations import comparison_fields, evaluation_fields
from trainhouse.gateway.resources.jobs import job_fields, seed003_state_word, seed003_word
from trainhouse.gateway.resources.tables import FieldTable
from trainhouse.gateway.resources.trajectories import export_json
from trainhouse.gateway.routing import GatewayRoute, charge
from trainhouse.gateway.scopes import jsonrpc_methods
from trainhouse.gateway.surfaces.validation import from_pydantic
from trainhouse.common.grpc_errors import RpcFailure, failure_of
from trainhouse.common.logs import log
from trainhouse.core.configs import GRPOConfig, request_fields

logger = logging.getLogger("trainhouse.gateway.jsonrpc")

PATH = "/api/v1/jsonrpc"
# Every method seed 003 defines.
RPC_METHODS_OF_SEED = ("training.start_grpo", "training.get_status", "training.cancel", "training.evaluate",
                       "training.export_trajectories")
MAX_BATCH = 100

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NOT_FOUND = -32001
UNAUTHORIZED = -32010
FORBIDDEN = -32011
RATE_LIMITED = -32029
BUDGET_EXCEEDED = -40001
VALIDATION_FAILED = -40002
CANNOT_CANCEL = -40003
EVALUATION_FAILED = -40004
EXPORT_LIMIT_EXCEEDED = -40005

# Codes whose single-call failure also sets the HTTP status.
HTTP_STATUS = {UNAUTHORIZED: 401, FORBIDDEN: 403, RATE_LIMITED: 429}

# kind -> code, for every method; a method may override some kinds (Method.codes).
KIND_CODES = {
    E.MALFORMED: PARSE_ERROR,
    E.INVALID: INVALID_PARAMS,
    E.NOT_FOUND: NOT_FOUND,
    E.UNAUTHENTICATED: UNAUTHORIZED,
    E.FORBIDDEN: FORBIDDEN,
    E.RATE_LIMITED: RATE_LIMITED,
    E.CONFLICT: INVALID_REQUEST,
    E.PRECONDITION: INVALID_REQUEST,
    E.TOO_LARGE: INVALID_REQUEST,
    E.METHOD_NOT_ALLOWED: INVALID_REQUEST,
    E.NOT_IMPLEMENTED: METHOD_NOT_FOUND,
}
MESSAGES = {
    PARSE_ERROR: "Parse error", INVALID_REQUEST: "Invalid Request", METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: "Invalid params", INTERNAL_ERROR: "Internal error", NOT_FOUND: "Not found",
    UNAUTHORIZED: "Unauthorized", FORBIDDEN: "Forbidden", RATE_LIMITED: "Rate limit exceeded",
    BUDGET_EXCEEDED: "Budget exceeded", VALIDATION_FAILED: "Validation failed", CANNOT_CANCEL: "Cannot cancel",
    EVALUATION_FAILED: "Evaluation failed", EXPORT_LIMIT_EXCEEDED: "Export limit exceeded",
}


class RpcError(Exception):
    """A JSON-RPC error object for one call."""

    def __init__(self, code: int, error: str, field: str | None = None, **extra: Any):
        super().__init__(error)
        self.code = code
        self.error = error
        self.field = field
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"error": self.error}
        if self.field:
            data["field"] = self.field
        data.update(self.extra)
        return {"code": self.code, "message": MESSAGES.get(self.code, "Server error"), "data": data}


def rpc_error_of(error: ApiError, overrides: dict[str, int] | None = None) -> RpcError:
    code = (overrides or {}).get(error.kind) or KIND_CODES.get(error.kind, INTERNAL_ERROR)
    extra: dict[str, Any] = {}
    if error.retry_after is not None:
        extra["retryAfter"] = error.retry_after
    if error.kind in (E.UNAVAILABLE, E.TIMEOUT):
        extra["retryable"] = True
    message = error.message
    if code == INTERNAL_ERROR and error.kind == E.INTERNAL:
        message = "internal error"
    return RpcError(code, message, error.field, **extra)


def api_error_of_rpc(failure: RpcFailure) -> ApiError:
    return E.error_of_rpc(failure, field=failure.field or None)

def envelope_error(error: RpcError, id_: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": error.to_json(), "id": id_}


class JsonRpcSurface:
    """Errors raised before dispatch (auth, body size, wrong HTTP method) in JSON-RPC shape."""

    name = "jsonrpc"

    def from_rpc(self, failure: RpcFailure) -> ApiError:
        return api_error_of_rpc(failure)

    def from_validation(self, exc: RequestValidationError) -> ApiError:
        return ApiError(E.INVALID, "invalid request", field="body", issue="invalid request")

    def render(self, error: ApiError, request_id: str) -> JSONResponse:
        rpc = rpc_error_of(error)
        status = {E.UNAUTHENTICATED: 401, E.FORBIDDEN: 403, E.RATE_LIMITED: 429, E.TOO_LARGE: 413,
                  E.METHOD_NOT_ALLOWED: 405, E.NOT_FOUND: 404, E.INTERNAL: 500}.get(error.kind, 200)
        return JSONResponse(status_code=status, content=envelope_error(rpc))


JSONRPC_SURFACE = JsonRpcSurface()


# ---- methods --------------------------------------------------------------------------------

class Params(BaseModel):
    model_config = ConfigDict(extra="ignore")


class JobIdParams(Params):
    job_id: Id


class CancelParams(JobIdParams):
    reason: StrictStr | None = Field(None, max_length=2000)


# Every GRPO knob with the config model's type, range, enum, help text and spellings.
GRPO_CONFIG_FIELDS = request_fields(GRPOConfig)
GrpoConfigIn = create_model(
    "GRPOConfig", __config__=ConfigDict(extra="allow"),
    __doc__="Seed 003 GRPOConfig and the trainer's further knobs (services/core/configs/grpo.py); unset fields "
            "take the defaults. Other keys pass through to TrainingService as options.",
    **GRPO_CONFIG_FIELDS)


class TrainingQueryIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    query: StrictStr
    expected_outcome: dict[str, Any]


class StartGrpoParams(Params):
    agent_id: Id
    config: GrpoConfigIn
    training_data: list[TrainingQueryIn]
    evaluation_data: list[TrainingQueryIn] | None = None


EXPORT_MAX = 10_000


class EvaluateParams(JobIdParams):
    checkpoint_id: Id | None = None
    evaluation_queries: list[TrainingQueryIn] | None = None


class ExportParams(JobIdParams):
    success_only: StrictBool = False
    min_reward: Number | None = None
    limit: Int | None = Field(None, ge=1)
    offset: Int = Field(0, ge=0)


@dataclass(frozen=True)
class Context:
    request: Request
    principal: Principal
    services: Backends


@dataclass(frozen=True)
class Method:
    params: type[Params]
    run: Callable[[Context, Any], Awaitable[dict[str, Any]]]
    # kind -> code, where the seed gives a method its own code (cancel: -40003).
    codes: dict[str, int]
    # How the method's parameter errors name a field (start_grpo: config fields by their leaf).
    spell: Callable[[str | None], str | None] = lambda field: field
    # Parameters whose values outside their range or enum are -32600, as seed 003 answers a bad
    # configuration (a value of the wrong type stays -32602, invalid params).
    checked_values: tuple[str, ...] = ()


# Metric names in job.metrics -> seed 003's names.
RPC_METRICS = {"loss": "train_loss", "validation_loss": "validation_loss", "accuracy": "train_accuracy",
               "validation_accuracy": "validation_accuracy", "avg_reward": "avg_reward",
               "success_rate": "success_rate", "trajectories_generated": "trajectories_generated"}


# Seed 003's job status: snake_case like the canonical fields, its own names for a few, and only
# the five status words of seed003_state_word.
JOB_RPC = FieldTable({"state": "status", "percent_complete": "progress_percent", "ended_at": "completed_at",
                      "model_version_id": "model_version"}, values={"state": seed003_word},
                     drop_none=True).restricted(
    ("job_id", "agent_id", "state", "current_iteration", "total_iterations", "percent_complete", "created_at",
     "started_at", "estimated_completion", "ended_at", "best_checkpoint_id", "model_version_id", "status_reason",
     "estimated_time_remaining_ms"))


def status_result(job: training_job_pb2.TrainingJob) -> dict[str, Any]:
    fields = job_fields(job)
    out = JOB_RPC.render(fields)
    out["metrics"] = {name: job.metrics[key] for key, name in RPC_METRICS.items() if key in job.metrics}
    if fields["cost_usd"] or fields["budget_usd"]:
        out["cost_usd"] = usd_text(fields["cost_usd"])
    if fields["budget_usd"]:
        out["budget_usd"] = usd_text(fields["budget_usd"])
        out["budget_remaining_percent"] = round(max(0.0, 100.0 * (1 - fields["cost_usd"] / fields["budget_usd"])), 2)
    if out["status"] == "failed":
        out["error"] = {"code": fields["error_code"] or 0, "message": fields["error"] or "training failed"}
    return out


async def get_status(ctx: Context, params: JobIdParams) -> dict[str, Any]:
    resp = await ctx.services.training.GetJob(training_service_pb2.GetJobRequest(job_id=params.job_id),
                                              timeout=ctx.services.timeout_s)
    return status_result(resp.job)


async def cancel(ctx: Context, params: CancelParams) -> dict[str, Any]:
    resp = await ctx.services.training.CancelJob(
        training_service_pb2.CancelJobRequest(job_id=params.job_id, reason=params.reason or "cancelled via JSON-RPC"),
        timeout=ctx.services.timeout_s)
    job = resp.job
    out = {"job_id": job.job_id, "status": seed003_state_word(job.state),
           "cancelled_at": ts_iso(job.end_time) or ts_iso(job.update_time),
           "iterations_completed": job.progress.current_iteration or job.progress.current_epoch, "checkpoint_saved": resp.checkpoint_saved,
           "checkpoint_id": resp.checkpoint_id or None}
    return {k: v for k, v in out.items() if v is not None}


# GRPO knobs with a typed field in GrpoConfig; the others travel in TrainingConfig.options.
GRPO_FIELDS = {f.name for f in training_job_pb2.GrpoConfig.DESCRIPTOR.fields}
# StartJob field paths -> the seed's parameter names.
GRPO_PATHS = (("training_queries", "training_data"), ("evaluation_queries", "evaluation_data"),
              ("config.grpo.", ""), ("config.options.", ""), ("config.", ""), ("agent_id", "agent_id"))


def _seed_field(path: str | None) -> str | None:
    if not path:
        return None
    for prefix, seed in GRPO_PATHS:
        if path.startswith(prefix):
            return seed + path[len(prefix):]
    return path


def _query(q: TrainingQueryIn) -> example_pb2.TrainingQuery:
    out = example_pb2.TrainingQuery(query=q.query)
    out.expected_outcome.update(q.expected_outcome)
    return out


async def start_grpo(ctx: Context, params: StartGrpoParams) -> dict[str, Any]:
    config = training_job_pb2.TrainingConfig(method=job_state_pb2.TRAINING_METHOD_GRPO)
    options: dict[str, Any] = {}
    given = params.config.model_dump(mode="json", include=set(GRPO_CONFIG_FIELDS), exclude_unset=True)
    for name, value in given.items():
        if name not in GRPO_FIELDS:
            options[name] = value  # null included: "no clipping" for max_grad_norm, else unset
        elif value is not None:
            setattr(config.grpo, name, value)
    options.update(params.config.model_extra or {})
    if options:
        config.options.update(options)
    request = training_service_pb2.StartJobRequest(
        agent_id=params.agent_id, config=config,
        training_queries=[_query(q) for q in params.training_data],
        evaluation_queries=[_query(q) for q in params.evaluation_data or []])
    try:
        job = (await ctx.services.training.StartJob(request, timeout=ctx.services.timeout_s)).job
    except grpc.RpcError as err:
        failure = failure_of(err)
        kind = E.kind_of_failure(failure)
        field = _seed_field(failure.field)
        if kind == E.INVALID:
            # Seed 003: bad training data is -40002, a bad configuration -32600.
            data_error = bool(field) and field.split("[")[0].split(".")[0] in ("training_data", "evaluation_data")
            raise RpcError(VALIDATION_FAILED if data_error else INVALID_REQUEST, failure.message, field) from None
        if kind == E.RATE_LIMITED:
            raise RpcError(BUDGET_EXCEEDED, failure.message, field) from None
        raise
    total = job.progress.total_iterations or (job.config.grpo.n_iterations if job.config.HasField("grpo") else 0)
    out = {"job_id": job.job_id, "status": seed003_state_word(job.state), "agent_id": job.agent_id,
           "total_iterations": total, "created_at": ts_iso(job.create_time)}
    if job.budget_usd:
        out["budget_usd"] = usd_text(job.budget_usd)
    return out


async def export_trajectories(ctx: Context, params: ExportParams) -> dict[str, Any]:
    if params.limit is not None and params.limit > EXPORT_MAX:
        raise RpcError(EXPORT_LIMIT_EXCEEDED, f"limit must be at most {EXPORT_MAX}, got {params.limit}", "limit",
                       max_limit=EXPORT_MAX)
    # Seed 003 answers "job not found" for an unknown job, not an empty export.
    await ctx.services.training.GetJob(training_service_pb2.GetJobRequest(job_id=params.job_id),
                                       timeout=ctx.services.timeout_s)
    request = data_service_pb2.ExportTrajectoriesRequest(job_id=params.job_id, success_only=params.success_only,
                                                         offset=params.offset)
    if params.min_reward is not None:
        request.min_reward = params.min_reward
    if params.limit is not None:
        request.limit = params.limit
    out: dict[str, Any] = {"job_id": params.job_id, "trajectories": []}
    first = True
    async for page in ctx.services.data.ExportTrajectories(request, timeout=ctx.services.timeout_s):
        if first:
            out.update(total_count=page.total_count, returned_count=page.returned_count, has_more=page.has_more)
            first = False
        out["trajectories"].extend(export_json(t) for t in page.trajectories)
    return out


POLICY_SUMMARY = ["success_rate", "avg_reward", "avg_steps", "tool_accuracy"]


async def evaluate(ctx: Context, params: EvaluateParams) -> dict[str, Any]:
    """EvaluationService.Evaluate of a GRPO job's policy (a checkpoint, default the best) rolled out
    with ONNX Runtime on held-out queries, against the untrained policy on the same queries. Not a
    GRPO job / no policy to evaluate -> -40004."""
    request = evaluation_service_pb2.EvaluateRequest(
        job_id=params.job_id, checkpoint_id=params.checkpoint_id or "", model_kind="policy",
        metrics=POLICY_SUMMARY, evaluation_queries=[_query(q) for q in params.evaluation_queries or []])
    fields = evaluation_fields((await ctx.services.evaluation.Evaluate(request, timeout=ctx.services.timeout_s))
                               .evaluation)
    c = fields["comparison"] or comparison_fields(evaluation_pb2.BaselineComparison())
    accuracy, reward = c["accuracy_test"] or {}, c["reward_test"] or {}
    return {
        "job_id": fields["job_id"], "checkpoint_id": fields["checkpoint_id"],
        "metrics": {k: fields["metrics"].get(k, 0.0) for k in POLICY_SUMMARY},
        "baseline_comparison": {
            "success_rate_improvement": c["improvements"].get("success_rate", 0.0),
            "avg_reward_improvement": c["improvements"].get("avg_reward", 0.0),
            "p_value": accuracy.get("p_value", 0.0), "statistically_significant": accuracy.get("significant", False),
            "test": accuracy.get("test", ""), "reward_p_value": reward.get("p_value", 0.0),
            "baseline_kind": c["baseline_kind"] or "", "baseline": c["baseline_metrics"]},
        "queries_evaluated": fields["example_count"],
        "evaluation_duration_ms": fields["duration_ms"] or 0,
        "evaluation_id": fields["evaluation_id"],
        "results": fields["policy_results"],
    }


METHODS: dict[str, Method] = {
    "training.export_trajectories": Method(ExportParams, export_trajectories, {}),
    "training.start_grpo": Method(StartGrpoParams, start_grpo, {}, _seed_field, ("config",)),
    "training.get_status": Method(JobIdParams, get_status, {}),
    "training.cancel": Method(CancelParams, cancel, {E.PRECONDITION: CANNOT_CANCEL, E.CONFLICT: CANNOT_CANCEL}),
    "training.evaluate": Method(EvaluateParams, evaluate, {E.PRECONDITION: EVALUATION_FAILED,
                                                           E.INTERNAL: EVALUATION_FAILED}),
}
_missing = set(METHODS) - set(jsonrpc_methods())
assert not _missing, f"JSON-RPC methods without a scope in trainhouse.gateway.scopes: {_missing}"


# ---- dispatch -------------------------------------------------------------------------------

_NO_REPLY = object()


def _valid_id(value: Any) -> bool:
    """A string, null, or a number JSON can echo back (not 1e309, which reads as inf; not beyond int64)."""
    if value is None or isinstance(value, str):
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool) and number_problem(value) is None


async def _call(entry: Any, request: Request) -> Any:
    """One request object -> its response object, or _NO_REPLY for a notification."""
    if not isinstance(entry, dict):
        return envelope_error(RpcError(INVALID_REQUEST, "a request must be a JSON object"))
    id_ = entry.get("id")
    if not _valid_id(id_):
        return envelope_error(RpcError(INVALID_REQUEST, "id must be a string, a finite number within the signed "
                                       "64-bit range for integers, or null", "id"))
    notification = "id" not in entry
    if entry.get("jsonrpc") != "2.0":
        return envelope_error(RpcError(INVALID_REQUEST, 'jsonrpc must be exactly "2.0"', "jsonrpc"), id_)
    method_name = entry.get("method")
    if not isinstance(method_name, str):
        return envelope_error(RpcError(INVALID_REQUEST, "method must be a string", "method"), id_)
    params = entry.get("params", {})
    if params is not None and not isinstance(params, (dict, list)):
        return envelope_error(RpcError(INVALID_REQUEST, "params must be an object or an array", "params"), id_)
    problem = number_problem(params)
    if problem is not None:
        where, what = problem
        return _NO_REPLY if notification else envelope_error(RpcError(INVALID_PARAMS, what, where), id_)
    try:
        result = await _run(method_name, params, request)
    except RpcError as err:
        return _NO_REPLY if notification else envelope_error(err, id_)
    return _NO_REPLY if notification else {"jsonrpc": "2.0", "result": finite(result), "id": id_}


async def _run(method_name: str, params: Any, request: Request) -> dict[str, Any]:
    method = METHODS.get(method_name)
    if method is None:
        raise RpcError(METHOD_NOT_FOUND, f"unknown method '{method_name[:100]}'; available: "
                       + ", ".join(sorted(METHODS)), "method")
    state = request.scope.get("state") or {}
    principal: Principal = state["principal"]
    scope = jsonrpc_methods()[method_name]
    if scope is not None and not principal.allows(scope):
        raise RpcError(FORBIDDEN, f"token lacks the '{scope}' scope", "method", required_scope=scope)
    decision = charge(request, rpc_group(method_name))
    if decision is not None and not decision.allowed:
        raise RpcError(RATE_LIMITED, f"rate limit of {decision.limit} calls per minute for {method_name} "
                       f"exceeded; retry in {decision.retry_after} s", retryAfter=decision.retry_after)
    if isinstance(params, list):
        raise RpcError(INVALID_PARAMS, "params must be an object with named parameters", "params")
    try:
        parsed = method.params.model_validate(params or {})
    except ValidationError as exc:
        api = from_pydantic(exc)
        raise RpcError(_params_code(exc, method), api.issue or api.message, method.spell(api.field)) from None
    ctx = Context(request, principal, request.app.state.gate.backends)
    try:
        return await method.run(ctx, parsed)
    except RpcError:
        raise
    except ApiError as err:
        raise rpc_error_of(err, method.codes) from None
    except grpc.RpcError as err:
        api = api_error_of_rpc(failure_of(err))
        if api.kind == E.INTERNAL:
            log(logger, "backend failure", logging.ERROR, method=method_name, request_id=request_id_of(request))
        raise rpc_error_of(api, method.codes) from None
    except ValueError as err:  # a value protobuf cannot carry (lone surrogate): the caller's input
        raise RpcError(INVALID_PARAMS, f"parameter cannot be encoded: {err}", "params") from None
    except Exception as err:  # noqa: BLE001 - one call's bug must not break the batch or leak a trace
        log(logger, "unhandled error", logging.ERROR, method=method_name, request_id=request_id_of(request),
            error=type(err).__name__)
        logger.error("unhandled error in %s", method_name, exc_info=err)
        raise RpcError(INTERNAL_ERROR, f"internal error (request {request_id_of(request)})") from None


# pydantic error types that say a value is out of its range or enum, or refused by a config rule
# ("config": e.g. a featurizer setting), rather than of the wrong type.
_VALUE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "literal_error", "too_long",
                 "config"}


def _params_code(exc: ValidationError, method: Method) -> int:
    first = exc.errors()[0]
    loc = first.get("loc") or ()
    bad_value = bool(loc) and loc[0] in method.checked_values and first.get("type") in _VALUE_ERRORS
    return INVALID_REQUEST if bad_value else INVALID_PARAMS


def _reply(content: Any, status: int = 200) -> Response:
    return JSONResponse(content=content, status_code=status)


# ---- OpenAPI models -------------------------------------------------------------------------

class JsonRpcRequest(BaseModel):
    jsonrpc: Literal["2.0"]
    method: str = Field(description="training.start_grpo | training.get_status | training.cancel | "
                                    "training.evaluate | training.export_trajectories")
    params: dict[str, Any] | None = None
    id: str | int | float | None = Field(None, description="Omit for a notification (no reply)")


class JsonRpcErrorObject(BaseModel):
    code: int
    message: str
    data: dict[str, Any] | None = None


class JsonRpcResponse(BaseModel):
    jsonrpc: Literal["2.0"] = "2.0"
    result: dict[str, Any] | None = None
    error: JsonRpcErrorObject | None = None
    id: str | int | float | None


_DOC = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"oneOf": [
            {"$ref": "#/components/schemas/JsonRpcRequest"},
            {"type": "array", "items": {"$ref": "#/components/schemas/JsonRpcRequest"}},
        ]}}},
    },
}
_RESPONSE_SCHEMA = {"oneOf": [{"$ref": "#/components/schemas/JsonRpcResponse"},
                              {"type": "array", "items": {"$ref": "#/components/schemas/JsonRpcResponse"}}]}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "A response object, or an array of them for a batch (request order)",
          "content": {"application/json": {"schema": _RESPONSE_SCHEMA}}},
    204: {"description": "Only notifications were sent: no reply"},
    **{status: {"description": text, "model": JsonRpcResponse} for status, text in (
        (401, "-32010 Unauthorized: missing or invalid token"),
        (403, "-32011 Forbidden: a single call whose method needs a scope the token lacks"),
        (404, "no such route"), (405, "use POST"), (413, "body over 10 MiB"),
        (429, "-32029 Rate limit exceeded: a single call over its method's per-minute limit"),
    )},
}

router = APIRouter(tags=["jsonrpc"], route_class=GatewayRoute)
EXTRA_SCHEMAS = [JsonRpcRequest, JsonRpcResponse, StartGrpoParams]


@router.post(PATH, response_model=None, responses=_RESPONSES, openapi_extra=_DOC,
             summary="JSON-RPC 2.0 endpoint (seed 003): single calls, notifications and batches")
async def jsonrpc(request: Request) -> Response:
    raw = await request.body()
    try:
        payload = json_limits.loads(raw, json_limits.max_depth_of(request))
    except json_limits.TooDeep as exc:  # valid JSON perhaps, but not a request we read
        return _reply(envelope_error(RpcError(INVALID_REQUEST, str(exc), "body", max_depth=exc.limit)))
    except (ValueError, UnicodeDecodeError) as exc:
        return _reply(envelope_error(RpcError(PARSE_ERROR, f"invalid JSON: {exc}"[:300])))
    if isinstance(payload, list):
        if not payload:
            return _reply(envelope_error(RpcError(INVALID_REQUEST, "empty batch")))
        if len(payload) > MAX_BATCH:
            return _reply(envelope_error(RpcError(INVALID_REQUEST, f"batch larger than {MAX_BATCH} calls")))
        replies = [r for r in [await _call(entry, request) for entry in payload] if r is not _NO_REPLY]
        return _reply(replies) if replies else Response(status_code=204)
    answer = await _call(payload, request)
    if answer is _NO_REPLY:
        return Response(status_code=204)
    status = HTTP_STATUS.get(answer.get("error", {}).get("code"), 200) if "error" in answer else 200
    response = _reply(answer, status)
    if status == 429:
        response.headers["Retry-After"] = str(answer["error"]["data"].get("retryAfter", 1))
    return response
