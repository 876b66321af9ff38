"""/v1/sweeps: hyperparameter sweeps (rendered from trainhouse.gateway.resources.sweeps.sweep_json, snake_case)."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from trainhouse.v1 import sweep_pb2
from trainhouse.v1 import training_service_pb2 as ts

from trainhouse.gateway.canonical.common import After, Page, page, path_id, router
from trainhouse.gateway.canonical.idempotency import idempotent
from trainhouse.gateway.canonical.protojson import enum_words, proto_model, to_proto
from trainhouse.gateway.convert import snake_keys
from trainhouse.gateway.deps import Services
from trainhouse.gateway.resources.sweeps import sweep_json

sweeps = router("/sweeps", "sweeps")
CreateSweepIn = proto_model(ts.CreateSweepRequest.DESCRIPTOR, name="CreateSweepIn")
SweepStateWord = Literal[tuple(enum_words(sweep_pb2.SweepState.DESCRIPTOR))]  # type: ignore[valid-type]
SweepId = Annotated[str, path_id("A sweep id")]


class SweepOut(BaseModel):
    """A sweep with its trials (trainhouse.gateway.resources.sweeps.sweep_json, keys in snake_case)."""

    model_config = ConfigDict(extra="allow")

    sweep_id: str
    agent_id: str
    state: str


class CancelSweepIn(BaseModel):
    reason: StrictStr | None = Field(None, max_length=500)


def sweep_out(s: sweep_pb2.Sweep) -> dict[str, Any]:
    return snake_keys(sweep_json(s))


@sweeps.post("", operation_id="sweeps.create", response_model=SweepOut, status_code=201,
             summary="Start a hyperparameter sweep (CreateSweepRequest)")
async def create_sweep(body: CreateSweepIn, request: Request, services: Services,  # type: ignore[valid-type]
                       idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None) -> Any:
    async def create() -> dict[str, Any]:
        resp = await services.training.CreateSweep(to_proto(body, ts.CreateSweepRequest), timeout=services.timeout_s)
        return sweep_out(resp.sweep)
    return await idempotent(request, idempotency_key, body.model_dump(exclude_none=True), create)


@sweeps.get("", operation_id="sweeps.list", response_model=Page[SweepOut], summary="Sweeps, newest first")
async def list_sweeps(services: Services, after: After = "", limit: Annotated[int, Query(ge=1, le=100)] = 20,
                      agent_id: Annotated[str, Query(max_length=128)] = "",
                      state: SweepStateWord | None = None) -> dict[str, Any]:
    req = to_proto({"page_size": limit, "page_token": after or None, "agent_id": agent_id or None, "state": state},
                   ts.ListSweepsRequest)
    resp = await services.training.ListSweeps(req, timeout=services.timeout_s)
    return page([sweep_out(s) for s in resp.sweeps], resp.next_page_token)


@sweeps.get("/{sweep_id}", operation_id="sweeps.get", response_model=SweepOut, summary="A sweep and its trials")
async def get_sweep(sweep_id: SweepId, services: Services) -> dict[str, Any]:
    return sweep_out((await services.training.GetSweep(ts.GetSweepRequest(sweep_id=sweep_id),
                                                       timeout=services.timeout_s)).sweep)


@sweeps.post("/{sweep_id}/cancel", operation_id="sweeps.cancel", response_model=SweepOut,
             summary="Cancel a sweep's running trials and start no more")
async def cancel_sweep(sweep_id: SweepId, services: Services, body: CancelSweepIn | None = None) -> dict[str, Any]:
    req = ts.CancelSweepRequest(sweep_id=sweep_id, reason=(body.reason if body else None) or "cancelled via API")
    return sweep_out((await services.training.CancelSweep(req, timeout=services.timeout_s)).sweep)
