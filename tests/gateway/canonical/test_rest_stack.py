"""The canonical API (/v1) over real HTTP to the real stack: its conventions (error shape, keyset
pages, Idempotency-Key, operations) and each resource family."""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import bearer, make_token
from tests.intents import make_examples

CONFIG = {"method": "supervised", "epochs": 3, "batch_size": 16, "learning_rate": 0.01, "validation_split": 0.2,
          "seed": 3}


@pytest.fixture(scope="module")
def api(stack) -> httpx.Client:  # noqa: ANN001
    with httpx.Client(base_url=stack.gateway_url, headers=bearer(stack.admin_token), timeout=60) as c:
        yield c


def error_of(r: httpx.Response, status: int, code: str, param: str | None = None) -> dict[str, Any]:
    """The one error shape, with the request id the response header also carries."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "param", "request_id"}, body
    assert body["error"]["code"] == code and body["error"]["message"], body
    assert body["error"]["request_id"] == r.headers["X-Request-Id"]
    if param is not None:
        assert body["error"]["param"] == param, body
    return body["error"]


def wait_done(api: httpx.Client, job_id: str, timeout: float = 180) -> dict[str, Any]:
    """Wait until the job stops moving: it ended, or it is paused (not terminal, but idle)."""
    deadline = time.monotonic() + timeout
    while True:
        job = api.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in ("completed", "failed", "cancelled", "paused"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


@pytest.fixture(scope="module")
def trio(api: httpx.Client) -> dict[str, Any]:
    """Three small jobs of one agent, with labels, finished."""
    agent = f"canon-{uuid.uuid4().hex[:8]}"
    jobs = []
    for i, team in enumerate(("red", "blue", "red")):
        r = api.post("/v1/jobs", json={"agent_id": agent, "examples": make_examples(12, seed=i),
                                       "labels": {"team": team}, "config": {**CONFIG, "learning_rate": 0.01 * (i + 1)}})
        assert r.status_code == 201, r.text
        jobs.append(r.json()["job_id"])
    finished = [wait_done(api, j) for j in jobs]
    assert all(j["state"] == "completed" for j in finished), finished
    return {"agent": agent, "jobs": jobs, "finished": finished}


# ---- conventions --------------------------------------------------------------------------------

def test_errors_have_one_shape(api: httpx.Client, stack) -> None:  # noqa: ANN001
    error_of(api.get("/v1/jobs/nope-" + uuid.uuid4().hex[:6]), 404, "not_found")
    error_of(api.post("/v1/jobs", json={"agent_id": "a", "config": {"epochs": "ten"}}), 400, "invalid_request",
             "config.epochs")
    error_of(api.post("/v1/jobs", json={"agent_id": "a", "bogus": 1}), 400, "invalid_request", "bogus")
    error_of(api.post("/v1/jobs", content=b"{not json", headers={"Content-Type": "application/json"}), 400,
             "invalid_json")
    error_of(httpx.get(stack.gateway_url + "/v1/jobs"), 401, "unauthenticated")
    viewer = make_token(api, stack.admin_token, ["training:view"])
    error_of(httpx.post(stack.gateway_url + "/v1/jobs", json={"agent_id": "a"}, headers=bearer(viewer)), 403,
             "permission_denied")
    # A service's own refusal names the proto field.
    error_of(api.post("/v1/jobs", json={"agent_id": "a", "examples": [], "config": CONFIG}), 400, "invalid_request")


def test_a_finished_job_cannot_be_cancelled_409(api: httpx.Client, trio: dict) -> None:
    error_of(api.post(f"/v1/jobs/{trio['jobs'][0]}/cancel"), 409, "failed_precondition")
    error_of(api.post(f"/v1/jobs/{trio['jobs'][0]}/pause"), 409, "failed_precondition")


def test_idempotency_key_replays_the_create_and_refuses_another_body(api: httpx.Client) -> None:
    agent = f"idem-{uuid.uuid4().hex[:8]}"
    body = {"agent_id": agent, "examples": make_examples(8, seed=5), "config": {**CONFIG, "epochs": 1}}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = api.post("/v1/jobs", json=body, headers=key)
    again = api.post("/v1/jobs", json=body, headers=key)
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert again.json()["job_id"] == first.json()["job_id"] and again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    error_of(api.post("/v1/jobs", json={**body, "display_name": "other"}, headers=key), 409, "idempotency_key_reused",
             "Idempotency-Key")
    listed = api.get("/v1/jobs", params={"agent_id": agent}).json()["data"]
    assert [j["job_id"] for j in listed] == [first.json()["job_id"]]  # one job, not two
    # A failed create keeps nothing: the key works for a corrected body afterwards.
    key2 = {"Idempotency-Key": uuid.uuid4().hex}
    error_of(api.post("/v1/jobs", json={**body, "examples": []}, headers=key2), 400, "invalid_request")
    assert api.post("/v1/jobs", json={**body, "examples": []}, headers=key2).status_code == 400
    wait_done(api, first.json()["job_id"])


def test_jobs_page_by_cursor_filter_and_order(api: httpx.Client, trio: dict) -> None:
    seen, cursor, pages = [], None, 0
    while True:
        r = api.get("/v1/jobs", params={"agent_id": trio["agent"], "limit": 1, **({"after": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        page = r.json()
        assert set(page) == {"data", "has_more", "next_cursor"} and len(page["data"]) <= 1
        seen += [j["job_id"] for j in page["data"]]
        pages += 1
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
    assert sorted(seen) == sorted(trio["jobs"]) and len(seen) == len(set(seen)) and pages >= 3
    assert seen == list(reversed(trio["jobs"]))  # default order: newest first
    r = api.get("/v1/jobs", params={"filter": f'agent_id = "{trio["agent"]}" AND labels.team = "red"',
                                    "order_by": "config.learning_rate desc", "include_total": "true"})
    assert r.status_code == 200, r.text
    assert [j["job_id"] for j in r.json()["data"]] == [trio["jobs"][2], trio["jobs"][0]]
    assert r.headers["X-Total-Count"] == "2"
    error_of(api.get("/v1/jobs", params={"filter": "state = "}), 400, "invalid_request", "filter")
    error_of(api.get("/v1/jobs", params={"after": "garbage"}), 400, "invalid_request")
    r = api.get("/v1/jobs", params={"agent_id": trio["agent"], "state": "completed"})
    assert len(r.json()["data"]) == 3


# ---- events -----------------------------------------------------------------------------------

def test_events_page_oldest_first_and_resume_as_sse(api: httpx.Client, trio: dict) -> None:
    job_id = trio["jobs"][0]
    everything, after = [], 0
    while True:
        page = api.get(f"/v1/jobs/{job_id}/events", params={"after": after, "limit": 5}).json()
        everything += page["data"]
        if not page["has_more"]:
            break
        after = int(page["next_cursor"])
    seqs = [e["sequence"] for e in everything]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    assert everything[-1]["type"] == "status" and everything[-1]["terminal"] is True
    assert {"epoch", "metric", "checkpoint"} <= {e["type"] for e in everything}
    # SSE from the middle: Last-Event-ID wins over ?after, and the stream ends after the terminal event.
    middle = seqs[len(seqs) // 2]
    with api.stream("GET", f"/v1/jobs/{job_id}/events/stream", params={"after": 0},
                    headers={"Last-Event-ID": str(middle)}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        frames = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    assert [f["sequence"] for f in frames] == [s for s in seqs if s > middle]
    assert frames == [e for e in everything if e["sequence"] > middle]  # one mapping for both
    error_of(api.get(f"/v1/jobs/{job_id}/events/stream", headers={"Last-Event-ID": "x"}), 400, "invalid_request")
    error_of(api.get("/v1/jobs/nope/events/stream"), 404, "not_found")


# ---- checkpoints, metrics, pause/resume -------------------------------------------------------

def test_checkpoints_register_and_metrics(api: httpx.Client, trio: dict) -> None:
    job_id = trio["jobs"][1]
    cps = api.get(f"/v1/jobs/{job_id}/checkpoints").json()["data"]
    assert cps and all(c["job_id"] == job_id for c in cps)
    r = api.post(f"/v1/jobs/{job_id}/checkpoints/best/register", json={"note": "best of run"})
    assert r.status_code == 201, r.text
    version = r.json()
    assert version["job_id"] == job_id and version["tags"]["note"] == "best of run" and version["checkpoint"]
    again = api.post(f"/v1/jobs/{job_id}/checkpoints/best/register", json={"note": "best of run"}).json()
    assert again["version_id"] == version["version_id"]  # idempotent per checkpoint
    points = api.get(f"/v1/jobs/{job_id}/metrics", params={"names": ["loss"], "limit": 2}).json()
    assert points["data"] and {p["name"] for p in points["data"]} == {"loss"} and points["has_more"]
    csv_text = api.get(f"/v1/jobs/{job_id}/metrics", params={"format": "csv", "names": ["loss"]}).text
    assert csv_text.splitlines()[0] == "name,value,epoch,step,time"
    assert all(line.startswith("loss,") for line in csv_text.splitlines()[1:])
    error_of(api.get(f"/v1/jobs/{job_id}/metrics", params={"format": "xml"}), 400, "invalid_request", "format")


def test_pause_keeps_a_checkpoint_and_resume_continues(api: httpx.Client) -> None:
    agent = f"pause-{uuid.uuid4().hex[:8]}"
    r = api.post("/v1/jobs", json={"agent_id": agent, "examples": make_examples(40, seed=9),
                                   "config": {**CONFIG, "epochs": 400, "early_stopping": False,
                                              "checkpoint_interval": 1000}})
    job_id = r.json()["job_id"]
    with api.stream("GET", f"/v1/jobs/{job_id}/events/stream") as stream:
        for line in stream.iter_lines():
            if line.startswith("event: epoch"):
                break  # training is under way
    paused = api.post(f"/v1/jobs/{job_id}/pause")
    assert paused.status_code == 200, paused.text
    body = paused.json()
    if body["job"]["state"] == "completed":  # (finished before the pause reached it)
        pytest.skip("the job finished before it could be paused")
    assert body["checkpoint_saved"] is True and body["checkpoint_id"], body
    assert body["job"]["state"] == "paused", body  # the answer comes once the worker saved and exited
    job = wait_done(api, job_id)
    assert job["state"] == "paused" and job["status_reason"] == "paused" and job["ended_at"] is None, job
    error_of(api.post(f"/v1/jobs/{job_id}/pause"), 409, "failed_precondition")  # already paused
    stopped_at = job["current_step"]
    resumed = api.post(f"/v1/jobs/{job_id}/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["checkpoint_id"] == body["checkpoint_id"]
    api.post(f"/v1/jobs/{job_id}/cancel")  # do not train 400 epochs: stop it for good
    final = wait_done(api, job_id)
    assert final["current_step"] >= stopped_at and final["state"] in ("cancelled", "completed"), final
    events = api.get(f"/v1/jobs/{job_id}/events", params={"limit": 1000}).json()["data"]
    statuses = [(e["state"], e.get("reason"), e["terminal"]) for e in events if e["type"] == "status"]
    assert ("paused", "paused", False) in statuses and ("queued", "resumed", False) in statuses, statuses
    # A finished job cannot be paused: 409.
    error_of(api.post(f"/v1/jobs/{job_id}/pause"), 409, "failed_precondition")


# ---- agents, versions, deployments --------------------------------------------------------------

def test_agents_versions_aliases_tags_and_artifact(api: httpx.Client, trio: dict) -> None:
    agent = trio["agent"]
    assert api.get(f"/v1/agents/{agent}").json()["version_count"] >= 3
    versions = api.get(f"/v1/agents/{agent}/versions", params={"limit": 2}).json()
    assert len(versions["data"]) == 2 and versions["has_more"]
    version = trio["finished"][0]["model_version_id"]
    r = api.put(f"/v1/agents/{agent}/aliases/stable", json={"version_id": version})
    assert r.status_code == 200 and "stable" in r.json()["version"]["aliases"], r.text
    assert api.get(f"/v1/agents/{agent}/versions/@stable").json()["version_id"] == version
    tagged = api.patch(f"/v1/agents/{agent}/versions/{version}/tags", json={"set": {"team": "red"}}).json()
    assert tagged["tags"]["team"] == "red"
    untagged = api.patch(f"/v1/agents/{agent}/versions/@stable/tags", json={"remove": ["team"]}).json()
    assert "team" not in untagged["tags"]
    onnx = api.get(f"/v1/agents/{agent}/versions/@stable/artifact")
    assert onnx.status_code == 200 and onnx.headers["content-type"] == "application/octet-stream"
    assert onnx.headers["X-Version-Id"] == version and len(onnx.content) > 1000
    pred = api.post(f"/v1/agents/{agent}/predict", json={"inputs": ["reset my password please"],
                                                          "version_id": "@stable", "top_k": 2}).json()
    assert pred["version_id"] == version and len(pred["predictions"][0]["top"]) == 2
    assert api.delete(f"/v1/agents/{agent}/aliases/stable").json() == {"alias": "stable", "version_id": version}
    error_of(api.get(f"/v1/agents/{agent}/versions/@stable"), 404, "not_found")
    error_of(api.post(f"/v1/agents/{agent}/predict", json={"inputs": "not a list"}), 400, "invalid_request", "inputs")


def test_canary_deployment_advance_and_rollback(api: httpx.Client, trio: dict) -> None:
    agent = trio["agent"]
    # The agent's first version serves by the first-version rule (versions are numbered as jobs
    # finish); another one goes out as a canary.
    first = api.get(f"/v1/agents/{agent}").json()["active_version_id"]
    second = next(j["model_version_id"] for j in trio["finished"] if j["model_version_id"] != first)
    r = api.post("/v1/deployments", json={"agent_id": agent, "version_id": second, "environment": "production",
                                          "rollout": {"strategy": "canary", "percentage": 10}})
    assert r.status_code == 201, r.text
    canary = r.json()
    error_of(api.post("/v1/deployments", json={"agent_id": agent, "version_id": first, "environment": "production"}),
             409, "failed_precondition")
    assert canary["strategy"] == "canary" and canary["current_percentage"] == pytest.approx(10)
    advanced = api.post(f"/v1/deployments/{canary['deployment_id']}/advance", json={"percentage": 100}).json()
    assert advanced["current_percentage"] == pytest.approx(100), advanced
    listed = api.get("/v1/deployments", params={"agent_id": agent}).json()["data"]
    assert canary["deployment_id"] in {d["deployment_id"] for d in listed}
    back = api.post(f"/v1/agents/{agent}/rollback", json={"version_id": second, "environment": "production",
                                                        "reason": "test"})
    assert back.status_code == 200, back.text
    assert back.json()["current_version_id"] == first


# ---- operations -----------------------------------------------------------------------------------

def wait_operation(api: httpx.Client, op: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not op["done"]:
        assert time.monotonic() < deadline, op
        time.sleep(0.3)
        op = api.get(f"/v1/operations/{op['operation_id']}").json()
    return op


def test_reports_comparisons_and_evaluations_run_as_operations(api: httpx.Client, trio: dict, stack) -> None:  # noqa: ANN001
    key = {"Idempotency-Key": uuid.uuid4().hex}
    r = api.post("/v1/reports", json={"job_id": trio["jobs"][0], "format": "markdown"}, headers=key)
    assert r.status_code == 202, r.text
    again = api.post("/v1/reports", json={"job_id": trio["jobs"][0], "format": "markdown"}, headers=key)
    assert again.status_code == 202 and again.json()["operation_id"] == r.json()["operation_id"]  # started once
    report = wait_operation(api, r.json())
    assert report["state"] == "succeeded" and report["kind"] == "report", report
    assert report["result"]["format"] == "markdown" and report["result"]["report_id"]
    r = api.post("/v1/comparisons", json={"run_ids": trio["jobs"][:2]})
    cmp_op = wait_operation(api, r.json())
    assert cmp_op["state"] == "succeeded", cmp_op
    assert api.get(f"/v1/comparisons/{cmp_op['resource_id']}").status_code == 200
    failed = wait_operation(api, api.post("/v1/evaluations", json={"agent_id": "no-such-agent-x"}).json())
    assert failed["state"] == "failed" and failed["error"]["code"] in ("not_found", "invalid_request"), failed
    # Another account does not see the operation.
    other = make_token(api, stack.admin_token, ["training:view"], account=f"acct-{uuid.uuid4().hex[:6]}")
    r = httpx.get(f"{stack.gateway_url}/v1/operations/{report['operation_id']}", headers=bearer(other))
    error_of(r, 404, "not_found")
    assert report["operation_id"] in {o["operation_id"] for o in api.get("/v1/operations").json()["data"]}


# ---- data -----------------------------------------------------------------------------------------

def test_datasets_upload_validate_content_and_delete(api: httpx.Client) -> None:
    rows = make_examples(6, seed=11)
    jsonl = "".join(json.dumps(r) + "\n" for r in rows).encode()
    ds_id = f"canon-ds-{uuid.uuid4().hex[:6]}"
    r = api.post("/v1/datasets/upload", params={"dataset_id": ds_id}, content=jsonl,
                 headers={"Content-Type": "application/jsonl"})
    assert r.status_code == 201 and r.json()["example_count"] == len(rows) and r.json()["line_count"] == len(rows)
    content = api.get(f"/v1/datasets/{ds_id}/content")
    assert [json.loads(line)["input"] for line in content.text.splitlines()] == [r["input"] for r in rows]
    report = api.post("/v1/datasets/validate", json={"dataset_id": ds_id, "checks": {"duplicates": True}}).json()
    assert report["dataset_id"] == ds_id and isinstance(report["valid"], bool)
    assert ds_id in {d["dataset_id"] for d in api.get("/v1/datasets", params={"limit": 1000}).json()["data"]}
    assert api.delete(f"/v1/datasets/{ds_id}").json() == {"id": ds_id, "deleted": True}
    error_of(api.get(f"/v1/datasets/{ds_id}"), 404, "not_found")
    error_of(api.post("/v1/datasets/upload", content=b""), 400, "invalid_request", "body")


def test_trajectories_ingest_read_and_count(api: httpx.Client) -> None:
    agent = f"traj-{uuid.uuid4().hex[:6]}"
    trajectories = [{"trajectory_id": f"{agent}-{i}", "agent_id": agent, "status": "completed", "query": f"q{i}",
                     "steps": [{"action": {"tool": "search"}, "reward": 1.0}]} for i in range(3)]
    r = api.post("/v1/trajectories", json={"trajectories": trajectories})
    assert r.status_code == 201 and r.json()["received"] == 3, r.text
    assert api.get("/v1/trajectories/count", params={"agent_id": agent}).json() == {"count": 3}
    one = api.get(f"/v1/trajectories/{agent}-1").json()
    assert one["agent_id"] == agent and one["steps"][0]["action"] == {"tool": "search"}
    listed = api.get("/v1/trajectories", params={"agent_id": agent, "limit": 2}).json()
    assert len(listed["data"]) == 2 and listed["has_more"]


def test_webhooks_and_tokens(api: httpx.Client, stack) -> None:  # noqa: ANN001
    r = api.post("/v1/webhooks", json={"url": "https://example.com/hook", "events": ["training.completed"]})
    assert r.status_code in (201, 400), r.text  # 400 when the test machine cannot resolve example.com
    if r.status_code == 201:
        hook = r.json()
        assert hook["secret"] and hook["events"] == ["training.completed"]
        assert hook["webhook_id"] in {h["webhook_id"] for h in api.get("/v1/webhooks").json()["data"]}
        assert api.delete(f"/v1/webhooks/{hook['webhook_id']}").json()["deleted"] is True
    else:
        error_of(r, 400, "invalid_request", "url")
    created = api.post("/v1/tokens", json={"name": "canon", "scopes": ["training:view"]}).json()
    assert created["token"].startswith("th_") and created["scopes"] == ["training:view"]
    assert httpx.get(f"{stack.gateway_url}/v1/jobs", params={"limit": 1}, headers=bearer(created["token"])).status_code == 200
    assert api.delete(f"/v1/tokens/{created['token_id']}").json() == {"token_id": created["token_id"], "revoked": True}
    error_of(httpx.get(f"{stack.gateway_url}/v1/jobs", headers=bearer(created["token"])), 401, "unauthenticated")


def test_a_paused_and_resumed_job_ends_bit_for_bit_like_an_uninterrupted_one(api: httpx.Client) -> None:
    """Pause (PauseJob, a checkpoint of the whole training state) then resume (ResumeJob)
    must end where the same job run without a pause ends: same final metrics, to the last bit."""
    agent = f"bits-{uuid.uuid4().hex[:8]}"
    body = {"agent_id": agent, "examples": make_examples(40, seed=21),
            "config": {**CONFIG, "epochs": 60, "early_stopping": False, "seed": 5}}
    straight = api.post("/v1/jobs", json=body).json()["job_id"]
    paused = api.post("/v1/jobs", json=body).json()["job_id"]
    with api.stream("GET", f"/v1/jobs/{paused}/events/stream") as stream:
        for line in stream.iter_lines():
            if line.startswith("event: epoch"):
                break
    answer = api.post(f"/v1/jobs/{paused}/pause").json()
    if answer["job"]["state"] == "completed":
        pytest.skip("the job finished before it could be paused")
    assert answer["checkpoint_saved"], answer
    held = wait_done(api, paused)
    assert held["state"] == "paused" and held["status_reason"] == "paused", held
    assert api.post(f"/v1/jobs/{paused}/resume").status_code == 200
    a, b = wait_done(api, straight), wait_done(api, paused)
    assert a["state"] == b["state"] == "completed", (a, b)
    # Exact float equality (bit for bit) of everything the training computed; wall-clock figures
    # (and the cost priced from them) differ by nature.
    assert set(a["metrics"]) == set(b["metrics"]) and len(a["metrics"]) > 10
    learned = {k for k in a["metrics"] if not _wall_clock(k)}
    assert {k: b["metrics"][k] for k in learned} == {k: a["metrics"][k] for k in learned}
    assert {"loss", "validation_loss", "accuracy"} <= learned
    assert (b["current_step"], b["current_epoch"]) == (a["current_step"], a["current_epoch"])
    history = {}
    for job_id in (straight, paused):
        points = api.get(f"/v1/jobs/{job_id}/metrics", params={"limit": 10000}).json()["data"]
        history[job_id] = {(p["name"], p["step"]): p["value"] for p in points if not _wall_clock(p["name"])}
    assert history[paused] == history[straight]


def _wall_clock(name: str) -> bool:
    return "seconds" in name or "cost" in name or "per_second" in name or "throughput" in name
