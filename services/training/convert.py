"""Protobuf <-> the domain at the edge: request configs in, stored rows and events out."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
from google.protobuf.duration_pb2 import Duration
from google.protobuf import json_format
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from trainhouse.common.pagination import ColumnRows
from trainhouse.common.structs import to_struct
from trainhouse.common.timeutil import now, to_timestamp
from trainhouse.training.estimates import Throughput, queued_estimate, work_units
from trainhouse.v1 import auto_training_pb2, job_state_pb2, model_version_pb2, training_job_pb2

STATES = {
    "queued": job_state_pb2.JOB_STATE_QUEUED,
    "initializing": job_state_pb2.JOB_STATE_INITIALIZING,
    "running": job_state_pb2.JOB_STATE_RUNNING,
    "validating": job_state_pb2.JOB_STATE_VALIDATING,
    "completed": job_state_pb2.JOB_STATE_COMPLETED,
    "failed": job_state_pb2.JOB_STATE_FAILED,
    "cancelled": job_state_pb2.JOB_STATE_CANCELLED,
    "paused": job_state_pb2.JOB_STATE_PAUSED,
}
STATE_NAMES = {v: k for k, v in STATES.items()}
# The event kinds a job's history holds: JobEvent's payload fields, as stored in job_events.kind.
EVENT_KINDS = tuple(f.name for f in training_job_pb2.JobEvent.DESCRIPTOR.oneofs_by_name["payload"].fields)
METHOD_ENUM = {
    "supervised": job_state_pb2.TRAINING_METHOD_SUPERVISED,
    "few_shot": job_state_pb2.TRAINING_METHOD_FEW_SHOT,
    "transfer": job_state_pb2.TRAINING_METHOD_TRANSFER,
    "reinforcement": job_state_pb2.TRAINING_METHOD_REINFORCEMENT,
    "grpo": job_state_pb2.TRAINING_METHOD_GRPO,
}
# TrainingConfig fields that carry one config value each (the rest travel in `options`).
_TYPED = {f.name for f in training_job_pb2.TrainingConfig.DESCRIPTOR.fields} - {"method", "curriculum", "grpo",
                                                                                   "options"}
_GRPO_TYPED = {f.name for f in training_job_pb2.GrpoConfig.DESCRIPTOR.fields}
_CURRICULUM = ("curriculum_enabled", "curriculum_stages")


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.timezone.utc) if value is not None and value.tzinfo is None else value


def message_dict(message: Message, *, every_field: bool = False) -> dict[str, Any]:
    """The fields the caller set in ``message``, under their proto names, as Python values: int64
    stays an int (``MessageToDict`` would make it a string), a ``Struct`` becomes a dict (numbers
    as floats, as the caller's JSON had them) and an enum its number. Items of a repeated message
    field (a curriculum stage) give ``every_field``: there a 0 is the value sent, not "unset"."""
    out: dict[str, Any] = {}
    fields = ([(f, getattr(message, f.name)) for f in message.DESCRIPTOR.fields if f.message_type is None]
              if every_field else message.ListFields())
    for field, value in fields:
        repeated = field.is_repeated
        if field.message_type is not None and field.message_type.full_name == "google.protobuf.Struct":
            out[field.name] = MessageToDict(value)
        elif field.message_type is not None:
            out[field.name] = ([message_dict(v, every_field=True) for v in value] if repeated
                               else message_dict(value))
        else:
            out[field.name] = list(value) if repeated else value
    return out


def config_dict(config: training_job_pb2.TrainingConfig) -> dict[str, Any]:
    """A classifier job's config as the config models read it: the typed fields the caller set,
    then ``options`` (keys as given, so an error names them as written)."""
    out = message_dict(config)
    for name in ("method", "grpo"):
        out.pop(name, None)
    out.update(out.pop("options", {}))
    return out


def grpo_config_dict(config: training_job_pb2.TrainingConfig) -> dict[str, Any]:
    """A GRPO job's config: ``grpo``, then ``options`` (the knobs beyond seed 003), then the
    general fields GRPO shares (seed, hidden_sizes, max_budget_usd) unless already given."""
    top = message_dict(config)
    out = {**top.get("grpo", {}), **top.get("options", {})}
    for name in ("seed", "hidden_sizes", "max_budget_usd"):
        if name in top:
            out.setdefault(name, top[name])
    return out


def config_proto(method: str, resolved: dict[str, Any]) -> training_job_pb2.TrainingConfig:
    """A job's resolved config (``ConfigModel.to_dict``) as the TrainingConfig GetJob returns: each
    value in its typed field (GRPO's also in ``grpo``), the rest under their canonical names in
    ``options``, so the message holds the whole config and reads back to the same one."""
    cfg = training_job_pb2.TrainingConfig(method=METHOD_ENUM.get(method, 0))
    rest: dict[str, Any] = {}
    for name, value in resolved.items():
        grpo = method == "grpo" and name in _GRPO_TYPED
        if name in _CURRICULUM or (name not in _TYPED and not grpo):
            if name not in _CURRICULUM:
                rest[name] = value
            continue
        if value is None:
            continue
        if name == "hidden_sizes" and not value:  # a repeated field cannot say "empty" apart from "unset"
            rest[name] = []
        elif name == "hidden_sizes":
            cfg.hidden_sizes.extend(int(h) for h in value)
        elif name in _TYPED:
            setattr(cfg, name, value)
        if grpo:
            setattr(cfg.grpo, name, value)
    stages = resolved.get("curriculum_stages") or []
    if resolved.get("curriculum_enabled") or stages:
        cfg.curriculum.enabled = bool(resolved.get("curriculum_enabled"))
        for stage in stages:
            cfg.curriculum.stages.add(level=int(stage["level"]), duration=int(stage["duration"]))
    if rest:
        cfg.options.CopyFrom(to_struct(rest))
    return cfg


# Used for a job's first estimate until this machine has finished a job (then measured).
def _set_remaining(job: training_job_pb2.TrainingJob, remaining: float) -> None:
    remaining = max(0.0, remaining)
    job.progress.estimated_time_remaining.CopyFrom(Duration(seconds=int(remaining),
                                                            nanos=int((remaining % 1) * 1e9)))
    job.estimated_completion_time.CopyFrom(to_timestamp(now() + dt.timedelta(seconds=remaining)))


def job_proto(row: dict[str, Any], throughput: Throughput | None = None) -> training_job_pb2.TrainingJob:
    """`throughput` (this method's measured work per second, estimates.py) estimates jobs that
    have not started; a running job is estimated from its own progress."""
    config = json.loads(row["config_json"])
    metrics = {k: float(v) for k, v in json.loads(row["metrics_json"] or "{}").items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    job = training_job_pb2.TrainingJob(
        job_id=row["job_id"], agent_id=row["agent_id"], account_id=row["account_id"],
        display_name=row["display_name"] or "", state=STATES[row["state"]],
        config=config_proto(row["method"], config.get("resolved", {})), dataset_id=row["dataset_id"] or "",
        metrics=metrics, train_examples=row["train_examples"] or 0,
        validation_examples=row["validation_examples"] or 0, model_version_id=row["model_version_id"] or "",
        best_checkpoint_id=row["best_checkpoint_id"] or "", status_reason=row["status_reason"] or "",
        last_sequence=row["last_sequence"] or 0, base_version_id=row["base_version_id"] or "",
        labels=config.get("labels", {}))
    total_steps = row["total_steps"] or 0
    step = row["current_step"] or 0
    fraction = 1.0 if row["state"] == "completed" else (step / total_steps if total_steps else 0.0)
    job.progress.current_epoch = row["current_epoch"] or 0
    job.progress.total_epochs = row["total_epochs"] or config.get("resolved", {}).get("epochs") or 0
    job.progress.current_step = step
    job.progress.total_steps = total_steps
    job.progress.percent_complete = round(100.0 * min(fraction, 1.0), 2)
    if row["method"] == "grpo":
        job.progress.current_iteration = job.progress.current_epoch
        job.progress.total_iterations = job.progress.total_epochs
    job.cost_usd = row.get("cost_usd") or 0.0
    job.budget_usd = row.get("budget_usd") or 0.0
    start = _utc(row["start_time"])
    if start is not None and 0 < fraction < 1 and row["state"] in ("running", "validating", "initializing"):
        elapsed = (now() - start).total_seconds()
        _set_remaining(job, elapsed * (1 - fraction) / fraction)
        job.progress.estimate_basis = (f"this job's own progress: {100 * fraction:.1f}% done in {elapsed:.0f} s")
    elif fraction == 0 and row["state"] in ("queued", "initializing"):
        work = work_units(row["method"], row.get("example_count") or 0, job.progress.total_epochs or 1,
                          config.get("resolved", {}))
        seconds, job.progress.estimate_basis = queued_estimate(row["method"], work, throughput)
        if seconds is not None:
            _set_remaining(job, seconds)
    for name in ("create_time", "start_time", "end_time", "update_time"):
        value = _utc(row[name])
        if value is not None:
            getattr(job, name).CopyFrom(to_timestamp(value))
    if row["state"] == "failed":
        job.error.code = 13 if row["status_reason"] not in ("budget_exceeded",) else 8
        job.error.message = row["error_message"] or row["status_reason"] or "failed"
    return job


def checkpoint_proto(row: dict[str, Any]) -> training_job_pb2.Checkpoint:
    ckpt = training_job_pb2.Checkpoint(
        checkpoint_id=row["checkpoint_id"], job_id=row["job_id"], epoch=row.get("epoch") or 0,
        step=row.get("step") or 0, best=bool(row.get("best")), kind=row.get("kind") or "",
        size_bytes=row.get("size_bytes") or 0)
    metrics = row.get("metrics_json")
    metrics = json.loads(metrics) if isinstance(metrics, str) else (row.get("metrics") or {})
    for k, v in metrics.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            ckpt.metrics[k] = float(v)
    if row.get("create_time") is not None:
        ckpt.create_time.CopyFrom(to_timestamp(_utc(row["create_time"])))
    return ckpt


def add_metric_points(points: Any, rows: ColumnRows) -> None:
    """Append a metric page (JobStore.metrics' columns) to a repeated MetricPoint field.

    Built column by column because a page holds up to 10k points: a MetricPoint(..., time=
    to_timestamp(row["time"])) per row dict cost ~8 us a point (to_timestamp alone ~5: a tz-aware
    datetime and FromDatetime), ~80 ms a full page against ~6 ms here. The stored times are naive
    UTC microseconds, so seconds and nanos come from integer arithmetic on the column (floor
    division keeps nanos non-negative before 1970, as Timestamp requires); a NULL epoch or step
    is 0, as proto3 shows an unset field. ``time`` is NOT NULL in the schema, so every point has one."""
    if not len(rows):
        return
    micros = rows.column("time").astype("datetime64[us]").astype(np.int64)
    columns = zip(rows.column("name").tolist(), rows.column("value").tolist(),
                  np.ma.filled(rows.column("epoch"), 0).tolist(), np.ma.filled(rows.column("step"), 0).tolist(),
                  (micros // 1_000_000).tolist(), (micros % 1_000_000 * 1000).tolist())
    add = points.add
    for name, value, epoch, step, seconds, nanos in columns:
        point = add()  # attributes set one by one: half the time of add(name=..., ...) with upb
        point.name = name
        point.value = value
        point.epoch = epoch
        point.step = step
        time = point.time
        time.seconds = seconds
        time.nanos = nanos


def event_proto(job_id: str, event: dict[str, Any]) -> training_job_pb2.JobEvent:
    msg = training_job_pb2.JobEvent(sequence=event["sequence"], job_id=job_id,
                                    time=to_timestamp(_utc(event["time"])), cursor=event.get("cursor") or 0,
                                    agent_id=event.get("agent_id") or "", account_id=event.get("account_id") or "")
    p = event["payload"]
    kind = event["kind"]
    if kind == "status":
        msg.status.CopyFrom(training_job_pb2.StatusChange(
            state=STATES[p["state"]], reason=p.get("reason", ""), message=p.get("message", ""),
            terminal=bool(p.get("terminal"))))
    elif kind == "epoch":
        msg.epoch.CopyFrom(training_job_pb2.EpochEnd(
            epoch=p.get("epoch") or 0, total_epochs=p.get("total_epochs") or 0, step=p.get("step") or 0,
            total_steps=p.get("total_steps") or 0, metrics=p.get("metrics") or {}))
    elif kind == "step":
        msg.step.CopyFrom(training_job_pb2.StepProgress(
            epoch=p.get("epoch") or 0, step=p.get("step") or 0, total_steps=p.get("total_steps") or 0,
            metrics=p.get("metrics") or {}))
    elif kind == "budget":
        msg.budget.CopyFrom(training_job_pb2.BudgetUpdate(
            cost_usd=p.get("cost_usd") or 0.0, budget_usd=p.get("budget_usd") or 0.0,
            fraction=p.get("fraction") or 0.0, level=p.get("level", "")))
    elif kind == "metric":
        msg.metric.CopyFrom(training_job_pb2.MetricUpdate(
            name=p["name"], value=float(p["value"]), epoch=p.get("epoch") or 0, step=p.get("step") or 0))
    elif kind == "checkpoint":
        msg.checkpoint.CopyFrom(checkpoint_proto({**p, "job_id": job_id, "create_time": event["time"]}))
    elif kind == "promotion":
        decision = {k: v for k, v in p.items() if k != "version_id"}
        msg.promotion.CopyFrom(training_job_pb2.PromotionEvent(
            version_id=p["version_id"], decision=json_format.ParseDict(decision, model_version_pb2.PromotionDecision(),
                                                                       ignore_unknown_fields=True)))
    else:
        msg.log.CopyFrom(training_job_pb2.LogLine(level=p.get("level", "info"), message=p.get("message", "")))
    return msg


# ---- auto-training ------------------------------------------------------------------------------
AUTOTRAIN_RUN_STATES = {"started": auto_training_pb2.AUTO_TRAINING_RUN_STATE_STARTED,
                        "failed": auto_training_pb2.AUTO_TRAINING_RUN_STATE_FAILED,
                        "skipped": auto_training_pb2.AUTO_TRAINING_RUN_STATE_SKIPPED}


def _ts(value: dt.datetime | None):
    return to_timestamp(_utc(value)) if value is not None else None


def autotrain_config_proto(config: Any) -> auto_training_pb2.AutoTrainingConfig:
    return auto_training_pb2.AutoTrainingConfig(
        agent_id=config.agent_id, threshold=config.threshold, cooldown_hours=config.cooldown_hours,
        enabled=config.enabled, inherited=config.inherited, update_time=_ts(config.update_time),
        updated_by=config.updated_by)


def autotrain_run_proto(row: dict[str, Any]) -> auto_training_pb2.AutoTrainingRun:
    return auto_training_pb2.AutoTrainingRun(
        run_id=row["run_id"], agent_id=row["agent_id"], state=AUTOTRAIN_RUN_STATES[row["state"]],
        job_id=row["job_id"] or "", base_version_id=row["base_version_id"] or "",
        feedback_count=row["feedback_count"] or 0, trajectory_count=row["trajectory_count"] or 0,
        feedback_example_count=row["feedback_example_count"] or 0,
        trajectory_example_count=row["trajectory_example_count"] or 0,
        replay_example_count=row["replay_example_count"] or 0,
        trajectory_dataset_id=row["trajectory_dataset_id"] or "", error_message=row["error_message"] or "",
        error_field=row["error_field"] or "", trigger=row["trigger"] or "", window_start=_ts(row["window_start"]),
        window_end=_ts(row["window_end"]), create_time=_ts(row["create_time"]), actor=row["actor"] or "")


def autotrain_status_proto(status: Any) -> auto_training_pb2.AutoTrainingStatus:
    remaining = Duration()
    remaining.FromNanoseconds(int(round(status.cooldown_remaining_s * 1e9)))
    return auto_training_pb2.AutoTrainingStatus(
        agent_id=status.agent_id, config=autotrain_config_proto(status.config),
        pending_feedback=status.pending_feedback, pending_trajectories=status.pending_trajectories,
        trajectories_counted=status.trajectories_counted, window_start=_ts(status.window_start),
        window_end=_ts(status.window_end), cooldown_remaining=remaining, due=status.due, reason=status.reason,
        base_version_id=status.base_version_id)
