"""Keyset pagination over real gRPC and real DuckDB: rows inserted while a client pages never
shift a page; a token only continues the request that produced it; the seed surfaces' page
numbers become `skip`.

The stack here is this module's own (not the session one): TRAINHOUSE_MAX_RUNNING_JOBS=0 keeps
every job queued, so the tests create many jobs without starting a worker process per job.
"""
from __future__ import annotations

import base64
import json
import math
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import httpx
import pytest

from trainhouse.common.grpc_errors import failure_of
from trainhouse.core.featurizer import FeaturizerConfig
from trainhouse.core.trainer import SupervisedConfig, SupervisedTrainer, export_onnx_bytes, parse_examples
from tests.conftest import started_stack
from tests.intents import make_examples
from trainhouse.v1 import data_service_pb2, example_pb2, model_registry_pb2, training_job_pb2, training_service_pb2

EXAMPLES = [example_pb2.Example(input=e["input"], expected_output=e["expected_output"])
            for e in make_examples(2, seed=3)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    """This module's own stack, standing in for the session one (so conftest's `training`, `data`
    and `registry` stubs talk to it): TRAINHOUSE_MAX_RUNNING_JOBS=0 keeps every job queued."""
    with started_stack(tmp_path_factory.mktemp("paging-home"), {"TRAINHOUSE_MAX_RUNNING_JOBS": "0",
                                                                "TRAINHOUSE_RATE_LIMIT_PER_HOUR": "100000"}) as running:
        yield running


@pytest.fixture(scope="module")
def api(stack):
    with httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {stack.admin_token}"},
                      timeout=30) as client:
        yield client


def start_job(training, agent_id: str) -> str:
    return training.StartJob(training_service_pb2.StartJobRequest(
        agent_id=agent_id, examples=EXAMPLES, config=training_job_pb2.TrainingConfig(epochs=1))).job.job_id


def create_dataset(data, source: str) -> str:
    request = data_service_pb2.CreateDatasetRequest(examples=EXAMPLES, source=source)
    return data.CreateDataset(request).dataset.dataset_id


def walk(call: Callable[[Any], Any], request: Any, field: str, key: Callable[[Any], str],
         between_pages: Callable[[], None]) -> list[str]:
    """Follow next_page_token to the end, calling `between_pages` after every page."""
    seen: list[str] = []
    while True:
        resp = call(request)
        seen += [key(item) for item in getattr(resp, field)]
        between_pages()
        if not resp.next_page_token:
            return seen
        request.page_token = resp.next_page_token


def rpc_failure(call: Callable[[], Any]):
    with pytest.raises(grpc.RpcError) as info:
        call()
    return failure_of(info.value)


def test_paging_jobs_while_jobs_are_created_returns_each_job_once(training):
    agent = f"paging-jobs-{uuid.uuid4().hex[:6]}"
    before = [start_job(training, agent) for _ in range(10)]
    newest_first = before[::-1]
    created: list[str] = []

    def create_two() -> None:
        created.extend(start_job(training, agent) for _ in range(2))

    seen = walk(training.ListJobs, training_service_pb2.ListJobsRequest(agent_id=agent, page_size=3), "jobs",
                lambda j: j.job_id, create_two)
    assert seen == newest_first  # every pre-existing job exactly once, in order; the new ones are ahead of the walk
    assert len(created) == 8

    # Oldest first, the new jobs land after the walk's position: every job appears exactly once.
    everything_before = before + created
    seen = walk(training.ListJobs, training_service_pb2.ListJobsRequest(agent_id=agent, page_size=4,
                                                                        order_by="create_time asc"),
                "jobs", lambda j: j.job_id, create_two)
    assert seen[:len(everything_before)] == everything_before and len(seen) == len(set(seen))
    assert set(seen) <= set(everything_before + created)


