"""The one request path of the SDK: retries with backoff, timeouts, idempotency keys, errors.

Every resource method describes its call as a ``Call``; ``Client`` runs it synchronously and
``AsyncClient`` asynchronously, so the resources are written once for both.

Retries: connection errors and timeouts, 408, 429 and 5xx; 409 only for a request that is safe to
repeat (GET/PUT/DELETE, or a create carrying an Idempotency-Key) and whose code says the first
attempt is still running (``request_in_progress``): other 409s (a finished job, a reused key) would
answer the same again. The wait is exponential with jitter (0.5 s, 1 s, 2 s... capped at 8 s), or
the server's ``Retry-After`` when it sends one (capped at 60 s). Creates get an
``Idempotency-Key`` (uuid4) unless the caller passes one, and keep it across their retries.
"""
from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from trainhouse.sdk._errors import APIConnectionError, APITimeoutError, status_error

DEFAULT_URL = "http://127.0.0.1:8080"  # the gateway's default port (TRAINHOUSE_GATEWAY_PORT)
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
DEFAULT_MAX_RETRIES = 2
RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
RETRYABLE_409 = {"request_in_progress"}
INITIAL_DELAY_S, MAX_DELAY_S, MAX_RETRY_AFTER_S = 0.5, 8.0, 60.0


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    cast: Callable[[Any], Any] | None = None  # JSON -> typed answer
    create: bool = False  # send an Idempotency-Key
    idempotency_key: str | None = None
    raw: bool = False  # answer the bytes (downloads)
    page_item: Callable[[Any], Any] | None = None  # an auto-paging list of these

    def prepared(self) -> "Call":
        if self.create:
            self.headers.setdefault("Idempotency-Key", self.idempotency_key or f"sdk-{uuid.uuid4().hex}")
        if self.params:
            self.params = {k: v for k, v in self.params.items() if v is not None and v != ""}
        return self

    @property
    def repeatable(self) -> bool:
        return self.method in ("GET", "PUT", "DELETE", "HEAD") or "Idempotency-Key" in self.headers


def settings(base_url: str | None, token: str | None) -> tuple[str, str | None]:
    """Base URL and token from the arguments, else TRAINHOUSE_URL / TRAINHOUSE_TOKEN."""
    url = base_url or os.environ.get("TRAINHOUSE_URL") or DEFAULT_URL
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"base URL must start with http:// or https://, got {url!r}")
    return url.rstrip("/"), token if token is not None else os.environ.get("TRAINHOUSE_TOKEN")


def headers_for(token: str | None) -> dict[str, str]:
    out = {"User-Agent": "trainhouse-sdk/1", "Accept": "application/json"}
    if token:
        out["Authorization"] = f"Bearer {token}"
    return out


def should_retry(call: Call, response: httpx.Response | None) -> bool:
    if response is None:
        return True
    if response.status_code == 409:
        return call.repeatable and _code(response) in RETRYABLE_409
    return response.status_code in RETRY_STATUSES


def _code(response: httpx.Response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except Exception:  # noqa: BLE001 - not our error shape
        return None


def delay_s(attempt: int, response: httpx.Response | None) -> float:
    """Retry-After when the server says it (seconds or an HTTP date is not used here), else backoff."""
    if response is not None:
        raw = response.headers.get("Retry-After")
        if raw is not None:
            try:
                return min(max(float(raw), 0.0), MAX_RETRY_AFTER_S)
            except ValueError:
                pass
    base = min(INITIAL_DELAY_S * (2 ** attempt), MAX_DELAY_S)
    return base * (0.75 + random.random() * 0.5)


def answer(call: Call, response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        raise status_error(response.status_code, body, response.headers.get("X-Request-Id"))
    if call.raw:
        return response.content
    data = response.json() if response.content else None
    return call.cast(data) if call.cast is not None else data


class SyncTransport:
    def __init__(self, base_url: str | None, token: str | None, timeout: float | httpx.Timeout | None,
                 max_retries: int, http_client: httpx.Client | None = None):
        url, tok = settings(base_url, token)
        self.base_url, self.token, self.max_retries = url, tok, max_retries
        self.http = http_client or httpx.Client(base_url=url, headers=headers_for(tok),
                                                timeout=timeout if timeout is not None else DEFAULT_TIMEOUT)

    def send(self, call: Call) -> httpx.Response:
        call = call.prepared()
        attempt = 0
        while True:
            response = None
            try:
                response = self.http.request(call.method, call.path, params=call.params, json=call.json,
                                             content=call.content, headers=call.headers)
            except httpx.TimeoutException as exc:
                if attempt >= self.max_retries:
                    raise APITimeoutError(f"{call.method} {call.path} timed out") from exc
            except httpx.TransportError as exc:
                if attempt >= self.max_retries:
                    raise APIConnectionError(f"{call.method} {call.path}: {exc}") from exc
            if response is not None and (attempt >= self.max_retries or not should_retry(call, response)):
                return response
            time.sleep(delay_s(attempt, response))
            attempt += 1

    def execute(self, call: Call) -> Any:
        if call.page_item is not None:
            from trainhouse.sdk._pagination import SyncPager
            return SyncPager(self, call)
        return answer(call, self.send(call))

    def close(self) -> None:
        self.http.close()


class AsyncTransport:
    def __init__(self, base_url: str | None, token: str | None, timeout: float | httpx.Timeout | None,
                 max_retries: int, http_client: httpx.AsyncClient | None = None):
        url, tok = settings(base_url, token)
        self.base_url, self.token, self.max_retries = url, tok, max_retries
        self.http = http_client or httpx.AsyncClient(base_url=url, headers=headers_for(tok),
                                                     timeout=timeout if timeout is not None else DEFAULT_TIMEOUT)

    async def send(self, call: Call) -> httpx.Response:
        call = call.prepared()
        attempt = 0
        while True:
            response = None
            try:
                response = await self.http.request(call.method, call.path, params=call.params, json=call.json,
                                                   content=call.content, headers=call.headers)
            except httpx.TimeoutException as exc:
                if attempt >= self.max_retries:
                    raise APITimeoutError(f"{call.method} {call.path} timed out") from exc
            except httpx.TransportError as exc:
                if attempt >= self.max_retries:
                    raise APIConnectionError(f"{call.method} {call.path}: {exc}") from exc
            if response is not None and (attempt >= self.max_retries or not should_retry(call, response)):
                return response
            await asyncio.sleep(delay_s(attempt, response))
            attempt += 1

    def execute(self, call: Call) -> Any:
        if call.page_item is not None:
            from trainhouse.sdk._pagination import AsyncPager
            return AsyncPager(self, call)
        return self._execute(call)

    async def _execute(self, call: Call) -> Any:
        return answer(call, await self.send(call))

    async def close(self) -> None:
        await self.http.aclose()
