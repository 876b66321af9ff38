"""Hostile request bodies and ids, surface by surface (issue 15, "Inputs").

Each case expects the called surface's own error shape and status class — never a 5xx, a 429 or a
503 — and then a normal request that succeeds on the same connection (same client port). The
table runs on a lone gateway: every case is refused at the edge, before any backend is needed.
The last tests use the shared stack: the services refuse the same ids from gRPC callers, and a
body nested exactly to the limit still reaches TrainingService intact.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest

from trainhouse.gateway.json_limits import DEFAULT_MAX_DEPTH, nesting_depth_exceeds, number_problem
from trainhouse.common.grpc_errors import failure_of
from tests.gateway.conftest import LONE_ADMIN, bearer
from tests.gateway.surface_shapes import error_code, surface_of
from trainhouse.v1 import data_service_pb2, data_service_pb2_grpc, example_pb2, job_state_pb2, training_job_pb2
from trainhouse.v1 import training_service_pb2, training_service_pb2_grpc

RPC = "/api/v1/jsonrpc"
LONG_ID = "a" * 3000
TRAVERSAL = "../../etc/passwd"
EXAMPLES = [{"input": f"request {i}", "expected_output": "billing" if i % 2 else "technical"} for i in range(20)]


def nested_object(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def deep_arrays(levels: int) -> str:
    return "[" * levels + "]" * levels


def train_body(**config: Any) -> dict[str, Any]:
    return {"agentId": "hostile", "config": {"method": "supervised", "epochs": 1, **config}, "examples": EXAMPLES}


def rpc_call(method: str, params: Any, id_: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params, "id": id_}


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: str | bytes | None
    status: int
    code: Any                      # the surface's error code (JSON-RPC: error.code)
    field: str | None = None       # the field the error names, when it names one
    content_type: str = "application/json"


def j(value: Any) -> str:
    return json.dumps(value)


CASES = [
    # ---- seed 000 REST ------------------------------------------------------------------------
    Case("v1 10k-deep arrays", "POST", "/api/v1/training/train-agent", deep_arrays(10_000), 400, "INVALID_CONFIG",
         "body"),
    Case("v1 10k-deep objects", "POST", "/api/v1/training/train-agent", '{"a":' * 10_000 + "1" + "}" * 10_000, 400,
         "INVALID_CONFIG", "body"),
    Case("v1 unbalanced 10k brackets", "POST", "/api/v1/training/train-agent", "{" * 10_000, 400, "INVALID_CONFIG",
         "body"),
    Case("v1 config.options 40 deep", "POST", "/api/v1/training/train-agent",
         j(train_body(options=nested_object(40))), 400, "INVALID_CONFIG", "body"),
    Case("v1 example metadata 40 deep", "POST", "/api/v1/training/datasets",
         j({"examples": [{**EXAMPLES[0], "metadata": nested_object(40)}]}), 400, "INVALID_CONFIG", "body"),
    Case("v1 JSONL line 40 deep", "POST", "/api/v1/training/datasets",
         j(EXAMPLES[0]) + "\n" + j({**EXAMPLES[1], "metadata": nested_object(40)}) + "\n", 400, "INVALID_CONFIG",
         "line 2", content_type="application/x-ndjson"),
    Case("v1 learningRate 1e309", "POST", "/api/v1/training/train-agent",
         j(train_body()).replace('"epochs": 1', '"epochs": 1, "learningRate": 1e309'), 400, "INVALID_CONFIG",
         "learningRate"),
    Case("v1 NaN literal", "POST", "/api/v1/training/train-agent",
         j(train_body()).replace('"epochs": 1', '"epochs": NaN'), 400, "INVALID_CONFIG", "epochs"),
    Case("v1 -Infinity literal", "POST", "/api/v1/training/datasets",
         j({"examples": [{**EXAMPLES[0], "weight": 1}]}).replace('"weight": 1', '"weight": -Infinity'), 400,
         "INVALID_CONFIG", "examples[0].weight"),
    Case("v1 400-digit integer in options", "POST", "/api/v1/training/train-agent",
         j(train_body(options={"x": 1})).replace('"x": 1', '"x": ' + "9" * 400), 400, "INVALID_CONFIG",
         "options.x"),
    Case("v1 5000-digit integer in options", "POST", "/api/v1/training/train-agent",
         j(train_body(options={"x": 1})).replace('"x": 1', '"x": ' + "9" * 5000), 400, "INVALID_CONFIG",
         "options.x"),
    Case("v1 overlong agentId in path", "GET", f"/api/v1/agents/{LONG_ID}", None, 400, "INVALID_CONFIG", "agentId"),
    Case("v1 overlong jobId in path", "GET", f"/api/v1/training/train-agent/{LONG_ID}", None, 400,
         "INVALID_CONFIG", "jobId"),
    Case("v1 overlong versionId in path", "GET", f"/api/v1/training/models/a/versions/{LONG_ID}", None, 400,
         "INVALID_CONFIG", "versionId"),
    Case("v1 dotted datasetId in path", "GET", "/api/v1/training/datasets/..passwd", None, 400,
         "INVALID_CONFIG", "datasetId"),
    Case("v1 overlong agentId in body", "POST", "/api/v1/training/train-agent", j({**train_body(), "agentId": LONG_ID}),
         400, "INVALID_CONFIG", "agentId"),
    Case("v1 config.dataset traversal", "POST", "/api/v1/training/train-agent", j(train_body(dataset=TRAVERSAL)),
         400, "INVALID_CONFIG", "dataset"),
    Case("v1 dataset upload id traversal", "POST", "/api/v1/training/datasets",
         j({"datasetId": TRAVERSAL, "examples": EXAMPLES}), 400, "INVALID_CONFIG", "datasetId"),
    Case("v1 agentId of the wrong type", "POST", "/api/v1/training/train-agent", j({**train_body(), "agentId": 123}),
         400, "INVALID_CONFIG", "agentId"),
    Case("v1 create agent with newline id", "POST", "/api/v1/agents", j({"agentId": "abc\n"}), 400,
         "INVALID_CONFIG", "agentId"),
    Case("v1 overlong webhookId", "DELETE", f"/api/v1/webhooks/{LONG_ID}", None, 400, "INVALID_CONFIG", "webhookId"),
    Case("v1 overlong tokenId", "DELETE", f"/api/v1/auth/tokens/{LONG_ID}", None, 400, "INVALID_CONFIG", "tokenId"),
    Case("v1 rollback to a malformed version", "POST", "/api/v1/training/models/a/versions/v1/rollback",
         j({"targetVersionId": "b@c"}), 400, "INVALID_CONFIG", "targetVersionId"),
    # ---- seeds 001/002 functions ------------------------------------------------------------
    Case("functions 10k-deep arrays", "POST", "/api/v1/functions/startTrainingJob", deep_arrays(10_000), 422,
         "VALIDATION_ERROR", "body"),
    Case("functions overlong job_id", "POST", "/api/v1/functions/monitorTrainingProgress", j({"job_id": LONG_ID}),
         422, "VALIDATION_ERROR", "job_id"),
    Case("functions config.dataset traversal", "POST", "/api/v1/functions/trainAgent",
         j({"agentId": "a1", "config": {"method": "supervised", "dataset": TRAVERSAL}, "examples": EXAMPLES}), 422,
         "VALIDATION_ERROR", "config.dataset"),
    Case("functions run_ids traversal", "POST", "/api/v1/functions/compareTrainingRuns",
         j({"run_ids": ["job-a", TRAVERSAL]}), 422, "VALIDATION_ERROR", "run_ids[1]"),
    Case("functions NaN literal", "POST", "/api/v1/functions/getTrainingStatus", '{"job_id": NaN}', 422,
         "VALIDATION_ERROR", "job_id"),
    Case("functions agent_id of the wrong type", "POST", "/api/v1/functions/startTrainingJob",
         j({"agent_id": ["x"], "training_data": {"examples": EXAMPLES}}), 422, "VALIDATION_ERROR", "agent_id"),
    # ---- seed 003 JSON-RPC (errors are HTTP 200, as the spec has them) ------------------------
    Case("jsonrpc 10k-deep arrays", "POST", RPC, deep_arrays(10_000), 200, -32600),
    Case("jsonrpc params 40 deep", "POST", RPC,
         j(rpc_call("training.start_grpo", {"agent_id": "a", "config": nested_object(40)})), 200, -32600),
    Case("jsonrpc id 1e309", "POST", RPC,
         j(rpc_call("training.get_status", {"job_id": "x"})).replace('"id": 1', '"id": 1e309'), 200, -32600, "id"),
    Case("jsonrpc 30-digit id", "POST", RPC,
         j(rpc_call("training.get_status", {"job_id": "x"})).replace('"id": 1', '"id": ' + "9" * 30), 200, -32600,
         "id"),
    Case("jsonrpc NaN id", "POST", RPC,
         j(rpc_call("training.get_status", {"job_id": "x"})).replace('"id": 1', '"id": NaN'), 200, -32700),
    Case("jsonrpc 1e999 in params", "POST", RPC,
         j(rpc_call("training.export_trajectories", {"job_id": "x", "min_reward": 1})).replace('"min_reward": 1',
                                                                                              '"min_reward": 1e999'),
         200, -32602, "min_reward"),
    Case("jsonrpc overlong job_id", "POST", RPC, j(rpc_call("training.get_status", {"job_id": LONG_ID})), 200,
         -32602, "job_id"),
    Case("jsonrpc agent_id traversal", "POST", RPC,
         j(rpc_call("training.start_grpo", {"agent_id": TRAVERSAL, "config": {}, "training_data": []})), 200,
         -32602, "agent_id"),
    Case("jsonrpc params of the wrong type", "POST", RPC, j(rpc_call("training.get_status", "job-1")), 200, -32600,
         "params"),
    # ---- seed 004 runtime REST ----------------------------------------------------------------
    Case("runtime model a@b@c", "POST", "/api/training/jobs", j({"model": "a@b@c"}), 400, "INVALID_REQUEST", "model"),
    Case("runtime model traversal", "POST", "/api/training/jobs", j({"model": "../x"}), 400, "INVALID_REQUEST",
         "model"),
    Case("runtime datasetId traversal", "POST", "/api/training/jobs", j({"datasetId": TRAVERSAL}), 400,
         "INVALID_REQUEST", "datasetId"),
    Case("runtime overlong job id", "GET", f"/api/training/jobs/{LONG_ID}", None, 400, "INVALID_REQUEST", "id"),
    Case("runtime overlong trajectory id", "GET", f"/api/training/trajectories/{LONG_ID}", None, 400,
         "INVALID_REQUEST", "id"),
    Case("runtime malformed model id", "POST", "/api/training/models/a@b@c/activate", "{}", 400, "INVALID_REQUEST",
         "id"),
    Case("runtime trajectory 40 deep", "POST", "/api/training/trajectories",
         j({"trajectories": [{"metadata": nested_object(40)}]}), 400, "INVALID_REQUEST", "body"),
    Case("runtime 1e309 in a trajectory", "POST", "/api/training/trajectories",
         j({"trajectories": [{"reward": 1}]}).replace('"reward": 1', '"reward": 1e309'), 400, "INVALID_REQUEST",
         "trajectories[0].reward"),
    Case("runtime build dataset id traversal", "POST", "/api/training/datasets/build", j({"datasetId": TRAVERSAL}),
         400, "INVALID_REQUEST", "datasetId"),
]


def _port(r: httpx.Response) -> Any:
    return r.extensions["network_stream"].get_extra_info("client_addr")


def _good(client: httpx.Client) -> httpx.Response:
    r = client.get("/api/v1/auth/tokens")
    assert r.status_code == 200, r.text
    return r


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_body_gets_the_surface_error_and_the_connection_lives(lone_gateway, case: Case) -> None:
    headers = {**bearer(LONE_ADMIN), "Content-Type": case.content_type}
    with httpx.Client(base_url=lone_gateway.url, headers=headers, timeout=30,
                      limits=httpx.Limits(max_connections=1)) as client:
        r = client.request(case.method, case.path, content=case.body)
        assert r.status_code < 500 and r.status_code not in (429, 503), r.text[:500]
        assert r.status_code == case.status, r.text[:500]
        assert r.headers.get("connection", "").lower() != "close"
        assert error_code(r) == case.code, r.text[:500]
        if case.field is not None:
            assert _field(r) == case.field, r.text[:500]
        follow = _good(client)
        assert _port(follow) == _port(r), "the hostile request cost the connection"


def _field(r: httpx.Response) -> str | None:
    body = r.json()
    surface = surface_of(r.request.url.path)
    if surface == "v1":
        return (body["error"].get("details") or {}).get("field")
    if surface == "jsonrpc":
        return body["error"]["data"].get("field")
    return body.get("field")


def test_a_bad_id_fails_only_its_own_call_of_a_batch(lone_gateway) -> None:
    batch = "[" + ",".join([
        j(rpc_call("training.get_status", {"job_id": "x"})).replace('"id": 1', '"id": 1e309'),
        j(rpc_call("training.get_status", {"job_id": "x"}, "two")),
        j(rpc_call("training.get_status", {"job_id": "x"})).replace('"id": 1', '"id": ' + "7" * 5000),
        j(rpc_call("training.get_status", {"job_id": LONG_ID}, 4)),
    ]) + "]"
    with httpx.Client(base_url=lone_gateway.url, headers=bearer(LONE_ADMIN), timeout=30) as client:
        r = client.post(RPC, content=batch, headers={"Content-Type": "application/json"})
        assert r.status_code == 200, r.text[:500]
        replies = r.json()
        assert [reply["id"] for reply in replies] == [None, "two", None, 4]
        assert replies[0]["error"]["code"] == -32600 and replies[0]["error"]["data"]["field"] == "id"
        assert replies[2]["error"]["code"] == -32600
        assert replies[3]["error"]["code"] == -32602 and replies[3]["error"]["data"]["field"] == "job_id"
        # The lone gateway has no backends: the good call is answered on its own (unavailable).
        assert replies[1]["error"]["code"] not in (-32600, -32700, -32602)
        _good(client)


def test_huge_strings_and_depth_at_the_limit_are_accepted(lone_gateway) -> None:
    """Within the limits nothing is refused: a 4 MiB string (with brackets and escaped quotes in it)
    and an ignored field nested exactly to the depth limit."""
    text = ('[{"\\"' * 200_000)[:4 * 1024 * 1024]
    at_limit = nested_object(DEFAULT_MAX_DEPTH - 1)   # plus the body's own object: exactly the limit
    with httpx.Client(base_url=lone_gateway.url, headers=bearer(LONE_ADMIN), timeout=60) as client:
        r = client.post("/api/v1/auth/tokens", json={"name": "big", "scopes": ["training:view"], "note": text})
        assert r.status_code == 201, r.text[:500]
        r = client.post("/api/v1/auth/tokens", json={"name": "deep", "scopes": ["training:view"], "x": at_limit})
        assert r.status_code == 201, r.text[:500]
        r = client.post("/api/v1/auth/tokens", json={"name": "deeper", "scopes": ["training:view"],
                                                     "x": nested_object(DEFAULT_MAX_DEPTH)})
        assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "body", r.text[:500]


def test_depth_scanner_skips_strings_and_escapes() -> None:
    assert not nesting_depth_exceeds(b'{"a": "[[[[[[", "b": "\\"[[[["}', 1)
    assert nesting_depth_exceeds(b'{"a": [1]}', 1)
    assert not nesting_depth_exceeds(b'{"a": [1]}', 2)
    assert nesting_depth_exceeds(b'"\\\\" [[', 1)   # an escaped backslash ends before the closing quote
    assert nesting_depth_exceeds(deep_arrays(33).encode(), 32) and not nesting_depth_exceeds(deep_arrays(32).encode(),
                                                                                                32)
    assert number_problem({"a": [1, 2.5, {"b": float("inf")}]}) == ("a[2].b", number_problem(float("inf"))[1])
    assert number_problem({"ok": 2 ** 63 - 1, "also": -(2 ** 63), "flag": True}) is None
    assert number_problem([2 ** 63])[0] == "[0]"


# ---- the services refuse the same ids from gRPC callers (shared stack) -----------------------

def _invalid(call: Any) -> Any:
    with pytest.raises(grpc.RpcError) as info:
        call()
    failure = failure_of(info.value)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT, failure
    return failure


def test_services_refuse_bad_dataset_and_version_references(stack) -> None:
    examples = [example_pb2.Example(input=e["input"], expected_output=e["expected_output"]) for e in EXAMPLES]
    with stack.channel("training") as tch, stack.channel("data") as dch:
        training = training_service_pb2_grpc.TrainingServiceStub(tch)
        data = data_service_pb2_grpc.DataServiceStub(dch)
        failure = _invalid(lambda: training.StartJob(training_service_pb2.StartJobRequest(
            agent_id="hostile-grpc", dataset_id=TRAVERSAL, examples=examples,
            config=training_job_pb2.TrainingConfig(epochs=1))))
        assert failure.field == "dataset_id"
        failure = _invalid(lambda: training.StartJob(training_service_pb2.StartJobRequest(
            agent_id="hostile-grpc", base_version_id="b@c", examples=examples,
            config=training_job_pb2.TrainingConfig(method=job_state_pb2.TRAINING_METHOD_TRANSFER, epochs=1))))
        assert failure.field == "base_version_id"
        assert _invalid(lambda: data.GetDataset(data_service_pb2.GetDatasetRequest(dataset_id=TRAVERSAL))).field \
            == "dataset_id"
        assert _invalid(lambda: data.GetDataset(data_service_pb2.GetDatasetRequest(dataset_id="x" * 3000))).field \
            == "dataset_id"


def test_a_body_nested_to_the_limit_reaches_training_service(admin_api: httpx.Client) -> None:
    """The limit is low enough for protobuf: config.options as deep as the body may be is carried."""
    agent = f"hostile-deep-{uuid.uuid4().hex[:6]}"
    options = nested_object(DEFAULT_MAX_DEPTH - 2)   # body > config > options > ...: exactly the limit
    r = admin_api.post("/api/v1/training/train-agent", json={**train_body(options=options), "agentId": agent})
    assert r.status_code == 200, r.text[:500]
    job_id = r.json()["data"]["trainingJobId"]
    admin_api.post(f"/api/v1/training/train-agent/{job_id}/stop")
    r = admin_api.post("/api/training/jobs", json={"model": f"{agent}@b@c"})
    assert r.status_code == 400 and r.json()["field"] == "model", r.text
