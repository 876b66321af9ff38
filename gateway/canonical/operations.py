"""Long-running operations: evaluations, reports, benchmarks, comparisons and analyses.

``POST /v1/evaluations`` (and the other long calls) answers 202 at once with an operation; the
gateway runs the RPC in the background with ``TRAINHOUSE_OPERATION_TIMEOUT_S`` (default 3600 s) as
its deadline instead of the 30 s deadline of a request, and ``GET /v1/operations/{operation_id}``
tells ``running`` / ``succeeded`` (with ``result``) / ``failed`` (with ``error`` in the API's error
shape). The background call runs as the caller (the identity is bound to the task that starts it).

Where operations live, and why: in the gateway's memory, one map per process, kept
``TRAINHOUSE_OPERATION_TTL_S`` (default 3600 s) after they end. They are not written down because
their results are: an evaluation or comparison started through an operation carries an id chosen
here (``evaluation_id``/``comparison_id``, both idempotent in the EvaluationService), named in the
operation as ``resource_id``, so after a gateway restart the stored result is still at
``GET /v1/evaluations/{id}`` / ``GET /v1/comparisons/{id}``. A restart does lose the operation
record itself and stops the background calls of the other kinds (reports, benchmarks, analyses,
which the caller then starts again); that is said in docs/api.md.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import grpc
from fastapi import Request
from pydantic import BaseModel

from trainhouse.gateway import errors as E
from trainhouse.gateway.canonical.common import SURFACE, V1ErrorBody
from trainhouse.gateway.canonical.protojson import iso_now
from trainhouse.common.grpc_errors import failure_of
from trainhouse.core.ids import random_id


def _env_seconds(name: str, default: float, lo: float, hi: float) -> float:
    raw = os.environ.get(name, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo:g} and {hi:g}, got {raw!r}")
    return value


TIMEOUT_S = _env_seconds("TRAINHOUSE_OPERATION_TIMEOUT_S", 3600, 1, 7 * 86400)
TTL_S = _env_seconds("TRAINHOUSE_OPERATION_TTL_S", 3600, 1, 7 * 86400)
MAX_RUNNING_PER_ACCOUNT = 32

OperationState = Literal["running", "succeeded", "failed"]


class V1OperationOut(BaseModel):
    """A long-running call: poll ``GET /v1/operations/{operation_id}`` until ``done``."""

    operation_id: str
    kind: str
    state: OperationState
    done: bool
    resource_id: str | None = None
    result: dict[str, Any] | None = None
    error: V1ErrorBody | None = None
    created_at: str
    done_at: str | None = None


@dataclass
class Operation:
    operation_id: str
    kind: str
    account: str
    resource_id: str | None
    created_at: str
    state: str = "running"
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    done_at: str | None = None
    ended: float | None = None
    task: asyncio.Task | None = field(default=None, repr=False)

    def json(self) -> dict[str, Any]:
        return {"operation_id": self.operation_id, "kind": self.kind, "state": self.state,
                "done": self.state != "running", "resource_id": self.resource_id, "result": self.result,
                "error": self.error, "created_at": self.created_at, "done_at": self.done_at}


class Operations:
    def __init__(self) -> None:
        self._ops: dict[str, Operation] = {}

    def _expire(self) -> None:
        now = time.monotonic()
        for op_id in [k for k, op in self._ops.items() if op.ended is not None and now - op.ended > TTL_S]:
            del self._ops[op_id]

    def start(self, kind: str, account: str, call: Callable[[float], Awaitable[dict[str, Any]]],
              resource_id: str | None = None) -> Operation:
        """Run `call(deadline_s)` in the background; its dict is the operation's result."""
        self._expire()
        running = sum(1 for op in self._ops.values() if op.account == account and op.state == "running")
        if running >= MAX_RUNNING_PER_ACCOUNT:
            raise E.ApiError(E.RATE_LIMITED, f"{running} operations are running for this account; "
                                             "wait for one to finish", retry_after=10)
        op = Operation(random_id("op", 20), kind, account, resource_id, iso_now())

        async def run() -> None:
            try:
                op.result = await call(TIMEOUT_S)
                op.state = "succeeded"
            except grpc.RpcError as exc:
                op.error = _error(SURFACE.from_rpc(failure_of(exc)), op.operation_id)
                op.state = "failed"
            except E.ApiError as exc:
                op.error = _error(exc, op.operation_id)
                op.state = "failed"
            except Exception as exc:  # noqa: BLE001 - the operation reports it; nobody else waits on it
                op.error = _error(E.ApiError(E.INTERNAL, f"internal error ({type(exc).__name__})"), op.operation_id)
                op.state = "failed"
            op.done_at = iso_now()
            op.ended = time.monotonic()

        op.task = asyncio.get_running_loop().create_task(run())  # copies the caller's identity context
        self._ops[op.operation_id] = op
        return op

    def get(self, op_id: str, account: str, admin: bool) -> Operation:
        self._expire()
        op = self._ops.get(op_id)
        if op is None or not (admin or op.account == account):
            raise E.ApiError(E.NOT_FOUND, f"operation {op_id} not found", field="operation_id", resource="operation")
        return op

    def list(self, account: str, admin: bool) -> list[Operation]:
        self._expire()
        return [op for op in self._ops.values() if admin or op.account == account]


def _error(err: E.ApiError, request_id: str) -> dict[str, Any]:
    return json.loads(SURFACE.render(err, request_id).body)["error"]


def operations_of(request: Request) -> Operations:
    state = request.app.state
    ops = getattr(state, "operations", None)
    if ops is None:
        ops = state.operations = Operations()
    return ops
