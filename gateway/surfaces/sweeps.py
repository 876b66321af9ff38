"""Hyperparameter sweeps (contract extension): create, list, get, cancel.

The body's ``config`` is the training config every trial starts from, in the same schema as a
job's (gateway/resources/training_config.py); the space, objective, sampler and early-stopping
rule map one to one onto sweep.proto, where TrainingService validates them against the config
models (an unknown field or a range outside the field's is a 400 naming the field).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field, StrictStr
from trainhouse.v1 import training_service_pb2

from trainhouse.gateway.deps import Services
from trainhouse.gateway.errors import encoding_request
from trainhouse.gateway.models import CamelModel, Envelope, envelope, id_path
from trainhouse.gateway.resources.sweeps import STATES, CreateSweepIn, create_request, sweep_json
from trainhouse.gateway.routing import GatewayRoute
from trainhouse.gateway.surfaces.common import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1/sweeps", tags=["sweeps"], route_class=GatewayRoute, responses=ERROR_RESPONSES)

class SweepsData(CamelModel):
    sweeps: list[dict[str, Any]]
    next_page_token: str | None = None


SweepId = Annotated[str, id_path("sweepId")]


@router.post("", response_model=Envelope[dict[str, Any]], status_code=201,
             summary="Create a hyperparameter sweep (its trials are training jobs)")
async def create_sweep(body: CreateSweepIn, services: Services) -> dict[str, Any]:
    with encoding_request():
        request = create_request(body)
    resp = await services.training.CreateSweep(request, timeout=services.timeout_s)
    return envelope(sweep_json(resp.sweep))


@router.get("", response_model=Envelope[SweepsData], summary="List sweeps, newest first")
async def list_sweeps(services: Services, agent_id: Annotated[str, Query(alias="agentId", max_length=128)] = "",
                      state: Annotated[Literal["queued", "running", "completed", "failed", "cancelled"] | None,
                                       Query()] = None,
                      limit: Annotated[int, Query(ge=1, le=100)] = 20,
                      page_token: Annotated[str, Query(alias="pageToken", max_length=4096)] = "") -> dict[str, Any]:
    resp = await services.training.ListSweeps(training_service_pb2.ListSweepsRequest(
        page_size=limit, page_token=page_token, agent_id=agent_id, state=STATES.get(state or "", 0)),
        timeout=services.timeout_s)
    return envelope({"sweeps": [sweep_json(s) for s in resp.sweeps], "nextPageToken": resp.next_page_token or None})


@router.get("/{sweepId}", response_model=Envelope[dict[str, Any]], summary="Get a sweep with its trials and events")
async def get_sweep(sweep_id: SweepId, services: Services) -> dict[str, Any]:
    resp = await services.training.GetSweep(training_service_pb2.GetSweepRequest(sweep_id=sweep_id),
                                            timeout=services.timeout_s)
    return envelope(sweep_json(resp.sweep))


class CancelSweepIn(CamelModel):
    reason: StrictStr | None = Field(None, max_length=256)


@router.post("/{sweepId}/cancel", response_model=Envelope[dict[str, Any]],
             summary="Cancel a sweep: its running trials stop, no new ones start")
async def cancel_sweep(sweep_id: SweepId, services: Services, body: CancelSweepIn | None = None) -> dict[str, Any]:
    resp = await services.training.CancelSweep(training_service_pb2.CancelSweepRequest(
        sweep_id=sweep_id, reason=(body.reason if body else None) or ""), timeout=services.timeout_s)
    return envelope(sweep_json(resp.sweep))
