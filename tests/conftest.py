"""The real stack for tests: four gRPC services and the gateway, each its own process.

Every process binds port 0 and reports the port it got, so parallel runs never collide.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from trainhouse.launcher import Stack

STACK_JWT_SECRET = secrets.token_urlsafe(32)

# In-process apps (the gateway's TestClient tests) sign service calls like any process of a stack.
os.environ.setdefault("TRAINHOUSE_INTERNAL_KEY", secrets.token_urlsafe(32))


class RunningStack:
    def __init__(self, stack: Stack):
        self._stack = stack
        self.home: Path = stack.home
        self.gateway_url = stack.gateway_url
        self.admin_token = stack.admin_token_file.read_text().strip()

    def address(self, name: str) -> str:
        return self._stack.address(name)

    def channel(self, name: str, token: str | None = None, options: list | None = None):  # noqa: ANN201
        """A channel to service `name` whose calls carry `token` (default: the stack's admin token),
        as any direct gRPC client's must."""
        return self._stack.channel(name, token or self.admin_token, options)

    @property
    def launcher(self) -> Stack:
        return self._stack


@contextlib.contextmanager
def started_stack(home: Path, extra_env: dict[str, str]) -> Iterator[RunningStack]:
    """The stack running in `home` with `extra_env`; on exit every process must stop cleanly (the
    logs of those that did not are printed)."""
    os.environ.pop("TRAINHOUSE_BOOTSTRAP_TOKEN", None)
    launcher = Stack(home=home, log_dir=home / "logs", extra_env=extra_env)
    launcher.start()
    try:
        yield RunningStack(launcher)
    finally:
        codes = launcher.stop()
        bad = {name: code for name, code in codes.items() if code not in (0, None)}
        if bad:
            for name in bad:
                log = home / "logs" / f"{name}.log"
                if log.exists():
                    print(f"--- {name} log tail ---\n" + log.read_text()[-4000:])
        assert not bad, f"processes did not stop cleanly: {bad}"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory):
    # Tests poll a lot with the admin token; the per-token limit itself is tested on its own tokens.
    # Auto-training checks every agent every 2 s (60 s by default), so its tests wait seconds, not minutes.
    # A JWT secret, so direct gRPC callers can be tested with JWTs as well as API tokens.
    with started_stack(tmp_path_factory.mktemp("trainhouse-home"), {"TRAINHOUSE_JWT_SECRET": STACK_JWT_SECRET,
                                                                      "TRAINHOUSE_RATE_LIMIT_PER_HOUR": "100000",
                                                                      "TRAINHOUSE_LOG_LEVEL": "DEBUG",
                                                                      "TRAINHOUSE_AUTOTRAIN_CHECK_S": "2"}) as running:
        yield running
