"""Gateway test helpers: clients on the shared stack, and a gateway process of its own.

`lone_gateway` starts `python -m gateway` alone, with its backends pointing at a closed port and
with env settings the shared stack does not use (bootstrap token, JWT secret). It covers what
needs no backend (auth, error shapes, limits, process life) without touching the shared stack.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

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
                "TRAINHOUSE_PORT_FILE": str(port_file)})
    for name in ("TRAINING", "DATA", "EVALUATION", "REGISTRY"):
        env[f"TRAINHOUSE_{name}_ADDR"] = CLOSED
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), str(REPO / ".gen"), env.get("PYTHONPATH")) if p)
    env.update(extra_env or {})
    log = open(home / "gateway.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "gateway"], cwd=REPO, env=env, stderr=log,
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
JWT_SECRET = "test-secret-" + "x" * 40


@pytest.fixture(scope="module")
def lone_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gw = start_gateway(tmp_path_factory.mktemp("lone-gw"),
                       {"TRAINHOUSE_BOOTSTRAP_TOKEN": LONE_ADMIN, "TRAINHOUSE_JWT_SECRET": JWT_SECRET})
    try:
        yield gw
    finally:
        assert gw.stop() == 0


@pytest.fixture(scope="module")
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
