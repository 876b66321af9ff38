"""The seed-000 surface end to end: the real gateway over the four real services (`stack` fixture)."""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import Trained, assert_error, bearer, make_token
from tests.intents import make_examples

TRAIN = "/api/v1/training/train-agent"
TERMINAL = {"completed", "failed", "cancelled"}


def three_intents(per_intent: int = 20, seed: int = 0) -> list[dict[str, Any]]:
    return [e for e in make_examples(per_intent, seed=seed) if e["expected_output"] != "account"]


def agent_id(prefix: str = "gw") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def api(stack) -> Iterator[httpx.Client]:  # noqa: ANN001
    """An admin client with no rate limit, so polling never trips the per-token budget."""
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as boot:
        token = make_token(boot, stack.admin_token, ["admin"], rateLimitPerHour=0)
    with httpx.Client(base_url=stack.gateway_url, headers=bearer(token), timeout=30) as client:
        yield client


def start(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = api.post(TRAIN, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True
    return r.json()["data"]


def wait_for(api: httpx.Client, job_id: str, states: set[str], timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = api.get(f"{TRAIN}/{job_id}")
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        if data["status"] in states:
            return data
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not in {states} after {timeout} s: {data}")


def read_sse(api: httpx.Client, job_id: str, headers: dict[str, str] | None = None,
             query: str = "") -> list[dict[str, Any]]:
    frames: list[dict[str, str]] = []
    frame: dict[str, str] = {}
    with api.stream("GET", f"{TRAIN}/{job_id}/events{query}", headers=headers,
                    timeout=httpx.Timeout(10, read=180)) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line == "":
                if "data" in frame:
                    frames.append(frame)
                frame = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(":")
                frame[key] = value.removeprefix(" ")
    return [{"id": int(f["id"]), "event": f["event"], "data": json.loads(f["data"])} for f in frames]


def test_healthz_is_public_and_ok(stack) -> None:  # noqa: ANN001
    r = httpx.get(f"{stack.gateway_url}/healthz", timeout=10)
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "services": {"training": "SERVING", "data": "SERVING",
                                                     "evaluation": "SERVING", "registry": "SERVING"}}


def test_auth_on_the_stack(stack, api: httpx.Client) -> None:  # noqa: ANN001
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as anon:
        assert_error(anon.get("/api/v1/agents"), 401, "UNAUTHORIZED")
        assert_error(anon.get("/api/v1/agents", headers=bearer("th_wrong")), 401, "UNAUTHORIZED")
        viewer = bearer(make_token(anon, stack.admin_token, ["training:view"]))
        assert anon.get("/api/v1/agents", headers=viewer).status_code == 200
        assert_error(anon.post(TRAIN, headers=viewer, json={"agentId": "x", "examples": three_intents(2)}),
                     403, "FORBIDDEN")
        assert_error(anon.post("/api/v1/training/datasets", headers=viewer, json={"examples": []}),
                     403, "FORBIDDEN")


def test_train_poll_predict_and_versions(api: httpx.Client, trained: Trained) -> None:
    agent, job_id = trained.agent, trained.jobs[0]
    started = trained.started
    assert started["agentId"] == agent and started["trainingJobId"] == job_id
    assert started["status"] in {"queued", "initializing", "running"}
    assert started["startTime"].endswith("Z")
    assert isinstance(started["estimatedDuration"], str) and started["estimatedDuration"]
    assert started["config"]["epochs"] == trained.epochs and started["config"]["batchSize"] == 16
    assert started["config"]["learningRate"] == 0.01 and started["config"]["validation"]["split"] == 0.2

    done = api.get(f"{TRAIN}/{job_id}").json()["data"]
    assert done["status"] == "completed", done
    assert done["jobId"] == job_id and done["progress"] == 1.0
    assert done["currentEpoch"] <= done["totalEpochs"] == trained.epochs
    assert {"trainingLoss", "accuracy"} <= set(done["metrics"])
    assert done["modelVersion"] == trained.versions[0]
    assert done["endTime"].endswith("Z")

    r = api.post(f"/api/v1/agents/{agent}/predict", json={"input": "where is my parcel, it has not arrived"})
    assert r.status_code == 200, r.text
    prediction = r.json()["data"]["predictions"][0]
    assert prediction["output"] in {"billing", "technical", "shipping"}
    assert 0 < prediction["probability"] <= 1 and prediction["top"]
    # feedback on that served answer is recorded against its version
    r = api.post(f"/api/v1/agents/{agent}/feedback", json={"predictionId": prediction["predictionId"],
                                                           "correct": False, "expectedOutput": "shipping"})
    assert r.status_code == 201, r.text
    fb = r.json()["data"]
    assert fb["predictionId"] == prediction["predictionId"] and fb["correct"] is False
    assert fb["versionId"] == r.json()["data"]["versionId"] and fb["feedbackId"].startswith("fb-")
    assert_error(api.post(f"/api/v1/agents/{agent}/feedback", json={"predictionId": prediction["predictionId"],
                                                                    "correct": True}), 409, "CONFLICT")
    assert_error(api.post(f"/api/v1/agents/{agent}/feedback", json={"correct": "yes"}), 400, "INVALID_CONFIG",
                 field="correct")
    r = api.post(f"/api/v1/agents/{agent}/predict", json={"inputs": ["refund my plan payment", "app crashes"],
                                                          "topK": 2})
    assert [len(p["top"]) for p in r.json()["data"]["predictions"]] == [2, 2]
    assert_error(api.post(f"/api/v1/agents/{agent}/predict", json={}), 400, "INVALID_CONFIG", field="input")
    # episodes are for GRPO tool policies; a classifier refuses them, naming the field
    assert_error(api.post(f"/api/v1/agents/{agent}/predict", json={
        "input": "app crashes", "episodes": [[{"tool": "search", "succeeded": True}]]}), 400, "INVALID_CONFIG",
        field="episodes[0].steps")
    assert_error(api.post(f"/api/v1/agents/{agent}/predict", json={"input": "x", "episodes": [[{"tool": 1}]]}),
                 400, "INVALID_CONFIG", field="episodes[0][0].tool")

    r = api.get(f"/api/v1/training/models/{agent}/versions")
    assert r.status_code == 200, r.text
    listing = r.json()["data"]
    assert listing["pagination"] == {"total": 2, "page": 1, "limit": 20, "pages": 1}
    assert [v["versionId"] for v in listing["versions"]] == trained.versions[::-1]  # newest first
    version = listing["versions"][1]
    assert version["versionId"] == done["modelVersion"] and version["agentId"] == agent
    assert version["jobId"] == job_id and version["sizeBytes"] > 0 and version["size"].endswith("B")
    assert version["trainedAt"].endswith("Z") and "accuracy" in version["metrics"]
    assert set(version["labels"]) == {"billing", "technical", "shipping"}
    one = api.get(f"/api/v1/training/models/{agent}/versions/{version['versionId']}").json()["data"]
    assert one["sha256"] == version["sha256"]
    page2 = api.get(f"/api/v1/training/models/{agent}/versions?limit=1&page=2&order=asc").json()["data"]
    assert [v["versionId"] for v in page2["versions"]] == [trained.versions[1]] and page2["pagination"]["pages"] == 2

    checkpoints = api.get(f"{TRAIN}/{job_id}/checkpoints").json()["data"]["checkpoints"]
    assert checkpoints and all(c["jobId"] == job_id for c in checkpoints)
    points = api.get(f"{TRAIN}/{job_id}/metrics?names=loss").json()["data"]["points"]
    assert points and {p["name"] for p in points} == {"loss"}

    got = api.get(f"/api/v1/agents/{agent}").json()["data"]
    assert got["agentId"] == agent and got["versionCount"] == 2


def test_sse_streams_in_order_and_resumes(api: httpx.Client, trained: Trained) -> None:
    job_id = trained.jobs[0]
    events = read_sse(api, job_id)
    ids = [e["id"] for e in events]
    assert ids == list(range(1, len(ids) + 1))
    assert all(e["data"]["sequence"] == e["id"] and e["data"]["jobId"] == job_id for e in events)
    assert {e["event"] for e in events} <= {"status", "epoch", "step", "metric", "checkpoint", "log"}
    assert {"status", "epoch"} <= {e["event"] for e in events}
    assert [e["data"]["epoch"] for e in events if e["event"] == "epoch"] == list(range(1, trained.epochs + 1))
    last = events[-1]
    assert last["event"] == "status" and last["data"]["terminal"] is True
    assert last["data"]["status"] == "completed"
    assert [e["data"]["status"] for e in events if e["event"] == "status"][0] == "queued"

    cut = len(events) // 2
    resumed = read_sse(api, job_id, headers={"Last-Event-ID": str(events[cut - 1]["id"])})
    assert resumed == events[cut:]
    assert read_sse(api, job_id, query=f"?afterSequence={ids[-3]}") == events[-2:]
    assert read_sse(api, job_id, query=f"?afterSequence={ids[-1]}") == []


def test_live_sse_disconnects_then_stop_saves_a_checkpoint(stack, api: httpx.Client) -> None:  # noqa: ANN001
    job_id = start(api, {"agentId": agent_id("long"), "config": {"epochs": 500},
                         "examples": make_examples(100, seed=3)})["trainingJobId"]
    wait_for(api, job_id, {"running"} | TERMINAL)
    # Hang up mid-stream a few times: the gateway stays healthy and the job keeps running.
    for _ in range(3):
        with api.stream("GET", f"{TRAIN}/{job_id}/events", timeout=httpx.Timeout(10, read=60)) as r:
            for line in r.iter_lines():
                if line.startswith("event: epoch"):
                    break
    assert httpx.get(f"{stack.gateway_url}/healthz", timeout=10).status_code == 200
    r = api.post(f"{TRAIN}/{job_id}/stop")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["message"] == "Training job stopped successfully"
    data = body["data"]
    assert data["jobId"] == job_id and data["status"] == "cancelled"
    assert data["checkpointSaved"] is True and data["checkpointId"]
    assert 0 <= data["progress"] < 1
    assert wait_for(api, job_id, TERMINAL, timeout=30)["status"] == "cancelled"
    assert_error(api.post(f"{TRAIN}/{job_id}/stop"), 409, "CONFLICT")


@pytest.mark.parametrize("config, field", [
    ({"epochs": -1}, "epochs"),
    ({"learningRate": 0}, "learningRate"),
    ({"learningRate": 1.5}, "learningRate"),
    ({"batchSize": "x"}, "batchSize"),
])
def test_bad_config_is_400_invalid_config(api: httpx.Client, config: dict[str, Any], field: str) -> None:
    r = api.post(TRAIN, json={"agentId": agent_id("bad"), "config": config, "examples": three_intents(3)})
    assert_error(r, 400, "INVALID_CONFIG", field=field)


def test_empty_examples_is_400(api: httpx.Client) -> None:
    err = assert_error(api.post(TRAIN, json={"agentId": agent_id("bad"), "examples": []}), 400, "INVALID_CONFIG")
    assert err["details"]["field"] and err["details"]["issue"]


def test_malformed_json_on_the_stack(api: httpx.Client) -> None:
    r = api.post(TRAIN, content=b'{"agentId": "x", ', headers={"Content-Type": "application/json"})
    assert_error(r, 400, "INVALID_CONFIG", field="body")


def test_unknown_job_and_agent_are_404(api: httpx.Client) -> None:
    assert_error(api.get(f"{TRAIN}/job-does-not-exist"), 404, "JOB_NOT_FOUND")
    assert_error(api.post(f"{TRAIN}/job-does-not-exist/stop"), 404, "JOB_NOT_FOUND")
    assert_error(api.get(f"{TRAIN}/job-does-not-exist/events"), 404, "JOB_NOT_FOUND")
    assert_error(api.get("/api/v1/agents/no-such-agent"), 404, "AGENT_NOT_FOUND")
    assert_error(api.post("/api/v1/agents/no-such-agent/predict", json={"input": "hi"}), 404, "AGENT_NOT_FOUND")


def test_agents_create_conflict_and_list(api: httpx.Client) -> None:
    agent = agent_id("crud")
    r = api.post("/api/v1/agents", json={"agentId": agent, "name": "Router", "description": "routes tickets"})
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert data["agentId"] == agent and data["name"] == "Router" and data["versionCount"] == 0
    assert_error(api.post("/api/v1/agents", json={"agentId": agent}), 409, "CONFLICT")
    listing = api.get("/api/v1/agents?limit=100").json()["data"]
    assert agent in {a["agentId"] for a in listing["agents"]}
    assert listing["pagination"]["total"] >= 1


def test_dataset_upload_download_and_train(api: httpx.Client) -> None:
    examples = three_intents(20, seed=7)
    dataset_id = f"ds-{uuid.uuid4().hex[:8]}"
    r = api.post("/api/v1/training/datasets", json={"datasetId": dataset_id, "examples": examples})
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert data["datasetId"] == dataset_id and data["exampleCount"] == 60
    stats = data["statistics"]
    assert stats["exampleCount"] == 60 and sum(stats["outputCounts"].values()) == 60
    assert abs(sum(stats["outputShares"].values()) - 1) < 1e-9 and stats["averageLength"] > 0
    assert api.get(f"/api/v1/training/datasets/{dataset_id}").json()["data"]["exampleCount"] == 60

    r = api.get(f"/api/v1/training/datasets/{dataset_id}/download")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [(x["input"], x["expected_output"]) for x in lines] == [(e["input"], e["expected_output"])
                                                                   for e in examples]

    # The download uploads again as JSONL and gives the same content.
    copy_id = dataset_id + "-copy"
    r = api.post(f"/api/v1/training/datasets?datasetId={copy_id}", content=r.content,
                 headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 201, r.text
    assert r.json()["data"]["exampleCount"] == 60
    assert r.json()["data"]["sha256"] == data["sha256"]
    assert copy_id in {d["datasetId"] for d in api.get("/api/v1/training/datasets?limit=100").json()["data"]["datasets"]}

    bad = b'{"input": "a", "expected_output": "b"}\n{"input": "c"\n'
    r = api.post("/api/v1/training/datasets", content=bad, headers={"Content-Type": "application/x-ndjson"})
    assert_error(r, 400, "INVALID_CONFIG", field="line 2")
    assert_error(api.post("/api/v1/training/datasets", json={"datasetId": dataset_id, "examples": examples}),
                 409, "CONFLICT")
    assert_error(api.get("/api/v1/training/datasets/ds-nope"), 404, "NOT_FOUND")
    assert_error(api.get("/api/v1/training/datasets/ds-nope/download"), 404, "NOT_FOUND")

    job = start(api, {"agentId": agent_id("from-ds"), "config": {"dataset": dataset_id, "epochs": 2}})
    assert job["config"]["dataset"] == dataset_id
    done = wait_for(api, job["trainingJobId"], TERMINAL)
    assert done["status"] == "completed", done
    assert done["datasetId"] == dataset_id and done["trainExamples"] + done["validationExamples"] == 60


def test_estimated_duration_comes_from_the_same_methods_history(api: httpx.Client, stack) -> None:  # noqa: ANN001
    """Seed 000's estimatedDuration at acceptance: measured on this platform's completed jobs of the
    same method (here few_shot), or 'unknown' naming that method when it has none yet."""

    from trainhouse.v1 import job_state_pb2, training_service_pb2, training_service_pb2_grpc

    training = training_service_pb2_grpc.TrainingServiceStub(stack.channel("training"))
    done = training.ListJobs(training_service_pb2.ListJobsRequest(
        state=job_state_pb2.JOB_STATE_COMPLETED, page_size=1000)).jobs
    history = any(j.config.method == job_state_pb2.TRAINING_METHOD_FEW_SHOT for j in done)
    r = api.post("/api/v1/training/train-agent", json={
        "agentId": f"estimate-{uuid.uuid4().hex[:8]}", "config": {"method": "few_shot", "epochs": 2},
        "examples": make_examples(6, seed=31)})
    assert r.status_code == 200, r.text
    estimate = r.json()["data"]["estimatedDuration"]
    if history:
        assert not estimate.startswith("unknown"), estimate
    else:
        assert estimate == ("unknown (no estimate: no completed few_shot job on this platform yet to measure its "
                            "throughput)")


def test_predict_says_out_of_scope_below_the_versions_threshold(api: httpx.Client, trained: Trained) -> None:
    # The shared versions chose their threshold on held-out data; a clear request is answered.
    r = api.post(f"/api/v1/agents/{trained.agent}/predict", json={"input": "where is my parcel, it has not arrived"})
    answered = r.json()["data"]["predictions"][0]
    assert 0 < answered["outOfScopeThreshold"] < 1 and answered["outOfScope"] is False
    assert answered["output"] == answered["top"][0]["output"] == "shipping"
    # A version with a fixed threshold no answer reaches abstains: the fallback output, the ranking kept.
    agent = f"oos-{uuid.uuid4().hex[:8]}"
    r = api.post(TRAIN, json={"agentId": agent, "examples": make_examples(10),
                              "config": {"method": "supervised", "epochs": 2, "outOfScopeThreshold": 0.999}})
    assert r.status_code == 200, r.text
    echoed = r.json()["data"]["config"]
    assert echoed["options"]["out_of_scope_threshold"] == 0.999, echoed
    assert echoed["hiddenSizes"] == [64] and echoed["learningRate"] == 0.001  # auto: the small-data settings
    from tests.gateway.conftest import wait_terminal
    assert wait_terminal(api, [r.json()["data"]["trainingJobId"]])[r.json()["data"]["trainingJobId"]][
        "status"] == "completed"
    r = api.post(f"/api/v1/agents/{agent}/predict", json={"inputs": ["where is my parcel", "what is the meaning of life"],
                                                          "versionId": "latest"})
    assert r.status_code == 200, r.text
    for p in r.json()["data"]["predictions"]:
        assert p["outOfScope"] is True and p["outOfScopeThreshold"] == 0.999
        assert p["output"] == "__out_of_scope__" and p["top"][0]["output"] != "__out_of_scope__"
        assert p["probability"] == p["top"][0]["probability"] < 0.999
