"""Functions (seeds 001/002), JSON-RPC (seed 003) and runtime REST (seed 004) over the real services."""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google.protobuf import json_format

from trainhouse.gateway.resources.datasets import wrap_slot_lists
from tests.gateway.conftest import Trained, bearer, grpo_params, make_token
from tests.gateway.surface_shapes import error_code, rpc
from tests.intents import hwu64_subset, make_examples, shuffle_labels
from trainhouse.v1 import (data_service_pb2, data_service_pb2_grpc, training_service_pb2,
                           training_service_pb2_grpc)

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
        time.sleep(0.2)
    raise AssertionError(f"not done after {timeout} s: {value}")


# ---- functions ------------------------------------------------------------------------------

def test_start_and_monitor_a_job_seed_001(api: httpx.Client, trained: Trained) -> None:
    data = trained.seed001_started  # startTrainingJob with 40 examples + 5 validationExamples, 3 epochs
    assert data["status"] in {"queued", "initializing", "running"} and data["job_id"].startswith("job-")
    assert data["agent_id"] == trained.other_agent
    assert data["config"]["epochs"] == 3 and data["config"]["method"] == "supervised"
    assert data["progress"]["total_epochs"] == 3 and data["estimates"]["total_samples"] == 45
    # Known when the job is accepted: the split and the optimizer steps (3 epochs x ceil(40 / 16)).
    assert data["estimates"]["training_samples"] == 40 and data["estimates"]["validation_samples"] == 5
    assert data["progress"]["total_steps"] == 9
    assert data["started_at"].endswith("Z")
    job_id = data["job_id"]
    done = call(api, "monitorTrainingProgress", {"job_id": job_id})
    assert done["status"] == "completed", done
    assert done["progress"]["percent_complete"] == 100 and done["progress"]["current_epoch"] == 3
    assert done["progress"]["total_steps"] == done["progress"]["current_step"] == 9  # the plan was the run
    assert {"loss", "accuracy"} <= set(done["metrics"]) and done["model_version"]
    assert done["metrics"]["token_usage"] == done["metrics"]["tokens_processed"] > 0
    full = call(api, "monitorTrainingProgress", {"job_id": job_id, "include_checkpoints": True,
                                                 "include_history": True})
    assert full["checkpoints"] and {"id", "epoch", "step", "metrics"} <= set(full["checkpoints"][0])
    assert {p["name"] for p in full["history"]} >= {"loss"}
    r = api.post(f"{FN}/monitorTrainingProgress", json={"job_id": "job-nope"})
    assert r.status_code == 404 and error_code(r) == "NOT_FOUND"


