"""Which webhook event a JobEvent is, and its payload in each seed's format.

Formats (chosen per subscription):
- ``v1`` (seed 000): ``{"id", "event": "training.completed", "timestamp", "data": {"jobId", "agentId",
  "status", "metrics": {"finalAccuracy", "trainingTime", ...}, "modelVersion"}}``;
- ``functions`` (seed 001): ``{"id", "event", "timestamp", "job_id", "agent_id", "results" | "error" ...}``;
- ``jsonrpc`` (seed 003): ``{"id", "event": "training.job.completed", "timestamp",
  "data": {"job_id", "agent_id", "status", "final_metrics": {...}}}``.
``id`` is the event id, the same in every attempt, for the receiver's dedup. Each payload also
carries the event's own fields (``gateway/resources/events.py``, the mapping SSE and the CLI
render too) in the format's spelling, with the seed's fields on top.
"""
from __future__ import annotations

from typing import Any

from trainhouse.v1 import job_state_pb2, training_job_pb2

from trainhouse.gateway.convert import camel, finite, human_duration, ts_iso, usd_text
from trainhouse.gateway.resources.events import SNAKE, V1, event_fields
from trainhouse.gateway.resources.jobs import SEED003_STATES, state_word

STARTED = "training.started"
PROGRESS = "training.progress"
COMPLETED = "training.completed"
FAILED = "training.failed"
CANCELLED = "training.cancelled"
BUDGET_WARNING = "training.budget.warning"
# The promotion gate's decision on a job's version (jobs that asked for promotion).
PROMOTED = "model.promoted"
PROMOTION_REJECTED = "model.promotion_rejected"
EVENTS = (STARTED, PROGRESS, COMPLETED, FAILED, CANCELLED, BUDGET_WARNING, PROMOTED, PROMOTION_REJECTED)
# Seed 003 spells the job events training.job.*.
JSONRPC_NAMES = {STARTED: "training.job.started", PROGRESS: "training.job.progress",
                 COMPLETED: "training.job.completed", FAILED: "training.job.failed",
                 CANCELLED: "training.job.cancelled", BUDGET_WARNING: BUDGET_WARNING,
                 PROMOTED: PROMOTED, PROMOTION_REJECTED: PROMOTION_REJECTED}
ALIASES = {v: k for k, v in JSONRPC_NAMES.items()}
FORMATS = ("v1", "functions", "jsonrpc")

TERMINAL = {job_state_pb2.JOB_STATE_COMPLETED: COMPLETED, job_state_pb2.JOB_STATE_FAILED: FAILED,
            job_state_pb2.JOB_STATE_CANCELLED: CANCELLED}


def normalize(name: str) -> str | None:
    """A subscribable event name in its canonical spelling, or None when unknown."""
    if name in EVENTS:
        return name
    return ALIASES.get(name)


EVENT_DOC = ", ".join(EVENTS) + " (seed 003's training.job.* names are accepted too), or '*' for all"


def check_subscription(events: list[str]) -> list[str]:
    """A subscription's event names (a pydantic validator's body for every surface that takes one)."""
    for i, name in enumerate(events):
        if name != "*" and normalize(name) is None:
            raise ValueError(f"events[{i}]: unknown event '{name[:80]}'; one of {EVENT_DOC}")
    return events


# The JobEvent kinds classify() can turn into a webhook event: the follower asks the TrainingService
# for these only (WatchAllEventsRequest.kinds), not for every metric point and log line.
SOURCE_KINDS = ("status", "epoch", "budget", "promotion")


def classify(ev: training_job_pb2.JobEvent) -> str | None:
    """The webhook event a JobEvent is, if any (progress is filtered per subscription later)."""
    kind = ev.WhichOneof("payload")
    if kind == "status":
        if ev.status.state == job_state_pb2.JOB_STATE_RUNNING:
            return STARTED
        return TERMINAL.get(ev.status.state)
    if kind == "epoch":
        return PROGRESS
    if kind == "budget" and ev.budget.level.startswith("warning"):
        return BUDGET_WARNING
    if kind == "promotion":
        return PROMOTED if ev.promotion.decision.outcome == "promoted" else PROMOTION_REJECTED
    return None


def _threshold(ev: training_job_pb2.JobEvent) -> int | None:
    """warning_75 -> 75."""
    tail = ev.budget.level.rpartition("_")[2]
    return int(tail) if tail.isdigit() else None


def event_id(ev: training_job_pb2.JobEvent) -> str:
    """Stable per event of the TrainingService log: the same in every attempt and after restarts."""
    return f"evt-{ev.cursor}"


def wire_name(event: str, fmt: str) -> str:
    return JSONRPC_NAMES[event] if fmt == "jsonrpc" else event


def _final_accuracy(metrics: dict[str, float]) -> float | None:
    for name in ("validation_accuracy", "accuracy"):
        if name in metrics:
            return metrics[name]
    return None


def _training_seconds(job: training_job_pb2.TrainingJob) -> float | None:
    if "training_seconds" in job.metrics:
        return job.metrics["training_seconds"]
    if job.start_time.seconds and job.end_time.seconds:
        return (job.end_time.ToMicroseconds() - job.start_time.ToMicroseconds()) / 1e6
    return None


