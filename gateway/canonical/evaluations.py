"""/v1/evaluations, /v1/benchmarks, /v1/comparisons, /v1/reports, analyses, and /v1/operations.

Every call that can run long (an evaluation, a benchmark, a comparison, a report, an analysis)
answers 202 with an operation (trainhouse.gateway.canonical.operations); the stored results are read back
with plain GETs. Evaluations and comparisons get their id when the operation starts (the
operation's ``resource_id``), so ``GET /v1/evaluations/{resource_id}`` finds the result even if the
operation record is gone.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Query, Request
from pydantic import BaseModel
from trainhouse.v1 import evaluation_service_pb2 as es

from trainhouse.gateway.auth import ADMIN
from trainhouse.gateway.canonical.common import After, AgentId, JobId, Limit, Page, VersionId, page, path_id, router
from trainhouse.gateway.canonical.idempotency import idempotent
from trainhouse.gateway.canonical.operations import V1OperationOut, operations_of
from trainhouse.gateway.canonical.protojson import message_json, proto_model, response_model, to_proto
from trainhouse.gateway.deps import Services
from trainhouse.gateway.errors import UNAUTHENTICATED, ApiError
from trainhouse.gateway.resources.evaluations import evaluation_fields
from trainhouse.core.ids import random_id

evaluations = router("/evaluations", "evaluations")
benchmarks = router("/benchmarks", "benchmarks")
comparisons = router("/comparisons", "comparisons")
reports = router("/reports", "reports")
operations = router("/operations", "operations")
analyses = router("/agents/{agent_id}", "evaluations")
job_evaluations = router("/jobs/{job_id}", "evaluations")

V1EvaluateIn = proto_model(es.EvaluateRequest.DESCRIPTOR, name="V1EvaluateIn")
V1EvaluateVersionIn = proto_model(es.EvaluateVersionRequest.DESCRIPTOR, exclude={"agent_id", "version_id"},
                                name="V1EvaluateVersionIn")
TrainingResultsIn = proto_model(es.EvaluateTrainingResultsRequest.DESCRIPTOR, exclude={"job_id"},
                                name="V1EvaluateTrainingResultsIn")
BenchmarkIn = proto_model(es.RunBenchmarkRequest.DESCRIPTOR, name="V1RunBenchmarkIn")
BenchmarkOut = response_model(es.GetBenchmarkRunResponse.DESCRIPTOR.fields_by_name["run"].message_type)
SuitesOut = response_model(es.ListBenchmarkSuitesResponse.DESCRIPTOR)
CompareIn = proto_model(es.CompareRunsRequest.DESCRIPTOR, name="V1CompareRunsIn")
ComparisonOut = response_model(es.GetComparisonResponse.DESCRIPTOR.fields_by_name["comparison"].message_type)
ReportIn = proto_model(es.GenerateReportRequest.DESCRIPTOR, name="V1GenerateReportIn")
V1AnalyzeIn = proto_model(es.AnalyzeAndOptimizeRequest.DESCRIPTOR, exclude={"agent_id"}, name="V1AnalyzeIn")
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


class V1EvaluationOut(BaseModel):
    """An evaluation (trainhouse.gateway.resources.evaluations.evaluation_fields)."""

    evaluation_id: str
    agent_id: str
    version_id: str | None = None
    job_id: str | None = None
    checkpoint_id: str | None = None
    model_kind: str | None = None
    dataset_id: str | None = None
    test_set_source: str
    test_set_job_id: str | None = None
    evaluation_type: str
    example_count: int
    negative_example_count: int
    metrics: dict[str, float | None]  # null: not computable (NaN), e.g. ECE on an empty split
    comparison: dict[str, Any] | None = None
    recommendations: list[str]
    policy_results: list[dict[str, Any]]
    duration_ms: int | None = None
    created_at: str | None = None


def _principal(request: Request) -> Any:
    principal = (request.scope.get("state") or {}).get("principal")
    if principal is None:
        raise ApiError(UNAUTHENTICATED, "operations need an authenticated caller")
    return principal


async def _start(request: Request, key: str | None, body: Any, kind: str, call: Any,
                 resource_id: str | None = None) -> Any:
    """Start `call` as an operation, once per Idempotency-Key."""
    principal = _principal(request)

    async def create() -> dict[str, Any]:
        return operations_of(request).start(kind, principal.account, call, resource_id).json()
    return await idempotent(request, key, {"kind": kind, **(body or {})}, create)


def _dump(body: Any) -> dict[str, Any]:
    return body.model_dump(exclude_none=True) if body is not None else {}


# ---- evaluations ------------------------------------------------------------------------------

@evaluations.post("", operation_id="evaluations.create", response_model=V1OperationOut, status_code=202,
                  summary="Evaluate a version, a job's model or a checkpoint (an operation)",
                  description="The body is EvaluateRequest. Answers an operation at once; its result is the "
                              "evaluation, also at GET /v1/evaluations/{resource_id}.")
async def create_evaluation(body: V1EvaluateIn, request: Request, services: Services,  # type: ignore[valid-type]
                            idempotency_key: IdempotencyKey = None) -> Any:
    msg = to_proto(body, es.EvaluateRequest)
    if not msg.evaluation_id:
        msg.evaluation_id = random_id("eval", 20)

    async def call(deadline: float) -> dict[str, Any]:
        resp = await services.evaluation.Evaluate(msg, timeout=deadline)
        return {**evaluation_fields(resp.evaluation), "reused": resp.reused}
    return await _start(request, idempotency_key, _dump(body), "evaluation", call, msg.evaluation_id)


@evaluations.get("", operation_id="evaluations.list", response_model=Page[V1EvaluationOut],
                 summary="Stored evaluations, newest first")
async def list_evaluations(services: Services, after: After = "", limit: Limit = 50,
                           agent_id: Annotated[str, Query(max_length=128)] = "",
                           job_id: Annotated[str, Query(max_length=128)] = "",
                           version_id: Annotated[str, Query(max_length=129)] = "") -> dict[str, Any]:
    resp = await services.evaluation.ListEvaluations(
        es.ListEvaluationsRequest(agent_id=agent_id, job_id=job_id, version_id=version_id, page_size=limit,
                                  page_token=after), timeout=services.timeout_s)
    return page([evaluation_fields(e) for e in resp.evaluations], resp.next_page_token)


@evaluations.get("/{evaluation_id}", operation_id="evaluations.get", response_model=V1EvaluationOut,
                 summary="A stored evaluation")
async def get_evaluation(evaluation_id: Annotated[str, path_id()], services: Services) -> dict[str, Any]:
    resp = await services.evaluation.GetEvaluation(es.GetEvaluationRequest(evaluation_id=evaluation_id),
                                                   timeout=services.timeout_s)
    return evaluation_fields(resp.evaluation)


@analyses.post("/versions/{version_id}/evaluate", operation_id="versions.evaluate", response_model=V1OperationOut,
               status_code=202, summary="Evaluate one version on examples or a dataset (an operation)")
async def evaluate_version(agent_id: AgentId, version_id: VersionId, request: Request, services: Services,
                           body: V1EvaluateVersionIn | None = None,  # type: ignore[valid-type]
                           idempotency_key: IdempotencyKey = None) -> Any:
    msg = to_proto(body, es.EvaluateVersionRequest, agent_id=agent_id, version_id=version_id)

    async def call(deadline: float) -> dict[str, Any]:
        return evaluation_fields((await services.evaluation.EvaluateVersion(msg, timeout=deadline)).evaluation)
    return await _start(request, idempotency_key, {"agent_id": agent_id, "version_id": version_id, **_dump(body)},
                        "evaluation", call)


TrainingResultsOut = response_model(es.EvaluateTrainingResultsResponse.DESCRIPTOR)


@job_evaluations.post("/evaluate", operation_id="jobs.evaluate_results", response_model=V1OperationOut,
                      status_code=202,
               summary="Grade a job's training results (seed 002's evaluateTrainingResults; an operation)")
async def evaluate_training_results(job_id: JobId, request: Request, services: Services,
                                    body: TrainingResultsIn | None = None,  # type: ignore[valid-type]
                                    idempotency_key: IdempotencyKey = None) -> Any:
    msg = to_proto(body, es.EvaluateTrainingResultsRequest, job_id=job_id)
    if not msg.evaluation_id:
        msg.evaluation_id = random_id("eval", 20)

    async def call(deadline: float) -> dict[str, Any]:
        resp = await services.evaluation.EvaluateTrainingResults(msg, timeout=deadline)
        out = message_json(resp)
        out["evaluation"] = evaluation_fields(resp.evaluation) if resp.HasField("evaluation") else None
        return out
    return await _start(request, idempotency_key, {"job_id": job_id, **_dump(body)}, "training_results", call,
                        msg.evaluation_id)


@analyses.post("/analyze", operation_id="agents.analyze", response_model=V1OperationOut, status_code=202,
               summary="Analyse the agent's versions and suggest improvements (an operation)")
async def analyze(agent_id: AgentId, request: Request, services: Services,
                  body: V1AnalyzeIn | None = None, idempotency_key: IdempotencyKey = None) -> Any:  # type: ignore[valid-type]
    msg = to_proto(body, es.AnalyzeAndOptimizeRequest, agent_id=agent_id)

    async def call(deadline: float) -> dict[str, Any]:
        return message_json(await services.evaluation.AnalyzeAndOptimize(msg, timeout=deadline))
    return await _start(request, idempotency_key, {"agent_id": agent_id, **_dump(body)}, "analysis", call)


# ---- benchmarks, comparisons, reports --------------------------------------------------------

@benchmarks.get("/suites", operation_id="benchmarks.suites", response_model=SuitesOut,
                summary="The benchmark suites")
async def list_suites(services: Services) -> dict[str, Any]:
    return message_json(await services.evaluation.ListBenchmarkSuites(es.ListBenchmarkSuitesRequest(),
                                                                      timeout=services.timeout_s))


@benchmarks.post("", operation_id="benchmarks.create", response_model=V1OperationOut, status_code=202,
                 summary="Run benchmark suites on a version (an operation)")
async def run_benchmark(body: BenchmarkIn, request: Request, services: Services,  # type: ignore[valid-type]
                        idempotency_key: IdempotencyKey = None) -> Any:
    msg = to_proto(body, es.RunBenchmarkRequest)

    async def call(deadline: float) -> dict[str, Any]:
        return message_json((await services.evaluation.RunBenchmark(msg, timeout=deadline)).run)
    return await _start(request, idempotency_key, _dump(body), "benchmark", call)


@benchmarks.get("/{benchmark_id}", operation_id="benchmarks.get", response_model=BenchmarkOut,
                summary="A stored benchmark run")
async def get_benchmark(benchmark_id: Annotated[str, path_id()], services: Services) -> dict[str, Any]:
    resp = await services.evaluation.GetBenchmarkRun(es.GetBenchmarkRunRequest(benchmark_id=benchmark_id),
                                                     timeout=services.timeout_s)
    return message_json(resp.run)


@comparisons.post("", operation_id="comparisons.create", response_model=V1OperationOut, status_code=202,
                  summary="Compare training runs with significance tests (an operation)")
async def compare(body: CompareIn, request: Request, services: Services,  # type: ignore[valid-type]
                  idempotency_key: IdempotencyKey = None) -> Any:
    msg = to_proto(body, es.CompareRunsRequest)
    if not msg.comparison_id:
        msg.comparison_id = random_id("cmp", 20)

    async def call(deadline: float) -> dict[str, Any]:
        resp = await services.evaluation.CompareRuns(msg, timeout=deadline)
        return {**message_json(resp.comparison), "reused": resp.reused}
    return await _start(request, idempotency_key, _dump(body), "comparison", call, msg.comparison_id)


@comparisons.get("/{comparison_id}", operation_id="comparisons.get", response_model=ComparisonOut,
                 summary="A stored comparison")
async def get_comparison(comparison_id: Annotated[str, path_id()], services: Services) -> dict[str, Any]:
    resp = await services.evaluation.GetComparison(es.GetComparisonRequest(comparison_id=comparison_id),
                                                   timeout=services.timeout_s)
    return message_json(resp.comparison)


@reports.post("", operation_id="reports.create", response_model=V1OperationOut, status_code=202,
              summary="Generate a training report (an operation)")
async def generate_report(body: ReportIn, request: Request, services: Services,  # type: ignore[valid-type]
                          idempotency_key: IdempotencyKey = None) -> Any:
    msg = to_proto(body, es.GenerateReportRequest)

    async def call(deadline: float) -> dict[str, Any]:
        return message_json((await services.evaluation.GenerateReport(msg, timeout=deadline)).report)
    return await _start(request, idempotency_key, _dump(body), "report", call)


# ---- operations -------------------------------------------------------------------------------

@operations.get("/{operation_id}", operation_id="operations.get", response_model=V1OperationOut,
                summary="Poll an operation until `done`")
async def get_operation(operation_id: Annotated[str, path_id()], request: Request) -> dict[str, Any]:
    principal = _principal(request)
    return operations_of(request).get(operation_id, principal.account, ADMIN in principal.scopes).json()


@operations.get("", operation_id="operations.list", response_model=Page[V1OperationOut],
                summary="The caller's operations held by this gateway, newest first")
async def list_operations(request: Request, after: After = "", limit: Limit = 50) -> dict[str, Any]:
    principal = _principal(request)
    ops = sorted(operations_of(request).list(principal.account, ADMIN in principal.scopes),
                 key=lambda op: (op.created_at, op.operation_id), reverse=True)
    if after:
        ops = [op for op in ops if (op.created_at, op.operation_id) < tuple(after.split("|", 1))]
    chunk = ops[:limit]
    cursor = f"{chunk[-1].created_at}|{chunk[-1].operation_id}" if len(ops) > limit else None
    return page([op.json() for op in chunk], cursor)
