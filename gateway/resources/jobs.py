"""Training jobs and their checkpoints: the canonical fields, and the words for their enums.

Every surface says a job's state and method with these words (the proto enum names without
their prefix, lower case); a surface with another vocabulary maps these words, never the enums.
"""
from __future__ import annotations

from typing import Any

from trainhouse.v1 import job_state_pb2, training_job_pb2

from trainhouse.gateway.convert import duration_s, enum_word, human_duration, ts_iso
from trainhouse.gateway.resources.tables import FieldTable


def state_word(state: int) -> str:
    return enum_word(job_state_pb2.JobState.Name(state), "JOB_STATE_")


# The seeds' job states predate PAUSED (job_state.proto). Seeds 000, 001 and 004 know queued,
# initializing (001: preparing), running, validating, completed, failed and cancelled; seed 003
# knows five (queued, running, completed, failed, cancelled). A paused job reads "cancelled" on all
# of them: the only word they have for a job a user stopped ("Manually stopped", "Job cancelled by
# user"), which holds no slot and makes no progress by itself; "queued" would promise that it starts
# on its own, which a paused job never does. It stays resumable (ResumeJob), as a cancelled job is.
SEED_STATES = {"paused": "cancelled"}
# Seed 003 also has no initializing/validating: a job that a worker has picked up is running until
# it ends, whatever it is doing in between.
SEED003_STATES = {**SEED_STATES, "initializing": "running", "validating": "running"}


def seed_word(word: str) -> str:
    """Seeds 000, 001 and 004's word for a canonical state word (see SEED_STATES)."""
    return SEED_STATES.get(word, word)


def seed_state_word(state: int) -> str:
    return seed_word(state_word(state))


def seed003_word(word: str) -> str:
    """Seed 003's word for a canonical state word."""
    return SEED003_STATES.get(word, word)


def seed003_state_word(state: int) -> str:
    return seed003_word(state_word(state))


def method_word(method: int) -> str:
    if method == job_state_pb2.TRAINING_METHOD_UNSPECIFIED:
        return "supervised"
    return enum_word(job_state_pb2.TrainingMethod.Name(method), "TRAINING_METHOD_")


def checkpoint_fields(cp: training_job_pb2.Checkpoint) -> dict[str, Any]:
    return {"checkpoint_id": cp.checkpoint_id, "job_id": cp.job_id, "epoch": cp.epoch, "step": cp.step,
            "metrics": dict(sorted(cp.metrics.items())), "best": cp.best, "kind": cp.kind,
            "size_bytes": cp.size_bytes, "created_at": ts_iso(cp.create_time)}


# ---- seed 000's job status document (also what seed 000's SDK names answer on the functions surface)

STATUS_METRICS = {"loss": "trainingLoss", "validation_loss": "validationLoss", "accuracy": "accuracy",
                  "validation_accuracy": "validationAccuracy", "learning_rate": "learningRate"}


def estimated_duration(job: training_job_pb2.TrainingJob) -> str:
    """The service's estimate (this method's measured throughput on this platform, or the job's
    own progress); without one, "unknown" and why."""
    eta = duration_s(job.progress.estimated_time_remaining) if job.HasField("progress") else None
    if eta is not None:
        return human_duration(eta)
    return f"unknown ({job.progress.estimate_basis})" if job.progress.estimate_basis else "unknown"


def job_fields(job: training_job_pb2.TrainingJob) -> dict[str, Any]:
    """The canonical fields of a training job, every surface's and the CLI's starting point."""
    p = job.progress
    eta = duration_s(p.estimated_time_remaining) if p.HasField("estimated_time_remaining") else None
    return {
        "job_id": job.job_id, "agent_id": job.agent_id, "state": state_word(job.state),
        "status_reason": job.status_reason or None,
        "error": (job.error.message or None) if job.HasField("error") else None,
        "error_code": job.error.code if job.HasField("error") else None,
        "percent_complete": round(p.percent_complete, 2), "current_epoch": p.current_epoch,
        "total_epochs": p.total_epochs, "current_step": p.current_step, "total_steps": p.total_steps,
        # GRPO counts iterations (rollout rounds); the other methods count epochs.
        "current_iteration": p.current_iteration if p.total_iterations else p.current_epoch,
        "total_iterations": p.total_iterations or p.total_epochs,
        "estimated_time_remaining_ms": None if eta is None else int(round(eta * 1000)),
        "estimate_basis": p.estimate_basis or None,
        "metrics": dict(sorted(job.metrics.items())),
        "model_version_id": job.model_version_id or None, "best_checkpoint_id": job.best_checkpoint_id or None,
        "dataset_id": job.dataset_id or None, "train_examples": job.train_examples,
        "validation_examples": job.validation_examples,
        "created_at": ts_iso(job.create_time), "started_at": ts_iso(job.start_time), "ended_at": ts_iso(job.end_time),
        "estimated_completion": ts_iso(job.estimated_completion_time),
        "cost_usd": job.cost_usd, "budget_usd": job.budget_usd or None,
        "labels": dict(sorted(job.labels.items())),
        "last_sequence": job.last_sequence,
    }


def failure_block(fields: dict[str, Any]) -> dict[str, Any]:
    """The error object seeds 000-002 attach to a failed job."""
    return {"code": "TRAINING_FAILED", "message": fields["error"] or "training failed",
            "reason": fields["status_reason"]}


# Seed 000's status document: camelCase, "status", "modelVersion", "startTime"/"endTime", progress as
# a fraction, and its five metric names.
JOB_V1 = FieldTable({"state": "status", "model_version_id": "model_version", "started_at": "start_time",
                     "ended_at": "end_time"}, camel_case=True, values={"state": seed_word}).restricted(
    ("job_id", "agent_id", "state", "current_epoch", "total_epochs", "current_step", "total_steps",
     "estimated_completion", "created_at", "started_at", "ended_at", "model_version_id", "best_checkpoint_id",
     "dataset_id", "train_examples", "validation_examples", "status_reason"))


def job_status(job: training_job_pb2.TrainingJob) -> dict[str, Any]:
    fields = job_fields(job)
    out = JOB_V1.render(fields)
    out["progress"] = round(min(1.0, max(0.0, job.progress.percent_complete / 100.0)), 4)
    out["metrics"] = {key: job.metrics[name] for name, key in STATUS_METRICS.items() if name in job.metrics}
    if fields["state"] == "failed":
        out["error"] = failure_block(fields)
    return out
