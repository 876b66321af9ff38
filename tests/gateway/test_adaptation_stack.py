"""Adaptation from feedback over the real services: seed 000 POST /adapt-agent and seeds 001/002
adaptAgentBehavior (TrainingService.AdaptAgent on the feedback the ModelRegistry recorded).

Reinforcement (the seeds' default) trains on RatedExamples; the example-based strategies
(seed 002 `adaptation_strategy` "supervised") on Examples with correct/incorrect feedback. Both
run end to end here, on the feedback recorded through the registry.
"""
from __future__ import annotations

import uuid

from collections.abc import Iterator

import httpx
import pytest

from tests.gateway.conftest import Trained, assert_error, wait_terminal
from tests.gateway.surface_shapes import error_code
from trainhouse.v1 import model_registry_pb2, model_registry_pb2_grpc

FN = "/api/v1/functions"
ADAPT = "/api/v1/training/adapt-agent"

# (input, served output, correct, correction)
JUDGED = [("where is my parcel", "shipping", True, ""), ("I was charged twice", "shipping", False, "billing"),
          ("refund my plan payment", "billing", True, ""), ("the app crashes on start", "billing", False, "technical"),
          ("my box has not arrived yet", "shipping", True, "")]


@pytest.fixture(scope="module")
def feedback_agent(stack, trained: Trained) -> Iterator[str]:  # noqa: ANN001
    """The seed-001 job's agent, with feedback recorded on its version (as served answers are judged)."""
    version = trained.status[trained.seed001_job]["modelVersion"]
    with stack.channel("registry") as channel:
        registry = model_registry_pb2_grpc.ModelRegistryStub(channel)
        for text, served, correct, expected in JUDGED:
            registry.RecordFeedback(model_registry_pb2.RecordFeedbackRequest(
                agent_id=trained.other_agent, version_id=version, correct=correct, input=text,
                served_output=served, expected_output=expected), timeout=30)
    yield trained.other_agent


def _started(r: httpx.Response) -> dict:
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_adapt_agent_behavior_seed_001_learns_from_the_recorded_feedback(admin_api: httpx.Client,
                                                                         feedback_agent: str) -> None:
    r = admin_api.post(f"{FN}/adaptAgentBehavior", json={"agent_id": feedback_agent, "feedback_window_days": 7,
                                                         "auto_apply": False})
    data = _started(r)
    assert data["adaptation_id"] == data["job_id"] and data["agent_id"] == feedback_agent and data["adapted"] is True
    # Five judged answers, two of them with a correction: seven rated examples.
    assert data["feedback_processed"] == len(JUDGED) and data["training_examples"] == len(JUDGED) + 2
    assert data["config"]["method"] == "reinforcement" and data["status"] in {"queued", "initializing", "running"}
    assert data["auto_apply"] is False and data["feedback_window_days"] == 7
    done = wait_terminal(admin_api, [data["job_id"]])[data["job_id"]]
    assert done["status"] == "completed" and done["modelVersion"], done
    assert done["trainExamples"] + done["validationExamples"] == len(JUDGED) + 2
    # A window with nothing in it: nothing to learn from, said in a success envelope, no job.
    r = admin_api.post(f"{FN}/adaptAgentBehavior", json={"agent_id": feedback_agent,
                                                         "feedback_window_days": 0.000001})
    empty = _started(r)
    assert r.json()["success"] is True and r.json()["trace_id"] == r.headers["X-Request-Id"]
    assert empty["adapted"] is False and empty["status"] == "not_adapted"
    assert empty["reason"] == "no_feedback_in_window" and feedback_agent in empty["message"]
    assert empty["feedback_processed"] == 0 and empty["training_examples"] == 0
    assert "job_id" not in empty and "adaptation_id" not in empty and empty["feedback_window_days"] == 0.000001
    r = admin_api.post(f"{FN}/adaptAgentBehavior", json={"agent_id": "agent-nope"})
    assert r.status_code == 404 and error_code(r) == "NOT_FOUND"
    r = admin_api.post(f"{FN}/adaptAgentBehavior", json={"agent_id": feedback_agent, "feedback_window_days": -1})
    assert r.status_code == 422 and r.json()["field"] == "feedback_window_days"


