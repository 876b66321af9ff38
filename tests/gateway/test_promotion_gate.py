"""Adaptation and the promotion gate, through the gateway (issue 13): auto_apply false changes
nothing that serves; auto_apply true promotes a candidate only when it is not worse than what
serves on its held-out examples, and each decision is on the version with its numbers and in the
job's events."""
from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.gateway.conftest import three_intents, wait_terminal
from tests.intents import make_examples
from trainhouse.v1 import training_service_pb2, training_service_pb2_grpc

ADAPT = "/api/v1/functions/adaptAgentBehavior"


@pytest.fixture(scope="module")
def training_stub(stack):  # noqa: ANN001
    return training_service_pb2_grpc.TrainingServiceStub(stack.channel("training"))


def _hold_auto_training(training_stub, agent: str) -> None:  # noqa: ANN001
    """These tests record 100+ feedback records: auto-training (on by default) would adapt the agent
    on its own in between. Its own tests are tests/services/test_autotraining.py."""
    training_stub.UpdateAutoTrainingConfig(training_service_pb2.UpdateAutoTrainingConfigRequest(
        agent_id=agent, enabled=False, actor="tests"))


def _train(api: httpx.Client, agent: str, examples: list[dict], **config: object) -> str:
    r = api.post("/api/v1/training/train-agent", json={
        "agentId": agent, "config": {"method": "supervised", "batchSize": 16, **config}, "examples": examples})
    assert r.status_code == 200, r.text
    job = r.json()["data"]["trainingJobId"]
    status = wait_terminal(api, [job])[job]
    assert status["status"] == "completed", status
    return status["modelVersion"]


def _judge(api: httpx.Client, agent: str, examples: list[dict], trust_the_model: bool) -> None:
    """Record feedback on the agent's answers: against the true label, or (trust_the_model) every
    served answer marked correct."""
    texts = [e["input"] for e in examples]
    answers = api.post(f"/api/v1/agents/{agent}/predict", json={"inputs": texts}).json()["data"]["predictions"]
    for e, p in zip(examples, answers):
        right = trust_the_model or p["output"] == e["expected_output"]
        body = {"predictionId": p["predictionId"], "correct": right}
        if not right:
            body["expectedOutput"] = e["expected_output"]
        r = api.post(f"/api/v1/agents/{agent}/feedback", json=body)
        assert r.status_code == 201, r.text


def _adapt(api: httpx.Client, agent: str, auto_apply: bool) -> dict:
    r = api.post(ADAPT, json={"agent_id": agent, "adaptation_strategy": "supervised", "auto_apply": auto_apply})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["adapted"] is True and data["promotion"] == ("gated" if auto_apply else "none"), data
    status = wait_terminal(api, [data["job_id"]])[data["job_id"]]
    assert status["status"] == "completed", status
    return status


def _version(api: httpx.Client, agent: str, version_id: str) -> dict:
    return api.get(f"/api/v1/training/models/{agent}/versions/{version_id}").json()["data"]


def _serving(api: httpx.Client, agent: str) -> str:
    return api.post(f"/api/v1/agents/{agent}/predict", json={"input": "hello"}).json()["data"]["versionId"]


def _promotion_events(api: httpx.Client, job_id: str) -> list[dict]:
    text = api.get(f"/api/v1/training/train-agent/{job_id}/events", params={"afterSequence": 0},
                   headers={"Accept": "text/event-stream"}).text
    events, name = [], None
    for line in text.splitlines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name == "promotion":
            events.append(json.loads(line[6:]))
    return events


@pytest.fixture(scope="module")
def weak_agent(admin_api: httpx.Client, training_stub) -> tuple[str, str]:  # noqa: ANN001
    """An agent whose first (serving) version barely trained: 1 epoch at a tiny learning rate."""
    agent = f"gate-weak-{uuid.uuid4().hex[:8]}"
    version = _train(admin_api, agent, three_intents(15, seed=3), epochs=1, learningRate=0.0001,
                     earlyStopping=False)
    _hold_auto_training(training_stub, agent)
    return agent, version


def test_auto_apply_false_registers_the_adapted_version_and_changes_nothing(admin_api, weak_agent) -> None:
    agent, v1 = weak_agent
    _judge(admin_api, agent, three_intents(50, seed=4), trust_the_model=False)
    status = _adapt(admin_api, agent, auto_apply=False)
    candidate = status["modelVersion"]
    assert candidate != v1 and _serving(admin_api, agent) == v1
    version = _version(admin_api, agent, candidate)
    assert version["serving"] == "registered" and "promotion" not in version
    assert _promotion_events(admin_api, status["jobId"]) == []


