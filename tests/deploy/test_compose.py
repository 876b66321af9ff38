"""deploy/compose.yaml for real: `docker compose config` checks it, `up --build --wait` starts the
stack and the gateway's /healthz answers through the published port. Each test skips, saying
why, on a machine without the docker CLI, its compose plugin, or a daemon that answers."""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"


def _run(args: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or ["(no output)"])[0]


def compose_cli() -> list[str]:
    """`docker compose`, or skip naming what is missing."""
    docker = shutil.which("docker")
    if not docker:
        pytest.skip("no docker CLI on PATH: deploy/compose.yaml cannot be checked or started here")
    try:
        version = _run([docker, "compose", "version"], 30)
    except subprocess.TimeoutExpired:
        pytest.skip("`docker compose version` did not answer within 30 s")
    if version.returncode != 0:
        pytest.skip(f"the docker CLI has no compose plugin: {_first_line(version.stderr or version.stdout)}")
    return [docker, "compose", "-f", str(COMPOSE)]


def daemon_or_skip(docker: str) -> None:
    try:
        info = _run([docker, "info", "--format", "{{.ServerVersion}}"], 30)
    except subprocess.TimeoutExpired:
        pytest.skip("the Docker daemon did not answer `docker info` within 30 s")
    if info.returncode != 0:
        pytest.skip(f"this machine cannot run containers: {_first_line(info.stderr or info.stdout)}")


def test_compose_config_is_valid():
    cli = compose_cli()
    out = _run([*cli, "config", "--quiet"], 60, cwd=ROOT,
               env={**os.environ, "TRAINHOUSE_INTERNAL_KEY": secrets.token_hex(32)})
    assert out.returncode == 0, out.stderr


def test_compose_stack_starts_and_the_gateway_is_healthy():
    cli = compose_cli()
    daemon_or_skip(cli[0])
    project = ["-p", f"trainhouse-test-{secrets.token_hex(4)}"]
    env = {**os.environ, "TRAINHOUSE_GATEWAY_HOST_PORT": "0",  # docker picks a free host port
           "TRAINHOUSE_INTERNAL_KEY": secrets.token_hex(32)}
    try:
        up = _run([*cli, *project, "up", "--build", "--detach", "--wait", "--wait-timeout", "600"],
                  1500, cwd=ROOT, env=env)
        assert up.returncode == 0, up.stderr[-4000:]
        port = _run([*cli, *project, "port", "gateway", "8080"], 60, cwd=ROOT, env=env)
        assert port.returncode == 0, port.stderr
        host_port = int(port.stdout.strip().rsplit(":", 1)[1])
        with urllib.request.urlopen(f"http://127.0.0.1:{host_port}/healthz", timeout=10) as reply:
            assert reply.status == 200
        ps = _run([*cli, *project, "ps", "--format", "{{.Service}} {{.Health}}"], 60, cwd=ROOT, env=env)
        states = dict(line.split(" ", 1) for line in ps.stdout.strip().splitlines())
        assert set(states) == {"registry", "data", "evaluation", "training", "gateway"}, ps.stdout
        assert set(states.values()) == {"healthy"}, states
    finally:
        _run([*cli, *project, "down", "--volumes", "--remove-orphans", "--timeout", "30"], 300, cwd=ROOT, env=env)
