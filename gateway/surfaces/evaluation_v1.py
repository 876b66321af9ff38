"""Seed 000 evaluation: POST /api/v1/training/evaluate-agent (Evaluate) and /benchmark-agent
(RunBenchmark). Each call spends one unit of the caller's evaluations/day budget (seed 000: 100).

Every number comes from EvaluationService (services/evaluation/README.md says how it is
measured); this module only renames and formats: `averageLatency` is the measured mean
single-input serving latency written the seed's way ("3.4ms"), `improvements` are the service's
relative changes against the baseline written as "+5%".
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field, StrictBool, StrictStr
from trainhouse.v1 import benchmark_pb2, evaluation_pb2, evaluation_service_pb2

from trainhouse.gateway.convert import camel, human_latency, signed_percent, struct_to_dict, ts_iso
from trainhouse.gateway.deps import Services
from trainhouse.gateway.errors import encoding_request, rpc_fields
from trainhouse.gateway.examples import ExampleIn, examples_to_proto
from trainhouse.gateway.models import CamelModel, Envelope, envelope, Id, Int64, VersionRef
from trainhouse.gateway.ratelimit import EVALUATIONS
from trainhouse.gateway.resources.evaluations import evaluation_fields
from trainhouse.gateway.resources.tables import FieldTable
from trainhouse.gateway.routing import GatewayRoute, spend
from trainhouse.gateway.surfaces.common import ERROR_RESPONSES
from trainhouse.gateway.surfaces.v1 import V1_SURFACE

router = APIRouter(prefix="/api/v1/training", tags=["evaluation"], route_class=GatewayRoute,
                   responses=ERROR_RESPONSES)

# Seed 000's result names for the service's canonical metric names.
SEED_RESULTS = {"accuracy": "accuracy", "precision": "precision", "recall": "recall", "f1": "f1",
                "cost_per_task_usd": "costPerTask"}
# Seed 000's improvement keys: metric (as the seed names it) -> service metric.
IMPROVEMENT_METRICS = {"accuracy": "accuracy", "precision": "precision", "recall": "recall", "f1": "f1",
                       "latency": "latency_mean_ms", "cost": "cost_per_task_usd"}
# Old names the service keeps for the same values; shown once, under the canonical name.
ALIASES = {"macro_precision", "macro_recall", "macro_f1"}


# ---- evaluate-agent -------------------------------------------------------------------------

class EvaluateAgentIn(CamelModel):
    agent_id: Id
    evaluation_type: StrictStr | None = Field(None, description='"comprehensive" (default), "standard" or "quick"')
    test_set: Id | None = Field(None, description="A dataset id to evaluate on (default: the held-out "
                                                         "examples of the version's training job)")
    metrics: list[StrictStr] | None = Field(None, description="accuracy, precision, recall, f1, latency, cost, "
                                                              "consistency, safety, relevance, calibration, ...")
    compare_to_baseline: StrictBool = False
    version_id: VersionRef | None = Field(None, description="Version to evaluate (default: active, else newest)")
    baseline_version_id: VersionRef | None = None
    examples: list[ExampleIn] | None = Field(None, description="Inline test examples instead of testSet")
    evaluation_id: Id | None = Field(None, description="Idempotency key: a repeat returns the stored one")
    seed: Int64 | None = None


class ComparisonOut(CamelModel):
    baseline: str | None = None
    improvements: dict[str, str]
    available: bool
    note: str | None = None
    baseline_kind: str | None = None
    paired_examples: int
    differences: dict[str, float]
    accuracy_p_value: float | None = None
    significant: bool | None = None


class EvaluationOut(CamelModel):
    evaluation_id: str
    agent_id: str
    version_id: str | None = None
    results: dict[str, Any]
    comparison: ComparisonOut | None = None
    recommendations: list[str]
    example_count: int
    test_set_source: str
    dataset_id: str | None = None
    job_id: str | None = None
    evaluation_type: str
    reused: bool
    created_at: str | None = None


def results_json(metrics: dict[str, float]) -> dict[str, Any]:
    """The seed's result names first, then every other measured metric in camelCase."""
    out: dict[str, Any] = {key: metrics[name] for name, key in SEED_RESULTS.items() if name in metrics}
    if "latency_mean_ms" in metrics:
        out["averageLatency"] = human_latency(metrics["latency_mean_ms"])
    for name, value in sorted(metrics.items()):
        if name not in SEED_RESULTS and name not in ALIASES:
            out[camel(name)] = value
    return out


def comparison_json(c: dict[str, Any]) -> dict[str, Any]:
    """Seed 000's comparison: signed percentages under the seed's metric names, plus the paired test."""
    relative, differences = c["relative_change_percent"], c["improvements"]
    out: dict[str, Any] = {
        "baseline": c["baseline_version_id"], "available": c["available"], "note": c["note"],
        "baselineKind": c["baseline_kind"], "pairedExamples": c["paired_examples"],
        "improvements": {key: signed_percent(relative[name]) for key, name in IMPROVEMENT_METRICS.items()
                         if name in relative},
        "differences": {key: differences[name] for key, name in IMPROVEMENT_METRICS.items() if name in differences},
    }
    if c["accuracy_test"]:
        out["accuracyPValue"] = c["accuracy_test"]["p_value"]
        out["significant"] = c["accuracy_test"]["significant"]
    return out


