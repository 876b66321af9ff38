"""Evaluation over the real services, in each surface's shape: seed 000 evaluate-agent and
benchmark-agent, seed 004 model benchmark, seed 001 evaluateTrainingResults, compareTrainingRuns,
generateTrainingReport and seed 002 analyzeAndOptimize. All on the session's shared jobs."""
from __future__ import annotations

import json
import re

import httpx

from tests.gateway.conftest import Trained, assert_error, bearer, make_token
from tests.gateway.surface_shapes import error_code

FN = "/api/v1/functions"
SIGNED_PERCENT = re.compile(r"^[+-]\d+(\.\d)?%$")
LATENCY = re.compile(r"^\d+(\.\d+)?(ms|s)$")
GRADE = re.compile(r"^([A-D][+-]?|F)$")


def fn(api: httpx.Client, name: str, body: dict) -> dict:
    r = api.post(f"{FN}/{name}", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True and r.json()["trace_id"] == r.headers["X-Request-Id"]
    return r.json()["data"]


def test_evaluate_agent_seed_000(admin_api: httpx.Client, trained: Trained) -> None:
    r = admin_api.post("/api/v1/training/evaluate-agent", json={
        "agentId": trained.agent, "evaluationType": "comprehensive",
        "metrics": ["accuracy", "precision", "recall", "f1", "latency", "cost"], "compareToBaseline": True,
        "versionId": trained.versions[1]})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["evaluationId"].startswith("eval-") and data["agentId"] == trained.agent
    assert data["versionId"] == trained.versions[1] and data["testSetSource"] == "job:validation"
    results = data["results"]
    assert {"accuracy", "precision", "recall", "f1", "averageLatency", "costPerTask"} <= set(results)
    assert all(0 <= results[k] <= 1 for k in ("accuracy", "precision", "recall", "f1"))
    assert LATENCY.match(results["averageLatency"]) and results["costPerTask"] > 0
    # The human latency is the measured mean, rounded.
    ms = results["latencyMeanMs"]
    shown = float(results["averageLatency"].rstrip("ms")) * (1000 if not results["averageLatency"].endswith("ms") else 1)
    assert abs(shown - ms) <= max(0.05 * ms, 0.051)
    comparison = data["comparison"]
    assert comparison["available"] is True and comparison["baseline"] == trained.versions[0]
    assert set(comparison["improvements"]) == {"accuracy", "precision", "recall", "f1", "latency", "cost"}
    assert all(SIGNED_PERCENT.match(v) for v in comparison["improvements"].values()), comparison
    assert comparison["pairedExamples"] == data["exampleCount"] > 0
    assert all(isinstance(x, str) and x for x in data["recommendations"])

    # The same evaluation id answers the stored evaluation.
    again = admin_api.post("/api/v1/training/evaluate-agent", json={
        "agentId": trained.agent, "evaluationId": data["evaluationId"]}).json()["data"]
    assert again["reused"] is True and again["results"]["accuracy"] == results["accuracy"]

    quick = admin_api.post("/api/v1/training/evaluate-agent", json={
        "agentId": trained.agent, "evaluationType": "quick"}).json()["data"]
    assert set(quick["results"]) >= {"accuracy", "f1"} and "averageLatency" not in quick["results"]
    assert "comparison" not in quick

    bad = admin_api.post("/api/v1/training/evaluate-agent", json={"agentId": trained.agent, "metrics": ["nope"]})
    assert_error(bad, 400, "INVALID_CONFIG", field="metrics[0]")
    bad = admin_api.post("/api/v1/training/evaluate-agent", json={"agentId": trained.agent, "evaluationType": "x"})
    assert_error(bad, 400, "INVALID_CONFIG", field="evaluationType")
    assert_error(admin_api.post("/api/v1/training/evaluate-agent", json={"agentId": trained.agent,
                                                                       "testSet": "ds-nope"}), 404, "NOT_FOUND")
    assert_error(admin_api.post("/api/v1/training/evaluate-agent", json={"agentId": "agent-nope"}),
                 404, "AGENT_NOT_FOUND")


def test_benchmarks_seed_000_and_seed_004(admin_api: httpx.Client, trained: Trained) -> None:
    suites = ["standard-reasoning", "tool-usage", "multi-step-planning"]
    r = admin_api.post("/api/v1/training/benchmark-agent", json={"agentId": trained.agent, "benchmarks": suites})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["benchmarkId"].startswith("bench-") and GRADE.match(data["overallRank"])
    assert list(data["results"]) == suites
    for result in data["results"].values():
        assert 0 <= result["score"] <= 100 and isinstance(result["details"], dict) and result["probeCount"] > 0
        # Always a percentile, within a population the details name and count: here the ladder of
        # baselines (and the agent's earlier version) measured on the same probes.
        assert 0 <= result["percentile"] <= 100
        details = result["details"]
        assert details["measured"].startswith("Classifier probes") and "held-out" in details["data"]
        population, ladder = details["population"], details["ladder"]
        assert population["kind"] in ("reference_ladder", "reference_ladder+platform")
        assert population["members"] == population["ladderMembers"] + population["platformModels"] == \
            len(ladder) + population["platformModels"]
        earlier = trained.versions[:trained.versions.index(data["versionId"])]
        assert {rung["name"] for rung in ladder} == {"majority_class", "nearest_neighbour", "untrained",
                                                     *(f"version:{v}" for v in earlier)}
        assert all(0 <= rung["score"] <= 100 and rung["description"] for rung in ladder)
        assert "percentileNote" not in result and "modelsCompared" not in result
    assert all(isinstance(x, str) for x in data["recommendations"])
    assert_error(admin_api.post("/api/v1/training/benchmark-agent",
                                json={"agentId": trained.agent, "benchmarks": ["tool-usage", "chess"]}),
                 400, "INVALID_CONFIG", field="benchmarks[1]")

    model = f"{trained.agent}@{trained.versions[0]}"
    r = admin_api.post(f"/api/training/models/{model}/benchmark")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["modelId"] == model and list(body["scores"]) == ["coherence", "consistency", "helpfulness"]
    assert all(0 <= v <= 1 for v in body["scores"].values())
    assert isinstance(body["completedAt"], int) and body["completedAt"] > 1_600_000_000_000
    r = admin_api.post(f"/api/training/models/{trained.agent}@v9.9.9/benchmark")
    assert r.status_code == 404 and error_code(r) == "NOT_FOUND"
    r = admin_api.post("/api/training/models/no-at-sign/benchmark")
    assert r.status_code == 400 and error_code(r) == "INVALID_REQUEST" and r.json()["field"] == "id"


def test_evaluate_training_results_seed_001(admin_api: httpx.Client, trained: Trained) -> None:
    data = fn(admin_api, "evaluateTrainingResults", {
        "job_id": trained.jobs[1], "evaluation_criteria": ["accuracy", "precision", "recall", "f1_score"],
        "benchmark_against": trained.jobs[0]})
    assert data["job_id"] == trained.jobs[1]
    evaluation = data["evaluation"]
    assert 0 <= evaluation["overall_score"] <= 100 and GRADE.match(evaluation["quality_grade"])
    assert set(evaluation["metric_scores"]) == {"accuracy", "precision", "recall", "f1_score"}
    assert data["analysis"]["convergence_status"] in {"converged", "converging", "not_converged", "diverging"}
    assert data["analysis"]["overfitting_risk"] in {"none", "low", "medium", "high", "unknown"}
    assert all({"priority", "category", "recommendation", "expected_impact"} <= set(x) for x in data["recommendations"])
    assert {"accuracy_improvement", "loss_reduction"} <= set(data["benchmark_comparison"])
    r = admin_api.post(f"{FN}/evaluateTrainingResults", json={"job_id": 5})
    assert r.status_code == 422 and r.json()["field"] == "job_id"
    r = admin_api.post(f"{FN}/evaluateTrainingResults", json={"job_id": "job-nope"})
    assert r.status_code == 404 and error_code(r) == "NOT_FOUND"


def test_evaluations_spend_the_daily_budget(stack) -> None:  # noqa: ANN001
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as c:
        token = bearer(make_token(c, stack.admin_token, ["training:evaluate"]))
        for path, body in ((f"{FN}/evaluateTrainingResults", {"job_id": "job-nope"}),
                           ("/api/v1/training/evaluate-agent", {"agentId": "agent-nope"}),
                           ("/api/v1/training/benchmark-agent", {"agentId": "agent-nope"})):
            c.post(path, headers=token, json=body)
        r = c.post(f"{FN}/compareTrainingRuns", headers=token, json={"run_ids": ["job-a", "job-b"]})
        assert r.headers["X-RateLimit-Limit"] == "100" and r.headers["X-RateLimit-Remaining"] == "96"


def test_compare_training_runs_seed_001(admin_api: httpx.Client, trained: Trained) -> None:
    data = fn(admin_api, "compareTrainingRuns", {
        "run_ids": trained.jobs, "comparison_metrics": ["accuracy", "loss", "training_time"],
        "statistical_tests": True, "generate_recommendations": True})
    assert data["comparison_id"].startswith("cmp-")
    assert [run["job_id"] for run in data["runs"]] == trained.jobs
    assert all({"accuracy", "loss", "training_time"} <= set(run["results"]) for run in data["runs"])
    assert list(data["metric_comparisons"]) == ["accuracy", "loss", "training_time"]
    accuracy = data["metric_comparisons"]["accuracy"]
    assert accuracy["best"]["job_id"] in trained.jobs and accuracy["best"]["value"] >= accuracy["worst"]["value"]
    stats = data["statistical_analysis"]
    assert isinstance(stats["significant"], bool) and 0 <= stats["pValue"] <= 1
    assert {"effectSize", "improvement_percent"} <= set(stats)
    assert [r["job_id"] for r in data["overall_ranking"]] in (trained.jobs, trained.jobs[::-1])
    assert data["winner"]["job_id"] == data["overall_ranking"][0]["job_id"]
    assert data["recommendations"]["summary"] and isinstance(data["recommendations"]["next_steps"], list)
    r = admin_api.post(f"{FN}/compareTrainingRuns", json={"run_ids": trained.jobs[:1]})
    assert r.status_code == 422 and error_code(r) == "VALIDATION_ERROR" and r.json()["field"] == "run_ids"
    r = admin_api.post(f"{FN}/compareTrainingRuns", json={"run_ids": trained.jobs, "comparison_metrics": ["vibes"]})
    assert r.status_code == 422 and r.json()["field"] == "comparison_metrics[0]"


def test_generate_training_report_seed_001(admin_api: httpx.Client, trained: Trained) -> None:
    html = fn(admin_api, "generateTrainingReport", {"job_id": trained.jobs[0], "report_type": "single_job",
                                                    "include_sections": ["summary", "metrics", "charts"],
                                                    "format": "html"})
    assert html["content_type"] == "text/html" and html["format"] == "html"
    assert html["content"].lstrip().lower().startswith("<!doctype html") and "<svg" in html["content"]
    assert html["sections"] == ["summary", "metrics", "charts"] and html["charts"]
    as_json = fn(admin_api, "generateTrainingReport", {"agent_id": trained.agent})
    assert as_json["report_type"] == "agent_summary" and as_json["content_type"] == "application/json"
    assert isinstance(json.loads(as_json["content"]), dict) and as_json["agent_id"] == trained.agent
    # A job's report in JSON carries the job id as a field, in the answer and in its content.
    job_json = fn(admin_api, "generateTrainingReport", {"job_id": trained.jobs[0], "format": "json"})
    content = json.loads(job_json["content"])
    assert job_json["job_id"] == content["job_id"] == trained.jobs[0]
    assert job_json["agent_id"] == content["agent_id"] == trained.agent
    markdown = fn(admin_api, "generateTrainingReport", {"run_ids": trained.jobs, "format": "markdown"})
    assert markdown["report_type"] == "comparison" and markdown["content"].startswith("#")
    assert markdown["run_ids"] == trained.jobs
    r = admin_api.post(f"{FN}/generateTrainingReport", json={"job_id": trained.jobs[0], "format": "pdf"})
    assert r.status_code == 422 and r.json()["field"] == "format"


def test_analyze_and_optimize_seed_002(admin_api: httpx.Client, trained: Trained) -> None:
    data = fn(admin_api, "analyzeAndOptimize", {"agent_id": trained.agent,
                                                "optimization_goals": ["minimize_latency", "maximize_accuracy"]})
    assert data["agent_id"] == trained.agent and data["optimization_goals"] == ["minimize_latency",
                                                                                "maximize_accuracy"]
    assert data["current"]["version_id"] in trained.versions and "accuracy" in data["current"]["metrics"]
    assert {v["version_id"] for v in data["versions"]} == set(trained.versions)
    assert all(s["goal"] in {"minimize_latency", "maximize_accuracy"} and s["rule"] for s in data["suggestions"])
    assert data["summary"]
    # The suggested sweep is a body POST /api/v1/sweeps validates as far as the data it lacks.
    if any(set(s["config_changes"]) & {"hiddenSizes", "epochs", "dropout", "learningRate"} for s in data["suggestions"]):
        sweep = data["suggested_sweep"]
        assert sweep["agentId"] == trained.agent and sweep["objective"]["metric"] == "validation_accuracy"
        r = admin_api.post("/api/v1/sweeps", json=sweep)
        assert r.status_code == 400 and "examples" in r.text, r.text
    r = admin_api.post(f"{FN}/analyzeAndOptimize", json={"agent_id": trained.agent, "optimization_goals": ["fly"]})
    assert r.status_code == 422 and r.json()["field"] == "optimization_goals[0]"
    r = admin_api.post(f"{FN}/analyzeAndOptimize", json={"agent_id": "agent-nope"})
    assert r.status_code == 404 and error_code(r) == "NOT_FOUND"
