"""Evaluation functions: evaluateTrainingResults, compareTrainingRuns, generateTrainingReport,
analyzeAndOptimize (EvaluationService)."""
from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import Field, StrictBool, StrictStr
from trainhouse.v1 import evaluation_pb2, evaluation_service_pb2, run_comparison_pb2, training_analysis_pb2

from trainhouse.gateway.convert import enum_word, struct_to_dict, ts_iso
from trainhouse.gateway.deps import Services
from trainhouse.gateway.errors import encoding_request
from trainhouse.gateway.examples import ExampleIn, examples_to_proto
from trainhouse.gateway.models import Id, Int64
from trainhouse.gateway.ratelimit import EVALUATIONS
from trainhouse.gateway.resources.sweeps import sweep_body
from trainhouse.gateway.routing import spend
from trainhouse.gateway.surfaces.functions.surface import Reply, SnakeModel, new_router, reply

router = new_router()


class EvaluateTrainingResultsIn(SnakeModel):
    job_id: Id
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


# ---- compareTrainingRuns --------------------------------------------------------------------

class CompareRunsIn(SnakeModel):
    run_ids: list[Id] = Field(description="2..10 completed job ids")
    comparison_metrics: list[StrictStr] | None = Field(
        None, description="accuracy, loss, validation_accuracy, validation_loss, training_time, convergence_speed, "
                          "final_performance, stability, cost_efficiency (default: all)")
    statistical_tests: StrictBool = False
    generate_recommendations: StrictBool = False
    test_data: list[ExampleIn] | None = Field(None, description="A common test set (default: the runs' shared "
                                                                "held-out examples)")
    comparison_id: Id | None = Field(None, description="Idempotency key")
    seed: Int64 | None = None


def significance_json(t: evaluation_pb2.SignificanceTest) -> dict[str, Any]:
    return {"test": t.test, "statistic": t.statistic, "p_value": t.p_value, "adjusted_p_value": t.adjusted_p_value,
            "significant": t.significant, "alpha": t.alpha, "difference": t.difference, "ci_low": t.ci_low,
            "ci_high": t.ci_high, "effect_size": t.effect_size, "effect_size_kind": t.effect_size_kind or None,
            "n": t.n, "paired": t.paired}


def comparison_json(c: run_comparison_pb2.RunComparison, reused: bool) -> dict[str, Any]:
    def value(v: run_comparison_pb2.RunMetricValue) -> dict[str, Any]:
        return {"job_id": v.job_id, "value": v.value}

    out: dict[str, Any] = {
        "comparison_id": c.comparison_id,
        "runs": [{"job_id": r.job_id, "agent_id": r.agent_id, "version_id": r.version_id, "results": dict(r.values),
                  "config": struct_to_dict(r.config), "evaluated_examples": r.evaluated_examples,
                  "evaluation_id": r.evaluation_id or None} for r in c.runs],
        "metric_comparisons": {
            m.metric: {"best": value(m.best), "worst": value(m.worst), "higher_is_better": m.higher_is_better,
                       "values": [value(v) for v in m.values], "missing_job_ids": list(m.missing_job_ids)}
            for m in c.metric_comparisons},
        "overall_ranking": [{"job_id": r.job_id, "score": r.score, "rank": r.rank} for r in c.overall_ranking],
        "winner": {"job_id": c.winner.job_id, "score": c.winner.score, "margin": c.winner.margin},
        "comparison_metrics": list(c.comparison_metrics), "evaluation_set": c.evaluation_set,
        "shared_examples": c.shared_examples, "created_at": ts_iso(c.create_time), "reused": reused,
    }
    if c.HasField("statistical_analysis"):
        s = c.statistical_analysis
        # Seed 001 spells these two in camelCase and the rest in snake_case; kept as written.
        out["statistical_analysis"] = {
            "significant": s.significant, "pValue": s.p_value, "effectSize": s.effect_size,
            "improvement_percent": s.improvement_percent, "primary_metric": s.primary_metric,
            "winner_job_id": s.winner_job_id, "runner_up_job_id": s.runner_up_job_id, "paired": s.paired,
            "shared_examples": s.shared_examples, "correction": s.correction, "alpha": s.alpha,
            "note": s.note or None,
            "pairwise": [{"job_a": p.job_a, "job_b": p.job_b, "metric": p.metric, **significance_json(p.test)}
                         for p in s.pairwise]}
    if c.HasField("recommendations"):
        r = c.recommendations
        out["recommendations"] = {"summary": r.summary, "optimal_config": struct_to_dict(r.optimal_config),
                                  "config_differences": struct_to_dict(r.config_differences),
                                  "next_steps": list(r.next_steps)}
    return out


@router.post("/compareTrainingRuns", response_model=Reply[dict[str, Any]], response_model_exclude_none=True,
             summary="A/B comparison of 2-10 completed runs with statistical tests (seed 001; 100/day)")
