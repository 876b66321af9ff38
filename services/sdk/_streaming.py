"""A job's events over Server-Sent Events, resumed automatically.

The stream ends when the server ends it after the job's last terminal status event (a cancelled
and resumed job has more than one; a paused job's status is not terminal, so its stream stays open
until it is resumed and ends). If the connection drops first (a proxy timeout, a gateway restart),
the iterator reconnects with ``Last-Event-ID`` set to the last
sequence it yielded, so no event is lost or repeated; it gives up after ``max_retries``
consecutive failed reconnections (each success resets the count). An ``event: error`` frame from
the server raises its error.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from trainhouse.sdk._base import delay_s
from trainhouse.sdk._errors import STATUS_OF_CODE, APIConnectionError, APIStatusError, status_error
from trainhouse.sdk._models import Event

STREAM_TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=30.0, pool=10.0)


class _Parser:
    """Incremental SSE parser (the WHATWG rules we need: id, event, data, comments)."""

    def __init__(self) -> None:
        self.event, self.data, self.id = "message", [], None

    def feed(self, line: str) -> tuple[str, str, str | None] | None:
        if line == "":
            if not self.data:
                self.event = "message"
                return None
            out = (self.event, "\n".join(self.data), self.id)
            self.event, self.data = "message", []
            return out
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        elif name == "id":
            self.id = value
        return None


def _event(kind: str, data: str, request_id: str | None) -> Event:
    body = json.loads(data)
    if kind == "error":
        raise status_error(int(body.get("status", 0)) or _status_of(body), body, request_id)
    return Event.model_validate(body)


class _Interrupted(Exception):
    """The server ended the stream with an error worth resuming after (a service restarting)."""


def _resumable(kind: str, data: str, request_id: str | None) -> Event:
    """``_event``, with an in-stream unavailable/timeout error turned into a reconnect."""
    try:
        return _event(kind, data, request_id)
    except APIStatusError as err:
        if err.status_code in (502, 503, 504):
            raise _Interrupted(str(err)) from err
        raise


def _status_of(body: Any) -> int:
    code = (body.get("error") or {}).get("code") if isinstance(body, dict) else None
    return STATUS_OF_CODE.get(code or "", 500)


def stream_events(transport: Any, job_id: str, after: int = 0) -> Iterator[Event]:
    last, failures = after, 0
    while True:
        try:
            headers = {"Accept": "text/event-stream", "Last-Event-ID": str(last)}
            with transport.http.stream("GET", f"/v1/jobs/{job_id}/events/stream", headers=headers,
                                       timeout=STREAM_TIMEOUT) as response:
                if response.status_code >= 400:
                    response.read()
                    if response.status_code in (429, 502, 503, 504) and failures < transport.max_retries:
                        failures += 1
                        time.sleep(delay_s(failures, response))
                        continue
                    raise status_error(response.status_code, _json(response), response.headers.get("X-Request-Id"))
                parser = _Parser()
                for line in response.iter_lines():
                    frame = parser.feed(line)
                    if frame is None:
                        continue
                    ev = _resumable(frame[0], frame[1], response.headers.get("X-Request-Id"))
                    failures = 0
                    last = ev.sequence
                    yield ev
        except (httpx.TransportError, httpx.StreamError, _Interrupted) as exc:
            failures += 1
            if failures > transport.max_retries:
                raise APIConnectionError(f"event stream of {job_id} lost after sequence {last}: {exc}") from exc
            time.sleep(delay_s(failures, None))
            continue
        # The server closed the stream: the job ended (done), or the gateway went away (resume).
        if _ended(transport.http.get(f"/v1/jobs/{job_id}")):
            return
        failures += 1
        if failures > transport.max_retries:
            raise APIConnectionError(f"event stream of {job_id} ended early after sequence {last}")
        time.sleep(delay_s(failures, None))


async def astream_events(transport: Any, job_id: str, after: int = 0) -> AsyncIterator[Event]:
    last, failures = after, 0
    while True:
        try:
            headers = {"Accept": "text/event-stream", "Last-Event-ID": str(last)}
            async with transport.http.stream("GET", f"/v1/jobs/{job_id}/events/stream", headers=headers,
                                             timeout=STREAM_TIMEOUT) as response:
                if response.status_code >= 400:
                    await response.aread()
                    if response.status_code in (429, 502, 503, 504) and failures < transport.max_retries:
                        failures += 1
                        await asyncio.sleep(delay_s(failures, response))
                        continue
                    raise status_error(response.status_code, _json(response), response.headers.get("X-Request-Id"))
                parser = _Parser()
                async for line in response.aiter_lines():
                    frame = parser.feed(line)
                    if frame is None:
                        continue
                    ev = _resumable(frame[0], frame[1], response.headers.get("X-Request-Id"))
                    failures = 0
                    last = ev.sequence
                    yield ev
        except (httpx.TransportError, httpx.StreamError, _Interrupted) as exc:
            failures += 1
            if failures > transport.max_retries:
                raise APIConnectionError(f"event stream of {job_id} lost after sequence {last}: {exc}") from exc
            await asyncio.sleep(delay_s(failures, None))
            continue
        if _ended(await transport.http.get(f"/v1/jobs/{job_id}")):
            return
        failures += 1
        if failures > transport.max_retries:
            raise APIConnectionError(f"event stream of {job_id} ended early after sequence {last}")
        await asyncio.sleep(delay_s(failures, None))


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _ended(response: httpx.Response) -> bool:
    if response.status_code != 200:
        return False
    return response.json().get("state") in ("completed", "failed", "cancelled")
