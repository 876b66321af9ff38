"""Hyperparameter sweeps (contract extension): create, list, get, cancel.

The body's ``config`` is the training config every trial starts from, in the same schema as a
job's (gateway/resources/training_config.py); the space, objective, sampler and early-stopping
rule map one to one onto sweep.proto, where TrainingService validates them against the config
models (an unknown field or a range outside the field's is a 400 naming the field).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from google.protobuf import struct_pb2
from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr
from trainhouse.v1 import sweep_pb2, training_service_pb2

from gateway.deps import Services
from gateway.errors import encoding_request
from gateway.examples import ExampleIn, examples_to_proto
from gateway.models import CamelModel, Envelope, Id, envelope, id_path
from gateway.resources.sweeps import DIRECTIONS, RULES, SAMPLERS, STATES, sweep_json
from gateway.resources.training_config import TrainingConfigIn, config_to_proto
from gateway.routing import GatewayRoute
from gateway.surfaces.common import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1/sweeps", tags=["sweeps"], route_class=GatewayRoute, responses=ERROR_RESPONSES)

Number = StrictInt | StrictFloat


class SweepRangeIn(CamelModel):
    low: Number
    high: Number
    log: StrictBool = False
    integer: StrictBool = Field(False, description="Whole numbers (implied for integer fields)")
    steps: StrictInt = Field(0, ge=0, le=100, description="Grid points (grid sampler)")


class SweepParamIn(CamelModel):
    field: StrictStr = Field(description="A training-config field, e.g. learningRate, epochs, hiddenSizes")
    choices: list[Any] | None = Field(None, description="Values to choose from (give choices or range)")
    range: SweepRangeIn | None = None


class ObjectiveIn(CamelModel):
    metric: StrictStr = Field(description="A validation metric, e.g. validation_loss, validation_accuracy")
    direction: Literal["minimize", "maximize"] | None = Field(None, description="Default: minimize for *loss")


class EarlyStoppingIn(CamelModel):
    rule: Literal["none", "median", "asha"] = "none"
    grace_epochs: StrictInt | None = None
    reduction_factor: StrictInt | None = None


class CreateSweepIn(CamelModel):
    agent_id: Id
    display_name: StrictStr | None = None
    space: list[SweepParamIn]
    objective: ObjectiveIn
    sampler: Literal["grid", "random", "tpe"] = "random"
    max_trials: StrictInt | None = Field(None, description="1..200, default 12")
    parallelism: StrictInt | None = Field(None, description="Trials at once, default 2")
    early_stopping: EarlyStoppingIn | None = None
    config: TrainingConfigIn | None = Field(None, description="The config every trial starts from")
    dataset_id: Id | None = None
    examples: list[ExampleIn] | None = None
    validation_examples: list[ExampleIn] | None = None
    seed: StrictInt | None = Field(None, ge=0)


def _param(p: SweepParamIn) -> sweep_pb2.SweepParam:
    out = sweep_pb2.SweepParam(field=p.field)
    if p.choices is not None:
        out.choices.SetInParent()
        for value in p.choices:
            out.choices.values.add().CopyFrom(_value(value))
    elif p.range is not None:
        out.range.CopyFrom(sweep_pb2.SweepRange(low=p.range.low, high=p.range.high, log=p.range.log,
                                                integer=p.range.integer, steps=p.range.steps))
    return out


def _value(value: Any) -> struct_pb2.Value:
    holder = struct_pb2.ListValue()
    holder.append(value)
    return holder.values[0]


def create_request(body: CreateSweepIn) -> training_service_pb2.CreateSweepRequest:
    stopping = body.early_stopping or EarlyStoppingIn()
    sweep = sweep_pb2.Sweep(
        agent_id=body.agent_id, display_name=body.display_name or "", space=[_param(p) for p in body.space],
        objective=sweep_pb2.SweepObjective(metric=body.objective.metric,
                                           direction=DIRECTIONS.get(body.objective.direction or "", 0)),
        sampler=SAMPLERS[body.sampler], max_trials=body.max_trials or 0, parallelism=body.parallelism or 0,
        early_stopping=sweep_pb2.SweepEarlyStopping(rule=RULES[stopping.rule], grace_epochs=stopping.grace_epochs or 0,
                                                    reduction_factor=stopping.reduction_factor or 0),
        dataset_id=body.dataset_id or (body.config.dataset if body.config and body.config.dataset else ""),
        seed=body.seed or 0)
    if body.config is not None:
        sweep.base_config.CopyFrom(config_to_proto(body.config))
    return training_service_pb2.CreateSweepRequest(sweep=sweep, examples=examples_to_proto(body.examples),
                                                   validation_examples=examples_to_proto(body.validation_examples))


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