async def compare_training_runs(body: CompareRunsIn, request: Request, services: Services) -> dict[str, Any]:
    spend(request, EVALUATIONS)
    with encoding_request():
        req = evaluation_service_pb2.CompareRunsRequest(
            run_ids=body.run_ids, comparison_metrics=body.comparison_metrics or [],
            statistical_tests=body.statistical_tests, generate_recommendations=body.generate_recommendations,
            examples=examples_to_proto(body.test_data), comparison_id=body.comparison_id or "")
        if body.seed is not None:
            req.seed = body.seed
    resp = await services.evaluation.CompareRuns(req, timeout=services.timeout_s)
    return reply(request, comparison_json(resp.comparison, resp.reused))


# ---- generateTrainingReport -----------------------------------------------------------------

class ReportIn(SnakeModel):
    job_id: Id | None = None
    agent_id: Id | None = None
    run_ids: list[Id] | None = Field(None, description="comparison reports: 2..10 job ids")
    report_type: StrictStr | None = Field(None, description="single_job, agent_summary, comparison, executive")
    include_sections: list[StrictStr] | None = None
    format: StrictStr | None = Field(None, description="json (default), markdown or html")


class ReportOut(SnakeModel):
    report_id: str
    report_type: str
    job_id: str | None = None
    agent_id: str | None = None
    run_ids: list[str] | None = None
    format: str
    title: str
    content: str
    content_type: str
    sections: list[str]
    charts: list[str]
    created_at: str | None = None


@router.post("/generateTrainingReport", response_model=Reply[ReportOut], response_model_exclude_none=True,
             summary="A report on a job, an agent or several runs: JSON, Markdown or self-contained HTML (seed 001)")
async def generate_training_report(body: ReportIn, request: Request, services: Services) -> dict[str, Any]:
    with encoding_request():
        req = evaluation_service_pb2.GenerateReportRequest(
            job_id=body.job_id or "", agent_id=body.agent_id or "", run_ids=body.run_ids or [],
            report_type=body.report_type or "", include_sections=body.include_sections or [],
            format=body.format or "")
    r = (await services.evaluation.GenerateReport(req, timeout=services.timeout_s)).report
    return reply(request, {"report_id": r.report_id, "report_type": r.report_type, "job_id": r.job_id or None,
                           "agent_id": r.agent_id or None, "run_ids": list(r.run_ids) or None, "format": r.format,
                           "title": r.title, "content": r.content, "content_type": r.content_type,
                           "sections": list(r.sections), "charts": list(r.charts), "created_at": ts_iso(r.create_time)})


# ---- analyzeAndOptimize ---------------------------------------------------------------------

class AnalyzeIn(SnakeModel):
    agent_id: Id
    optimization_goals: list[StrictStr] | None = Field(
        None, description="minimize_latency, maximize_accuracy, minimize_cost, maximize_consistency, "
                          "improve_calibration, reduce_overfitting (default: all)")
    start_sweep: StrictBool = Field(False, description="Also start the suggested sweep on the data of the job that "
                                                      "trained the current version (needs training:start); its id "
                                                      "comes back as started_sweep_id")


@router.post("/analyzeAndOptimize", response_model=Reply[dict[str, Any]], response_model_exclude_none=True,
             summary="Optimisation suggestions from an agent's versions and evaluations (seed 002; 100/day)")
async def analyze_and_optimize(body: AnalyzeIn, request: Request, services: Services) -> dict[str, Any]:
    spend(request, EVALUATIONS)
    with encoding_request():
        req = evaluation_service_pb2.AnalyzeAndOptimizeRequest(agent_id=body.agent_id,
                                                               optimization_goals=body.optimization_goals or [],
                                                               start_sweep=body.start_sweep)
    resp = await services.evaluation.AnalyzeAndOptimize(req, timeout=services.timeout_s)
    cur = resp.current
    return reply(request, {
        "agent_id": resp.agent_id, "optimization_goals": list(resp.optimization_goals),
        "current": {"version_id": cur.version_id, "evaluation_id": cur.evaluation_id, "metrics": dict(cur.metrics),
                    "size_bytes": cur.size_bytes, "hidden_sizes": list(cur.hidden_sizes),
                    "featurizer_dim": cur.featurizer_dim, "catalog_size": cur.catalog_size,
                    "evaluated_now": cur.evaluated_now},
        "versions": [{"version_id": v.version_id, "job_id": v.job_id or None, "metrics": dict(v.metrics),
                      "size_bytes": v.size_bytes, "active": v.active, "created_at": ts_iso(v.create_time)}
                     for v in resp.versions],
        "suggestions": [{"goal": s.goal, "priority": s.priority, "category": s.category, "suggestion": s.suggestion,
                         "rationale": s.rationale, "signal": s.signal, "signal_value": s.signal_value,
                         "config_changes": struct_to_dict(s.config_changes), "rule": s.rule}
                        for s in resp.suggestions],
        "summary": resp.summary, "created_at": ts_iso(resp.create_time),
        # The body of POST /api/v1/sweeps that tests the suggestions (add examples or a datasetId).
        "suggested_sweep": sweep_body(resp.suggested_sweep) if resp.HasField("suggested_sweep") else None,
        "started_sweep_id": resp.started_sweep_id or None,
    })
