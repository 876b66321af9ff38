"""Pure units of the gateway: no process, no network."""
from __future__ import annotations

import datetime as dt
import os
import stat

import pytest
from gateway.app import ROUTERS, create_app
from gateway.convert import human_duration, human_size
from gateway.ratelimit import Limit, RateLimiter
from gateway.routing import GatewayRoute
from gateway.scopes import FRAMEWORK_PUBLIC, http_routes
from gateway.settings import GatewaySettings
from gateway.surfaces.v1 import field_path, rpc_field
from gateway.tokens import TokenStore, ensure_bootstrap


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
    assert documented == served
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

    from gateway.surfaces.auth_routes import CreateTokenIn
    with pytest.raises(ValidationError):
        CreateTokenIn.model_validate({"name": "x", "scopes": scopes})
