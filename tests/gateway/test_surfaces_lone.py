"""Every surface's shapes without backends (a lone gateway): auth and scopes route by route,
JSON-RPC 2.0 rules, malformed and oversized bodies, rate limits (burst, persistence)."""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import jwt
import pytest

from trainhouse.gateway.auth import SCOPES
from trainhouse.gateway.scopes import AUTHENTICATED, INTERNAL, http_routes, jsonrpc_methods
from tests.gateway.conftest import JWT_SECRET, LONE_ADMIN, bearer, make_token, start_gateway
from tests.gateway.surface_shapes import FORBIDDEN, UNAUTHORIZED, error_code, rpc, surface_of

ADMIN = bearer(LONE_ADMIN)
RPC = "/api/v1/jsonrpc"


@pytest.fixture(scope="module")
def tokens(lone: httpx.Client) -> dict[frozenset[str], str]:
    return {}


def token_for(lone: httpx.Client, cache: dict[frozenset[str], str], scopes: set[str]) -> dict[str, str]:
    key = frozenset(scopes)
    if key not in cache:
        cache[key] = make_token(lone, LONE_ADMIN, sorted(scopes))
    return bearer(cache[key])


def concrete(path: str) -> str:
    return path.replace("{", "").replace("}", "") if "{" in path else path


# ---- the scope table, walked route by route -------------------------------------------------

ROUTES = sorted((m, p, s) for (m, p), s in http_routes().items() if s not in (None, INTERNAL))