def test_adapt_agent_behavior_seed_002_strategy_picks_the_method(admin_api: httpx.Client,
                                                                 feedback_agent: str) -> None:
    # Supervised: served answers with correct/incorrect feedback plus the corrections, trained now.
    data = admin_api.post(f"{FN}/adaptAgentBehavior", json={
        "agent_id": feedback_agent, "performance_metrics": {"success_rate": 0.6, "user_satisfaction": 0.7},
        "adaptation_strategy": "supervised"})
    assert data.status_code == 200, data.text
    out = data.json()["data"]
    assert out["adaptation_strategy"] == "supervised" and out["config"]["method"] == "supervised"
    assert out["feedback_processed"] == len(JUDGED) and out["training_examples"] == len(JUDGED) + 2
    assert out["performance_metrics"] == {"success_rate": 0.6, "user_satisfaction": 0.7}
    done = wait_terminal(admin_api, [out["job_id"]])[out["job_id"]]
    assert done["status"] == "completed", done
    assert done["trainExamples"] + done["validationExamples"] == len(JUDGED) + 2

    r = admin_api.post(f"{FN}/adaptAgentBehavior", json={
        "agent_id": feedback_agent, "performance_metrics": {"success_rate": 0.6}, "adaptation_strategy": "reinforcement"})
    data = _started(r)
    assert data["adaptation_strategy"] == "reinforcement" and data["config"]["method"] == "reinforcement"
    admin_api.post(f"/api/v1/training/train-agent/{data['job_id']}/stop")
    r = admin_api.post(f"{FN}/adaptAgentBehavior", json={"agent_id": feedback_agent, "adaptation_strategy": "grpo"})
    assert r.status_code == 422 and r.json()["field"] == "adaptation_strategy"


def test_adapt_agent_seed_000(admin_api: httpx.Client, trained: Trained) -> None:
    feedback = [
        {"input": "What's the weather like?", "expected": "billing", "actual": "shipping", "rating": 2,
         "timestamp": "2025-12-30T14:00:00Z"},
        {"input": "where is my parcel", "actual": "shipping", "rating": 5},
        {"input": "the app crashes", "expected": "technical", "actual": "technical"},
    ]
    r = admin_api.post(ADAPT, json={"agentId": trained.other_agent, "feedback": feedback,
                                    "method": "reinforcement", "immediate": False})
    data = _started(r)
    assert data["adaptationId"] == data["jobId"] and data["agentId"] == trained.other_agent
    assert data["feedbackProcessed"] == 3 and data["ratedExamples"] == 4  # the first also teaches "billing"
    assert data["status"] in {"queued", "initializing", "running"} and data["method"] == "reinforcement"
    assert data["immediate"] is False and data["promotion"] == "none"
    # An estimate only from measured reinforcement jobs of this platform; without any, it says so.
    if "estimatedCompletion" in data:
        assert data["estimatedCompletion"].endswith("Z") and not data["estimatedDuration"].startswith("unknown")
    else:
        assert data["estimatedDuration"].startswith("unknown (no estimate: no completed reinforcement job")
    done = wait_terminal(admin_api, [data["jobId"]])[data["jobId"]]
    assert done["status"] == "completed" and done["trainExamples"] + done["validationExamples"] == 4, done
    assert_error(admin_api.post(ADAPT, json={"agentId": trained.other_agent, "feedback": [{"input": "x"}]}),
                 400, "INVALID_CONFIG", field="feedback[0].actual")
    assert_error(admin_api.post(ADAPT, json={"agentId": trained.other_agent,
                                             "feedback": [{"input": "x", "actual": "y"}]}),
                 400, "INVALID_CONFIG", field="feedback[0].rating")
    assert_error(admin_api.post(ADAPT, json={"agentId": trained.other_agent, "feedback": []}),
                 400, "INVALID_CONFIG", field="feedback")
    assert_error(admin_api.post(ADAPT, json={"agentId": trained.other_agent, "feedback": feedback,
                                             "method": "grpo"}), 400, "INVALID_CONFIG", field="method")
    # Adapting needs an agent that exists (seed 000's table: AGENT_NOT_FOUND), and starts nothing.
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"
    assert_error(admin_api.post(ADAPT, json={"agentId": ghost, "feedback": feedback}), 404, "AGENT_NOT_FOUND")
    assert admin_api.get(f"/api/v1/agents/{ghost}").status_code == 404


def test_seed_002_train_agent_with_reinforcement_rates_the_examples(admin_api: httpx.Client) -> None:
    """training_type reinforcement: each example is rated feedback on its expected_output."""
    examples = [{"input": f"refund my {w} payment", "expected_output": "billing", "feedback": "correct"}
                for w in ("plan", "order", "membership", "account")]
    examples += [{"input": f"the {w} crashes on start", "expected_output": "billing", "feedback": "incorrect"}
                 for w in ("app", "website", "dashboard")]
    examples += [{"input": "my parcel is late", "expected_output": "technical", "feedback": "partial"}]
    r = admin_api.post("/api/v1/functions/trainAgent", json={"agent_id": "rl-seed002", "training_data": examples,
                                                       "training_type": "reinforcement", "config": {"epochs": 3}})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["config"]["method"] == "reinforcement"
    r = admin_api.post("/api/v1/functions/trainAgent", json={
        "agent_id": "rl-seed002", "training_type": "reinforcement",
        "training_data": [{"input": "x", "expected_output": "y", "feedback": "maybe"}]})
    assert r.status_code == 422 and r.json()["code"] == "VALIDATION_ERROR", r.text
