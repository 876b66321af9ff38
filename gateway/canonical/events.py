"""/v1/jobs/{job_id}/events: a job's events as JSON pages and as Server-Sent Events.

Both render each event with trainhouse.gateway.resources.events.event_fields (snake_case, ``type``
names the kind).

- ``GET /v1/jobs/{id}/events?after=<sequence>&limit=<n>``: oldest first, one ListJobEvents call
  (the stored events; it never waits for new ones). ``has_more`` means more events are stored
  after this page (``next_cursor``: the page's last sequence); a live job may store more later, so
  a client polling it keeps the last sequence it saw and asks again.
- The stream reads WatchJob (history first, then live events; it ends after the terminal status).
- ``GET /v1/jobs/{id}/events/stream``: ``text/event-stream`` with ``id: <sequence>``,
  ``event: <type>``, ``data: <event JSON>``; a reconnecting client sends ``Last-Event-ID`` (or
  ``?after=``) and continues without a gap or a repeat. Keep-alive comments during quiet periods.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import grpc
from fastapi import Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict
from trainhouse.v1 import training_service_pb2 as ts

from trainhouse.gateway.canonical.common import JobId, Page, SURFACE, router
from trainhouse.gateway.convert import finite
from trainhouse.gateway.deps import Services
from trainhouse.gateway.errors import INVALID, ApiError, request_id_of
from trainhouse.gateway.resources.events import event_fields
from trainhouse.gateway.resources.jobs import state_word
from trainhouse.common.grpc_errors import failure_of

events = router("/jobs/{job_id}/events", "events")
Sequence = Annotated[int, Query(ge=0, le=2 ** 63 - 1, description="Events after this sequence (0: from the start)")]


class V1EventOut(BaseModel):
    """One job event: its position, its job, ``type`` (status, epoch, step, metric, checkpoint, log,
    budget, promotion) and that payload's fields next to it."""

    model_config = ConfigDict(extra="allow")

    sequence: int
    job_id: str
    agent_id: str | None = None
    time: str | None = None
    type: str


@events.get("", operation_id="events.list", response_model=Page[V1EventOut], summary="A job's events, oldest first")
async def list_events(job_id: JobId, services: Services, after: Sequence = 0,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    page = await services.training.ListJobEvents(
        ts.ListJobEventsRequest(job_id=job_id, after_sequence=after, page_size=limit), timeout=services.timeout_s)
    data = [event_fields(ev) for ev in page.events]
    has_more = page.next_after_sequence > 0
    return {"data": finite(data), "has_more": has_more,
            "next_cursor": str(page.next_after_sequence) if has_more else None}


TERMINAL = ("completed", "failed", "cancelled")


@events.get("/stream", operation_id="events.stream", response_class=StreamingResponse, response_model=None,
            summary="A job's events as Server-Sent Events (resume with Last-Event-ID)",
            responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                             "description": "`id: <sequence>`, `event: <type>`, `data: <event JSON>`; ends after "
                                            "the terminal status event; errors come as `event: error`."}})
async def stream_events(job_id: JobId, request: Request, services: Services, after: Sequence = 0,
                        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None) -> StreamingResponse:
    if last_event_id is not None and last_event_id.strip():
        if not last_event_id.strip().isdigit():
            raise ApiError(INVALID, "Last-Event-ID must be a non-negative integer", field="Last-Event-ID")
        after = int(last_event_id.strip())
    # An unknown job is a 404 before the 200 and the stream start.
    await services.training.GetJob(ts.GetJobRequest(job_id=job_id), timeout=services.timeout_s)
    keepalive = request.app.state.gate.settings.sse_keepalive_s
    return StreamingResponse(_sse(services, job_id, after, keepalive, request_id_of(request)),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def frame(event: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    lines = [f"id: {event_id}"] if event_id is not None else []
    lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(finite(data), separators=(",", ":"), allow_nan=False, default=str))
    return ("\n".join(lines) + "\n\n").encode()


async def _sse(services: Any, job_id: str, after: int, keepalive_s: float, request_id: str) -> AsyncIterator[bytes]:
    """Relay WatchJob as SSE; a reader task fills a queue so quiet periods can send keep-alives
    without cancelling a pending read; the call is cancelled whenever the relay stops.

    WatchJob ends after a terminal status event, and a resumed job has events after that one, so
    the relay reopens WatchJob after the last event it sent until a reopened stream of an ended
    job has nothing more: a client reading a cancelled-then-resumed job from the start gets all of it (a paused job's
    status is not terminal: WatchJob simply goes on after it)."""
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=1024)
    calls: list[Any] = []

    async def pump() -> None:
        cursor = after
        try:
            while True:
                call = services.training.WatchJob(ts.WatchJobRequest(job_id=job_id, after_sequence=cursor))
                calls.append(call)
                got = 0
                async for event in call:
                    cursor = event.sequence
                    got += 1
                    await queue.put(("event", event))
                job = (await services.training.GetJob(ts.GetJobRequest(job_id=job_id),
                                                      timeout=services.timeout_s)).job
                if state_word(job.state) in TERMINAL and not got:
                    break  # nothing after the last terminal event: the job's story is told
                if not got:
                    await asyncio.sleep(0.2)
            await queue.put(("end", None))
        except grpc.RpcError as err:
            await queue.put(("error", err))

    reader = asyncio.create_task(pump())
    try:
        yield b"retry: 2000\n\n"
        while True:
            try:
                kind, item = await asyncio.wait_for(queue.get(), timeout=keepalive_s)
            except asyncio.TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if kind == "end":
                return
            if kind == "error":
                error = SURFACE.from_rpc(failure_of(item))
                body = json.loads(SURFACE.render(error, request_id).body)
                yield frame("error", body)
                return
            fields = event_fields(item)
            yield frame(fields["type"], fields, event_id=item.sequence)
    finally:
        for call in calls:
            call.cancel()
        reader.cancel()
