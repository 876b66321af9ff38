"""Webhooks end to end: a second gateway (webhooks to loopback allowed, fast retries) in front of
the shared stack's services, and a small HTTP receiver in the test."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import LONE_ADMIN, bearer, make_token, start_gateway
from tests.intents import make_examples

SECRET = "test-webhook-secret-0123456789"


class Receiver:
    """Records every POST; paths starting /flaky answer 500 twice per event id, /down always 503."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.failures: dict[str, int] = defaultdict(int)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                event_id = self.headers.get("X-Trainhouse-Event-Id", "")
                status = 200
                with receiver.lock:
                    if self.path.startswith("/flaky") and receiver.failures[event_id] < 2:
                        receiver.failures[event_id] += 1
                        status = 500
                    elif self.path.startswith("/down"):
                        status = 503
                    receiver.calls.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                           "status": status})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ok(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.calls if c["path"] == path and c["status"] == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_until(check, timeout: float = 90) -> Any:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"condition not met in {timeout} s")


def verify_signature(call: dict[str, Any]) -> dict[str, Any]:
    header = call["headers"]["X-Trainhouse-Signature"]
    parts = dict(p.split("=", 1) for p in header.split(","))
    assert parts["t"] == call["headers"]["X-Trainhouse-Timestamp"]
    expected = hmac.new(SECRET.encode(), parts["t"].encode() + b"." + call["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    body = json.loads(call["body"])
    assert body["id"] == call["headers"]["X-Trainhouse-Event-Id"]
    return body


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_webhooks_deliver_sign_retry_and_survive_a_restart(stack, receiver: Receiver, tmp_path) -> None:  # noqa: ANN001
    account = f"wh-{uuid.uuid4().hex[:8]}"
    env = {"TRAINHOUSE_BOOTSTRAP_TOKEN": LONE_ADMIN, "TRAINHOUSE_WEBHOOK_ALLOW_PRIVATE": "1",
           "TRAINHOUSE_WEBHOOK_BACKOFF_S": "0.05", "TRAINHOUSE_WEBHOOK_MAX_ATTEMPTS": "3",
           "TRAINHOUSE_WEBHOOK_RECONNECT_S": "0.1"}
    for name in ("training", "data", "evaluation", "registry"):
        env[f"TRAINHOUSE_{name.upper()}_ADDR"] = stack.address(name)
    # Jobs start on the shared gateway under the webhook account; the second gateway only delivers.
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as boot:
        trainer = bearer(make_token(boot, stack.admin_token, ["training:start", "training:view"], account=account,
                                    rateLimitPerHour=0))

    def run_job(epochs: int) -> str:
        with httpx.Client(base_url=stack.gateway_url, headers=trainer, timeout=30) as c:
            r = c.post("/api/v1/training/train-agent", json={
                "agentId": f"wh-agent-{uuid.uuid4().hex[:6]}", "config": {"epochs": epochs},
                "examples": [e for e in make_examples(10, seed=1) if e["expected_output"] != "account"]})
            assert r.status_code == 200, r.text
            return r.json()["data"]["trainingJobId"]

    gw = start_gateway(tmp_path / "wh-home", env)
    try:
        with httpx.Client(base_url=gw.url, timeout=30) as c:
            me = bearer(make_token(c, LONE_ADMIN, ["training:view"], account=account))
            hooks = {}
            for path, body in (("/all", {"events": ["*"], "progressEvery": 2, "secret": SECRET}),
                               ("/rpc", {"events": ["training.job.completed"], "secret": SECRET}),
                               ("/flaky", {"events": ["training.completed"], "secret": SECRET}),
                               ("/down", {"events": ["training.completed"], "format": "functions"})):
                r = c.post("/api/v1/webhooks", headers=me, json={"url": receiver.url + path, **body})
                assert r.status_code == 201, r.text
                hooks[path] = r.json()["data"]
            assert hooks["/rpc"]["format"] == "jsonrpc" and hooks["/all"]["format"] == "v1"
            assert "secret" not in hooks["/all"] and hooks["/down"]["secret"].startswith("whsec_")
            listed = c.get("/api/v1/webhooks", headers=me).json()["data"]["webhooks"]
            assert {h["webhookId"] for h in listed} == {h["webhookId"] for h in hooks.values()}
            assert all("secret" not in h for h in listed)

            job1 = run_job(epochs=5)
            completed = wait_until(lambda: [b for b in (json.loads(x["body"]) for x in receiver.ok("/all"))
                                            if b["event"] == "training.completed" and b["data"]["jobId"] == job1])
            bodies = [verify_signature(x) for x in receiver.ok("/all")]
            mine = [b for b in bodies if b["data"]["jobId"] == job1]
            events = [b["event"] for b in mine]
            assert events[0] == "training.started" and events[-1] == "training.completed"
            assert [b["data"]["epoch"] for b in mine if b["event"] == "training.progress"] == [2, 4, 5]
            data = completed[0]["data"]
            assert data["status"] == "completed" and data["agentId"].startswith("wh-agent-")
            assert data["modelVersion"] and 0 <= data["metrics"]["finalAccuracy"] <= 1
            assert data["metrics"]["trainingTime"] and completed[0]["timestamp"].endswith("Z")
            rpc_body = wait_until(lambda: receiver.ok("/rpc"))[0]
            rpc_payload = verify_signature(rpc_body)
            assert rpc_payload["event"] == "training.job.completed" and rpc_payload["data"]["job_id"] == job1
            assert "final_metrics" in rpc_payload["data"]

            # /flaky: two 500s, then delivered with the same event id; /down: gives up after 3 attempts.
            flaky = wait_until(lambda: receiver.ok("/flaky"))
            assert len({x["headers"]["X-Trainhouse-Event-Id"] for x in receiver.calls if x["path"] == "/flaky"}) == 1
            assert flaky[0]["headers"]["X-Trainhouse-Attempt"] == "3"
            log = wait_until(lambda: [d for d in c.get(f"/api/v1/webhooks/{hooks['/flaky']['webhookId']}/deliveries",
                                                       headers=me).json()["data"]["deliveries"]
                                      if d["status"] == "delivered"])
            assert log[0]["attempts"] == 3 and log[0]["responseStatus"] == 200 and log[0]["deliveredAt"]
            failed = wait_until(lambda: c.get(f"/api/v1/webhooks/{hooks['/down']['webhookId']}/deliveries",
                                              params={"status": "failed"}, headers=me).json()["data"]["deliveries"])
            assert failed[0]["attempts"] == 3 and failed[0]["responseStatus"] == 503
            assert failed[0]["lastError"] == "HTTP 503"
            # Another account cannot see or delete these webhooks.
            stranger = bearer(make_token(c, LONE_ADMIN, ["training:view"], account="someone-else"))
            assert c.get(f"/api/v1/webhooks/{hooks['/all']['webhookId']}", headers=stranger).status_code == 404
            assert c.delete(f"/api/v1/webhooks/{hooks['/down']['webhookId']}", headers=stranger).status_code == 404
            assert c.delete(f"/api/v1/webhooks/{hooks['/down']['webhookId']}", headers=me).status_code == 200
            assert c.get(f"/api/v1/webhooks/{hooks['/down']['webhookId']}", headers=me).status_code == 404
    finally:
        assert gw.stop() == 0

    # While the webhook gateway is down, another job runs to the end.
    job2 = run_job(epochs=2)
    with httpx.Client(base_url=stack.gateway_url, headers=trainer, timeout=30) as c:
        wait_until(lambda: c.get(f"/api/v1/training/train-agent/{job2}").json()["data"]["status"] == "completed")
    before = len(receiver.ok("/all"))
    gw = start_gateway(tmp_path / "wh-home", env)
    try:
        wait_until(lambda: any(json.loads(x["body"])["event"] == "training.completed"
                               and json.loads(x["body"])["data"]["jobId"] == job2 for x in receiver.ok("/all")))
        time.sleep(0.5)
    finally:
        assert gw.stop() == 0
    # Nothing lost (job 2 arrived after the restart) and nothing flooded (no event id twice).
    ids = [x["headers"]["X-Trainhouse-Event-Id"] for x in receiver.ok("/all")]
    assert len(ids) == len(set(ids)) and len(ids) > before
    assert {json.loads(x["body"])["data"]["jobId"] for x in receiver.ok("/all")[before:]} == {job2}


def test_the_follower_streams_epoch_events_only_while_a_subscription_wants_progress() -> None:
    from trainhouse.gateway.webhooks.dispatcher import source_kinds
    from trainhouse.gateway.webhooks.store import Webhook

    def hook(*events: str) -> Webhook:
        return Webhook("wh-1", "acct", "https://example.com/", events, "s", "v1", 1, 0.0, True)

    assert "epoch" not in source_kinds([])
    assert "epoch" not in source_kinds([hook("training.completed"), hook("model.promoted")])
    assert "epoch" in source_kinds([hook("training.completed"), hook("training.progress")])
    assert "epoch" in source_kinds([hook("*")])
    assert set(source_kinds([])) == {"status", "budget", "promotion"}
