"""Sweep rows (sweep_store.py) as the Sweep message: the one mapping GetSweep, ListSweeps and the
gateway's JSON all read."""
from __future__ import annotations

from typing import Any

from google.protobuf.json_format import ParseDict

from trainhouse.common.structs import to_struct
from trainhouse.common.timeutil import to_timestamp
from trainhouse.training.convert import STATES
from trainhouse.training.sweeps import SweepSpec
from trainhouse.v1 import sweep_pb2, training_service_pb2

SWEEP_STATES = {name: sweep_pb2.SweepState.Value(f"SWEEP_STATE_{name.upper()}")
                for name in ("queued", "running", "completed", "failed", "cancelled")}
SWEEP_STATE_NAMES = {v: k for k, v in SWEEP_STATES.items()}
_SAMPLERS = {"grid": sweep_pb2.SWEEP_SAMPLER_GRID, "random": sweep_pb2.SWEEP_SAMPLER_RANDOM,
             "tpe": sweep_pb2.SWEEP_SAMPLER_TPE}
_RULES = {"none": sweep_pb2.SWEEP_STOPPING_RULE_NONE, "median": sweep_pb2.SWEEP_STOPPING_RULE_MEDIAN,
          "asha": sweep_pb2.SWEEP_STOPPING_RULE_ASHA}
_DIRECTIONS = {"minimize": sweep_pb2.SWEEP_DIRECTION_MINIMIZE, "maximize": sweep_pb2.SWEEP_DIRECTION_MAXIMIZE}


def _param(p) -> sweep_pb2.SweepParam:
    out = sweep_pb2.SweepParam(field=p.field)
    if p.is_choice:
        for value in p.values:
            ParseDict(value, out.choices.values.add())
    else:
        out.range.CopyFrom(sweep_pb2.SweepRange(low=p.low, high=p.high, log=p.log, integer=p.integer, steps=p.steps))
    return out


def trial_proto(t: dict[str, Any]) -> sweep_pb2.SweepTrial:
    out = sweep_pb2.SweepTrial(number=t["number"], job_id=t["job_id"], params=to_struct(t["params"]),
                               state=STATES.get(t["state"], 0), epochs=len(t["curve"]),
                               stopped_early=bool(t["stopped_early"]), stop_reason=t["stop_reason"] or "")
    if t["objective"] is not None:
        out.objective = t["objective"]
    return out


def sweep_proto(row: dict[str, Any], trials: list[dict[str, Any]],
                events: list[dict[str, Any]] | None = None) -> sweep_pb2.Sweep:
    spec = SweepSpec.from_json(row["spec_json"])
    template = training_service_pb2.StartJobRequest.FromString(row["template"])
    out = sweep_pb2.Sweep(
        sweep_id=row["sweep_id"], agent_id=row["agent_id"], account_id=row["account_id"],
        display_name=row["display_name"] or "", state=SWEEP_STATES[row["state"]],
        space=[_param(p) for p in spec.space],
        objective=sweep_pb2.SweepObjective(metric=spec.metric, direction=_DIRECTIONS[spec.direction]),
        sampler=_SAMPLERS[spec.sampler], max_trials=spec.max_trials, parallelism=spec.parallelism,
        early_stopping=sweep_pb2.SweepEarlyStopping(rule=_RULES[spec.stopping.rule],
                                                    grace_epochs=spec.stopping.grace_epochs,
                                                    reduction_factor=spec.stopping.reduction_factor),
        base_config=template.config, dataset_id=template.dataset_id, seed=spec.seed,
        trials=[trial_proto(t) for t in trials], message=row["message"] or "",
        create_time=to_timestamp(row["create_time"]), update_time=to_timestamp(row["update_time"]),
        end_time=to_timestamp(row["end_time"]))
    if row["best_trial"] is not None and row["best_trial"] < len(trials):
        out.best_trial.CopyFrom(trial_proto(trials[row["best_trial"]]))
    for e in events or []:
        out.events.add(time=to_timestamp(e["time"]), kind=e["kind"], message=e["message"], job_id=e["job_id"] or "")
    return out
