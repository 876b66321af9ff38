"""Gateway test helpers: clients on the shared stack, and a gateway process of its own.

`lone_gateway` starts `python -m trainhouse.gateway` alone, with its backends pointing at a closed port and
with env settings the shared stack does not use (bootstrap token, JWT secret). It covers what
needs no backend (auth, error shapes, limits, process life) without touching the shared stack.
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.intents import make_examples

REPO = Path(__file__).resolve().parents[2]
CLOSED = "127.0.0.1:1"  # nothing listens on port 1: every backend call fails as UNAVAILABLE


@dataclass
class GatewayProcess:
    proc: subprocess.Popen
    home: Path
    url: str
    port: int

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


def start_gateway(home: Path, extra_env: dict[str, str] | None = None, timeout: float = 30) -> GatewayProcess:
    """Start a gateway on port 0 and wait for its port file: the process reports its own port."""
    home.mkdir(parents=True, exist_ok=True)
    port_file = home / "gateway.port"
    port_file.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINHOUSE_")}
    env.update({"TRAINHOUSE_HOME": str(home), "TRAINHOUSE_GATEWAY_PORT": "0",
                "TRAINHOUSE_PORT_FILE": str(port_file), # The test process's key (tests/conftest.py), which the session stack's services share: a
                # gateway started here can then call them.
                "TRAINHOUSE_INTERNAL_KEY": os.environ.get("TRAINHOUSE_INTERNAL_KEY") or secrets.token_urlsafe(32)})
    for name in ("TRAINING", "DATA", "EVALUATION", "REGISTRY"):
        env[f"TRAINHOUSE_{name}_ADDR"] = CLOSED
    env.pop("PYTHONPATH", None)  # the installed package, never the source folders as top-level modules
    env.update(extra_env or {})
    log = open(home / "gateway.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "trainhouse.gateway"], cwd=REPO, env=env, stderr=log,
                            stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {proc.returncode}: {(home / 'gateway.log').read_text()[-2000:]}")
        if port_file.exists():
            port = int(port_file.read_text())
            return GatewayProcess(proc, home, f"http://127.0.0.1:{port}", port)
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("gateway did not report its port")


LONE_ADMIN = "lone-admin-" + uuid.uuid4().hex
JWT_SECRET = "test-jwt-" + uuid.uuid4().hex + uuid.uuid4().hex  # generated: placeholders are refused


@pytest.fixture(scope="session")
def lone_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gw = start_gateway(tmp_path_factory.mktemp("lone-gw"),
                       {"TRAINHOUSE_BOOTSTRAP_TOKEN": LONE_ADMIN, "TRAINHOUSE_JWT_SECRET": JWT_SECRET})
    try:
        yield gw
    finally:
        assert gw.stop() == 0


@pytest.fixture(scope="session")
def lone(lone_gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lone_gateway.url, timeout=10) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_token(client: httpx.Client, admin_token: str, scopes: list[str], **extra: object) -> str:
    r = client.post("/api/v1/auth/tokens", headers=bearer(admin_token),
                    json={"name": f"t-{uuid.uuid4().hex[:6]}", "scopes": scopes, **extra})
    assert r.status_code == 201, r.text
    return r.json()["data"]["token"]


def assert_error(r: httpx.Response, status: int, code: str, field: str | None = None) -> dict:
    """The seed-000 error shape, with the expected code (and field when given)."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False
    err = body["error"]
    assert err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"]
    assert set(err) >= {"code", "message", "details", "timestamp", "requestId"}
    assert err["requestId"] == r.headers["X-Request-Id"]
    assert err["timestamp"].endswith("Z")
    if field is not None:
        assert err["details"]["field"] == field, err
        assert err["details"]["issue"]
    return err


# ---- jobs shared by the stack tests ---------------------------------------------------------
# Training is what costs time, so the stack tests share a few small jobs started together at the
# beginning of the session (their start responses are kept for the tests of those shapes), and
# only start their own jobs where the job itself is under test (cancel, SSE disconnect, ...).

TERMINAL = {"completed", "failed", "cancelled"}


def three_intents(per_intent: int = 15, seed: int = 0) -> list[dict[str, Any]]:
    return [e for e in make_examples(per_intent, seed=seed) if e["expected_output"] != "account"]


def wait_terminal(client: httpx.Client, job_ids: list[str], timeout: float = 180) -> dict[str, dict[str, Any]]:
    """Poll seed 000's status route until every job has ended; their final status by id."""
    done: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(done) < len(job_ids):
        assert time.monotonic() < deadline, f"jobs not finished after {timeout} s: {set(job_ids) - set(done)}"
        for job_id in job_ids:
            if job_id not in done:
                r = client.get(f"/api/v1/training/train-agent/{job_id}")
                assert r.status_code == 200, r.text
                if r.json()["data"]["status"] in TERMINAL:
                    done[job_id] = r.json()["data"]
        if len(done) < len(job_ids):
            time.sleep(0.2)
    return done


def train_version(api: httpx.Client, agent: str, seed: int) -> str:
    """One small supervised job through seed 000; the version it registered."""
    r = api.post("/api/v1/training/train-agent", json={
        "agentId": agent, "config": {"method": "supervised", "epochs": 2, "batchSize": 16},
        "examples": three_intents(10, seed=seed)})
    assert r.status_code == 200, r.text
    job = r.json()["data"]["trainingJobId"]
    status = wait_terminal(api, [job])[job]
    assert status["status"] == "completed", status
    return status["modelVersion"]