def test_a_better_candidate_is_promoted_with_its_numbers(admin_api, weak_agent) -> None:
    agent, v1 = weak_agent
    _judge(admin_api, agent, three_intents(50, seed=5), trust_the_model=False)
    status = _adapt(admin_api, agent, auto_apply=True)
    candidate = status["modelVersion"]
    version = _version(admin_api, agent, candidate)
    gate = version["promotion"]
    assert gate["outcome"] == "promoted", gate
    assert gate["baselineVersionId"] == v1 and gate["requestedBy"] == "auto_apply" and gate["examples"] >= 20
    assert gate["candidateAccuracy"] > gate["baselineAccuracy"] and 0.0 <= gate["pValue"] <= 1.0
    assert version["serving"] == "serving" and _serving(admin_api, agent) == candidate
    assert _version(admin_api, agent, v1)["serving"] == "retired"
    [event] = _promotion_events(admin_api, status["jobId"])
    assert event["outcome"] == "promoted" and event["versionId"] == candidate
    assert event["candidateAccuracy"] == pytest.approx(gate["candidateAccuracy"])


def test_a_worse_candidate_is_rejected_and_what_serves_stays(admin_api: httpx.Client, training_stub) -> None:
    """Feedback that marks every served answer correct makes the held-out labels the serving
    model's own answers, mistakes included: it scores 1.0 on them. The serving model is trained
    little on noisy texts, so its mistakes are its own, and a candidate that learned from the other
    judged answers cannot reproduce them on examples it never saw."""
    agent = f"gate-strong-{uuid.uuid4().hex[:8]}"
    v1 = _train(admin_api, agent, make_examples(8, seed=6, typo_rate=0.2), epochs=3, learningRate=0.01)
    _hold_auto_training(training_stub, agent)
    _judge(admin_api, agent, make_examples(40, seed=7, typo_rate=0.2), trust_the_model=True)
    status = _adapt(admin_api, agent, auto_apply=True)
    candidate = status["modelVersion"]
    gate = _version(admin_api, agent, candidate)["promotion"]
    assert gate["baselineAccuracy"] == 1.0 and gate["examples"] >= 20
    assert gate["outcome"] == "rejected" and gate["candidateAccuracy"] < 1.0 - gate["accuracyTolerance"]
    assert "worse than what serves" in gate["reason"]
    assert _serving(admin_api, agent) == v1
    assert _version(admin_api, agent, candidate)["serving"] == "registered"
    [event] = _promotion_events(admin_api, status["jobId"])
    assert event["outcome"] == "rejected"


def test_reported_performance_is_compared_with_the_measured_one(admin_api: httpx.Client, training_stub) -> None:
    """Seed 002's performance_metrics: adaptation runs only when the serving version's recorded
    answers have something to correct, and the answer shows reported next to measured."""
    agent = f"perf-{uuid.uuid4().hex[:8]}"
    serving = _train(admin_api, agent, three_intents(15, seed=8), epochs=1, learningRate=0.0001,
                     earlyStopping=False)
    _hold_auto_training(training_stub, agent)
    _judge(admin_api, agent, three_intents(5, seed=9), trust_the_model=True)
    body = {"agent_id": agent, "adaptation_strategy": "supervised",
            "performance_metrics": {"success_rate": 0.85, "user_satisfaction": 0.9}}
    r = admin_api.post(ADAPT, json=body)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["adapted"] is False and data["reason"] == "no_errors_to_correct", data
    perf = data["performance"]
    assert perf["serving_version"] == serving and perf["judged"] == 15 and perf["incorrect"] == 0
    assert perf["measured_success_rate"] == 1.0 and perf["adaptation_needed"] is False
    by_name = {m["metric"]: m for m in perf["metrics"]}
    assert by_name["success_rate"]["reported"] == 0.85 and by_name["success_rate"]["measured"] == 1.0
    assert by_name["user_satisfaction"]["measured"] is None and "not measured" in by_name["user_satisfaction"][
        "measured_as"]

    _judge(admin_api, agent, three_intents(10, seed=10), trust_the_model=False)  # the weak model errs
    data = admin_api.post(ADAPT, json=body).json()["data"]
    perf = data["performance"]
    assert data["adapted"] is True and perf["adaptation_needed"] is True and perf["incorrect"] > 0
    assert perf["judged"] == 45 and perf["measured_success_rate"] == pytest.approx(1 - perf["incorrect"] / 45)
    assert data["promotion"] == "none"
    bad = admin_api.post(ADAPT, json={**body, "performance_metrics": {"success_rate": "high"}})
    assert bad.status_code in (400, 422) and "performance_metrics" in bad.text
