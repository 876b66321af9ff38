"""Pure units of the gateway: no process, no network."""
from __future__ import annotations

import datetime as dt
import os
import stat

import pytest
from trainhouse.gateway.app import ROUTERS, create_app
from trainhouse.gateway.convert import human_duration, human_size
from trainhouse.gateway.ratelimit import Limit, RateLimiter
from trainhouse.gateway.routing import GatewayRoute
from trainhouse.gateway.scopes import FRAMEWORK_PUBLIC, UNDOCUMENTED, http_routes
from trainhouse.gateway.settings import GatewaySettings
from trainhouse.gateway.fields import field_path, rpc_field
from trainhouse.gateway.tokens import TokenStore, ensure_bootstrap


def _settings(tmp_path) -> GatewaySettings:  # noqa: ANN001
    return GatewaySettings(home=tmp_path, max_body_bytes=1024, rpc_timeout_s=1, rate_limit_per_hour=10,
                           jwt_secret=None, bootstrap_token=None, sse_keepalive_s=1)


def test_every_route_is_in_the_scope_table_and_back(tmp_path) -> None:
    served = set()
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, GatewayRoute), route.path
            served |= {(m, route.path) for m in route.methods}
    assert served == set(http_routes())
    documented = {(m.upper(), p) for p, ops in create_app(_settings(tmp_path)).openapi()["paths"].items() for m in ops}
    assert documented == served - UNDOCUMENTED
    for path in ("/openapi.json", "/docs"):
        assert ("GET", path) in FRAMEWORK_PUBLIC


def test_field_paths_use_the_callers_spelling() -> None:
    assert field_path(("body", "config", "learningRate")) == "learningRate"
    assert field_path(("body", "config")) == "config"
    assert field_path(("body", "examples", 3, "expected_output")) == "examples[3].expectedOutput"
    assert field_path(("query", "limit")) == "limit"
    assert rpc_field("config.learning_rate") == "learningRate"
    assert rpc_field("examples[2].input") == "examples[2].input"
    assert rpc_field("agent_id") == "agentId"
    assert rpc_field("config.curriculum.stages[1].level") == "curriculum.stages[1].level"
    assert rpc_field("") is None


def test_human_units() -> None:
    assert human_size(980) == "980B"
    assert human_size(1258291) == "1.2MB"
    assert human_size(450 * 1024 * 1024) == "450MB"
    assert human_duration(1) == "1 second"
    assert human_duration(119) == "2 minutes"
    assert human_duration(5400) == "1.5 hours"