GRPO_TOOLS = {"where is my order": "lookup_order", "refund my payment": "refund", "reset my password": "reset"}


def grpo_params(agent: str) -> dict[str, Any]:
    """A GRPO job as small as seed 003 allows: 100 queries, 2 iterations of 4 queries x 2 trajectories."""
    queries = [{"query": f"{text} {i}", "expected_outcome": {"tool": tool}}
               for i in range(34) for text, tool in GRPO_TOOLS.items()][:100]
    return {"agent_id": agent, "training_data": queries, "evaluation_data": queries[:9],
            "config": {"n_iterations": 2, "batch_size": 4, "n_trajectories_per_query": 2,
                       "max_steps_per_trajectory": 3, "checkpoint_interval": 1}}


@dataclass
class Trained:
    """Two completed jobs of one agent (oldest version first), a seed-001 job of another agent and
    a small GRPO job started through JSON-RPC (seed 003)."""

    agent: str
    jobs: list[str]
    versions: list[str]
    examples: list[list[dict[str, Any]]]
    epochs: int
    started: dict[str, Any]            # seed 000 train-agent answer that started jobs[0]
    other_agent: str
    seed001_job: str
    seed001_started: dict[str, Any]    # seed 001 startTrainingJob answer
    status: dict[str, dict[str, Any]]  # final seed-000 status per job id
    grpo_job: str
    grpo_started: dict[str, Any]       # training.start_grpo result


@pytest.fixture(scope="session")
def admin_api(stack) -> Iterator[httpx.Client]:  # noqa: ANN001
    """An admin client with no rate limit, shared by every stack test."""
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as boot:
        token = make_token(boot, stack.admin_token, ["admin"], rateLimitPerHour=0)
    with httpx.Client(base_url=stack.gateway_url, headers=bearer(token), timeout=60) as client:
        yield client


@pytest.fixture(scope="session")
def trained(admin_api: httpx.Client) -> Trained:
    agent, other = f"shared-{uuid.uuid4().hex[:8]}", f"shared001-{uuid.uuid4().hex[:8]}"
    epochs = 4
    examples = [three_intents(15, seed=0), three_intents(15, seed=1)]
    started = []
    for data in examples:
        r = admin_api.post("/api/v1/training/train-agent", json={
            "agentId": agent, "config": {"method": "supervised", "epochs": epochs, "batchSize": 16,
                                         "learningRate": 0.01, "validation": {"split": 0.2}},
            "examples": data})
        assert r.status_code == 200, r.text
        started.append(r.json()["data"])
    seed001 = [{**e, "feedback": "correct"} for e in three_intents(15, seed=2)]
    r = admin_api.post("/api/v1/functions/startTrainingJob", json={
        "agent_id": other, "training_data": {"examples": seed001[:40], "validationExamples": seed001[40:]},
        "config": {"epochs": 3, "batchSize": 16, "learningRate": 0.01, "trainingType": "supervised",
                   "earlyStopping": False}})
    assert r.status_code == 200, r.text
    seed001_started = r.json()["data"]
    r = admin_api.post("/api/v1/jsonrpc", json={"jsonrpc": "2.0", "method": "training.start_grpo", "id": "g",
                                                "params": grpo_params(f"shared-grpo-{uuid.uuid4().hex[:8]}")})
    assert r.status_code == 200 and "result" in r.json(), r.text
    grpo_started = r.json()["result"]
    job_ids = [s["trainingJobId"] for s in started]
    status = wait_terminal(admin_api, [*job_ids, seed001_started["job_id"], grpo_started["job_id"]])
    assert all(s["status"] == "completed" for s in status.values()), status
    # Versions are numbered as jobs finish: order the pair by version, oldest first.
    listing = admin_api.get(f"/api/v1/training/models/{agent}/versions", params={"order": "asc"}).json()["data"]
    versions = [v["versionId"] for v in listing["versions"]]
    by_version = {status[j]["modelVersion"]: i for i, j in enumerate(job_ids)}
    order = [by_version[v] for v in versions]
    return Trained(agent=agent, jobs=[job_ids[i] for i in order], versions=versions,
                   examples=[examples[i] for i in order], epochs=epochs, started=started[order[0]], other_agent=other,
                   seed001_job=seed001_started["job_id"], seed001_started=seed001_started, status=status,
                   grpo_job=grpo_started["job_id"], grpo_started=grpo_started)


# ---- a stack whose jobs have long metric histories ------------------------------------------

LONG_JOB, SHORT_JOB, LONG_POINTS = "job-long-history", "job-short-history", 25_003  # 3 pages of 10k


@pytest.fixture(scope="session")
def long_history_stack(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """A stack of its own, started on a training.duckdb seeded with a 25,003-point job (more than two
    10k pages; its names hold 6,251 or 6,250 points) and a 3-point one (tests/long_history.py)."""
    from tests.conftest import started_stack
    from tests.long_history import seed_metric_histories

    home = tmp_path_factory.mktemp("long-history-home")
    seed_metric_histories(home, {LONG_JOB: LONG_POINTS, SHORT_JOB: 3})
    with started_stack(home, {"TRAINHOUSE_RATE_LIMIT_PER_HOUR": "100000"}) as running:
        yield running
