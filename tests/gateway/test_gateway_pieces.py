"""Units of the new gateway pieces: limits, URL signing, webhook URL checks and payloads."""
from __future__ import annotations

import asyncio
import random

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from trainhouse.gateway.ratelimit import (
    EVALUATIONS,
    GENERATION,
    REQUESTS,
    Limit,
    RateLimiter,
    limits_from_env,
    rpc_group,
    tightest,
)
from trainhouse.gateway.scopes import ROUTE_SCOPES, jsonrpc_methods
from trainhouse.gateway.settings import WebhookSettings
from trainhouse.gateway.signing import UrlSigner
from trainhouse.gateway.surfaces import jsonrpc
from trainhouse.gateway.surfaces.functions import function_names
from trainhouse.gateway.webhooks import payloads, urls
from trainhouse.gateway.webhooks.dispatcher import backoff, sign
from trainhouse.common.duckdb_store import DuckStore
from trainhouse.v1 import job_state_pb2, training_job_pb2


def test_seed_default_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RATE_LIMIT_PER_HOUR", "RATE_LIMIT_GENERATED_EXAMPLES_PER_HOUR", "RATE_LIMIT_EVALUATIONS_PER_DAY"):
        monkeypatch.delenv(f"TRAINHOUSE_{name}", raising=False)
    limits = limits_from_env()
    assert limits[REQUESTS] == Limit(1000, 3600)
    assert limits[GENERATION] == Limit(10_000, 3600)
    assert limits[EVALUATIONS] == Limit(100, 86400)
    assert {m: limits[rpc_group(m)].capacity for m in jsonrpc.RPC_METHODS_OF_SEED} == {
        "training.start_grpo": 10, "training.get_status": 100, "training.cancel": 20, "training.evaluate": 5,
        "training.export_trajectories": 10}
    assert all(limits[rpc_group(m)].window_s == 60 for m in jsonrpc.RPC_METHODS_OF_SEED)
    monkeypatch.setenv("TRAINHOUSE_RATE_LIMIT_RPC_GET_STATUS_PER_MINUTE", "7")
    monkeypatch.setenv("TRAINHOUSE_RATE_LIMIT_EVALUATIONS_PER_DAY", "0")
    limits = limits_from_env()
    assert limits[rpc_group("training.get_status")].capacity == 7
    assert RateLimiter(limits).limit_of(EVALUATIONS) is None  # 0 disables a group


def test_count_weighted_spending_is_all_or_nothing() -> None:
    clock = [0.0]
    limiter = RateLimiter({}, wall=lambda: clock[0])
    hourly = Limit(10_000, 3600)
    assert limiter.hit("t", hourly, 6000, GENERATION).allowed
    refused = limiter.hit("t", hourly, 6000, GENERATION)
    assert not refused.allowed and refused.remaining == 4000  # nothing spent by a refusal
    assert refused.retry_after == 720  # 2000 examples at 10,000/hour
    assert limiter.hit("t", hourly, 4000, GENERATION).allowed
    too_big = limiter.hit("t", hourly, 10_001, GENERATION)
    assert too_big.impossible and not too_big.allowed
    # Other groups and tokens are separate buckets.
    assert limiter.hit("t", Limit(1, 60), 1, REQUESTS).allowed
    assert limiter.hit("u", hourly, 10_000, GENERATION).allowed


def test_token_overrides() -> None:
    limiter = RateLimiter({REQUESTS: Limit(1000, 3600), EVALUATIONS: Limit(100, 86400)})
    assert limiter.limit_of(REQUESTS, 5) == Limit(5, 3600)
    assert limiter.limit_of(EVALUATIONS, 5) == Limit(100, 86400)
    assert limiter.limit_of(EVALUATIONS, 0) is None and limiter.limit_of(REQUESTS, 0) is None


def test_tightest_shows_a_refusal_else_the_least_left() -> None:
    limiter = RateLimiter({})
    a = limiter.hit("t", Limit(1000, 3600))
    b = limiter.hit("t", Limit(100, 60), group=rpc_group("training.get_status"))
    assert tightest([a, b]).limit == 100
    c = limiter.hit("t", Limit(1, 60), group="x")
    d = limiter.hit("t", Limit(1, 60), group="x")
    assert tightest([a, c, d]) is d and not d.allowed