def test_rate_limiter_spends_and_refills() -> None:
    clock = [1000.0]
    limiter = RateLimiter({}, wall=lambda: clock[0])
    decisions = [limiter.hit("t", Limit(3, 3600)) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    assert decisions[3].retry_after == 1200 and decisions[3].headers()["Retry-After"] == "1200"
    clock[0] += 1200  # one request's worth of refill (3 per hour)
    assert limiter.hit("t", Limit(3, 3600)).allowed
    assert limiter.hit("other", Limit(3, 3600)).allowed  # buckets are per key


def test_token_store_keeps_only_salted_digests(tmp_path) -> None:
    store = TokenStore(tmp_path / "gw.duckdb")
    try:
        token, record = store.create("ci", ["training:view"], "acct")
        assert token.startswith("th_") and len(token) > 40
        assert store.verify(token) == record
        assert store.verify(token + "x") is None
        raw = store.db.query("SELECT * FROM api_tokens")
        assert all(token not in str(cell) for row in raw for cell in row)
        past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
        _, old = store.create("old", ["admin"], "acct", expires_at=past)
        assert old.expired(dt.datetime.now(dt.timezone.utc))
        assert store.revoke(record.token_id).revoked
    finally:
        store.close()


def test_bootstrap_token_file_is_private_and_reused(tmp_path) -> None:
    store = TokenStore(tmp_path / "gw.duckdb")
    try:
        path = ensure_bootstrap(store, tmp_path, None)
        assert path is not None and stat.S_IMODE(os.stat(path).st_mode) == 0o600
        first = path.read_text().strip()
        assert store.verify(first) is not None
        ensure_bootstrap(store, tmp_path, None)
        assert path.read_text().strip() == first
        assert ensure_bootstrap(store, tmp_path, "env-token") is None
        assert store.verify("env-token") is not None and store.verify(first) is None
    finally:
        store.close()


@pytest.mark.parametrize("scopes", [[], ["nope"]])
def test_token_request_rejects_bad_scopes(scopes) -> None:  # noqa: ANN001
    from pydantic import ValidationError

    from trainhouse.gateway.surfaces.auth_routes import CreateTokenIn
    with pytest.raises(ValidationError):
        CreateTokenIn.model_validate({"name": "x", "scopes": scopes})


# ---- translations of the evaluation surfaces ------------------------------------------------

def test_seed_000_number_formats() -> None:
    from trainhouse.gateway.convert import human_latency, signed_percent

    assert [signed_percent(v) for v in (5, -20, 2.5, 0.0, -0.04, 12.345)] == ["+5%", "-20%", "+2.5%", "+0%", "+0%",
                                                                            "+12.3%"]
    assert [human_latency(v) for v in (1200, 3.42, 0.4212)] == ["1.2s", "3.4ms", "0.42ms"]


def test_evaluation_results_use_the_seed_names_first() -> None:
    from trainhouse.gateway.resources.evaluations import comparison_fields
    from trainhouse.gateway.surfaces.evaluation_v1 import comparison_json, results_json
    from trainhouse.v1 import evaluation_pb2

    results = results_json({"accuracy": 0.9, "macro_f1": 0.8, "f1": 0.8, "latency_mean_ms": 3.42,
                            "cost_per_task_usd": 2e-7, "latency_p95_ms": 5.0})
    assert results == {"accuracy": 0.9, "f1": 0.8, "costPerTask": 2e-7, "averageLatency": "3.4ms",
                       "latencyMeanMs": 3.42, "latencyP95Ms": 5.0}
    c = evaluation_pb2.BaselineComparison(available=True, baseline_version_id="v1.0.0", paired_examples=9,
                                          relative_change_percent={"accuracy": 5.0, "latency_mean_ms": -20.0,
                                                                   "log_loss": 3.0},
                                          improvements={"accuracy": 0.04, "latency_mean_ms": -0.5})
    out = comparison_json(comparison_fields(c))
    assert out["baseline"] == "v1.0.0" and out["improvements"] == {"accuracy": "+5%", "latency": "-20%"}
    assert out["differences"] == {"accuracy": 0.04, "latency": -0.5} and "accuracyPValue" not in out


def test_field_renames_and_template_slot_lists() -> None:
    from trainhouse.gateway.errors import rename_field
    from trainhouse.gateway.resources.datasets import wrap_slot_lists

    assert rename_field("suites[2]", {"suites": "benchmarks"}) == "benchmarks[2]"
    assert rename_field("datasetId", {"datasetId": "testSet"}) == "testSet"
    assert rename_field("suitesX", {"suites": "benchmarks"}) == "suitesX"
    template = {"outputs": [{"output": "a", "templates": ["{x}"], "slots": {"x": ["1", "2"]}}],
                "slots": {"y": ["3"], "z": {"values": ["4"]}}, "topics": [{"name": "t", "slots": {"x": ["5"]}}],
                "synonyms": {"hi": ["hello"]}}
    assert wrap_slot_lists(template) == {
        "outputs": [{"output": "a", "templates": ["{x}"], "slots": {"x": {"values": ["1", "2"]}}}],
        "slots": {"y": {"values": ["3"]}, "z": {"values": ["4"]}},
        "topics": [{"name": "t", "slots": {"x": {"values": ["5"]}}}], "synonyms": {"hi": {"values": ["hello"]}}}


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")  # TestClient on plain httpx
def test_metrics_are_admin_only_unless_made_public(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from fastapi.testclient import TestClient

    for name in ("TRAINING", "DATA", "EVALUATION", "REGISTRY"):
        monkeypatch.setenv(f"TRAINHOUSE_{name}_ADDR", "127.0.0.1:1")  # nothing listens: job counts are down
    for public, status in ((False, 401), (True, 200)):
        settings = replace(_settings(tmp_path / str(public)), metrics_public=public)
        settings.home.mkdir()
        with TestClient(create_app(settings)) as client:
            r = client.get("/metrics")
            assert r.status_code == status, r.text
            if public:
                assert "trainhouse_job_counts_up 0.0" in r.text and 'trainhouse_jobs{' not in r.text
                client.get("/healthz")
                again = client.get("/metrics").text
                assert 'route="/healthz",status="503"' in again and 'route="/metrics",status="200"' in again
                health = [line for line in again.splitlines()
                          if line.startswith("trainhouse_gateway_grpc_client_duration_seconds_count")
                          and 'method="/grpc.health.v1.Health/Check"' in line]
                assert health and all('code="UNAVAILABLE"' in line for line in health)
