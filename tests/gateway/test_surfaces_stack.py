"""Functions (seeds 001/002), JSON-RPC (seed 003) and runtime REST (seed 004) over the real services."""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import bearer, make_token
from tests.gateway.surface_shapes import error_code, rpc
from tests.intents import make_examples

FN = "/api/v1/functions"
RPC = "/api/v1/jsonrpc"
TERMINAL = {"completed", "failed", "cancelled"}


def three_intents(per_intent: int = 15, seed: int = 0) -> list[dict[str, Any]]:
    return [e for e in make_examples(per_intent, seed=seed) if e["expected_output"] != "account"]


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def api(stack) -> Iterator[httpx.Client]:  # noqa: ANN001
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as boot:
        token = make_token(boot, stack.admin_token, ["admin"], rateLimitPerHour=0)
    with httpx.Client(base_url=stack.gateway_url, headers=bearer(token), timeout=30) as client:
        yield client


def call(api: httpx.Client, name: str, body: dict[str, Any]) -> dict[str, Any]:
    r = api.post(f"{FN}/{name}", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["success"] is True and out["trace_id"] == r.headers["X-Request-Id"]
    return out["data"]


def poll(fetch, done, timeout: float = 120) -> Any:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fetch()
        if done(value):
            return value
        time.sleep(0.3)
    raise AssertionError(f"not done after {timeout} s: {value}")


# ---- functions ------------------------------------------------------------------------------

def test_start_and_monitor_a_job_seed_001(api: httpx.Client) -> None:
    examples = [{**e, "feedback": "correct"} for e in three_intents()]
    data = call(api, "startTrainingJob", {
        "agent_id": uid("fn"), "training_data": {"examples": examples[:40], "validationExamples": examples[40:]},
        "config": {"epochs": 6, "batchSize": 16, "learningRate": 0.01, "trainingType": "supervised",
                   "earlyStopping": False}})
    assert data["status"] in {"queued", "initializing", "running"} and data["job_id"].startswith("job-")
    assert data["config"]["epochs"] == 6 and data["config"]["method"] == "supervised"
    assert data["progress"]["total_epochs"] == 6 and data["estimates"]["total_samples"] == 45
    assert data["started_at"].endswith("Z")
    job_id = data["job_id"]
    done = poll(lambda: call(api, "monitorTrainingProgress", {"job_id": job_id}), lambda d: d["status"] in TERMINAL)
    assert done["status"] == "completed", done
    assert done["progress"]["percent_complete"] == 100 and done["progress"]["current_epoch"] == 6
    assert {"loss", "accuracy"} <= set(done["metrics"]) and done["model_version"]
    full = call(api, "monitorTrainingProgress", {"job_id": job_id, "include_checkpoints": True,
                                                 "include_history": True})
    assert full["checkpoints"] and {"id", "epoch", "step", "metrics"} <= set(full["checkpoints"][0])
    assert {p["name"] for p in full["history"]} >= {"loss"}
    r = api.post(f"{FN}/monitorTrainingProgress", json={"job_id": "job-nope"})
    assert r.status_code == 404 and error_code(r) == "NOT_FOUND"


def test_train_agent_in_both_seed_forms(api: httpx.Client) -> None:
    # Seed 002: snake_case, training_data as an array.
    snake = call(api, "trainAgent", {"agent_id": uid("fn2"), "training_data": three_intents(), "training_type":
                                     "supervised", "config": {"epochs": 3, "learning_rate": 0.01}})
    assert snake["training_id"] == snake["job_id"] and snake["config"]["learningRate"] == 0.01
    # Seed 000's SDK: camelCase in, camelCase out (trainingJob.jobId), data from a dataset.
    dataset_id = uid("ds-fn")
    r = api.post("/api/v1/training/datasets", json={"datasetId": dataset_id, "examples": three_intents(seed=2)})
    assert r.status_code == 201, r.text
    camel = call(api, "trainAgent", {"agentId": uid("sdk"), "config": {"method": "supervised", "epochs": 3,
                                                                       "dataset": dataset_id}})
    assert camel["jobId"] == camel["trainingJobId"] and camel["config"]["dataset"] == dataset_id
    status = poll(lambda: call(api, "getTrainingStatus", {"jobId": camel["jobId"]}),
                  lambda d: d["status"] in TERMINAL)
    assert status["status"] == "completed" and status["jobId"] == camel["jobId"] and "currentEpoch" in status
    as_snake = call(api, "getTrainingStatus", {"job_id": snake["job_id"]})
    assert as_snake["job_id"] == snake["job_id"] and "current_epoch" in as_snake["progress"]
    r = api.post(f"{FN}/trainAgent", json={"agent_id": uid("bad"), "training_data": []})
    assert r.status_code == 422 and error_code(r) == "VALIDATION_ERROR" and r.json()["field"]


# ---- JSON-RPC -------------------------------------------------------------------------------

def test_jsonrpc_status_cancel_and_a_mixed_batch(api: httpx.Client) -> None:
    finished = call(api, "trainAgent", {"agent_id": uid("rpc"), "training_data": three_intents(),
                                        "config": {"epochs": 2}})["job_id"]
    long = call(api, "trainAgent", {"agent_id": uid("rpc-long"), "training_data": make_examples(100, seed=4),
                                    "config": {"epochs": 300}})["job_id"]

    def status(job_id: str) -> dict[str, Any]:
        r = api.post(RPC, json=rpc("training.get_status", {"job_id": job_id}, "s"))
        assert r.status_code == 200 and r.json()["id"] == "s" and "result" in r.json(), r.text
        return r.json()["result"]

    done = poll(lambda: status(finished), lambda s: s["status"] in TERMINAL)
    assert done["status"] == "completed" and done["current_iteration"] == done["total_iterations"] == 2
    assert done["progress_percent"] == 100 and "train_loss" in done["metrics"] and done["started_at"].endswith("Z")
    poll(lambda: status(long), lambda s: s["status"] in {"running"} | TERMINAL)

    batch = [rpc("training.get_status", {"job_id": finished}, 1),
             rpc("training.get_status", {"job_id": "job-missing"}, "two"),
             rpc("training.cancel", {"job_id": finished}, 3.5),
             {"jsonrpc": "2.0", "method": "training.get_status", "params": {"job_id": finished}},
             rpc("training.cancel", {"job_id": long, "reason": "enough"}, None)]
    r = api.post(RPC, json=batch)
    assert r.status_code == 200, r.text
    answers = r.json()
    assert [a["id"] for a in answers] == [1, "two", 3.5, None]
    assert answers[0]["result"]["status"] == "completed"
    assert answers[1]["error"]["code"] == -32001 and answers[1]["error"]["message"] == "Not found"
    assert answers[2]["error"]["code"] == -40003 and answers[2]["error"]["message"] == "Cannot cancel"
    cancelled = answers[3]["result"]
    assert cancelled["status"] == "cancelled" and cancelled["job_id"] == long
    assert cancelled["checkpoint_saved"] is True and cancelled["checkpoint_id"]
    assert cancelled["cancelled_at"].endswith("Z") and cancelled["iterations_completed"] >= 0


# ---- runtime REST ---------------------------------------------------------------------------

def test_runtime_jobs_models_and_datasets(api: httpx.Client) -> None:
    dataset_id = uid("ds-rt")
    assert api.post("/api/v1/training/datasets", json={"datasetId": dataset_id,
                                                       "examples": three_intents(seed=5)}).status_code == 201
    r = api.post("/api/training/jobs", json={"iterations": 4, "batchSize": 8, "learningRate": 0.01})
    assert r.status_code == 201, r.text
    job = r.json()["job"]
    assert job["datasetId"] == dataset_id and job["status"] in {"queued", "initializing", "running"}
    assert isinstance(job["createdAt"], int) and job["createdAt"] > 1_600_000_000_000 and job["backend"] == "cpu"
    got = poll(lambda: api.get(f"/api/training/jobs/{job['id']}").json()["job"], lambda j: j["status"] in TERMINAL)
    assert got["status"] == "completed" and got["progress"] == 1.0
    assert got["currentIteration"] == got["totalIterations"] == 4 and isinstance(got["loss"], float)
    assert isinstance(got["completedAt"], int) and got["completedAt"] >= job["createdAt"]

    jobs = api.get("/api/training/jobs").json()["jobs"]
    assert job["id"] in {j["id"] for j in jobs}
    models = api.get("/api/training/models").json()["models"]
    mine = [m for m in models if m["jobId"] == job["id"]]
    assert len(mine) == 1 and mine[0]["id"] == got["modelId"] and isinstance(mine[0]["createdAt"], int)
    assert mine[0]["agentId"] == "runtime-agent" and isinstance(mine[0]["active"], bool)
    datasets = api.get("/api/training/datasets").json()["datasets"]
    assert {"id": dataset_id, "exampleCount": 45} == {k: v for k, v in next(
        d for d in datasets if d["id"] == dataset_id).items() if k in ("id", "exampleCount")}
    status = api.get("/api/training/status").json()
    assert status["completedJobs"] >= 1 and status["modelCount"] >= 1 and status["datasetCount"] >= 1
    assert status["runtimeAvailable"] is True

    # `model` names the agent to train (an agent id) on an explicit dataset.
    other = uid("rt-agent")
    r = api.post("/api/training/jobs", json={"model": other, "datasetId": dataset_id, "iterations": 2})
    assert r.status_code == 201, r.text
    assert r.json()["job"]["model"] == other and r.json()["job"]["datasetId"] == dataset_id

    r = api.post(f"/api/training/jobs/{job['id']}/cancel")
    assert r.status_code == 400 and error_code(r) == "INVALID_REQUEST"
    r = api.get("/api/training/jobs/job-nope")
    assert r.status_code == 404 and error_code(r) == "NOT_FOUND"
    r = api.post("/api/training/jobs", json={"datasetId": "ds-nope"})
    assert r.status_code == 404 and error_code(r) == "NOT_FOUND"


def test_runtime_cancel(api: httpx.Client) -> None:
    dataset_id = uid("ds-rt-long")
    assert api.post("/api/v1/training/datasets", json={"datasetId": dataset_id,
                                                       "examples": make_examples(100, seed=6)}).status_code == 201
    job = api.post("/api/training/jobs", json={"datasetId": dataset_id, "iterations": 300}).json()["job"]
    r = api.post(f"/api/training/jobs/{job['id']}/cancel")
    assert r.status_code == 200 and r.json() == {"job": {"id": job["id"], "status": "cancelled"}}


# ---- signed download URLs -------------------------------------------------------------------

def test_signed_download_needs_no_token(stack, api: httpx.Client) -> None:  # noqa: ANN001
    dataset_id = uid("ds-dl")
    examples = three_intents(3)
    created = api.post("/api/v1/training/datasets", json={"datasetId": dataset_id, "examples": examples})
    assert created.status_code == 201
    data = api.get(f"/api/v1/training/datasets/{dataset_id}").json()["data"]
    url, expires = data["downloadUrl"], data["expiresAt"]
    assert url.startswith(stack.gateway_url + f"/api/v1/training/datasets/{dataset_id}/download?")
    assert expires.endswith("Z") and created.json()["data"]["downloadUrl"]
    r = httpx.get(url, timeout=10)
    assert r.status_code == 200 and len(r.text.splitlines()) == len(examples)
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    r = httpx.get(tampered, timeout=10)
    assert r.status_code == 401 and error_code(r) == "UNAUTHORIZED"
    other = url.replace(dataset_id, dataset_id + "x")
    assert httpx.get(other, timeout=10).status_code == 401
    assert httpx.get(url.split("?")[0], timeout=10).status_code == 401  # no signature, no token


# ---- data generation and validation ---------------------------------------------------------

def test_generate_synthetic_data_seed_000_and_functions(api: httpx.Client) -> None:
    r = api.post("/api/v1/training/generate-synthetic-data", json={
        "scenarioType": "customer-support", "count": 60, "difficulty": "medium", "edgeCases": True,
        "diversity": 0.8, "format": "jsonl", "constraints": {"maxLength": 500, "languages": ["en"]}, "seed": 7})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["generated"] == 60 and data["status"] == "completed" and data["expiresAt"].endswith("Z")
    assert data["statistics"]["uniqueScenarios"] > 0 and data["statistics"]["edgeCases"] > 0
    lines = httpx.get(data["downloadUrl"], timeout=30).text.splitlines()  # signed: no token needed
    assert len(lines) == 60
    # Same seed, same request: the same examples.
    again = api.post("/api/v1/training/generate-synthetic-data", json={
        "scenarioType": "customer-support", "count": 60, "difficulty": "medium", "edgeCases": True,
        "diversity": 0.8, "constraints": {"maxLength": 500, "languages": ["en"]}, "seed": 7}).json()["data"]
    assert httpx.get(again["downloadUrl"], timeout=30).text.splitlines() == lines

    snake = call(api, "generateSyntheticTrainingData", {"data_type": "customer_queries", "count": 20,
                                                        "parameters": {"difficulty": "easy"}})
    assert snake["generated"] == 20 and len(snake["examples"]) == 20 and snake["download_url"]
    assert {"input", "expected_output"} <= set(snake["examples"][0])
    sdk = call(api, "generateSyntheticTrainingData", {"scenarioType": "code-generation", "count": 5})
    assert sdk["generated"] == 5 and sdk["datasetId"] and "downloadUrl" in sdk

    r = api.post("/api/v1/training/generate-synthetic-data", json={"scenarioType": "no-such-scenario", "count": 5})
    assert r.status_code == 400 and error_code(r) == "INVALID_CONFIG"
    r = api.post(f"{FN}/generateSyntheticTrainingData", json={"module_id": "module-nope", "sample_count": 5})
    assert r.status_code == 404 and error_code(r) == "NOT_FOUND"
    r = api.post(f"{FN}/generateSyntheticTrainingData", json={"data_type": "customer_queries"})
    assert r.status_code == 422 and r.json()["field"] == "count"


def test_generation_budget_is_count_weighted(stack) -> None:  # noqa: ANN001
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as c:
        token = bearer(make_token(c, stack.admin_token, ["data:generate"]))
        ok = c.post("/api/v1/training/generate-synthetic-data", headers=token,
                    json={"scenarioType": "customer-support", "count": 6000})
        assert ok.status_code == 200, ok.text
        r = c.post("/api/v1/training/generate-synthetic-data", headers=token,
                   json={"scenarioType": "customer-support", "count": 6000})
        assert r.status_code == 429 and error_code(r) == "RATE_LIMIT_EXCEEDED"
        assert r.json()["error"]["retryAfter"] > 0 and r.headers["X-RateLimit-Limit"] == "10000"
        # A refused request (bad scenario) does not spend the budget.
        bad = c.post("/api/v1/training/generate-synthetic-data", headers=token,
                     json={"scenarioType": "nope", "count": 3000})
        assert bad.status_code == 400
        assert c.post("/api/v1/training/generate-synthetic-data", headers=token,
                      json={"scenarioType": "customer-support", "count": 3000}).status_code == 200


def test_validate_data(api: httpx.Client) -> None:
    dataset_id = uid("ds-val")
    examples = three_intents(10) + [three_intents(10)[0]] * 3
    assert api.post("/api/v1/training/datasets", json={"datasetId": dataset_id, "examples": examples}).status_code == 201
    r = api.post("/api/v1/training/validate-data", json={"datasetId": dataset_id,
                                                         "checks": {"duplicates": True, "balance": True}})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["statistics"]["totalExamples"] == 33 and data["statistics"]["duplicates"] >= 3
    assert isinstance(data["valid"], bool) and data["datasetId"] == dataset_id
    assert all({"type", "message", "severity"} <= set(f) for f in data["issues"] + data["warnings"])
    r = api.post("/api/v1/training/validate-data", json={"examples": three_intents(3)})
    assert r.status_code == 200 and r.json()["data"]["statistics"]["totalExamples"] == 9
    r = api.post("/api/v1/training/validate-data", json={"datasetId": "ds-nope"})
    assert r.status_code == 404
    r = api.post("/api/v1/training/validate-data", json={})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "datasetId"


# ---- trajectories ---------------------------------------------------------------------------

def test_runtime_trajectories_and_dataset_build(api: httpx.Client) -> None:
    agent = uid("traj-agent")
    now = int(time.time() * 1000)

    def trajectory(i: int) -> dict[str, Any]:
        return {"id": f"{agent}-t{i}", "agentId": agent, "source": "chat", "status": "completed",
                "startTime": now, "endTime": now + 10_000,
                "llmCalls": [{"callId": f"c{j}", "model": "m", "prompt": f"where is my parcel {i} {j}",
                              "response": "shipping", "promptTokens": 12, "latencyMs": 120, "time": now}
                             for j in range(2)],
                "providerAccesses": [{"provider": "memory", "purpose": "recall", "data": {"k": i}, "time": now}]}

    r = api.post("/api/training/trajectories", json={"trajectories": [trajectory(i) for i in range(3)]})
    assert r.status_code == 201, r.text
    assert r.json()["received"] == 3 and r.json()["created"] == 3
    again = api.post("/api/training/trajectories", json={"trajectories": [trajectory(0)]}).json()
    assert again["unchanged"] == 1 and again["created"] == 0
    listed = api.get("/api/training/trajectories", params={"limit": 2}).json()
    assert listed["available"] is True and listed["total"] >= 3 and len(listed["trajectories"]) == 2
    one = api.get(f"/api/training/trajectories/{agent}-t1").json()["trajectory"]
    assert one["id"] == f"{agent}-t1" and one["llmCallCount"] == 2 and one["startTime"] == now
    assert len(one["llmCalls"]) == 2 and one["llmCalls"][0]["latencyMs"] == 120
    assert one["providerAccesses"][0]["data"] == {"k": 1}
    r = api.get("/api/training/trajectories/nope")
    assert r.status_code == 404 and error_code(r) == "NOT_FOUND"
    r = api.post("/api/training/trajectories", json={"trajectories": [{"llmCalls": "x"}]})
    assert r.status_code == 400 and error_code(r) == "INVALID_REQUEST" and r.json()["field"].startswith("trajectories[0]")

    r = api.post("/api/training/datasets/build", json={"limit": 3, "minLlmCallsPerTrajectory": 2})
    assert r.status_code == 201, r.text
    dataset = r.json()["dataset"]
    assert dataset["trajectoryCount"] >= 1 and dataset["exampleCount"] >= 2 and isinstance(dataset["createdAt"], int)


def test_jsonrpc_export_trajectories_and_start_grpo(api: httpx.Client) -> None:
    job_id = call(api, "trainAgent", {"agent_id": uid("exp"), "training_data": three_intents(3),
                                      "config": {"epochs": 1}})["job_id"]
    r = api.post(RPC, json=rpc("training.export_trajectories", {"job_id": job_id, "limit": 10}, "e"))
    result = r.json()["result"]
    assert result == {"job_id": job_id, "trajectories": [], "total_count": 0, "returned_count": 0, "has_more": False}
    r = api.post(RPC, json=rpc("training.export_trajectories", {"job_id": job_id, "limit": 20000}, "e"))
    assert r.json()["error"]["code"] == -40005 and r.json()["error"]["data"]["field"] == "limit"
    r = api.post(RPC, json=rpc("training.export_trajectories", {"job_id": "job-nope"}, "e"))
    assert r.json()["error"]["code"] == -32001

    queries = [{"query": f"look up order {i}", "expected_outcome": {"tool": "lookup_order"}} for i in range(100)]
    r = api.post(RPC, json=rpc("training.start_grpo", {"agent_id": uid("grpo"), "config": {"n_iterations": "x"},
                                                        "training_data": queries}, "g"))
    assert r.json()["error"]["code"] == -32602 and r.json()["error"]["data"]["field"] == "config.n_iterations"
    r = api.post(RPC, json=rpc("training.start_grpo", {"agent_id": uid("grpo"), "config": {"n_iterations": 0},
                                                        "training_data": queries}, "g"))
    assert r.json()["error"]["code"] in (-32600, -40002) and r.json()["error"]["data"]["field"], r.text
    r = api.post(RPC, json=rpc("training.start_grpo", {"agent_id": uid("grpo"), "config": {"n_iterations": 2,
                                                        "batch_size": 4, "n_trajectories_per_query": 2},
                                                        "training_data": queries}, "g"))
    answer = r.json()
    if "result" in answer:  # GRPO is served by TrainingService
        assert answer["result"]["status"] == "queued" and answer["result"]["total_iterations"] == 2
        api.post(RPC, json=rpc("training.cancel", {"job_id": answer["result"]["job_id"]}, "c"))
    else:  # not yet: the service's refusal names the method, in seed 003's shape
        assert answer["error"]["code"] == -32600 and answer["error"]["data"]["field"] == "method", answer


# ---- deployments and model management -------------------------------------------------------

def test_deploy_rollback_activate_and_auto_config(api: httpx.Client) -> None:
    agent = uid("dep")
    versions = []
    for seed in (0, 1):
        job_id = call(api, "trainAgent", {"agent_id": agent, "training_data": three_intents(seed=seed),
                                          "config": {"epochs": 2}})["job_id"]
        done = poll(lambda: call(api, "getTrainingStatus", {"job_id": job_id}), lambda d: d["status"] in TERMINAL)
        assert done["status"] == "completed", done
        versions.append(done["model_version"])
    v1, v2 = versions
    base = f"/api/v1/training/models/{agent}/versions"
    r = api.post(f"{base}/{v1}/deploy", json={"environment": "production"})
    assert r.status_code == 200, r.text
    r = api.post(f"{base}/{v2}/deploy", json={"environment": "production", "rollout": {
        "strategy": "canary", "percentage": 10, "duration": "1h"}, "rollback": {"automatic": True,
                                                                                "threshold": {"errorRate": 0.05}}})
    assert r.status_code == 200, r.text
    dep = r.json()["data"]
    assert dep["versionId"] == v2 and dep["status"] == "rolling-out" and dep["currentPercentage"] == 10
    assert dep["deploymentId"] and dep["estimatedCompletion"].endswith("Z") and dep["strategy"] == "canary"
    r = api.post(f"{base}/{v2}/rollback")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["data"]["previousVersion"] == v2 and body["data"]["currentVersion"] == v1
    assert body["message"].startswith("Rolled back") and body["data"]["rollbackTime"].endswith("Z")
    r = api.post(f"{base}/{v2}/deploy", json={"rollout": {"strategy": "sideways"}})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "rollout.strategy"
    r = api.post(f"/api/v1/training/models/{agent}/versions/v9.9.9/deploy", json={})
    assert r.status_code == 404

    r = api.post(f"/api/training/models/{agent}@{v2}/activate", json={"providerModel": "my-model"})
    assert r.status_code == 200 and r.json() == {"ok": True, "activeModel": "my-model"}, r.text
    assert api.get(f"/api/v1/agents/{agent}").json()["data"]["activeVersionId"] == v2
    r = api.post(f"/api/training/models/{agent}@v9.9.9/activate")
    assert r.status_code == 404 and error_code(r) == "NOT_FOUND"

    before = api.get("/api/training/auto/config").json()
    assert set(before) == {"threshold", "cooldownHours", "enabled"}
    r = api.put("/api/training/auto/config", json={"threshold": 200, "cooldownHours": 24})
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    assert r.json()["config"]["threshold"] == 200 and r.json()["config"]["cooldownHours"] == 24
    assert api.get("/api/training/auto/config").json()["threshold"] == 200
    r = api.put("/api/training/auto/config", json={"threshold": 0})
    assert r.status_code == 400 and error_code(r) == "INVALID_REQUEST" and r.json()["field"] == "threshold"
    api.put("/api/training/auto/config", json={"threshold": before["threshold"],
                                               "cooldownHours": before["cooldownHours"]})


def test_evaluate_training_results_errors_and_the_daily_budget(stack, api: httpx.Client) -> None:  # noqa: ANN001
    # The success path belongs to EvaluationService's own tests (its peers are still being wired);
    # here: the translation of its errors and the evaluations/day budget.
    r = api.post(f"{FN}/evaluateTrainingResults", json={"job_id": 5})
    assert r.status_code == 422 and r.json()["field"] == "job_id"
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as c:
        token = bearer(make_token(c, stack.admin_token, ["training:evaluate"]))
        for _ in range(3):
            c.post(f"{FN}/evaluateTrainingResults", headers=token, json={"job_id": "job-nope"})
        r = c.post(f"{FN}/evaluateTrainingResults", headers=token, json={"job_id": "job-nope"})
        assert r.headers["X-RateLimit-Limit"] == "100" and r.headers["X-RateLimit-Remaining"] == "96"