def test_buckets_survive_a_new_limiter_on_the_same_file(tmp_path) -> None:  # noqa: ANN001
    db = DuckStore(tmp_path / "gw.duckdb", [])
    clock = [100.0]
    first = RateLimiter({}, db, wall=lambda: clock[0])
    for _ in range(3):
        assert first.hit("t", Limit(3, 3600)).allowed
    assert first.flush() == 1
    second = RateLimiter({}, db, wall=lambda: clock[0])
    assert not second.hit("t", Limit(3, 3600)).allowed
    clock[0] += 1200
    assert second.hit("t", Limit(3, 3600)).allowed
    db.close()


def test_signed_urls(tmp_path) -> None:  # noqa: ANN001
    db = DuckStore(tmp_path / "gw.duckdb", [])
    clock = [1_000_000.0]
    signer = UrlSigner(db, ttl_s=60, wall=lambda: clock[0])
    url, expires = signer.sign("http://h:1/", "/api/v1/training/datasets/d1/download", "acct-a", "data:export")
    assert url.startswith("http://h:1/api/v1/training/datasets/d1/download?expires=") and expires == 1_000_060
    query = dict(p.split("=") for p in url.split("?")[1].split("&"))
    path = "/api/v1/training/datasets/d1/download"
    exp, sig = query["expires"], query["signature"]
    assert query["account"] == "acct-a" and query["scope"] == "data%3Aexport"
    caller = signer.verify("GET", path, exp, "acct-a", "data:export", sig)
    assert caller is not None and caller.account == "acct-a" and caller.scopes == {"data:export"}
    assert not caller.is_admin
    assert not signer.verify("GET", path.replace("d1", "d2"), exp, "acct-a", "data:export", sig)
    assert not signer.verify("GET", path, str(expires + 1), "acct-a", "data:export", sig)
    # The account and the scope are signed: neither can be changed.
    assert not signer.verify("GET", path, exp, "acct-b", "data:export", sig)
    assert not signer.verify("GET", path, exp, "acct-a", "admin", sig)
    assert not signer.verify("GET", path, exp, "acct-a", "data:export", sig[:-1] + ("1" if sig[-1] == "0" else "0"))
    assert not signer.verify("GET", path, "abc", "acct-a", "data:export", sig)
    assert not signer.verify("GET", path, None, None, None, None)
    # The key persists, so links survive a restart; they expire.
    again = UrlSigner(db, ttl_s=60, wall=lambda: clock[0])
    assert again.verify("GET", path, exp, "acct-a", "data:export", sig)
    clock[0] += 61
    assert not again.verify("GET", path, exp, "acct-a", "data:export", sig)
    db.close()


@pytest.mark.parametrize("url", ["http://127.0.0.1/x", "http://10.1.2.3/", "http://192.168.0.1:8080/",
                                 "http://169.254.169.254/latest", "http://[::1]/", "http://0.0.0.0/",
                                 "http://100.64.0.1/", "http://[::ffff:127.0.0.1]/", "http://localhost/",
                                 "http://224.0.0.1/"])
def test_private_webhook_urls_are_refused(url: str) -> None:
    with pytest.raises(urls.UrlRefused):
        asyncio.run(urls.check(url, allow_private=False))
    if "224." not in url and "0.0.0.0" not in url:
        asyncio.run(urls.check(url, allow_private=True))


@pytest.mark.parametrize("url", ["ftp://example.com/", "http:///nohost", "javascript:alert(1)", "http://h:99999/"])
def test_malformed_webhook_urls_are_refused(url: str) -> None:
    with pytest.raises(urls.UrlRefused):
        asyncio.run(urls.check(url, allow_private=True))


def test_public_address_is_allowed() -> None:
    asyncio.run(urls.check("https://93.184.215.14/hook", allow_private=False))