def build(event: str, fmt: str, ev: training_job_pb2.JobEvent,
          job: training_job_pb2.TrainingJob | None) -> dict[str, Any]:
    """The payload of `event` (from JobEvent `ev`, with the job's final state for terminal events)."""
    base = {"id": event_id(ev), "event": wire_name(event, fmt), "timestamp": ts_iso(ev.time)}
    fields = event_fields(ev)  # every payload carries the event itself; the seed's fields come on top
    if fmt == "v1":
        return finite({**base, "data": {**V1.render(fields), **_v1(event, ev, job)}})
    if fmt == "functions":
        return finite({**base, **SNAKE.render(fields), **_functions(event, ev, job)})
    return finite({**base, "data": {**SNAKE.render(fields), **_jsonrpc(event, ev, job)}})


def _status(ev: training_job_pb2.JobEvent, job: training_job_pb2.TrainingJob | None) -> str:
    if ev.WhichOneof("payload") == "status":
        return state_word(ev.status.state)
    return state_word(job.state) if job is not None else "running"


def _v1(event: str, ev: training_job_pb2.JobEvent, job: training_job_pb2.TrainingJob | None) -> dict[str, Any]:
    data: dict[str, Any] = {"jobId": ev.job_id, "agentId": ev.agent_id, "status": _status(ev, job)}
    if event == STARTED:
        data["startTime"] = ts_iso(ev.time)
    elif event == PROGRESS:
        e = ev.epoch
        data.update(epoch=e.epoch, totalEpochs=e.total_epochs, step=e.step, totalSteps=e.total_steps,
                    progress=round(e.epoch / e.total_epochs, 4) if e.total_epochs else None,
                    metrics={camel(k): v for k, v in e.metrics.items()})
    elif event == COMPLETED and job is not None:
        metrics: dict[str, Any] = {camel(k): v for k, v in job.metrics.items()}
        accuracy = _final_accuracy(dict(job.metrics))
        if accuracy is not None:
            metrics["finalAccuracy"] = accuracy
        if "loss" in job.metrics:
            metrics["finalLoss"] = job.metrics["loss"]
        seconds = _training_seconds(job)
        if seconds is not None:
            metrics["trainingTime"] = human_duration(seconds)
        data.update(metrics=metrics, modelVersion=job.model_version_id or None)
    elif event == FAILED:
        data["error"] = _failure(ev, job)
    elif event == CANCELLED:
        data["reason"] = ev.status.reason or None
    elif event == BUDGET_WARNING:
        b = ev.budget
        data.update(costUsd=b.cost_usd, budgetUsd=b.budget_usd, budgetUsedPercent=round(100 * b.fraction, 2),
                    thresholdPercent=_threshold(ev))
    return data


def _failure(ev: training_job_pb2.JobEvent, job: training_job_pb2.TrainingJob | None) -> dict[str, Any]:
    """The error block every surface's training.failed payload carries."""
    return {"code": "TRAINING_FAILED",
            "message": (job.error.message if job else "") or ev.status.message or "training failed",
            "reason": ev.status.reason or None}


def _functions(event: str, ev: training_job_pb2.JobEvent,
               job: training_job_pb2.TrainingJob | None) -> dict[str, Any]:
    out: dict[str, Any] = {"job_id": ev.job_id, "agent_id": ev.agent_id, "status": _status(ev, job)}
    if event == PROGRESS:
        e = ev.epoch
        out["progress"] = {"current_epoch": e.epoch, "total_epochs": e.total_epochs, "current_step": e.step,
                           "total_steps": e.total_steps,
                           "percent_complete": round(100.0 * e.epoch / e.total_epochs, 2) if e.total_epochs else None}
        out["metrics"] = dict(e.metrics)
    elif event == COMPLETED and job is not None:
        seconds = _training_seconds(job)
        out["results"] = {"status": "completed", "metrics": dict(job.metrics),
                          "model_version": job.model_version_id or None,
                          "training_time_ms": int(seconds * 1000) if seconds is not None else None}
    elif event == FAILED:
        out["error"] = _failure(ev, job)
    elif event == CANCELLED:
        out["reason"] = ev.status.reason or None
    elif event == BUDGET_WARNING:
        b = ev.budget
        out.update(cost_usd=b.cost_usd, budget_usd=b.budget_usd, budget_used_percent=round(100 * b.fraction, 2),
                   threshold_percent=_threshold(ev))
    return out


def _jsonrpc(event: str, ev: training_job_pb2.JobEvent, job: training_job_pb2.TrainingJob | None) -> dict[str, Any]:
    status = _status(ev, job)
    data: dict[str, Any] = {"job_id": ev.job_id, "agent_id": ev.agent_id,
                            "status": SEED003_STATES.get(status, status)}
    if event == STARTED:
        data["started_at"] = ts_iso(ev.time)
    elif event == PROGRESS:
        e = ev.epoch
        data.update(current_iteration=e.epoch, total_iterations=e.total_epochs,
                    progress_percent=round(100.0 * e.epoch / e.total_epochs, 2) if e.total_epochs else None,
                    metrics=dict(e.metrics))
    elif event == COMPLETED and job is not None:
        final: dict[str, Any] = dict(job.metrics)
        if job.cost_usd or job.budget_usd:
            final["cost_usd"] = usd_text(job.cost_usd)
        data.update(final_metrics=final, model_version=job.model_version_id or None)
    elif event == FAILED:
        data["error"] = {"message": (job.error.message if job else "") or ev.status.message or "training failed",
                         "reason": ev.status.reason or None}
    elif event == CANCELLED:
        data["reason"] = ev.status.reason or None
    elif event == BUDGET_WARNING:
        b = ev.budget
        data.update(cost_usd=usd_text(b.cost_usd), budget_usd=usd_text(b.budget_usd),
                    budget_used_percent=round(100 * b.fraction, 2), threshold_percent=_threshold(ev))
    return data
