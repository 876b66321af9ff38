"""A gateway process on its own (backends unreachable): auth, error shapes, limits, process life."""
from __future__ import annotations

import os
import stat
import time

import httpx
import jwt
import pytest

from tests.gateway.conftest import (
    JWT_SECRET,
    LONE_ADMIN,
    assert_error,
    bearer,
    make_token,
    start_gateway,
)

ADMIN = bearer(LONE_ADMIN)
TRAIN = "/api/v1/training/train-agent"


def test_public_routes_need_no_token(lone: httpx.Client) -> None:
    assert lone.get("/openapi.json").status_code == 200
    assert lone.get("/docs").status_code == 200
    r = lone.get("/healthz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable"
    assert set(body["notServing"]) == {"training", "data", "evaluation", "registry"}


def test_openapi_has_real_schemas(lone: httpx.Client) -> None:
    spec = lone.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert "learningRate" in schemas["TrainingConfigIn"]["properties"]
    post = spec["paths"][TRAIN]["post"]
    assert post["security"] == [{"bearer": []}]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/TrainAgentRequest")
    assert "CreateDatasetIn" in schemas


@pytest.mark.parametrize("headers", [{}, bearer("th_not-a-real-token"), {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer"}])
def test_missing_or_bad_token_is_401(lone: httpx.Client, headers: dict[str, str]) -> None:
    assert_error(lone.get(f"{TRAIN}/job-1", headers=headers), 401, "UNAUTHORIZED")


def test_auth_runs_before_the_body_is_parsed(lone: httpx.Client) -> None:
    r = lone.post(TRAIN, content=b"{not json", headers={"Content-Type": "application/json"})
    assert_error(r, 401, "UNAUTHORIZED")


def test_request_id_is_echoed_or_made(lone: httpx.Client) -> None:
    r = lone.get(f"{TRAIN}/job-1", headers={"X-Request-Id": "abc-123"})
    assert r.headers["X-Request-Id"] == "abc-123"
    assert r.json()["error"]["requestId"] == "abc-123"
    r = lone.get("/healthz")
    assert r.headers["X-Request-Id"].startswith("req-")


def test_admin_creates_scoped_tokens_and_scopes_are_enforced(lone: httpx.Client) -> None:
    r = lone.post("/api/v1/auth/tokens", headers=ADMIN,
                  json={"name": "viewer", "scopes": ["training:view"], "account": "team-a", "expiresInDays": 7})
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert r.json()["success"] is True
    assert data["token"].startswith("th_") and data["tokenId"].startswith("tok-")
    assert data["scopes"] == ["training:view"] and data["account"] == "team-a"
    assert data["createdAt"].endswith("Z") and data["expiresAt"].endswith("Z")
    viewer = bearer(data["token"])
    # training:view passes auth (then the backend is down: 503), training:start does not.
    assert_error(lone.get(f"{TRAIN}/job-1", headers=viewer), 503, "SERVICE_UNAVAILABLE")
    assert_error(lone.post(TRAIN, headers=viewer, json={"agentId": "a"}), 403, "FORBIDDEN")
    assert_error(lone.get("/api/v1/auth/tokens", headers=viewer), 403, "FORBIDDEN")
    # Listing never shows secrets.
    listed = lone.get("/api/v1/auth/tokens", headers=ADMIN).json()["data"]["tokens"]
    assert any(t["tokenId"] == data["tokenId"] for t in listed)
    assert all("token" not in t for t in listed)
    # Revocation takes effect at once.
    assert lone.delete(f"/api/v1/auth/tokens/{data['tokenId']}", headers=ADMIN).status_code == 200
    assert_error(lone.get(f"{TRAIN}/job-1", headers=viewer), 401, "UNAUTHORIZED")
    assert_error(lone.delete("/api/v1/auth/tokens/tok-nope", headers=ADMIN), 404, "NOT_FOUND")
    assert_error(lone.delete("/api/v1/auth/tokens/tok-bootstrap", headers=ADMIN), 409, "CONFLICT")


def test_token_creation_rejects_unknown_scopes(lone: httpx.Client) -> None:
    r = lone.post("/api/v1/auth/tokens", headers=ADMIN, json={"name": "x", "scopes": ["training:view", "root"]})
    assert_error(r, 400, "INVALID_CONFIG", field="scopes[1]")


def test_expired_jwt_is_401(lone: httpx.Client) -> None:
    token = jwt.encode({"sub": "bob", "scopes": ["admin"], "exp": int(time.time()) - 5}, JWT_SECRET, "HS256")
    assert_error(lone.get(f"{TRAIN}/job-1", headers=bearer(token)), 401, "UNAUTHORIZED")


def test_jwt_scopes_list_or_string(lone: httpx.Client) -> None:
    exp = int(time.time()) + 300
    as_list = jwt.encode({"sub": "alice", "scopes": ["training:view"], "exp": exp}, JWT_SECRET, "HS256")
    as_str = jwt.encode({"sub": "alice", "scopes": "data:export training:view", "exp": exp}, JWT_SECRET, "HS256")
    for token in (as_list, as_str):
        assert_error(lone.get(f"{TRAIN}/job-1", headers=bearer(token)), 503, "SERVICE_UNAVAILABLE")
        assert_error(lone.post(TRAIN, headers=bearer(token), json={"agentId": "a"}), 403, "FORBIDDEN")
    no_exp = jwt.encode({"sub": "alice", "scopes": ["admin"]}, JWT_SECRET, "HS256")
    wrong_key = jwt.encode({"sub": "alice", "scopes": ["admin"], "exp": exp}, "other-" + JWT_SECRET, "HS256")
    for token in (no_exp, wrong_key):
        assert_error(lone.get(f"{TRAIN}/job-1", headers=bearer(token)), 401, "UNAUTHORIZED")


@pytest.mark.parametrize("body, field", [
    ({"agentId": "a", "config": {"batchSize": "x"}}, "batchSize"),
    ({"agentId": "a", "config": {"epochs": 1.5}}, "epochs"),
    ({"agentId": "a", "config": {"epochs": True}}, "epochs"),
    ({"agentId": "a", "config": {"epochs": 2 ** 40}}, "epochs"),
    ({"agentId": "a", "config": {"learningRate": "fast"}}, "learningRate"),
    ({"agentId": "a", "config": {"method": "magic"}}, "method"),
    ({"agentId": "a", "config": {"curriculum": {"enabled": True, "stages": [{"level": "x", "duration": 1}]}}},
     "curriculum.stages[0].level"),
    ({"agentId": 5}, "agentId"),
    ({"config": {}}, "agentId"),
    ({"agentId": "a", "examples": [{"input": "hi"}]}, "examples[0].expectedOutput"),
    ({"agentId": "a", "examples": "nope"}, "examples"),
])
def test_shape_errors_are_400_with_the_field(lone: httpx.Client, body: dict, field: str) -> None:
    assert_error(lone.post(TRAIN, headers=ADMIN, json=body), 400, "INVALID_CONFIG", field=field)


@pytest.mark.parametrize("raw, field", [
    (b'{"agentId": "a", "config": {"learningRate": NaN}}', "learningRate"),
    (b'{"agentId": "a", "config": {"dropout": Infinity}}', "dropout"),
    (b'{"agentId": "\\ud800"}', "agentId"),  # a lone surrogate: valid JSON, never a valid id
])
def test_values_json_allows_but_we_cannot_carry_are_400(lone: httpx.Client, raw: bytes, field: str) -> None:
    r = lone.post(TRAIN, headers={**ADMIN, "Content-Type": "application/json"}, content=raw)
    assert_error(r, 400, "INVALID_CONFIG", field=field)


@pytest.mark.parametrize("raw", [b"{bad", b"", b"[1, 2", b"null"])
def test_malformed_json_is_400(lone: httpx.Client, raw: bytes) -> None:
    r = lone.post(TRAIN, headers={**ADMIN, "Content-Type": "application/json"}, content=raw)
    assert_error(r, 400, "INVALID_CONFIG")


def test_bad_query_parameters_are_400(lone: httpx.Client) -> None:
    r = lone.get("/api/v1/training/models/a/versions?limit=500", headers=ADMIN)
    assert_error(r, 400, "INVALID_CONFIG", field="limit")
    r = lone.get(f"{TRAIN}/job-1/events", headers={**ADMIN, "Last-Event-ID": "x"})
    assert_error(r, 400, "INVALID_CONFIG", field="Last-Event-ID")


def test_bodies_over_10_mib_are_413(lone: httpx.Client) -> None:
    big = b"x" * (10 * 1024 * 1024 + 1)
    r = lone.post(TRAIN, headers={**ADMIN, "Content-Type": "application/json"}, content=big)
    assert_error(r, 413, "PAYLOAD_TOO_LARGE")

    def chunks():
        for _ in range(11):
            yield b"x" * (1024 * 1024)

    with httpx.Client(base_url=str(lone.base_url), timeout=10) as fresh:
        r = fresh.post(TRAIN, headers={**ADMIN, "Content-Type": "application/json"}, content=chunks())
    assert_error(r, 413, "PAYLOAD_TOO_LARGE")


def test_unknown_route_and_method_use_the_error_shape(lone: httpx.Client) -> None:
    assert_error(lone.get("/api/v1/nothing-here", headers=ADMIN), 404, "NOT_FOUND")
    assert_error(lone.put("/api/v1/agents", headers=ADMIN), 405, "METHOD_NOT_ALLOWED")


def test_rate_limit_per_token(lone: httpx.Client) -> None:
    token = bearer(make_token(lone, LONE_ADMIN, ["training:view"], rateLimitPerHour=2))
    first = lone.get(f"{TRAIN}/job-1", headers=token)
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert first.headers["X-RateLimit-Remaining"] == "1"
    assert int(first.headers["X-RateLimit-Reset"]) > time.time()
    lone.get(f"{TRAIN}/job-1", headers=token)
    r = lone.get(f"{TRAIN}/job-1", headers=token)
    err = assert_error(r, 429, "RATE_LIMIT_EXCEEDED")
    assert err["retryAfter"] > 0 and int(r.headers["Retry-After"]) == err["retryAfter"]


def test_unreachable_backend_is_503_never_500(lone: httpx.Client) -> None:
    for method, path, body in [
        ("GET", "/api/v1/agents", None), ("POST", "/api/v1/agents", {"agentId": "a"}),
        ("GET", "/api/v1/training/datasets", None),
        ("POST", "/api/v1/training/datasets", {"examples": [{"input": "a", "expected": "b"}]}),
        ("GET", "/api/v1/training/datasets/d/download", None),
        ("GET", f"{TRAIN}/job-1/events", None), ("POST", f"{TRAIN}/job-1/stop", None),
        ("POST", "/api/v1/agents/a/predict", {"input": "hi"}),
    ]:
        r = lone.request(method, path, headers=ADMIN, json=body)
        assert_error(r, 503, "SERVICE_UNAVAILABLE")


def test_port_zero_sigterm_and_private_admin_token(tmp_path) -> None:  # noqa: ANN001
    """Without TRAINHOUSE_BOOTSTRAP_TOKEN a token is generated (0600) and reused on restart."""
    gw = start_gateway(tmp_path / "home")
    try:
        token_file = tmp_path / "home" / "admin-token"
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        token = token_file.read_text().strip()
        r = httpx.get(f"{gw.url}/api/v1/auth/tokens", headers=bearer(token), timeout=10)
        assert r.status_code == 200
    finally:
        assert gw.stop() == 0
    gw = start_gateway(tmp_path / "home")
    try:
        assert token_file.read_text().strip() == token
        r = httpx.get(f"{gw.url}/api/v1/auth/tokens", headers=bearer(token), timeout=10)
        assert r.status_code == 200
    finally:
        gw.proc.send_signal(2)  # SIGINT (Ctrl-C) stops cleanly too
        assert gw.proc.wait(20) == 0
    assert "th_" not in (tmp_path / "home" / "gateway.log").read_text()