def test_signature_and_backoff() -> None:
    import hashlib
    import hmac
    header = sign("s3cret", 1700000000, b'{"a":1}')
    expected = hmac.new(b"s3cret", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    settings = WebhookSettings(backoff_base_s=2, backoff_max_s=30)
    rng = random.Random(1)
    delays = [backoff(n, settings, rng) for n in range(1, 8)]
    for n, d in enumerate(delays, start=1):
        full = min(30, 2 * 2 ** (n - 1))
        assert full / 2 <= d <= full


def _event(**kw) -> training_job_pb2.JobEvent:  # noqa: ANN003
    ev = training_job_pb2.JobEvent(sequence=3, job_id="job-1", cursor=42, agent_id="a", account_id="acct",
                                   time=Timestamp(seconds=1_700_000_000), **kw)
    return ev


def test_events_classify_and_payloads() -> None:
    running = _event(status=training_job_pb2.StatusChange(state=job_state_pb2.JOB_STATE_RUNNING))
    assert payloads.classify(running) == payloads.STARTED
    queued = _event(status=training_job_pb2.StatusChange(state=job_state_pb2.JOB_STATE_QUEUED))
    assert payloads.classify(queued) is None
    epoch = _event(epoch=training_job_pb2.EpochEnd(epoch=2, total_epochs=4, metrics={"loss": 0.5}))
    assert payloads.classify(epoch) == payloads.PROGRESS
    done = _event(status=training_job_pb2.StatusChange(state=job_state_pb2.JOB_STATE_COMPLETED, terminal=True))
    job = training_job_pb2.TrainingJob(job_id="job-1", agent_id="a", state=job_state_pb2.JOB_STATE_COMPLETED,
                                       metrics={"validation_accuracy": 0.9, "loss": 0.1, "training_seconds": 95},
                                       model_version_id="v1.0.0")
    v1 = payloads.build(payloads.COMPLETED, "v1", done, job)
    data = v1.pop("data")
    assert v1 == {"id": "evt-42", "event": "training.completed", "timestamp": "2023-11-14T22:13:20Z"}
    # The seed's fields, on top of the event's own (tests/gateway/test_event_rendering.py).
    assert data == {"sequence": 3, "jobId": "job-1", "agentId": "a", "time": "2023-11-14T22:13:20Z",
                    "type": "status", "status": "completed", "reason": None, "message": None, "terminal": True,
                    "modelVersion": "v1.0.0",
                    "metrics": {"validationAccuracy": 0.9, "loss": 0.1, "trainingSeconds": 95,
                                "finalAccuracy": 0.9, "finalLoss": 0.1, "trainingTime": "2 minutes"}}
    rpc = payloads.build(payloads.COMPLETED, "jsonrpc", done, job)
    assert rpc["event"] == "training.job.completed" and rpc["data"]["final_metrics"]["validation_accuracy"] == 0.9
    fn = payloads.build(payloads.COMPLETED, "functions", done, job)
    assert fn["job_id"] == "job-1" and fn["results"]["model_version"] == "v1.0.0"
    assert fn["results"]["training_time_ms"] == 95000
    progress = payloads.build(payloads.PROGRESS, "v1", epoch, None)
    assert progress["data"]["epoch"] == 2 and progress["data"]["progress"] == 0.5
    assert payloads.normalize("training.job.failed") == payloads.FAILED and payloads.normalize("x") is None


def test_the_follower_asks_for_every_kind_a_webhook_event_comes_from() -> None:
    """The dispatcher streams only payloads.SOURCE_KINDS: every other kind, in any state, must
    classify as no webhook event, or filtering would drop deliveries."""
    for field in training_job_pb2.JobEvent.DESCRIPTOR.oneofs_by_name["payload"].fields:
        if field.name in payloads.SOURCE_KINDS:
            continue
        ev = training_job_pb2.JobEvent(job_id="job-1", cursor=1)
        getattr(ev, field.name).SetInParent()
        assert payloads.classify(ev) is None, field.name
    for kind in payloads.SOURCE_KINDS:
        assert kind in training_job_pb2.JobEvent.DESCRIPTOR.fields_by_name


def test_jsonrpc_methods_and_functions_have_scopes() -> None:
    assert set(jsonrpc.METHODS) <= set(jsonrpc_methods())
    for name in function_names():
        assert ("POST", f"/api/v1/functions/{name}") in ROUTE_SCOPES


def test_budget_warnings_become_webhook_events() -> None:
    warn = _event(budget=training_job_pb2.BudgetUpdate(cost_usd=37.5, budget_usd=50, fraction=0.75,
                                                       level="warning_75"))
    assert payloads.classify(warn) == payloads.BUDGET_WARNING
    exceeded = _event(budget=training_job_pb2.BudgetUpdate(cost_usd=51, budget_usd=50, fraction=1.02,
                                                           level="exceeded"))
    assert payloads.classify(exceeded) is None  # the job fails with budget_exceeded: training.failed
    rpc = payloads.build(payloads.BUDGET_WARNING, "jsonrpc", warn, None)
    assert rpc["event"] == "training.budget.warning"
    assert rpc["data"] == {"sequence": 3, "job_id": "job-1", "agent_id": "a", "time": "2023-11-14T22:13:20Z",
                           "type": "budget", "fraction": 0.75, "level": "warning_75",
                           "status": "running", "cost_usd": "37.50",
                           "budget_usd": "50.00", "budget_used_percent": 75.0, "threshold_percent": 75}
    assert payloads.build(payloads.BUDGET_WARNING, "v1", warn, None)["data"]["thresholdPercent"] == 75