def test_paging_datasets_while_datasets_are_created_returns_each_once(data):
    source = f"paging-{uuid.uuid4().hex[:6]}"
    before = [create_dataset(data, source) for _ in range(9)]
    request = data_service_pb2.ListDatasetsRequest(source=source, page_size=4)
    seen = walk(data.ListDatasets, request, "datasets", lambda d: d.dataset_id,
                lambda: [create_dataset(data, source) for _ in range(2)])
    assert seen == before[::-1]

    # The walk above by position instead (skip, what page numbers map to) would repeat datasets:
    # one created between page 1 and page 2 pushes page 1's last dataset onto page 2.
    first = data.ListDatasets(data_service_pb2.ListDatasetsRequest(source=source, page_size=4))
    create_dataset(data, source)
    second = data.ListDatasets(data_service_pb2.ListDatasetsRequest(source=source, page_size=4, skip=4))
    assert first.datasets[-1].dataset_id == second.datasets[0].dataset_id


@pytest.fixture(scope="module")
def onnx_model() -> bytes:
    """A real (tiny) classifier, trained in this process, to register as versions."""
    cfg = SupervisedConfig(epochs=1, hidden_sizes=(), featurizer=FeaturizerConfig(dim=256))
    return export_onnx_bytes(SupervisedTrainer(cfg, parse_examples(make_examples(5))).train().model)


def test_paging_versions_by_a_metric_while_versions_are_registered(registry, onnx_model):
    agent = f"paging-versions-{uuid.uuid4().hex[:6]}"
    registry.CreateAgent(model_registry_pb2.CreateAgentRequest(agent_id=agent))

    def register(accuracy: float | None) -> str:
        metrics = {} if accuracy is None else {"accuracy": accuracy}
        return registry.RegisterVersion(model_registry_pb2.RegisterVersionRequest(
            agent_id=agent, onnx_model=onnx_model, metrics=metrics)).version.version_id

    # Ties (0.5 twice) and versions without the metric are part of the order too.
    accuracies = [0.7, 0.5, None, 0.9, 0.5, 0.1, None, 0.8, 0.3]
    before = {register(a): a for a in accuracies}
    # Each round registers versions that sort before, inside and after the walk's position.
    extra = iter([0.95, 0.6, 0.05, None, 0.75, 0.2, 0.99, 0.4, 0.55, 0.0, 0.85, 0.65])
    request = model_registry_pb2.ListVersionsRequest(agent_id=agent, page_size=2, order_by="metrics.accuracy desc")
    seen = walk(registry.ListVersions, request, "versions", lambda v: v.version_id,
                lambda: [register(next(extra, 0.5)) for _ in range(2)])
    assert len(seen) == len(set(seen)) and set(before) <= set(seen)
    # The pre-existing versions come in the documented order: accuracy high to low, ties newest
    # first, the ones without the metric last.
    old = [v for v in seen if v in before]
    ranked = sorted(before, key=lambda v: (before[v] is None, -(before[v] or 0), -list(before).index(v)))
    assert old == ranked

    # The order follows order_by: ascending by semantic version, every version once.
    request = model_registry_pb2.ListVersionsRequest(agent_id=agent, page_size=4, order_by="version_id asc")
    everything = walk(registry.ListVersions, request, "versions", lambda v: v.version_id, lambda: None)
    semver = [tuple(int(x) for x in v[1:].split(".")) for v in everything]
    assert semver == sorted(semver) and len(everything) == len(set(everything)) >= len(seen)


def test_a_token_continues_only_its_own_request(training, data):
    agent = f"paging-token-{uuid.uuid4().hex[:6]}"
    for _ in range(3):
        start_job(training, agent)
    first = training.ListJobs(training_service_pb2.ListJobsRequest(agent_id=agent, page_size=1))
    token = first.next_page_token
    assert token

    def list_jobs(**fields: Any) -> training_service_pb2.ListJobsResponse:
        return training.ListJobs(training_service_pb2.ListJobsRequest(**fields))

    # The same request continues (another page_size is fine: it is not a filter)...
    second = list_jobs(agent_id=agent, page_size=5, page_token=token)
    assert len(second.jobs) == 2 and first.jobs[0].job_id not in {j.job_id for j in second.jobs}
    # ...another filter or order_by does not.
    for other in ({"agent_id": "someone-else"}, {}, {"agent_id": agent, "order_by": "create_time asc"}):
        failure = rpc_failure(lambda: list_jobs(**other, page_size=1, page_token=token))
        assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.field == "page_token", failure
    # Nor does another List RPC with no filter at all.
    failure = rpc_failure(lambda: data.ListDatasets(data_service_pb2.ListDatasetsRequest(page_token=token)))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.field == "page_token"

    # Garbage, truncated and hand-made tokens are INVALID_ARGUMENT too, never INTERNAL.
    body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    forged_keys = [["2020-01-01T00:00:00", 7], [12, "job-x"], ["not a time", "job-x"], [None, "job-x"], []]
    forged = [base64.urlsafe_b64encode(json.dumps({"k": k, "f": body["f"]}).encode()).decode() for k in forged_keys]
    for bad in ["garbage", "%%%", token[:-6], base64.urlsafe_b64encode(b"[1, 2]").decode(), *forged]:
        failure = rpc_failure(lambda: list_jobs(agent_id=agent, page_size=1, page_token=bad))
        assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.field == "page_token", (bad, failure)
    failure = rpc_failure(lambda: data.ListDatasets(data_service_pb2.ListDatasetsRequest(skip=-1)))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.field == "skip"


