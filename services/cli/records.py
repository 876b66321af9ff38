"""The CLI's own record shapes, built from gRPC messages or from the gateway's JSON (the canonical /v1
API; the seed-000 readers stay for the rendering tests of tests/gateway).

`--json` prints these records, so a script sees the same keys whichever transport answered.
Keys are snake_case and always present (null when the source has no value); metrics keep the
services' names (loss, accuracy, validation_loss, ...).
"""
from __future__ import annotations

from typing import Any

from trainhouse.gateway.convert import snake, ts_iso

JOB_STATES = ("queued", "initializing", "running", "validating", "completed", "failed", "cancelled", "paused")
# A paused job is not terminal: it waits for a resume (job_state.proto).
TERMINAL_STATES = ("completed", "failed", "cancelled")
METHODS = ("supervised", "few_shot", "transfer", "reinforcement", "grpo")
# seed-000 status metric name -> service metric name
REST_METRICS = {"trainingLoss": "loss", "validationLoss": "validation_loss", "accuracy": "accuracy",
                "validationAccuracy": "validation_accuracy", "learningRate": "learning_rate"}


def enum_word(enum_type: Any, number: int, prefix: str) -> str:
    return enum_type.Name(number).removeprefix(prefix).lower()


def _none_if_empty(value: Any) -> Any:
    return value if value not in ("", None) else None


# ---- jobs ----------------------------------------------------------------------------------

# The CLI's job record: the job's canonical fields, "progress_percent" for the percentage.
CLI_JOB_FIELDS = ("job_id", "agent_id", "state", "status_reason", "error", "percent_complete", "current_epoch",
                  "total_epochs", "current_step", "total_steps", "metrics", "model_version_id", "dataset_id",
                  "train_examples", "validation_examples", "created_at", "started_at", "ended_at",
                  "estimated_completion")


def job_from_proto(job: Any) -> dict[str, Any]:
    from trainhouse.gateway.resources.jobs import job_fields

    return job_from_canonical(job_fields(job))


def job_from_canonical(fields: dict[str, Any]) -> dict[str, Any]:
    """From the job's canonical fields (trainhouse.gateway.resources.jobs.job_fields, the /v1 job)."""
    from trainhouse.gateway.resources.tables import FieldTable

    return FieldTable({"percent_complete": "progress_percent"}).restricted(CLI_JOB_FIELDS).render(fields)


def job_from_rest(d: dict[str, Any]) -> dict[str, Any]:
    """From seed-000 `GET /api/v1/training/train-agent/{jobId}` data."""
    metrics = {REST_METRICS.get(k, k): v for k, v in (d.get("metrics") or {}).items() if v is not None}
    error = d.get("error") or {}
    return {
        "job_id": d.get("jobId"),
        "agent_id": d.get("agentId"),
        "state": d.get("status"),
        "status_reason": d.get("statusReason"),
        "error": error.get("message") if isinstance(error, dict) and d.get("status") == "failed" else None,
        "progress_percent": round(float(d.get("progress") or 0.0) * 100.0, 2),
        "current_epoch": d.get("currentEpoch", 0),
        "total_epochs": d.get("totalEpochs", 0),
        "current_step": d.get("currentStep", 0),
        "total_steps": d.get("totalSteps", 0),
        "metrics": dict(sorted(metrics.items())),
        "model_version_id": d.get("modelVersion"),
        "dataset_id": d.get("datasetId"),
        "train_examples": d.get("trainExamples", 0),
        "validation_examples": d.get("validationExamples", 0),
        "created_at": d.get("createdAt"),
        "started_at": d.get("startTime"),
        "ended_at": d.get("endTime"),
        "estimated_completion": d.get("estimatedCompletion"),
    }


# ---- job events ----------------------------------------------------------------------------

def event_from_proto(ev: Any) -> dict[str, Any]:
    """The event's canonical fields: the same mapping the gateway's SSE and webhooks render."""
    from trainhouse.gateway.resources.events import event_fields

    return event_fields(ev)


