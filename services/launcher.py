"""Starts the four services and the gateway as child processes and watches them.

Used by `trainhouse up` (and so `make run`) and by the test fixture. Each child writes its bound
port to a file, so port 0 works without racy free-port guessing; the launcher then waits for the
gRPC health check (or /healthz) before starting the processes that depend on it.

One stack per home: `start` takes an exclusive `flock` on `$TRAINHOUSE_HOME/stack.lock` before it
touches anything and holds it until `stop`, so a second launcher on the same home fails at once
(LaunchError naming the holder's pid) and leaves the running stack's files alone. The kernel drops
the lock when the holder dies, so a crashed launcher leaves nothing stale behind.

`supervise` (called by `trainhouse up` every half second) restarts a child that died, on the port
it had, after an exponential backoff (RESTART_BACKOFF_S doubling up to RESTART_BACKOFF_MAX_S), and
logs each restart; more than `restart_max` restarts of one child within `restart_window_s` is a
crash loop, and it returns the reason to stop the stack.
"""
from __future__ import annotations

import fcntl
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from trainhouse.common import config, internal_tokens, secret_checks, tls
from trainhouse.common.logs import log

logger = logging.getLogger("trainhouse.launcher")

# Start order: services with no peers first, the gateway last.
ORDER = ["registry", "data", "training", "evaluation"]
LOCK_NAME = "stack.lock"
RESTART_BACKOFF_S = 1.0
RESTART_BACKOFF_MAX_S = 30.0


class LaunchError(RuntimeError):
    pass


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    port: int = 0
    log_path: Path | None = None
    restarts: list[float] = field(default_factory=list)  # monotonic times of restarts (supervise)
    restart_at: float | None = None                       # when a dead child is due to start again


@dataclass
class Stack:
    home: Path
    ports: dict[str, int] = field(default_factory=dict)  # name -> port (0 = any free port)
    gateway_port: int = 0
    log_dir: Path | None = None
    children: dict[str, Child] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    restart_max: int = field(default_factory=lambda: max(0, config.env_int("RESTART_MAX", 5)))
    restart_window_s: float = field(default_factory=lambda: config.env_float("RESTART_WINDOW_S", 300.0, 1.0))
    # The stack's internal credential (services.common.internal_tokens): the operator's, or a random
    # one for this stack's life; children get it through their environment, never on a command line.
    internal_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    _lock_fd: int | None = None

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.children[name].port}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.children['gateway'].port}"

    @property
    def admin_token_file(self) -> Path:
        return self.home / "admin-token"

    def channel(self, name: str, token: str | None = None, options: list | None = None) -> grpc.Channel:
        """A channel to service `name` whose calls carry `token` (default: this stack's admin token), as
        every direct gRPC client's must (trainhouse.common.authn)."""
        from trainhouse.common.authn import bearer_interceptor

        token = token or self.admin_token_file.read_text().strip()
        return grpc.intercept_channel(tls.channel(self.address(name), options=options or (), environ=self._env()),
                                      bearer_interceptor(token))

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.extra_env)
        env.setdefault(internal_tokens.KEY_VAR, self.internal_key)
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
                reason = _last_line(log_path)
                raise LaunchError(f"{name} exited with code {proc.returncode} while starting"
                                  + (f": {reason}" if reason else "")
                                  + (f" (log: {log_path})" if log_path else ""))
            if port_file.exists():
                child.port = int(port_file.read_text())
                break
            time.sleep(0.05)
        else:
            proc.kill()
            proc.wait()
            raise LaunchError(f"{name} did not report its port within 60 s")
        self.children[name] = child
        return child

    def _wait_grpc_health(self, child: Child, timeout: float = 30) -> None:
        with tls.channel(f"127.0.0.1:{child.port}", environ=self._env()) as ch:
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
        self._lock()
        try:
            for name in ORDER:
                var = config.SERVICES[name][0]
                child = self._spawn(name, f"trainhouse.{name}", var, self.ports.get(name, 0))
                self._wait_grpc_health(child)
            gw = self._spawn("gateway", "gateway", config.GATEWAY_PORT_VAR, self.gateway_port)
            self._wait_http(gw)
        except BaseException:
            self.stop()
            raise
        return self

    def _lock(self) -> None:
        """Hold $TRAINHOUSE_HOME/stack.lock for the stack's life, or LaunchError (nothing changed)."""
        self.home.mkdir(parents=True, exist_ok=True)
        path = self.home / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # no O_TRUNC: the holder's pid stays
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LaunchError(f"another trainhouse stack is running on {self.home} (launcher pid {holder}); "
                              f"stop it first or set another TRAINHOUSE_HOME") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def supervise(self, now: float | None = None) -> str | None:
        """Restart dead children (backoff, logged); the reason to stop the stack, or None."""
        now = time.monotonic() if now is None else now
        for name, child in list(self.children.items()):
            if child.proc.poll() is None:
                continue
            if child.restart_at is None:
                child.restarts = [t for t in child.restarts if now - t < self.restart_window_s]
                if len(child.restarts) >= self.restart_max:
                    reason = (f"{name} exited with code {child.proc.returncode} after {len(child.restarts)} "
                              f"restarts within {self.restart_window_s:g} s; stopping the stack")
                    log(logger, "restart limit reached", logging.ERROR, service=name,
                        exit_code=child.proc.returncode, restarts=len(child.restarts),
                        window_s=self.restart_window_s)
                    return reason
                delay = min(RESTART_BACKOFF_MAX_S, RESTART_BACKOFF_S * 2 ** len(child.restarts))
                child.restart_at = now + delay
                log(logger, "service exited; restarting", logging.WARNING, service=name,
                    exit_code=child.proc.returncode, attempt=len(child.restarts) + 1, backoff_s=delay)
                continue
            if now < child.restart_at:
                continue
            try:
                new = self._respawn(name, child.port)
            except LaunchError as err:
                new = self.children.get(name, child)
                new.restart_at = None
                log(logger, "restart failed", logging.ERROR, service=name, error=str(err))
            else:
                log(logger, "service restarted", service=name, port=new.port, pid=new.proc.pid,
                    attempt=len(child.restarts) + 1)
            new.restarts = child.restarts + [now]
        return None

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
        self._unlock()
        return codes

    def restart(self, name: str) -> Child:
        """Stop one service and start it again on the same port (for restart tests)."""
        child = self.children[name]
        port = child.port
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
            child.proc.wait(30)
        return self._respawn(name, port)

    def _respawn(self, name: str, port: int) -> Child:
        """Start `name` again on `port` and wait until it serves (a dead child stays in children
        when this fails, so the next supervise round sees it dead again)."""
        module = "gateway" if name == "gateway" else f"trainhouse.{name}"
        var = config.GATEWAY_PORT_VAR if name == "gateway" else config.SERVICES[name][0]
        new = self._spawn(name, module, var, port)
        if name == "gateway":
            self._wait_http(new)
        else:
            self._wait_grpc_health(new)
        return new


def _last_line(path: Path | None) -> str:
    """The last non-empty line of a child's log (a refusing process says why there), shortened."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 4096))
            lines = [ln.strip() for ln in fh.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""