EVALUATION_V1 = FieldTable(camel_case=True).restricted(
    ("evaluation_id", "agent_id", "version_id", "recommendations", "example_count", "test_set_source", "dataset_id",
     "job_id", "evaluation_type", "created_at"))


def evaluation_json(e: evaluation_pb2.Evaluation, reused: bool) -> dict[str, Any]:
    fields = evaluation_fields(e)
    out = EVALUATION_V1.render(fields)
    out.update(results=results_json(fields["metrics"]), reused=reused,
               comparison=comparison_json(fields["comparison"]) if fields["comparison"] else None)
    return out


@router.post("/evaluate-agent", response_model=Envelope[EvaluationOut], response_model_exclude_none=True,
             summary="Evaluate an agent's model version on a test set (counts against 100 evaluations/day)")
async def evaluate_agent(body: EvaluateAgentIn, request: Request, services: Services) -> dict[str, Any]:
    spend(request, EVALUATIONS)
    with encoding_request():
        req = evaluation_service_pb2.EvaluateRequest(
            agent_id=body.agent_id, version_id=body.version_id or "", dataset_id=body.test_set or "",
            examples=examples_to_proto(body.examples), metrics=body.metrics or [],
            evaluation_type=body.evaluation_type or "", compare_to_baseline=body.compare_to_baseline,
            baseline_version_id=body.baseline_version_id or "", evaluation_id=body.evaluation_id or "")
        if body.seed is not None:
            req.seed = body.seed
    with rpc_fields(V1_SURFACE, {"datasetId": "testSet"}):
        resp = await services.evaluation.Evaluate(req, timeout=services.timeout_s)
    return envelope(evaluation_json(resp.evaluation, resp.reused))


# ---- benchmark-agent ------------------------------------------------------------------------

class BenchmarkAgentIn(CamelModel):
    agent_id: Id
    benchmarks: list[StrictStr] | None = Field(
        None, description="Suites: standard-reasoning, tool-usage, multi-step-planning, coherence, consistency, "
                          "helpfulness (default: all)")
    version_id: VersionRef | None = None
    examples: list[ExampleIn] | None = Field(None, description="Seed examples for the probes (default: the "
                                                               "held-out examples of the version's job)")


class SuiteOut(CamelModel):
    score: float
    percentile: float = Field(description="0..100: rank of the score within details.population (the reference "
                                          "ladder measured on the same probes, plus the caller's account's other "
                                          "models once there are 5)")
    details: dict[str, Any] = Field(description="measured, data, population, ladder, then the suite's probe details")
    grade: str
    component_scores: dict[str, float]
    probe_count: int
    suite_version: str


class BenchmarkOut(CamelModel):
    benchmark_id: str
    agent_id: str
    version_id: str
    results: dict[str, SuiteOut]
    overall_score: float
    overall_rank: str
    recommendations: list[str]
    created_at: str | None = None


def suite_details(s: benchmark_pb2.SuiteResult) -> dict[str, Any]:
    """Seed 000 leaves `details` open: ours says what was measured and on which data, what the
    percentile ranks against and how many members, and the ladder's scores, then the suite's own
    probe details."""
    p = s.population
    return {"measured": s.measured, "data": s.data,
            "population": {"kind": p.kind, "members": p.size, "ladderMembers": p.ladder_members,
                           "platformModels": p.platform_models,
                           "platformModelsAvailable": p.platform_models_available,
                           "notMeasured": list(p.not_measured)},
            "ladder": [{"name": r.name, "kind": r.kind, "score": r.score, "description": r.description}
                       for r in s.ladder],
            **struct_to_dict(s.details)}


def suite_json(s: benchmark_pb2.SuiteResult) -> dict[str, Any]:
    return {"score": s.score, "percentile": s.percentile, "details": suite_details(s), "grade": s.grade,
            "componentScores": dict(s.component_scores), "probeCount": s.probe_count,
            "suiteVersion": s.suite_version}


def benchmark_json(run: benchmark_pb2.BenchmarkRun) -> dict[str, Any]:
    return {"benchmarkId": run.benchmark_id, "agentId": run.agent_id, "versionId": run.version_id,
            "results": {s.suite: suite_json(s) for s in run.results}, "overallScore": run.overall_score,
            "overallRank": run.overall_rank, "recommendations": list(run.recommendations),
            "createdAt": ts_iso(run.create_time)}


@router.post("/benchmark-agent", response_model=Envelope[BenchmarkOut], response_model_exclude_none=True,
             summary="Run built-in benchmark suites on an agent's version (counts against 100 evaluations/day)")
async def benchmark_agent(body: BenchmarkAgentIn, request: Request, services: Services) -> dict[str, Any]:
    spend(request, EVALUATIONS)
    with encoding_request():
        req = evaluation_service_pb2.RunBenchmarkRequest(agent_id=body.agent_id, version_id=body.version_id or "",
                                                         suites=body.benchmarks or [],
                                                         examples=examples_to_proto(body.examples))
    with rpc_fields(V1_SURFACE, {"suites": "benchmarks"}):
        resp = await services.evaluation.RunBenchmark(req, timeout=services.timeout_s)
    return envelope(benchmark_json(resp.run))
