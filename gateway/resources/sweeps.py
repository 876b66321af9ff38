"""Sweeps as JSON: the one mapping of the Sweep message (sweep.proto) every gateway route uses."""
from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict
from trainhouse.v1 import sweep_pb2

from gateway.convert import enum_word, struct_to_dict, ts_iso
from gateway.resources.jobs import state_word
from gateway.resources.training_config import config_json

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