def test_total_size_is_counted_only_when_asked(data):
    source = f"paging-total-{uuid.uuid4().hex[:6]}"
    for _ in range(5):
        create_dataset(data, source)
    plain = data.ListDatasets(data_service_pb2.ListDatasetsRequest(source=source, page_size=2))
    counted = data.ListDatasets(data_service_pb2.ListDatasetsRequest(source=source, page_size=2,
                                                                     include_total_size=True))
    assert plain.total_size == 0 and counted.total_size == 5
    assert [d.dataset_id for d in plain.datasets] == [d.dataset_id for d in counted.datasets]
    past_the_end = data.ListDatasets(data_service_pb2.ListDatasetsRequest(source=source, skip=5,
                                                                          include_total_size=True))
    assert not past_the_end.datasets and not past_the_end.next_page_token and past_the_end.total_size == 5


def test_seed_000_page_numbers_answer_the_same_page(api, data, registry):
    for _ in range(7):
        create_dataset(data, "paging-seed")
    listed = data.ListDatasets(data_service_pb2.ListDatasetsRequest(page_size=1000))
    newest_first = [d.dataset_id for d in listed.datasets]
    total = len(newest_first)
    r = api.get("/api/v1/training/datasets", params={"page": 2, "limit": 3})
    assert r.status_code == 200, r.text
    body = r.json()["data"]
    assert [d["datasetId"] for d in body["datasets"]] == newest_first[3:6]
    assert {k: body["pagination"][k] for k in ("total", "page", "limit", "pages")} == \
        {"total": total, "page": 2, "limit": 3, "pages": math.ceil(total / 3)}
    assert bool(body["pagination"].get("nextPageToken")) == (total > 6)
    last = api.get("/api/v1/training/datasets", params={"page": math.ceil(total / 3), "limit": 3}).json()["data"]
    assert [d["datasetId"] for d in last["datasets"]] == newest_first[3 * (math.ceil(total / 3) - 1):]
    assert "nextPageToken" not in last["pagination"]

    for _ in range(3):
        registry.CreateAgent(model_registry_pb2.CreateAgentRequest(agent_id=f"paging-seed-{uuid.uuid4().hex[:6]}"))
    agents = registry.ListAgents(model_registry_pb2.ListAgentsRequest(page_size=1000)).agents
    oldest_first = [a.agent_id for a in agents]
    body = api.get("/api/v1/agents", params={"page": 2, "limit": 2}).json()["data"]
    assert [a["agentId"] for a in body["agents"]] == oldest_first[2:4]
    assert body["pagination"]["total"] == len(oldest_first) and body["pagination"]["page"] == 2


def test_seed_004_limit_and_offset_answer_the_same_page(api):
    agent = f"paging-traj-{uuid.uuid4().hex[:6]}"
    trajectories = [{"id": f"{agent}-t{i}", "agentId": agent, "source": "chat", "status": "completed",
                     "llmCalls": [{"callId": "c0", "model": "m", "prompt": f"where is parcel {i}",
                                   "response": "shipping"}]} for i in range(5)]
    r = api.post("/api/training/trajectories", json={"trajectories": trajectories})
    assert r.status_code == 201, r.text
    listed = api.get("/api/training/trajectories", params={"limit": 2, "offset": 1}).json()
    assert [t["id"] for t in listed["trajectories"]] == [f"{agent}-t3", f"{agent}-t2"]  # newest first
    assert listed["total"] == 5 and listed["available"] is True
