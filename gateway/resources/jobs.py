"""Training jobs and their checkpoints: the canonical fields, and the words for their enums.

Every surface says a job's state and method with these words (the proto enum names without
their prefix, lower case); a surface with another vocabulary maps these words, never the enums.
"""
from __future__ import annotations

from typing import Any

from trainhouse.v1 import job_state_pb2, training_job_pb2

from gateway.convert import duration_s, enum_word, human_duration, ts_iso


def state_word(state: int) -> str:
    return enum_word(job_state_pb2.JobState.Name(state), "JOB_STATE_")


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
    """The service's estimate (measured throughput on this machine); unknown only if it has none."""
    eta = duration_s(job.progress.estimated_time_remaining) if job.HasField("progress") else None
    return human_duration(eta) if eta is not None else "unknown"


def job_status(job: training_job_pb2.TrainingJob) -> dict[str, Any]:
    progress = job.progress
    status = state_word(job.state)
    out: dict[str, Any] = {
        "jobId": job.job_id,
        "agentId": job.agent_id,
        "status": status,
        "progress": round(min(1.0, max(0.0, progress.percent_complete / 100.0)), 4),
        "currentEpoch": progress.current_epoch,
        "totalEpochs": progress.total_epochs,
        "currentStep": progress.current_step,
        "totalSteps": progress.total_steps,
        "metrics": {key: job.metrics[name] for name, key in STATUS_METRICS.items() if name in job.metrics},
        "estimatedCompletion": ts_iso(job.estimated_completion_time),
        "createdAt": ts_iso(job.create_time),
        "startTime": ts_iso(job.start_time),
        "endTime": ts_iso(job.end_time),
        "modelVersion": job.model_version_id or None,
        "bestCheckpointId": job.best_checkpoint_id or None,
        "datasetId": job.dataset_id or None,
        "trainExamples": job.train_examples,
        "validationExamples": job.validation_examples,
        "statusReason": job.status_reason or None,
    }
    if status == "failed":
        out["error"] = {"code": "TRAINING_FAILED", "message": job.error.message or "training failed",
                        "reason": job.status_reason or None}
    return out