def test_train_agent_in_both_seed_forms(api: httpx.Client) -> None:
    # Seed 002: snake_case, training_data as an array.
    snake = call(api, "trainAgent", {"agent_id": uid("fn2"), "training_data": three_intents(), "training_type":
                                     "supervised", "config": {"epochs": 2, "learning_rate": 0.01}})
    assert snake["training_id"] == snake["job_id"] and snake["config"]["learningRate"] == 0.01
    # Seed 000's SDK: camelCase in, camelCase out (trainingJob.jobId), data from a dataset.
    dataset_id = uid("ds-fn")
    r = api.post("/api/v1/training/datasets", json={"datasetId": dataset_id, "examples": three_intents(seed=2)})
    assert r.status_code == 201, r.text
    camel = call(api, "trainAgent", {"agentId": uid("sdk"), "config": {"method": "supervised", "epochs": 2,
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

def test_jsonrpc_status_cancel_and_a_mixed_batch(api: httpx.Client, trained: Trained) -> None:
    finished = trained.jobs[0]
    long = call(api, "trainAgent", {"agent_id": uid("rpc-long"), "training_data": make_examples(100, seed=4),
                                    "config": {"epochs": 300}})["job_id"]

    def status(job_id: str) -> dict[str, Any]:
        r = api.post(RPC, json=rpc("training.get_status", {"job_id": job_id}, "s"))
        assert r.status_code == 200 and r.json()["id"] == "s" and "result" in r.json(), r.text
        return r.json()["result"]

    done = status(finished)
    assert done["status"] == "completed" and done["current_iteration"] == done["total_iterations"] == trained.epochs
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
    r = api.post("/api/training/jobs", json={"iterations": 2, "batchSize": 8, "learningRate": 0.01})
    assert r.status_code == 201, r.text
    job = r.json()["job"]
    assert job["datasetId"] == dataset_id and job["status"] in {"queued", "initializing", "running"}
    assert isinstance(job["createdAt"], int) and job["createdAt"] > 1_600_000_000_000 and job["backend"] == "cpu"
    got = poll(lambda: api.get(f"/api/training/jobs/{job['id']}").json()["job"], lambda j: j["status"] in TERMINAL)
    assert got["status"] == "completed" and got["progress"] == 1.0
    assert got["currentIteration"] == got["totalIterations"] == 2 and isinstance(got["loss"], float)
    assert isinstance(got["completedAt"], int) and got["completedAt"] >= job["createdAt"]

    jobs = api.get("/api/training/jobs").json()["jobs"]
    assert job["id"] in {j["id"] for j in jobs}
    models = api.get("/api/training/models").json()["models"]
    mine = [m for m in models if m.get("jobId") == job["id"]]
    assert len(mine) == 1 and mine[0]["id"] == got["modelId"] and isinstance(mine[0]["createdAt"], int)
    assert mine[0]["agentId"] == "runtime-agent" and isinstance(mine[0]["active"], bool)
    datasets = api.get("/api/training/datasets").json()["datasets"]
    assert {"id": dataset_id, "exampleCount": 45} == {k: v for k, v in next(
        d for d in datasets if d["id"] == dataset_id).items() if k in ("id", "exampleCount")}
    status = api.get("/api/training/status").json()
    assert status["completedJobs"] >= 1 and status["modelCount"] >= 1 and status["datasetCount"] >= 1
    assert status["runtimeAvailable"] is True

    # Seed 004's own example: `model` is a base model (an LLM) this platform does not train from. It is
    # kept as the job's base model; the runtime agent is what trains, with the native (CPU) trainer.
    r = api.post("/api/training/jobs", json={"model": "eliza-1-2b", "datasetId": dataset_id, "iterations": 2,
                                             "backend": "native"})
    assert r.status_code == 201, r.text
    started = r.json()["job"]
    assert started["model"] == "eliza-1-2b" and started["agentId"] == "runtime-agent"
    assert started["datasetId"] == dataset_id and "NumPy" in started["backendDetail"]
    assert api.get("/api/v1/agents/eliza-1-2b").status_code == 404  # no agent named after the base model
    # One of our models ('<agentId>@<versionId>') is fine-tuned by transfer on the agent it belongs to.
    r = api.post("/api/training/jobs", json={"model": got["modelId"], "datasetId": dataset_id, "iterations": 2})
    assert r.status_code == 201 and r.json()["job"]["agentId"] == "runtime-agent", r.text
    assert r.json()["job"]["model"] == got["modelId"]
    r = api.post("/api/training/jobs", json={"backend": "mlx"})
    assert r.status_code == 400 and r.json()["field"] == "backend"
    r = api.post("/api/training/jobs", json={"maxTrajectories": 5, "datasetId": dataset_id})
    assert r.status_code == 400 and r.json()["field"] == "maxTrajectories"

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


def test_generate_synthetic_training_data_seed_002_example(api: httpx.Client) -> None:
    """Seed 002's own example, verbatim: "support" is not a customer-support catalogue topic, so it
    is generated from generic templates, and the answer says so."""
    data = call(api, "generateSyntheticTrainingData", {
        "data_type": "customer_queries",
        "count": 100,
        "parameters": {
            "difficulty": "medium",
            "topics": ["billing", "support"],
        },
    })
    assert data["generated"] == 100 and data["status"] == "completed" and data["download_url"]
    assert data["scenario"] == "customer-support" and data["generic_topics"] == ["support"]
    assert data["statistics"]["topic_counts"] == {"billing": 75, "support": 25}
    examples = data["examples"]
    assert len(examples) == 100
    by_topic: dict[str, set[str]] = {}
    for e in examples:
        assert e["input"] and e["metadata"]["generic_topic"] is (e["metadata"]["topic"] == "support")
        by_topic.setdefault(e["metadata"]["topic"], set()).add(e["expected_output"])
    assert by_topic == {"billing": {"refund_request", "payment_failed", "invoice_question"}, "support": {"support"}}


def test_generation_from_a_module_and_a_custom_template(stack, api: httpx.Client) -> None:  # noqa: ANN001
    template = {"outputs": [{"output": "refund", "templates": ["I want my money back for the {item}",
                                                               "refund the {item} please"]},
                            {"output": "track", "templates": ["where is my {item}", "track the {item}"]}],
                "slots": {"item": ["lamp", "chair", "desk"]}}  # slot values as a plain list
    r = api.post("/api/v1/training/generate-synthetic-data", json={"scenarioType": "custom", "count": 8,
                                                                  "template": template, "seed": 1})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["generated"] == 8
    module_id = uid("module")
    with stack.channel("data") as channel:
        stub = data_service_pb2_grpc.DataServiceStub(channel)
        request = data_service_pb2.CreateTrainingModuleRequest(module_id=module_id, display_name="returns")
        json_format.ParseDict(wrap_slot_lists(template), request.template)
        stub.CreateTrainingModule(request, timeout=30)
    data = call(api, "generateSyntheticTrainingData", {"module_id": module_id, "sample_count": 6,
                                                       "difficulty": "easy"})
    assert data["generated"] == 6 and {e["expected_output"] for e in data["examples"]} == {"refund", "track"}
    r = api.post(f"{FN}/generateSyntheticTrainingData", json={"module_id": module_id, "sample_count": 51})
    assert r.status_code == 422 and error_code(r) == "VALIDATION_ERROR" and r.json()["field"] == "sample_count"

    # seed 001 training_data.moduleId: the job trains on the module's examples plus the inline ones
    own = {"input": "please send the lamp back to the warehouse", "expected_output": "return"}
    started = call(api, "startTrainingJob", {"agent_id": uid("mod-agent"), "config": {"epochs": 2},
                                             "training_data": {"moduleId": module_id, "examples": [own]}})
    dataset_id = started["config"]["dataset"]
    assert dataset_id.startswith(f"module-{module_id}-") and dataset_id.endswith("-n200")
    with stack.channel("training") as channel:
        training = training_service_pb2_grpc.TrainingServiceStub(channel)
        listed = training.ListJobExamples(training_service_pb2.ListJobExamplesRequest(
            job_id=started["job_id"], split="all", page_size=1000), timeout=30)
    assert listed.total_size == 201
    outputs = [e.expected_output for e in listed.examples]
    assert set(outputs) == {"refund", "track", "return"} and outputs.count("return") == 1
    again = call(api, "trainAgent", {"agent_id": uid("mod-agent"), "config": {"epochs": 2},
                                     "training_data": {"module_id": module_id, "examples": [own]}})
    assert again["config"]["dataset"] == dataset_id  # generated once, the same examples for every job
    r = api.post(f"{FN}/startTrainingJob", json={"agent_id": "a", "training_data": {"moduleId": "module-nope"}})
    assert r.status_code == 404 and error_code(r) == "NOT_FOUND"
    r = api.post(f"{FN}/startTrainingJob", json={"agent_id": "a", "config": {"trainingType": "reinforcement"},
                                                 "training_data": {"moduleId": module_id}})
    assert r.status_code == 422 and r.json()["field"] == "training_data.moduleId"


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



def test_validate_data_sees_wrong_labels(api: httpx.Client) -> None:
    """Seed 000's request (its four checks named) on real requests with 90% of the labels shuffled."""
    clean = hwu64_subset()
    checks = {"duplicates": True, "quality": True, "balance": True, "bias": True}
    scores = {}
    for name, examples in (("clean", clean), ("shuffled", shuffle_labels(clean, 0.9, seed=1))):
        dataset_id = uid(f"ds-{name}")
        r = api.post("/api/v1/training/datasets", json={"datasetId": dataset_id, "examples": examples})
        assert r.status_code == 201, r.text
        r = api.post("/api/v1/training/validate-data", json={"datasetId": dataset_id, "checks": checks})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["success"] is True and set(body["data"]) == {"valid", "issues", "warnings", "statistics",
                                                                 "datasetId", "labelIssues"}
        scores[name] = body["data"]
    shuffled, fine = scores["shuffled"], scores["clean"]
    assert fine["valid"] is True and shuffled["valid"] is False
    (issue,) = [f for f in shuffled["issues"] if f["type"] == "label_issues"]
    assert issue["severity"] == "high" and "labels look wrong" in issue["message"] and issue["suggestion"]
    stats = shuffled["statistics"]
    assert stats["averageQuality"] < fine["statistics"]["averageQuality"] - 0.3
    assert stats["labelNoiseRate"] > 0.6 > 0.06 > fine["statistics"]["labelNoiseRate"]
    assert stats["labelIssuesChecked"] == 840 and stats["labelIssues"] == issue["count"] > 100
    first = shuffled["labelIssues"][0]
    assert set(first) == {"exampleIndex", "input", "givenLabel", "likelyLabel", "likelyLabelConfidence",
                          "givenLabelConfidence"} and len(shuffled["labelIssues"]) == 100
    assert first["givenLabel"] != first["likelyLabel"] and 0 <= first["givenLabelConfidence"] <= 1

    dataset_id = shuffled["datasetId"]
    r = api.post("/api/v1/training/validate-data",
                 json={"datasetId": dataset_id, "checks": {**checks, "labelIssues": False}})
    assert r.status_code == 200 and r.json()["data"]["valid"] is True and r.json()["data"]["labelIssues"] == []
    r = api.post("/api/v1/training/validate-data", json={"datasetId": dataset_id, "options": {"maxLabelNoise": 1}})
    assert r.status_code == 200 and r.json()["data"]["valid"] is True
    r = api.post("/api/v1/training/validate-data", json={"datasetId": dataset_id, "options": {"maxLabelNoise": 2}})
    assert r.status_code == 400 and "maxLabelNoise" in r.json()["error"]["details"]["field"], r.text

# ---- trajectories ---------------------------------------------------------------------------

def test_runtime_trajectories_and_dataset_build(api: httpx.Client) -> None:
    agent = uid("traj-agent")
    now = int(time.time() * 1000)

    def trajectory(i: int) -> dict[str, Any]:
        return {"id": f"{agent}-t{i}", "agentId": agent, "source": "chat", "status": "completed",
                "startTime": now, "endTime": now + 10_000,
                "llmCalls": [{"callId": f"c{j}", "model": "m", "prompt": f"where is my parcel {i} {j}",
                              "response": "shipping" if i % 2 == 0 else "billing", "promptTokens": 12,
                              "latencyMs": 120, "time": now}
                             for j in range(2)],
                "providerAccesses": [{"provider": "memory", "purpose": "recall", "data": {"k": i}, "time": now}]}

    r = api.post("/api/training/trajectories", json={"trajectories": [trajectory(i) for i in range(3)]})
    assert r.status_code == 201, r.text
    assert r.json()["received"] == 3 and r.json()["created"] == 3
    again = api.post("/api/training/trajectories", json={"trajectories": [trajectory(0)]}).json()
    assert again["unchanged"] == 1 and again["created"] == 0
    # A runtime may post one trajectory, bare or wrapped: the same store, the same answer.
    bare = api.post("/api/training/trajectories", json=trajectory(3))
    assert bare.status_code == 201 and bare.json()["created"] == 1, bare.text
    wrapped = api.post("/api/training/trajectories", json={"trajectory": trajectory(4)}).json()
    assert wrapped["created"] == 1 and wrapped["trajectoryIds"] == [f"{agent}-t4"]
    assert api.post("/api/training/trajectories", json={"trajectory": trajectory(3)}).json()["unchanged"] == 1
    for body, field in (([], "body"), ({}, "body"), ({"trajectories": []}, "trajectories"),
                        ({"trajectory": {"llmCalls": "x"}}, "trajectory")):
        r = api.post("/api/training/trajectories", json=body)
        assert r.status_code == 400 and error_code(r) == "INVALID_REQUEST" and r.json()["field"].startswith(field), \
            r.text
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

    # maxTrajectories: the job trains on a dataset built now from the newest recorded trajectories.
    r = api.post("/api/training/jobs", json={"maxTrajectories": 4, "iterations": 1})
    assert r.status_code == 201, r.text
    built = r.json()["job"]["datasetId"]
    assert built and built != dataset["id"]
    assert next(d for d in api.get("/api/training/datasets").json()["datasets"] if d["id"] == built)[
        "trajectoryCount"] == 4


def test_jsonrpc_grpo_start_evaluate_and_export(api: httpx.Client, trained: Trained) -> None:
    def call_rpc(method: str, params: dict[str, Any]) -> dict[str, Any]:
        r = api.post(RPC, json=rpc(method, params, "x"))
        assert r.status_code == 200 and r.json()["id"] == "x", r.text
        return r.json()

    started = trained.grpo_started
    assert started["status"] == "queued" and started["total_iterations"] == 2 and started["created_at"].endswith("Z")
    job_id = trained.grpo_job
    status = call_rpc("training.get_status", {"job_id": job_id})["result"]
    assert status["status"] == "completed" and status["current_iteration"] == status["total_iterations"] == 2
    assert {"avg_reward", "trajectories_generated"} <= set(status["metrics"]) and status["budget_usd"] == "100.00"
    # the served policy: an empty episode is a fresh one; with a history it answers the next action
    served = f"/api/v1/agents/{status['agent_id']}/predict"
    fresh = api.post(served, json={"input": "refund my payment please"}).json()["data"]["predictions"][0]
    again = api.post(served, json={"input": "refund my payment please", "episodes": [[]]})
    assert again.status_code == 200 and again.json()["data"]["predictions"][0]["output"] == fresh["output"]
    if fresh["output"] != "finish":
        nxt = api.post(served, json={"input": "refund my payment please",
                                     "episodes": [[{"tool": fresh["output"], "succeeded": True}]]})
        assert nxt.status_code == 200, nxt.text

    result = call_rpc("training.evaluate", {"job_id": job_id})["result"]
    assert result["job_id"] == job_id and result["checkpoint_id"] and result["queries_evaluated"] == 9
    assert set(result["metrics"]) == {"success_rate", "avg_reward", "avg_steps", "tool_accuracy"}
    comparison = result["baseline_comparison"]
    assert 0 <= comparison["p_value"] <= 1 and isinstance(comparison["statistically_significant"], bool)
    assert {"success_rate_improvement", "avg_reward_improvement"} <= set(comparison)
    assert comparison["baseline_kind"] == "untrained" and result["evaluation_id"].startswith("eval-")
    assert isinstance(result["evaluation_duration_ms"], int) and len(result["results"]) == 9
    custom = call_rpc("training.evaluate", {"job_id": job_id, "evaluation_queries": [
        {"query": "refund my payment please", "expected_outcome": {"tool": "refund"}}]})["result"]
    assert custom["queries_evaluated"] == 1
    assert call_rpc("training.evaluate", {"job_id": job_id, "checkpoint_id": "nope"})["error"]["code"] == -32001
    assert call_rpc("training.evaluate", {"job_id": "job-nope"})["error"]["code"] == -32001
    failed = call_rpc("training.evaluate", {"job_id": trained.jobs[0]})["error"]  # a supervised job
    assert failed["code"] == -40004 and failed["message"] == "Evaluation failed"

    exported = call_rpc("training.export_trajectories", {"job_id": job_id, "limit": 3})["result"]
    assert exported["returned_count"] == len(exported["trajectories"]) == 3 and exported["has_more"] is True
    assert exported["total_count"] == 2 * 4 * 2  # iterations x queries per batch x trajectories per query
    first = exported["trajectories"][0]
    assert first["steps"] and {"state", "action", "result"} <= set(first["steps"][0]) and "reward" in first
    supervised = call_rpc("training.export_trajectories", {"job_id": trained.jobs[0], "limit": 10})["result"]
    assert supervised == {"job_id": trained.jobs[0], "trajectories": [], "total_count": 0, "returned_count": 0,
                          "has_more": False}
    assert call_rpc("training.export_trajectories", {"job_id": job_id, "limit": 20000})["error"]["code"] == -40005
    assert call_rpc("training.export_trajectories", {"job_id": "job-nope"})["error"]["code"] == -32001

    queries = [{"query": f"look up order {i}", "expected_outcome": {"tool": "lookup_order"}} for i in range(100)]
    error = call_rpc("training.start_grpo", {"agent_id": uid("grpo"), "config": {"n_iterations": "x"},
                                             "training_data": queries})["error"]
    # Seed 003 names a config field by its leaf ("field": "n_iterations"), for a type or a range.
    assert error["code"] == -32602 and error["data"]["field"] == "n_iterations"
    error = call_rpc("training.start_grpo", {"agent_id": uid("grpo"), "config": {"n_iterations": 0},
                                             "training_data": queries})["error"]
    assert error["code"] == -32600 and error["data"]["field"] == "n_iterations", error
    error = call_rpc("training.start_grpo", {"agent_id": uid("grpo"), "config": {}, "training_data": queries[:5]})
    assert error["error"]["code"] == -40002 and error["error"]["data"]["field"].startswith("training_data"), error


# ---- deployments and model management -------------------------------------------------------

def test_deploy_rollback_activate_and_auto_config(api: httpx.Client, trained: Trained) -> None:
    agent = trained.agent
    v1, v2 = trained.versions
    base = f"/api/v1/training/models/{agent}/versions"
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


def test_runtime_ollama_import_says_what_it_carries(api: httpx.Client, trained: Trained) -> None:
    """Seed 004 import-ollama: the answer says the import carries the catalogue and demonstrations
    in a system prompt over the base model, not weights, and the demonstrations are the version's
    own held-out examples."""
    from tests.registry.test_ollama import FakeOllama

    server = FakeOllama()
    try:
        model = f"{trained.agent}@{trained.versions[0]}"
        r = api.post(f"/api/training/models/{model}/import-ollama",
                     json={"modelName": "shared-router", "baseModel": "llama3.2", "ollamaUrl": server.url})
        assert r.status_code == 200, r.text
        imported = r.json()["model"]
        assert imported["ollamaName"] == "shared-router" and imported["baseModel"] == "llama3.2"
        count = imported["demonstrationCount"]
        assert count > 0 and f"{count} demonstrations" in imported["carries"] and "no weights" in imported["carries"]
        system = server.calls[-1]["body"]["system"]
        assert system.count("Input: ") == count
    finally:
        server.close()


def test_jsonrpc_status_of_a_running_job_has_its_estimated_completion(api: httpx.Client) -> None:
    """Seed 003's training.get_status: a running job says when it is expected to end (from its own
    progress), in its five status words; the job is cancelled once seen."""
    params = grpo_params(uid("rpc-eta"))
    params["config"] = {**params["config"], "n_iterations": 400}
    r = api.post(RPC, json=rpc("training.start_grpo", params, "start"))
    assert r.status_code == 200 and "result" in r.json(), r.text
    job_id = r.json()["result"]["job_id"]

    def status() -> dict[str, Any]:
        return api.post(RPC, json=rpc("training.get_status", {"job_id": job_id}, "s")).json()["result"]

    running = poll(status, lambda s: s["status"] != "queued" and s.get("progress_percent", 0) > 0)
    assert running["status"] == "running" and 0 < running["progress_percent"] < 100, running
    eta = running["estimated_completion"]
    assert eta.endswith("Z") and eta > running["started_at"] and running["estimated_time_remaining_ms"] > 0
    api.post(RPC, json=rpc("training.cancel", {"job_id": job_id}, "c"))
