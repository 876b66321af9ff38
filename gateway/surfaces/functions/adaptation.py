"""adaptAgentBehavior: TrainingService.AdaptAgent on the feedback the ModelRegistry recorded."""
from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import Request
from google.protobuf import duration_pb2
from pydantic import Field, StrictBool, StrictStr
from trainhouse.v1 import training_service_pb2

from trainhouse.gateway.convert import ts_iso
from trainhouse.gateway.deps import Caller, Services
from trainhouse.gateway.errors import encoding_request, rpc_fields
from trainhouse.gateway.models import Id, Number
from trainhouse.gateway.resources.jobs import seed_state_word
from trainhouse.gateway.resources.training_config import METHODS, config_json
from trainhouse.gateway.surfaces.functions.jobs import progress_snake
from trainhouse.gateway.surfaces.functions.surface import FUNCTIONS_SURFACE, Reply, SnakeModel, new_router, reply

router = new_router()


# ---- adaptAgentBehavior ---------------------------------------------------------------------

ADAPT_WINDOW_DAYS = 7


class AdaptBehaviorIn(SnakeModel):
    """Seed 001 ({agent_id, feedback_window_days, auto_apply}) or seed 002 ({agent_id,
    performance_metrics, adaptation_strategy})."""

    agent_id: Id
    feedback_window_days: Number | None = Field(None, gt=0, le=3650,
                                                description=f"Days of feedback to learn from (default "
                                                            f"{ADAPT_WINDOW_DAYS})")
    auto_apply: StrictBool | None = Field(None, description="true: the adapted version replaces what serves once "
                                                            "it passes the promotion gate; false or absent: it is "
                                                            "registered and changes nothing that serves")
    performance_metrics: dict[StrictStr, Number] | None = Field(
        None, description="Seed 002: the caller's view of current performance (e.g. success_rate). Compared with "
                          "the success rate the platform measured for the serving version from its recorded feedback "
                          "in the window: when that version answered every judged request correctly there is nothing "
                          "to correct and nothing is adapted (`reason: no_errors_to_correct`); `performance` shows "
                          "the comparison")
    adaptation_strategy: Literal["reinforcement", "supervised", "few_shot", "few-shot", "transfer"] | None = None


def performance_json(p: training_service_pb2.PerformanceCheck) -> dict[str, Any]:
    """Seed 002's performance_metrics next to what the platform measured, and the decision."""
    return {"serving_version": p.serving_version_id or None, "judged": p.judged, "incorrect": p.incorrect,
            "measured_success_rate": p.measured_success_rate if p.HasField("measured_success_rate") else None,
            "metrics": [{"metric": m.metric, "reported": m.reported,
                         "measured": m.measured if m.HasField("measured") else None, "measured_as": m.measured_as}
                        for m in p.metrics],
            "adaptation_needed": p.adaptation_needed, "reason": p.reason}


@router.post("/adaptAgentBehavior", response_model=Reply[dict[str, Any]], response_model_exclude_none=True,
             summary="Train the agent on its recorded feedback of the last N days (seeds 001/002)")
async def adapt_agent_behavior(body: AdaptBehaviorIn, request: Request, caller: Caller,
                               services: Services) -> dict[str, Any]:
    """A window with no usable feedback is an answer (`adapted` false, `reason`, `message`), not an
    error: the caller asked to adapt from what was recorded, and nothing was."""
    days = body.feedback_window_days or ADAPT_WINDOW_DAYS
    strategy = body.adaptation_strategy or "reinforcement"
    window = duration_pb2.Duration()
    window.FromTimedelta(dt.timedelta(days=days))
    with encoding_request():
        adapt = training_service_pb2.AdaptAgentRequest(
            agent_id=body.agent_id, method=METHODS[strategy], feedback_window=window)
        if body.auto_apply:
            adapt.promotion.requested_by = "auto_apply"
        for name, value in (body.performance_metrics or {}).items():
            adapt.reported_metrics[name] = value
    # The service names its own request's fields; the caller sent a strategy and a window.
    with rpc_fields(FUNCTIONS_SURFACE, {"method": "adaptation_strategy", "feedback_window": "feedback_window_days",
                                        "reported_metrics": "performance_metrics"}):
        resp = await services.training.AdaptAgent(adapt, timeout=services.timeout_s)
    out: dict[str, Any] = {
        "adapted": resp.adapted, "agent_id": body.agent_id, "adaptation_strategy": strategy,
        "feedback_window_days": days, "feedback_processed": resp.feedback_used,
        "feedback_skipped": resp.feedback_skipped, "training_examples": resp.training_examples,
        "auto_apply": bool(body.auto_apply), "promotion": "gated" if body.auto_apply else "none",
        "performance_metrics": body.performance_metrics,
        "message": resp.message,
    }
    if resp.HasField("performance"):
        out["performance"] = performance_json(resp.performance)
    if not resp.adapted:
        out.update({"status": "not_adapted", "reason": resp.not_adapted_reason})
        return reply(request, out)
    job = resp.job
    out.update({
        "adaptation_id": job.job_id, "job_id": job.job_id, "status": seed_state_word(job.state),
        "config": config_json(job.config, job.dataset_id), "progress": progress_snake(job),
        "estimated_completion": ts_iso(job.estimated_completion_time),
        "started_at": ts_iso(job.start_time) or ts_iso(job.create_time),
    })
    return reply(request, out)
