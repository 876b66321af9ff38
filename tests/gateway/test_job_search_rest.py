"""Job search through seed 004's runtime list, `GET /api/training/jobs?filter=...&orderBy=...`."""
from __future__ import annotations

import uuid

import httpx
import pytest

from tests.intents import make_examples
from tests.services.test_training_grpc import examples_pb, wait_terminal
from trainhouse.v1 import training_job_pb2, training_service_pb2, training_service_pb2_grpc


@pytest.fixture(scope="module")
def labelled(stack) -> dict[str, str]:  # noqa: ANN001
    """Two small jobs of one fresh agent with different labels and learning rates: label -> job id."""
    agent = f"rest-search-{uuid.uuid4().hex[:8]}"
    out = {}
    with stack.channel("training") as ch:
        training = training_service_pb2_grpc.TrainingServiceStub(ch)
        for i, (team, lr) in enumerate((("red", 0.01), ("blue", 0.1))):
            out[team] = training.StartJob(training_service_pb2.StartJobRequest(
                agent_id=agent, examples=examples_pb(make_examples(30, seed=40 + i)), labels={"team": team},
                config=training_job_pb2.TrainingConfig(epochs=2, learning_rate=lr, batch_size=16, seed=i))).job.job_id
        for job_id in out.values():
            wait_terminal(training, job_id)
    out["agent"] = agent
    return out


def test_a_filter_and_an_order_select_the_jobs(admin_api: httpx.Client, labelled: dict[str, str]) -> None:
    agent = labelled["agent"]
    r = admin_api.get("/api/training/jobs", params={"filter": f'agent_id = "{agent}" AND labels.team = "red"'})
    assert r.status_code == 200, r.text
    assert [j["id"] for j in r.json()["jobs"]] == [labelled["red"]]
    r = admin_api.get("/api/training/jobs", params={
        "filter": f'agent_id = "{agent}" AND (labels.team = "red" OR config.learning_rate >= 0.1)',
        "orderBy": "config.learning_rate desc"})
    assert r.status_code == 200, r.text
    assert [j["id"] for j in r.json()["jobs"]] == [labelled["blue"], labelled["red"]]


@pytest.mark.parametrize("params, field, position", [
    ({"filter": 'state = "completed" AND'}, "filter", "line 1, column 24"),
    ({"filter": "agent_id = 'a' OR bogus > 1"}, "filter", "line 1, column 19"),
    ({"orderBy": "create_time sideways"}, "orderBy", "line 1, column 13"),
])
def test_a_malformed_search_is_400_with_the_position(admin_api: httpx.Client, params, field, position) -> None:
    r = admin_api.get("/api/training/jobs", params=params)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == "INVALID_REQUEST" and body.get("field") == field, body
    assert position in body["error"], body
