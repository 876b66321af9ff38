"""Starts the four services and the gateway as child processes and watches them.

Used by `trainhouse up` (and so `make run`) and by the test fixture. Each child writes its bound
port to a file, so port 0 works without racy free-port guessing; the launcher then waits for the
gRPC health check (or /healthz) before starting the processes that depend on it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common import config, secret_checks

# Start order: services with no peers first, the gateway last.
ORDER = ["registry", "data", "training", "evaluation"]


class LaunchError(RuntimeError):
    pass


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    port: int = 0
    log_path: Path | None = None


@dataclass
class Stack:
    home: Path
    ports: dict[str, int] = field(default_factory=dict)  # name -> port (0 = any free port)
    gateway_port: int = 0
    log_dir: Path | None = None
    children: dict[str, Child] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.children[name].port}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.children['gateway'].port}"

    @property
    def admin_token_file(self) -> Path:
        return self.home / "admin-token"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.extra_env)
        env["TRAINHOUSE_HOME"] = str(self.home)
        for name, child in self.children.items():
            if name != "gateway":
                env[f"TRAINHOUSE_{name.upper()}_ADDR"] = f"127.0.0.1:{child.port}"
        return env

    def _spawn(self, name: str, module: str, port_var: str, port: int) -> Child:
        run_dir = self.home / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        port_file = run_dir / f"{name}.port"
        port_file.unlink(missing_ok=True)
        env = self._env()
        env[port_var] = str(port)
        env["TRAINHOUSE_PORT_FILE"] = str(port_file)
        stderr = None
        log_path = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log_path = self.log_dir / f"{name}.log"
            stderr = open(log_path, "ab")
        proc = subprocess.Popen([sys.executable, "-m", module], env=env, stderr=stderr,
                                stdout=subprocess.DEVNULL if self.log_dir else None)
        child = Child(name, proc, log_path=log_path)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LaunchError(f"{name} exited with code {proc.returncode} while starting"
                                  + (f" (log: {log_path})" if log_path else ""))
            if port_file.exists():
                child.port = int(port_file.read_text())
                break
            time.sleep(0.05)
        else:
            raise LaunchError(f"{name} did not report its port within 60 s")
        self.children[name] = child
        return child

    def _wait_grpc_health(self, child: Child, timeout: float = 30) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{child.port}") as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    resp = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
                    if resp.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
        raise LaunchError(f"{child.name} not SERVING within {timeout} s")

    def _wait_http(self, child: Child, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if child.proc.poll() is not None:
                raise LaunchError(f"{child.name} exited with code {child.proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{child.port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except Exception:
                pass
            time.sleep(0.1)
        raise LaunchError(f"gateway not healthy within {timeout} s")

    def start(self) -> "Stack":
        try:  # weak operator secrets would stop the gateway last; say so before starting anything
            reason = secret_checks.refusal(self._env())
        except SystemExit as exc:
            reason = str(exc)
        if reason:
            raise LaunchError(reason)
        try:
            for name in ORDER:
                var = config.SERVICES[name][0]
                child = self._spawn(name, f"services.{name}", var, self.ports.get(name, 0))
                self._wait_grpc_health(child)
            gw = self._spawn("gateway", "gateway", config.GATEWAY_PORT_VAR, self.gateway_port)
            self._wait_http(gw)
        except BaseException:
            self.stop()
            raise
        return self

    def dead(self) -> list[tuple[str, int]]:
        return [(c.name, c.proc.returncode) for c in self.children.values() if c.proc.poll() is not None]

    def stop(self, timeout: float = 30) -> dict[str, int | None]:
        """SIGTERM in reverse start order (gateway first), then wait; SIGKILL only on timeout."""
        codes: dict[str, int | None] = {}
        for name in reversed(list(self.children)):
            child = self.children[name]
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        for name in reversed(list(self.children)):
            child = self.children[name]
            try:
                codes[name] = child.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                codes[name] = child.proc.wait()
        return codes

    def restart(self, name: str) -> Child:
        """Stop one service and start it again on the same port (for restart tests)."""
        child = self.children[name]
        port = child.port
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
            child.proc.wait(30)
        module = "gateway" if name == "gateway" else f"services.{name}"
        var = config.GATEWAY_PORT_VAR if name == "gateway" else config.SERVICES[name][0]
        new = self._spawn(name, module, var, port)
        if name == "gateway":
            self._wait_http(new)
        else:
            self._wait_grpc_health(new)
        return new
