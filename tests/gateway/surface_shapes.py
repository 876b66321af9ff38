"""Assertions on each surface's error shape, shared by the gateway tests."""
from __future__ import annotations

from typing import Any

import httpx


def surface_of(path: str) -> str:
    if path.startswith("/v1/"):
        return "canonical"
    if path.startswith("/api/v1/functions"):
        return "functions"
    if path.startswith("/api/v1/jsonrpc"):
        return "jsonrpc"
    if path.startswith("/api/training/") or path == "/api/training":
        return "runtime"
    return "v1"


def error_code(r: httpx.Response) -> Any:
    """The error code of a response in its surface's shape (asserting the shape on the way)."""
    body = r.json()
    surface = surface_of(r.request.url.path)
    if surface == "v1":
        assert body["success"] is False and set(body["error"]) >= {"code", "message", "details", "timestamp",
                                                                    "requestId"}, body
        return body["error"]["code"]
    if surface == "functions":
        assert body["success"] is False, body
        assert set(body) >= {"code", "message", "hint", "retryable", "trace_id"}, body
        assert body["trace_id"] == r.headers["X-Request-Id"]
        assert isinstance(body["retryable"], bool) and body["hint"]
        return body["code"]
    if surface == "runtime":
        assert isinstance(body["error"], str) and body["error"], body
        return body["code"]
    if surface == "canonical":
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "param", "request_id"}, body
        assert body["error"]["request_id"] == r.headers["X-Request-Id"]
        return body["error"]["code"]
    assert body["jsonrpc"] == "2.0" and "error" in body and "result" not in body, body
    assert set(body["error"]) >= {"code", "message", "data"} and "error" in body["error"]["data"], body
    return body["error"]["code"]


FORBIDDEN = {"canonical": "permission_denied", "v1": "FORBIDDEN", "functions": "FORBIDDEN", "runtime": "FORBIDDEN", "jsonrpc": -32011}
UNAUTHORIZED = {"canonical": "unauthenticated", "v1": "UNAUTHORIZED", "functions": "UNAUTHORIZED", "runtime": "UNAUTHORIZED", "jsonrpc": -32010}
RATE_LIMITED = {"canonical": "rate_limited", "v1": "RATE_LIMIT_EXCEEDED", "functions": "QUOTA_EXCEEDED", "runtime": "RATE_LIMIT_EXCEEDED",
                "jsonrpc": -32029}


def rpc(method: str, params: dict[str, Any] | None = None, id_: Any = 1) -> dict[str, Any]:
    out: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": id_}
    if params is not None:
        out["params"] = params
    return out