@pytest.mark.parametrize("method, path, scope", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_every_route_enforces_its_scope(lone: httpx.Client, tokens: dict, method: str, path: str,
                                        scope: str) -> None:
    url = concrete(path)
    surface = surface_of(url)
    r = lone.request(method, url, json={})
    assert r.status_code == 401 and error_code(r) == UNAUTHORIZED[surface], r.text
    if scope == AUTHENTICATED:
        r = lone.request(method, url, json={}, headers=token_for(lone, tokens, {"training:view"}))
        assert r.status_code not in (401, 403), r.text
        return
    others = set(SCOPES) - {scope, "admin"}
    r = lone.request(method, url, json={}, headers=token_for(lone, tokens, others))
    assert r.status_code == 403 and error_code(r) == FORBIDDEN[surface], r.text
    r = lone.request(method, url, json={}, headers=token_for(lone, tokens, {scope}))
    assert r.status_code not in (401, 403), r.text


METHODS = sorted(jsonrpc_methods().items())


@pytest.mark.parametrize("method, scope", METHODS, ids=[m for m, _ in METHODS])
def test_every_jsonrpc_method_enforces_its_scope(lone: httpx.Client, tokens: dict, method: str, scope: str) -> None:
    others = set(SCOPES) - {scope, "admin"}
    r = lone.post(RPC, json=rpc(method, {"job_id": "job-x"}), headers=token_for(lone, tokens, others))
    assert r.status_code == 403 and error_code(r) == -32011, r.text
    assert r.json()["error"]["data"]["required_scope"] == scope and r.json()["id"] == 1
    r = lone.post(RPC, json=rpc(method, {"job_id": "job-x"}), headers=token_for(lone, tokens, {scope}))
    assert r.status_code == 200 and r.json()["error"]["code"] not in (-32010, -32011), r.text
    # In a batch a forbidden call is one error among the answers, and the HTTP status stays 200.
    r = lone.post(RPC, json=[rpc(method, {"job_id": "a"}, "x"), rpc("nope", {}, "y")],
                  headers=token_for(lone, tokens, others))
    assert r.status_code == 200 and [e["error"]["code"] for e in r.json()] == [-32011, -32601]


# ---- authentication per surface -------------------------------------------------------------

PER_SURFACE = [("POST", "/api/v1/functions/getTrainingStatus", {"job_id": "j"}),
               ("GET", "/api/training/jobs", None), ("POST", RPC, rpc("training.get_status", {"job_id": "j"})),
               ("GET", "/api/v1/training/train-agent/j", None)]


@pytest.mark.parametrize("method, path, body", PER_SURFACE, ids=[p for _, p, _ in PER_SURFACE])
def test_401_in_each_surface_shape_for_bad_tokens_and_jwts(lone: httpx.Client, method: str, path: str,
                                                           body: Any) -> None:
    expired = jwt.encode({"sub": "x", "scopes": ["admin"], "exp": int(time.time()) - 5}, JWT_SECRET, "HS256")
    for headers in ({}, bearer("th_wrong"), bearer(expired), {"Authorization": "Basic x"}):
        r = lone.request(method, path, json=body, headers=headers)
        assert r.status_code == 401 and error_code(r) == UNAUTHORIZED[surface_of(path)], r.text
    good = jwt.encode({"sub": "x", "scopes": ["training:view"], "exp": int(time.time()) + 60}, JWT_SECRET, "HS256")
    r = lone.request(method, path, json=body, headers=bearer(good))
    assert r.status_code not in (401, 403), r.text  # past auth; the backend is down
    assert "X-RateLimit-Limit" in r.headers


# ---- bad bodies -----------------------------------------------------------------------------

def test_malformed_json_per_surface(lone: httpx.Client) -> None:
    headers = {**ADMIN, "Content-Type": "application/json"}
    r = lone.post("/api/v1/functions/trainAgent", content=b'{"agent_id": ', headers=headers)
    assert r.status_code == 400 and error_code(r) == "VALIDATION_ERROR" and r.json()["field"] == "body"
    r = lone.post("/api/training/jobs", content=b"{nope", headers=headers)
    assert r.status_code == 400 and error_code(r) == "INVALID_REQUEST"
    for raw in (b"{nope", b'{"jsonrpc": "2.0", "method": "x", "id": NaN}', b"\xff\xfe"):
        r = lone.post(RPC, content=raw, headers=headers)
        assert r.status_code == 200 and r.json() == {"jsonrpc": "2.0", "id": None, "error": {
            "code": -32700, "message": "Parse error", "data": r.json()["error"]["data"]}}


@pytest.mark.parametrize("path", ["/api/v1/functions/trainAgent", "/api/training/jobs", RPC])
def test_bodies_over_10_mib_are_413_in_the_surface_shape(lone: httpx.Client, path: str) -> None:
    r = lone.post(path, content=b"x" * (10 * 1024 * 1024 + 1), headers={**ADMIN, "Content-Type": "application/json"})
    assert r.status_code == 413
    error_code(r)


@pytest.mark.parametrize("path, body, field, code, status", [
    ("/api/v1/functions/trainAgent", {"agent_id": 5}, "agent_id", "VALIDATION_ERROR", 422),
    ("/api/v1/functions/trainAgent", {"agent_id": "a", "training_data": [{"input": "x"}]},
     "training_data[0].expected_output", "VALIDATION_ERROR", 422),
    ("/api/v1/functions/trainAgent", {"agent_id": "a", "config": {"epochs": "ten"}}, "config.epochs",
     "VALIDATION_ERROR", 422),
    ("/api/v1/functions/trainAgent", {"agent_id": "a", "agentId": "b"}, "agent_id", "VALIDATION_ERROR", 422),
    ("/api/v1/functions/startTrainingJob", {"agent_id": "a"}, "training_data", "VALIDATION_ERROR", 422),
    ("/api/v1/functions/startTrainingJob", {"agent_id": "a", "training_data": {"moduleId": 5}},
     "training_data.moduleId", "VALIDATION_ERROR", 422),
    ("/api/v1/functions/monitorTrainingProgress", {"job_id": "j", "include_checkpoints": "yes"},
     "include_checkpoints", "VALIDATION_ERROR", 422),
    ("/api/v1/functions/getTrainingStatus", {}, "jobId", "VALIDATION_ERROR", 422),
    ("/api/training/jobs", {"iterations": "x"}, "iterations", "INVALID_REQUEST", 400),
    ("/api/training/jobs", {"backend": "cuda"}, "backend", "INVALID_REQUEST", 400),
    ("/api/training/jobs", {"learningRate": True}, "learningRate", "INVALID_REQUEST", 400),
    ("/api/v1/webhooks", {"url": "http://x/", "events": ["training.nope"]}, "events", "INVALID_CONFIG", 400),
    ("/api/v1/webhooks", {"url": "ftp://x/", "events": ["*"]}, "url", "INVALID_CONFIG", 400),
    ("/api/v1/webhooks", {"url": "http://127.0.0.1:9/", "events": ["*"]}, "url", "INVALID_CONFIG", 400),
])
def test_wrong_types_name_the_field(lone: httpx.Client, path: str, body: dict, field: str, code: str,
                                   status: int) -> None:
    r = lone.post(path, json=body, headers=ADMIN)
    assert r.status_code == status and error_code(r) == code, r.text
    found = r.json().get("field") or r.json().get("error", {}).get("details", {}).get("field")
    assert found == field, r.text


def test_unknown_function_lists_the_names(lone: httpx.Client) -> None:
    r = lone.post("/api/v1/functions/doMagic", json={}, headers=ADMIN)
    assert r.status_code == 404 and error_code(r) == "NOT_FOUND"
    for name in ("startTrainingJob", "trainAgent", "getTrainingStatus", "monitorTrainingProgress"):
        assert name in r.json()["message"]
    r = lone.get("/api/v1/functions/trainAgent", headers=ADMIN)
    assert r.status_code == 405 and error_code(r) == "METHOD_NOT_ALLOWED"


# ---- JSON-RPC 2.0 rules ---------------------------------------------------------------------

@pytest.mark.parametrize("id_", ["abc", 7, 7.5, None, 0, ""])
def test_jsonrpc_ids_are_echoed(lone: httpx.Client, id_: Any) -> None:
    r = lone.post(RPC, json=rpc("training.get_status", {"job_id": "j"}, id_), headers=ADMIN)
    assert r.status_code == 200 and r.json()["id"] == id_ and type(r.json()["id"]) is type(id_)
    assert r.json()["error"]["code"] == -32603  # the backend is down: internal, marked retryable
    assert r.json()["error"]["data"]["retryable"] is True


def test_jsonrpc_notifications_get_no_reply(lone: httpx.Client) -> None:
    note = {"jsonrpc": "2.0", "method": "training.get_status", "params": {"job_id": "j"}}
    r = lone.post(RPC, json=note, headers=ADMIN)
    assert r.status_code == 204 and r.content == b""
    r = lone.post(RPC, json=[note, {**note, "method": "nope"}], headers=ADMIN)
    assert r.status_code == 204 and r.content == b""
    r = lone.post(RPC, json=[note, rpc("nope", {}, 9)], headers=ADMIN)
    assert [e["id"] for e in r.json()] == [9]


def test_jsonrpc_batches_answer_in_order(lone: httpx.Client) -> None:
    batch = [rpc("training.get_status", {"job_id": "a"}, "1"), 5, rpc("nope", None, 2),
             {"jsonrpc": "1.0", "method": "training.get_status", "id": 3},
             rpc("training.cancel", [1, 2], 4), rpc("training.get_status", {}, 5),
             {"jsonrpc": "2.0", "method": "training.get_status", "id": {"no": 1}},
             {"jsonrpc": "2.0", "method": 12, "id": 6}, {"jsonrpc": "2.0", "method": "x", "params": 3, "id": 7}]
    r = lone.post(RPC, json=batch, headers=ADMIN)
    assert r.status_code == 200
    got = [(e["id"], e["error"]["code"]) for e in r.json()]
    assert got == [("1", -32603), (None, -32600), (2, -32601), (3, -32600), (4, -32602), (5, -32602),
                   (None, -32600), (6, -32600), (7, -32600)]
    assert r.json()[5]["error"]["data"] == {"field": "job_id", "error": "is required"}
    assert all(set(e) == {"jsonrpc", "error", "id"} for e in r.json())


def test_jsonrpc_invalid_top_levels(lone: httpx.Client) -> None:
    for body, code in (([], -32600), (5, -32600), ("x", -32600), (None, -32600),
                       ([rpc("nope", {}, i) for i in range(101)], -32600)):
        r = lone.post(RPC, content=json.dumps(body), headers={**ADMIN, "Content-Type": "application/json"})
        assert r.status_code == 200 and isinstance(r.json(), dict), r.text
        assert r.json()["error"]["code"] == code and r.json()["id"] is None


def test_jsonrpc_default_limits_show_in_headers(lone: httpx.Client) -> None:
    token = bearer(make_token(lone, LONE_ADMIN, ["training:view"]))
    r = lone.post(RPC, json=rpc("training.get_status", {"job_id": "j"}), headers=token)
    assert r.headers["X-RateLimit-Limit"] == "100" and r.headers["X-RateLimit-Remaining"] == "99"


# ---- rate limits ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory):
    gw = start_gateway(tmp_path_factory.mktemp("limited-gw"),
                       {"TRAINHOUSE_BOOTSTRAP_TOKEN": LONE_ADMIN, "TRAINHOUSE_RATE_LIMIT_RPC_GET_STATUS_PER_MINUTE": "3",
                        "TRAINHOUSE_RATE_LIMIT_FLUSH_S": "60"})
    try:
        yield gw
    finally:
        assert gw.stop() == 0


def test_jsonrpc_per_method_limits(limited) -> None:  # noqa: ANN001
    with httpx.Client(base_url=limited.url, timeout=10) as c:
        token = bearer(make_token(c, LONE_ADMIN, ["training:view", "training:cancel"]))
        for left in (2, 1, 0):
            r = c.post(RPC, json=rpc("training.get_status", {"job_id": "j"}), headers=token)
            assert r.status_code == 200 and r.headers["X-RateLimit-Remaining"] == str(left)
            assert r.headers["X-RateLimit-Limit"] == "3"
        r = c.post(RPC, json=rpc("training.get_status", {"job_id": "j"}, "q"), headers=token)
        assert r.status_code == 429 and error_code(r) == -32029 and r.json()["id"] == "q"
        retry = r.json()["error"]["data"]["retryAfter"]
        assert 0 < retry <= 60 and r.headers["Retry-After"] == str(retry)
        r = c.post(RPC, json=[rpc("training.get_status", {"job_id": "j"}, 1), rpc("training.cancel", {"job_id": "j"}, 2)],
                   headers=token)
        assert r.status_code == 200 and [e["error"]["code"] for e in r.json()] == [-32029, -32603]


def test_a_burst_of_parallel_requests_never_exceeds_the_limit(limited) -> None:  # noqa: ANN001
    with httpx.Client(base_url=limited.url, timeout=30) as c:
        token = bearer(make_token(c, LONE_ADMIN, ["training:view"], rateLimitPerHour=20))

    def one(_: int) -> int:
        with httpx.Client(base_url=limited.url, timeout=30) as client:
            return client.get("/api/v1/webhooks", headers=token).status_code

    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(one, range(60)))
    assert statuses.count(200) == 20 and statuses.count(429) == 40, statuses


def test_rate_limit_state_survives_a_restart(tmp_path) -> None:  # noqa: ANN001
    env = {"TRAINHOUSE_BOOTSTRAP_TOKEN": LONE_ADMIN, "TRAINHOUSE_RATE_LIMIT_FLUSH_S": "60"}
    gw = start_gateway(tmp_path / "home", env)
    try:
        with httpx.Client(base_url=gw.url, timeout=10) as c:
            token = bearer(make_token(c, LONE_ADMIN, ["training:view"], rateLimitPerHour=3))
            assert [c.get("/api/v1/webhooks", headers=token).status_code for _ in range(3)] == [200] * 3
    finally:
        assert gw.stop() == 0  # the flush interval is long: the shutdown flush is what persists
    gw = start_gateway(tmp_path / "home", env)
    try:
        with httpx.Client(base_url=gw.url, timeout=10) as c:
            r = c.get("/api/v1/webhooks", headers=token)
            assert r.status_code == 429 and error_code(r) == "RATE_LIMIT_EXCEEDED"
            assert r.headers["X-RateLimit-Remaining"] == "0" and int(r.headers["Retry-After"]) > 0
    finally:
        assert gw.stop() == 0