def event_from_sse(d: dict[str, Any]) -> dict[str, Any]:
    """From one `data:` object of the gateway's SSE stream: seed 000's spelling read back."""
    from trainhouse.gateway.resources.events import V1

    return V1.parse(d)


# ---- agents, versions, predictions, datasets --------------------------------------------------

def agent_from_proto(a: Any) -> dict[str, Any]:
    """The agent's canonical fields: the same mapping the gateway's routes render."""
    from trainhouse.gateway.resources.agents import agent_fields

    return agent_fields(a)


def agent_from_rest(d: dict[str, Any]) -> dict[str, Any]:
    """From the gateway's camelCase agent (absent keys, which it omits when null, become null)."""
    from trainhouse.gateway.resources.agents import AGENT_FIELDS, AGENT_V1

    return {**dict.fromkeys(AGENT_FIELDS), **AGENT_V1.parse(d)}


def version_from_proto(v: Any) -> dict[str, Any]:
    from trainhouse.gateway.resources.agents import version_fields

    return version_fields(v)


def version_from_rest(d: dict[str, Any]) -> dict[str, Any]:
    """From seed 000's version: its table read back, the dashed status as the enum's word."""
    from trainhouse.gateway.resources.agents import VERSION_FIELDS, VERSION_V1

    out = {**dict.fromkeys(VERSION_FIELDS), **VERSION_V1.parse(d)}
    out.pop("size", None)
    out["state"] = (out["state"] or "").replace("-", "_") or None
    out["metrics"] = dict(sorted((out["metrics"] or {}).items()))
    if out.get("promotion"):
        out["promotion"] = {snake(k): v for k, v in out["promotion"].items()}
    if out.get("checkpoint"):
        out["checkpoint"] = {snake(k): v for k, v in out["checkpoint"].items()}
    return out


def dataset_from_proto(d: Any) -> dict[str, Any]:
    s = d.statistics
    return {"dataset_id": d.dataset_id, "source": _none_if_empty(d.source), "example_count": s.example_count,
            "output_counts": dict(sorted(s.output_counts.items())), "average_length": s.average_length,
            "sha256": _none_if_empty(d.sha256), "created_at": ts_iso(d.create_time)}


def dataset_from_canonical(d: dict[str, Any]) -> dict[str, Any]:
    """From the /v1 dataset (trainhouse.gateway.resources.datasets.dataset_fields)."""
    s = d.get("statistics") or {}
    return {"dataset_id": d.get("dataset_id"), "source": d.get("source"), "example_count": d.get("example_count", 0),
            "output_counts": dict(sorted((s.get("output_counts") or {}).items())),
            "average_length": s.get("average_length", 0.0), "sha256": d.get("sha256"),
            "created_at": d.get("created_at")}


def dataset_from_rest(d: dict[str, Any]) -> dict[str, Any]:
    s = d.get("statistics") or {}
    return {"dataset_id": d.get("datasetId"), "source": d.get("source"), "example_count": d.get("exampleCount", 0),
            "output_counts": dict(sorted((s.get("outputCounts") or {}).items())),
            "average_length": s.get("averageLength", 0.0), "sha256": d.get("sha256"),
            "created_at": d.get("createdAt")}


# ---- sweeps ----------------------------------------------------------------------------------

def sweep_record(s: Any) -> dict[str, Any]:
    """A sweep with its trials: the canonical API's record (the gateway's sweep JSON, snake_case keys)."""
    from trainhouse.gateway.convert import snake_keys
    from trainhouse.gateway.resources.sweeps import sweep_json

    return snake_keys(sweep_json(s))


# ---- tokens ---------------------------------------------------------------------------------

def token_from_rest(d: dict[str, Any]) -> dict[str, Any]:
    """A created token as the admin route answered it; the secret is in ``token`` (shown once)."""
    from trainhouse.gateway.resources.tokens import TOKEN_V1

    fields = TOKEN_V1.parse(d)
    keys = ("token_id", "token", "name", "scopes", "account", "created_at", "expires_at")
    return {k: fields.get(k) for k in keys} | {"scopes": list(fields.get("scopes") or [])}
