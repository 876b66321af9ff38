"""``Client`` and ``AsyncClient``: the canonical API (/v1) from Python.

    from trainhouse.sdk import Client          # trainhouse.sdk once packaged
    client = Client()                        # TRAINHOUSE_URL / TRAINHOUSE_TOKEN, or Client(base_url, token)
    job = client.jobs.create("support-bot", dataset_id="tickets", config={"epochs": 5})
    for event in client.events.stream(job.job_id):
        print(event.type, event.get("metrics"))
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from trainhouse.sdk._base import DEFAULT_MAX_RETRIES, AsyncTransport, SyncTransport
from trainhouse.sdk._errors import OperationFailedError
from trainhouse.sdk._models import Operation
from trainhouse.sdk._resources import RESOURCES, Operations


class SyncOperations(Operations):
    def wait(self, operation: Operation | str, *, timeout: float = 3600.0, poll_interval: float = 0.5) -> Operation:
        """Poll until the operation is done; its result, or OperationFailedError / TimeoutError."""
        op_id = operation if isinstance(operation, str) else operation.operation_id
        deadline = time.monotonic() + timeout
        interval = poll_interval
        while True:
            op = self.get(op_id)
            if op.done:
                if op.state == "failed":
                    raise OperationFailedError(op)
                return op
            if time.monotonic() > deadline:
                raise TimeoutError(f"operation {op_id} still running after {timeout:g} s")
            time.sleep(interval)
            interval = min(interval * 1.5, 5.0)


class AsyncOperations(Operations):
    async def wait(self, operation: Operation | str, *, timeout: float = 3600.0,
                   poll_interval: float = 0.5) -> Operation:
        op_id = operation if isinstance(operation, str) else operation.operation_id
        deadline = time.monotonic() + timeout
        interval = poll_interval
        while True:
            op = await self.get(op_id)
            if op.done:
                if op.state == "failed":
                    raise OperationFailedError(op)
                return op
            if time.monotonic() > deadline:
                raise TimeoutError(f"operation {op_id} still running after {timeout:g} s")
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, 5.0)


class Client:
    """Synchronous client. Arguments override TRAINHOUSE_URL / TRAINHOUSE_TOKEN; ``timeout`` is per
    request (seconds or an httpx.Timeout); ``max_retries`` bounds the retries of each request."""

    def __init__(self, base_url: str | None = None, token: str | None = None, *,
                 timeout: float | httpx.Timeout | None = None, max_retries: int = DEFAULT_MAX_RETRIES,
                 http_client: httpx.Client | None = None):
        self._transport = SyncTransport(base_url, token, timeout, max_retries, http_client)
        for name, cls in RESOURCES.items():
            setattr(self, name, cls(self._transport))
        self.operations = SyncOperations(self._transport)

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncClient:
    """Asynchronous client: the same resources, whose methods are awaited (lists and streams are
    ``async for``-able)."""

    def __init__(self, base_url: str | None = None, token: str | None = None, *,
                 timeout: float | httpx.Timeout | None = None, max_retries: int = DEFAULT_MAX_RETRIES,
                 http_client: httpx.AsyncClient | None = None):
        self._transport = AsyncTransport(base_url, token, timeout, max_retries, http_client)
        for name, cls in RESOURCES.items():
            setattr(self, name, cls(self._transport))
        self.operations = AsyncOperations(self._transport)

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
