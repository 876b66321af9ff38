"""analyzeAndOptimize's suggested sweep: the suggestions' config changes as a search space, so a
user can test them on the agent's data (TrainingService.CreateSweep) instead of trusting a rule.

Each field a suggestion changes becomes one parameter: a number spans the current job's value and
every suggested one, widened by half / double (a third of the range for bounded fractions) so the
search can go past a suggestion, and kept inside the field's own range; anything else (hidden
sizes, optimizer, flags) becomes the choices current + suggested. Every parameter is checked with
the same validation CreateSweep applies (services/core/sweep_space.parse_space); one it would
refuse is left out.
"""
from __future__ import annotations

import math
from typing import Any

from google.protobuf import struct_pb2

from trainhouse.core.configs import SupervisedConfig, field_bounds
from trainhouse.core.errors import InvalidArgument
from trainhouse.core.sweep_space import config_field, parse_space
from trainhouse.v1 import sweep_pb2, training_job_pb2

CONFIG = SupervisedConfig
# Searched on a log scale: their good values span orders of magnitude.
LOG_FIELDS = ("learning_rate", "weight_decay", "epochs", "batch_size", "warmup_steps")
TRIALS, PARALLELISM = 12, 2


def _current(cfg: dict[str, Any], name: str) -> Any:
    return cfg.get(name, cfg.get("options", {}).get(name, getattr(CONFIG(), name, None)))


def _span(name: str, values: list[float]) -> dict[str, Any]:
    lo, hi = min(values), max(values)
    bounds = field_bounds(CONFIG, name)
    positive = [v for v in values if v > 0]
    if name in LOG_FIELDS and positive:
        # A zero (weight decay off) cannot be on a log scale: start two decades below the rest.
        lo, hi, log = (min(positive) / 2 if lo > 0 else min(positive) / 100), hi * 2, True
    else:
        pad = max((hi - lo) / 3, 0.05 if bounds.get("le", bounds.get("lt", math.inf)) <= 1 else 1.0)
        lo, hi, log = lo - pad, hi + pad, False
    lo = max(lo, bounds.get("ge", -math.inf), bounds["gt"] * 1.0001 if "gt" in bounds and bounds["gt"] > 0 else
             (bounds["gt"] + 1e-9 if "gt" in bounds else -math.inf))
    hi = min(hi, bounds.get("le", math.inf), bounds["lt"] - 1e-9 if "lt" in bounds else math.inf)
    return {"low": lo, "high": hi, "log": log}


def _param(name: str, current: Any, suggested: list[Any]) -> dict[str, Any] | None:
    numbers = [v for v in [current, *suggested] if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) == len(suggested) + 1:
        span = _span(name, [float(v) for v in numbers])
        if all(isinstance(v, int) for v in numbers):
            span.update(low=math.ceil(span["low"]), high=math.floor(span["high"]), integer=True)
        return {"field": name, "range": span}
    choices = []
    for v in [current, *suggested]:
        if v is not None and v not in choices:
            choices.append(list(v) if isinstance(v, tuple) else v)
    return {"field": name, "choices": choices} if len(choices) > 1 else None


def suggested_sweep(agent_id: str, job_config: training_job_pb2.TrainingConfig | None, cfg: dict[str, Any],
                    suggestions: list[dict[str, Any]], goals: list[str]) -> sweep_pb2.Sweep | None:
    """The sweep over what ``suggestions`` change (their ``config_changes``), or None."""
    suggested: dict[str, list[Any]] = {}
    for s in suggestions:
        for key, value in s["config_changes"].items():
            try:
                name = config_field(CONFIG, key)
            except KeyError:  # not a training-config field (e.g. a featurizer change): not searched here
                continue
            suggested.setdefault(name, []).append(value)
    space = []
    for name, values in suggested.items():
        param = _param(name, _current(cfg, name), values)
        if param is None:
            continue
        try:
            parse_space(CONFIG, [param], "tpe")
        except InvalidArgument:
            continue
        space.append(param)
    if not space:
        return None
    accuracy = "maximize_accuracy" in goals
    sweep = sweep_pb2.Sweep(
        agent_id=agent_id, display_name=f"{agent_id}: test the optimisation suggestions",
        objective=sweep_pb2.SweepObjective(
            metric="validation_accuracy" if accuracy else "validation_loss",
            direction=sweep_pb2.SWEEP_DIRECTION_MAXIMIZE if accuracy else sweep_pb2.SWEEP_DIRECTION_MINIMIZE),
        sampler=sweep_pb2.SWEEP_SAMPLER_TPE, max_trials=TRIALS, parallelism=PARALLELISM,
        early_stopping=sweep_pb2.SweepEarlyStopping(rule=sweep_pb2.SWEEP_STOPPING_RULE_MEDIAN, grace_epochs=2))
    if job_config is not None:
        sweep.base_config.CopyFrom(job_config)
    for param in space:
        out = sweep.space.add(field=param["field"])
        if "range" in param:
            out.range.CopyFrom(sweep_pb2.SweepRange(**param["range"]))
        else:
            holder = struct_pb2.ListValue()
            holder.extend(param["choices"])
            out.choices.values.extend(holder.values)
    return sweep
