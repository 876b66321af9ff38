"""Sweeps as JSON: the one mapping of the Sweep message (sweep.proto) and of the create body,
used by the gateway's routes and the CLI (either transport)."""
from __future__ import annotations

from typing import Any, Literal

from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict
from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr
from trainhouse.v1 import sweep_pb2, training_service_pb2

from trainhouse.gateway.convert import enum_word, struct_to_dict, ts_iso
from trainhouse.gateway.examples import ExampleIn, examples_to_proto
from trainhouse.gateway.models import CamelModel, Id
from trainhouse.gateway.resources.jobs import state_word
from trainhouse.gateway.resources.training_config import TrainingConfigIn, config_json, config_to_proto

SAMPLERS = {"grid": sweep_pb2.SWEEP_SAMPLER_GRID, "random": sweep_pb2.SWEEP_SAMPLER_RANDOM,
            "tpe": sweep_pb2.SWEEP_SAMPLER_TPE}
RULES = {"none": sweep_pb2.SWEEP_STOPPING_RULE_NONE, "median": sweep_pb2.SWEEP_STOPPING_RULE_MEDIAN,
         "asha": sweep_pb2.SWEEP_STOPPING_RULE_ASHA}
DIRECTIONS = {"minimize": sweep_pb2.SWEEP_DIRECTION_MINIMIZE, "maximize": sweep_pb2.SWEEP_DIRECTION_MAXIMIZE}
STATES = {"queued": sweep_pb2.SWEEP_STATE_QUEUED, "running": sweep_pb2.SWEEP_STATE_RUNNING,
          "completed": sweep_pb2.SWEEP_STATE_COMPLETED, "failed": sweep_pb2.SWEEP_STATE_FAILED,
          "cancelled": sweep_pb2.SWEEP_STATE_CANCELLED}


def sweep_state_word(state: int) -> str:
    return enum_word(sweep_pb2.SweepState.Name(state), "SWEEP_STATE_")


def trial_json(t: sweep_pb2.SweepTrial) -> dict[str, Any]:
    return {"number": t.number, "jobId": t.job_id, "params": struct_to_dict(t.params), "state": state_word(t.state),
            "objective": t.objective if t.HasField("objective") else None, "epochs": t.epochs,
            "stoppedEarly": t.stopped_early, "stopReason": t.stop_reason or None}


def _param_json(p: sweep_pb2.SweepParam) -> dict[str, Any]:
    if p.WhichOneof("domain") == "choices":
        return {"field": p.field, "choices": [MessageToDict(v) for v in p.choices.values]}
    r = p.range
    return {"field": p.field, "range": {"low": r.low, "high": r.high, "log": r.log, "integer": r.integer,
                                        "steps": r.steps}}


def sweep_body(s: sweep_pb2.Sweep) -> dict[str, Any]:
    """A sweep as the body POST /api/v1/sweeps takes (add examples or a datasetId)."""
    full = sweep_json(s)
    return {k: full[k] for k in ("agentId", "displayName", "space", "objective", "sampler", "maxTrials", "parallelism",
                                 "earlyStopping", "config")}


def sweep_json(s: sweep_pb2.Sweep) -> dict[str, Any]:
    return {
        "sweepId": s.sweep_id, "agentId": s.agent_id, "displayName": s.display_name or None,
        "state": sweep_state_word(s.state), "message": s.message or None,
        "space": [_param_json(p) for p in s.space],
        "objective": {"metric": s.objective.metric,
                      "direction": enum_word(sweep_pb2.SweepDirection.Name(s.objective.direction), "SWEEP_DIRECTION_")},
        "sampler": enum_word(sweep_pb2.SweepSampler.Name(s.sampler), "SWEEP_SAMPLER_"),
        "maxTrials": s.max_trials, "parallelism": s.parallelism,
        "earlyStopping": {"rule": enum_word(sweep_pb2.SweepStoppingRule.Name(s.early_stopping.rule),
                                            "SWEEP_STOPPING_RULE_"),
                          "graceEpochs": s.early_stopping.grace_epochs,
                          "reductionFactor": s.early_stopping.reduction_factor},
        "config": config_json(s.base_config, s.dataset_id), "seed": s.seed,
        "trials": [trial_json(t) for t in s.trials],
        "bestTrial": trial_json(s.best_trial) if s.HasField("best_trial") else None,
        "events": [{"time": ts_iso(e.time), "kind": e.kind, "message": e.message, "jobId": e.job_id or None}
                   for e in s.events],
        "createdAt": ts_iso(s.create_time), "updatedAt": ts_iso(s.update_time), "endedAt": ts_iso(s.end_time),
    }


# ---- the create body ----------------------------------------------------------------------------

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
