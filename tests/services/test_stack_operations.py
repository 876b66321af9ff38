"""Operating a stack, with real processes: one stack per home, ports that are taken stay taken,
and a service that dies is started again (until it crash-loops)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
UP = [sys.executable, "-c", "from trainhouse.cli import main; main()", "up"]
CLI = [sys.executable, "-c", "from trainhouse.cli import main; main()"]


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINHOUSE_")}
    env.update({"TRAINHOUSE_HOME": str(home), "TRAINHOUSE_GATEWAY_PORT": "0",
                "TRAINHOUSE_INTERNAL_KEY": os.environ["TRAINHOUSE_INTERNAL_KEY"]})  # tests/conftest.py's
    for name in ("TRAINING", "DATA", "EVALUATION", "REGISTRY"):
        env[f"TRAINHOUSE_{name}_PORT"] = "0"
    env.update(extra)
    env.pop("PYTHONPATH", None)  # the installed package, never the source folders as top-level modules
    return env


class Launcher:
    """`trainhouse up` in a subprocess; its stderr lines are collected as they come."""

    def __init__(self, home: Path, **extra: str) -> None:
        self.home = home
        self.proc = subprocess.Popen(UP, cwd=REPO, env=_env(home, **extra), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=lambda s=stream, k=sink: k.extend(iter(s.readline, "")), daemon=True).start()

    def wait_for(self, check, timeout: float = 120):  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            assert self.proc.poll() is None or check is self.exited, \
                f"launcher exited {self.proc.returncode}: {''.join(self.err)[-3000:]}"
            time.sleep(0.2)
        raise AssertionError(f"not met in {timeout} s; stderr: {''.join(self.err)[-3000:]}")

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def events(self, msg: str) -> list[dict]:
        found = []
        for line in list(self.err):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("msg") == msg:
                found.append(record)
        return found

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


def _listening(home: Path, service: str) -> dict:
    """The newest `listening` line of a service's log."""
    return [json.loads(line) for line in (home / "logs" / f"{service}.log").read_text().splitlines()
            if line.startswith("{") and '"listening"' in line][-1]


def _pid(home: Path, service: str) -> int:
    return _listening(home, service)["pid"]


def _serving(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def _cli_jobs(home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + ["jobs", "--json"], cwd=REPO, env=_env(home), capture_output=True, text=True,
                          timeout=60)


def test_one_stack_per_home_and_a_killed_service_comes_back(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = Launcher(home, TRAINHOUSE_RESTART_MAX="1")
    try:
        first.wait_for(lambda: any("trainhouse is up" in line for line in first.out))
        run_files = {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in (home / "run").iterdir()}
        assert {"registry.port", "data.port", "training.port", "evaluation.port", "gateway.port"} <= set(run_files)
        # Each process froze what it built at start-up before serving (common/heap.py): full
        # garbage collections skip those ~60-210k objects instead of pausing every call for 50-150 ms.
        for service in ("registry", "data", "training", "evaluation", "gateway"):
            assert _listening(home, service)["frozen_objects"] > 20_000, service

        # A second stack on the same home: refused at once, one line, nothing of the first touched.
        second = subprocess.run(UP, cwd=REPO, env=_env(home), capture_output=True, text=True, timeout=60)
        assert second.returncode != 0
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "another trainhouse stack is running on" in lines[0], second.stderr
        assert str(first.proc.pid) in lines[0]
        assert {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in (home / "run").iterdir()} == run_files
        listed = _cli_jobs(home)
        assert listed.returncode == 0 and "jobs" in json.loads(listed.stdout), listed.stderr

        # SIGKILL a service: the launcher says so, starts it again on its port, the stack answers.
        port = int((home / "run" / "training.port").read_text())
        killed = _pid(home, "training")
        os.kill(killed, signal.SIGKILL)
        first.wait_for(lambda: first.events("service restarted"))
        exited = first.events("service exited; restarting")[0]
        assert exited["service"] == "training" and exited["exit_code"] == -signal.SIGKILL
        assert exited["backoff_s"] >= 1 and exited["attempt"] == 1
        assert _pid(home, "training") != killed and _serving(port)
        assert int((home / "run" / "training.port").read_text()) == port
        listed = _cli_jobs(home)
        assert listed.returncode == 0, listed.stderr

        # Dying again within the window exceeds TRAINHOUSE_RESTART_MAX=1: the stack stops and says why.
        os.kill(_pid(home, "training"), signal.SIGKILL)
        first.wait_for(first.exited, timeout=90)
        assert first.proc.returncode == 1
        assert any("training exited with code -9 after 1 restarts" in line for line in first.err), first.err
        assert first.events("restart limit reached")
        # The lock went with it: the home can be used again.
        third = Launcher(home)
        try:
            third.wait_for(lambda: any("trainhouse is up" in line for line in third.out))
        finally:
            assert third.stop() == 0
    finally:
        first.stop()


def test_a_service_refuses_a_port_that_another_service_holds(tmp_path: Path) -> None:
    port_file = tmp_path / "data.port"
    env = _env(tmp_path / "a", TRAINHOUSE_PORT_FILE=str(port_file))
    holder = subprocess.Popen([sys.executable, "-m", "trainhouse.data"], cwd=REPO, env=env,
                              stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists():
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        port = int(port_file.read_text())
        # Another home, same port: before SO_REUSEPORT was switched off both came up.
        second = subprocess.run([sys.executable, "-m", "trainhouse.data"], cwd=REPO, capture_output=True, text=True,
                                env=_env(tmp_path / "b", TRAINHOUSE_DATA_PORT=str(port)), timeout=60)
        assert second.returncode != 0
        last = second.stderr.strip().splitlines()[-1]
        assert last == (f"trainhouse: cannot listen on 127.0.0.1:{port}: the address is in use (another stack or "
                        f"program on this port?) or not available"), second.stderr
        assert _serving(port)
    finally:
        holder.send_signal(signal.SIGTERM)
        assert holder.wait(30) == 0


def test_a_service_without_the_internal_key_refuses_to_start(tmp_path: Path) -> None:
    env = _env(tmp_path / "nokey")
    del env["TRAINHOUSE_INTERNAL_KEY"]
    done = subprocess.run([sys.executable, "-m", "trainhouse.registry"], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("trainhouse: TRAINHOUSE_INTERNAL_KEY is not set"), done.stderr
    env["TRAINHOUSE_INTERNAL_KEY"] = "change-me-please-this-is-long-enough-0123456789"
    done = subprocess.run([sys.executable, "-m", "trainhouse.registry"], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode != 0 and "TRAINHOUSE_INTERNAL_KEY is a placeholder value" in done.stderr, done.stderr


def test_trainhouse_up_names_the_busy_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(UP, cwd=REPO, env=_env(tmp_path / "home", TRAINHOUSE_DATA_PORT=str(port)),
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    reasons = [line for line in done.stderr.splitlines() if line.startswith("trainhouse: failed to start")]
    assert len(reasons) == 1 and f"cannot listen on 127.0.0.1:{port}" in reasons[0], done.stderr
    assert not any(p.suffix == ".port" and p.name != "registry.port" for p in (tmp_path / "home" / "run").iterdir())
