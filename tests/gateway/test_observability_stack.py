"""Request ids across hops and the Prometheus /metrics endpoint, over the real services."""
from __future__ import annotations

import json
import re
import time
import uuid

import httpx

from tests.gateway.conftest import Trained, bearer, make_token


def _log_lines(path, request_id: str) -> list[dict]:  # noqa: ANN001
    out = []
    for line in path.read_text().splitlines():
        if request_id in line:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return [x for x in out if x.get("request_id") == request_id]


def test_a_request_id_follows_the_call_into_every_service(stack, admin_api: httpx.Client,  # noqa: ANN001
                                                          trained: Trained) -> None:
    rid = f"test-{uuid.uuid4().hex[:12]}"
    r = admin_api.post("/api/v1/training/evaluate-agent", headers={"X-Request-Id": rid},
                       json={"agentId": trained.agent, "evaluationType": "quick"})
    assert r.status_code == 200 and r.headers["X-Request-Id"] == rid, r.text
    generated = admin_api.get(f"/api/v1/training/train-agent/{trained.jobs[0]}")
    own = generated.headers["X-Request-Id"]
    logs = stack.home / "logs"
    deadline = time.monotonic() + 10
    while True:  # log lines are flushed as written; allow for the file system
        evaluation = _log_lines(logs / "evaluation.log", rid)
        registry = _log_lines(logs / "registry.log", rid)
        training = _log_lines(logs / "training.log", own)
        if (evaluation and registry and training) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    # gateway -> EvaluationService, and EvaluationService -> ModelRegistry (Predict) with the same id.
    assert any(x["method"] == "/trainhouse.v1.EvaluationService/Evaluate" for x in evaluation), evaluation
    assert any(x["method"] == "/trainhouse.v1.ModelRegistry/Predict" for x in registry), registry
    assert any(x["method"] == "/trainhouse.v1.TrainingService/GetJob" for x in training), training
    gateway = _log_lines(logs / "gateway.log", rid)
    assert any(x["msg"] == "request" and x["path"] == "/api/v1/training/evaluate-agent" for x in gateway)


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample of `name` whose labels include `labels` (label order does not matter)."""
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if m:
            got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1) or ""))
            if all(got.get(k) == v for k, v in labels.items()):
                return float(m.group(2))
    return None


def test_metrics_need_admin_and_show_routes_rpcs_jobs_and_rejections(stack, trained: Trained) -> None:  # noqa: ANN001
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as c:
        assert c.get("/metrics").status_code == 401
        viewer = bearer(make_token(c, stack.admin_token, ["training:view"]))
        assert c.get("/metrics", headers=viewer).status_code == 403
        c.get(f"/api/v1/training/train-agent/{trained.jobs[0]}", headers=viewer)
        c.get("/api/v1/training/train-agent/job-nope", headers=viewer)
        limited = bearer(make_token(c, stack.admin_token, ["training:view"], rateLimitPerHour=1))
        c.get("/api/v1/agents", headers=limited)
        assert c.get("/api/v1/agents", headers=limited).status_code == 429
        admin = bearer(stack.admin_token)
        r = c.get("/metrics", headers=admin)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    http = "trainhouse_gateway_http_request_duration_seconds_count"
    route = "/api/v1/training/train-agent/{jobId}"
    assert sample(text, http, method="GET", route=route, status="200") >= 1
    assert sample(text, http, method="GET", route=route, status="404") >= 1
    assert sample(text, http, method="GET", route="/api/v1/agents", status="429") >= 1
    rpc = "trainhouse_gateway_grpc_client_duration_seconds"
    assert sample(text, rpc + "_count", method="/trainhouse.v1.TrainingService/GetJob", code="OK") >= 1
    assert sample(text, rpc + "_count", method="/trainhouse.v1.TrainingService/GetJob", code="NOT_FOUND") >= 1
    assert sample(text, rpc + "_bucket", method="/trainhouse.v1.TrainingService/GetJob", code="OK", le="+Inf") >= 1
    assert sample(text, "trainhouse_gateway_rate_limit_rejections_total", group="requests") >= 1
    assert sample(text, "trainhouse_jobs", state="completed") >= 3
    assert all(sample(text, "trainhouse_jobs", state=state) is not None for state in ("queued", "running", "failed"))
    assert sample(text, "trainhouse_job_queue_depth") >= 0
    assert sample(text, "trainhouse_job_counts_up") == 1
