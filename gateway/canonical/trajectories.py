"""/v1/trajectories: ingest agent trajectories, read, list, count and export them."""
from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from trainhouse.v1 import data_service_pb2 as ds
from trainhouse.v1 import trajectory_pb2

from trainhouse.gateway.canonical.common import After, Limit, Page, page, path_id, router
from trainhouse.gateway.canonical.idempotency import idempotent
from trainhouse.gateway.canonical.protojson import message_json, proto_model, response_model, to_proto
from trainhouse.gateway.deps import Services

trajectories = router("/trajectories", "trajectories")

TrajectoryIn = proto_model(trajectory_pb2.Trajectory.DESCRIPTOR, name="TrajectoryIn")
TrajectoryOut = response_model(trajectory_pb2.Trajectory.DESCRIPTOR)
IngestOut = response_model(ds.IngestTrajectoriesResponse.DESCRIPTOR)
View = Literal["basic", "full"]
INGEST_CHUNK = 100


class IngestIn(BaseModel):
    trajectories: list[TrajectoryIn] = Field(min_length=1, max_length=10000)  # type: ignore[valid-type]


class CountOut(BaseModel):
    count: int


def _filter(agent_id: str, job_id: str, source: str, since: str | None, before: str | None) -> dict[str, Any]:
    return {"agent_id": agent_id or None, "job_id": job_id or None, "source": source or None, "since": since,
            "before": before}


AgentQ = Annotated[str, Query(max_length=128)]
Since = Annotated[str | None, Query(description="ISO-8601")]


@trajectories.post("", operation_id="trajectories.ingest", response_model=IngestOut, status_code=201,
                   summary="Store trajectories (upsert by trajectory_id)")
async def ingest(body: IngestIn, request: Request, services: Services,
                 idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None) -> Any:
    messages = [to_proto(t, trajectory_pb2.Trajectory) for t in body.trajectories]

    async def requests() -> AsyncIterator[ds.IngestTrajectoriesRequest]:
        for i in range(0, len(messages), INGEST_CHUNK):
            yield ds.IngestTrajectoriesRequest(trajectories=messages[i:i + INGEST_CHUNK])

    async def create() -> dict[str, Any]:
        return message_json(await services.data.IngestTrajectories(requests(), timeout=services.timeout_s))
    return await idempotent(request, idempotency_key, body.model_dump(exclude_none=True), create)


@trajectories.get("", operation_id="trajectories.list", response_model=Page[TrajectoryOut],  # type: ignore[valid-type]
                  summary="List trajectories (basic view unless view=full)")
async def list_trajectories(services: Services, after: After = "", limit: Limit = 50, agent_id: AgentQ = "",
                            job_id: AgentQ = "", source: AgentQ = "", since: Since = None, before: Since = None,
                            view: View = "basic") -> dict[str, Any]:
    req = to_proto({"filter": _filter(agent_id, job_id, source, since, before), "page_size": limit,
                    "page_token": after or None, "view": view}, ds.ListTrajectoriesRequest)
    resp = await services.data.ListTrajectories(req, timeout=services.timeout_s)
    return page([message_json(t) for t in resp.trajectories], resp.next_page_token)


@trajectories.get("/count", operation_id="trajectories.count", response_model=CountOut,
                  summary="Count trajectories matching a filter")
async def count(services: Services, agent_id: AgentQ = "", job_id: AgentQ = "", source: AgentQ = "",
                since: Since = None, before: Since = None) -> dict[str, Any]:
    req = to_proto({"filter": _filter(agent_id, job_id, source, since, before)}, ds.CountTrajectoriesRequest)
    return {"count": (await services.data.CountTrajectories(req, timeout=services.timeout_s)).count}


@trajectories.get("/export", operation_id="trajectories.export", response_class=StreamingResponse,
                  response_model=None, summary="A job's trajectories as JSONL (success_only, min_reward)",
                  responses={200: {"content": {"application/jsonl": {}}}})
async def export(services: Services, job_id: Annotated[str, Query(min_length=1, max_length=128)],
                 success_only: bool = False, min_reward: float | None = None,
                 limit: Annotated[int | None, Query(ge=1, le=1_000_000)] = None) -> StreamingResponse:
    req = to_proto({"job_id": job_id, "success_only": success_only, "min_reward": min_reward, "limit": limit},
                   ds.ExportTrajectoriesRequest)
    call = services.data.ExportTrajectories(req)
    # The first chunk is read before the 200 goes out, so a refused export is an error answer,
    # not a stream cut short.
    iterator = call.__aiter__()
    try:
        first = await iterator.__anext__()
    except StopAsyncIteration:
        first = None
    except BaseException:
        call.cancel()
        raise
    return StreamingResponse(_jsonl(call, iterator, first), media_type="application/jsonl")


async def _jsonl(call: Any, iterator: Any, first: Any) -> AsyncIterator[bytes]:
    try:
        chunk = first
        while chunk is not None:
            yield "".join(json.dumps(message_json(t), default=str) + "\n" for t in chunk.trajectories).encode()
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                chunk = None
    finally:
        call.cancel()


@trajectories.get("/{trajectory_id}", operation_id="trajectories.get", response_model=TrajectoryOut,
                  summary="One trajectory (full view)")
async def get_trajectory(trajectory_id: Annotated[str, path_id()], services: Services,
                         view: View = "full") -> dict[str, Any]:
    req = to_proto({"trajectory_id": trajectory_id, "view": view}, ds.GetTrajectoryRequest)
    return message_json((await services.data.GetTrajectory(req, timeout=services.timeout_s)).trajectory)
