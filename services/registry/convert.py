"""Store rows <-> ModelRegistry protos, and the enum words both sides use."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.duration_pb2 import Duration

from trainhouse.common.timeutil import to_timestamp
from trainhouse.common.predictions import ARMS, ENVIRONMENT_ENUMS
from trainhouse.registry.rollout import ArmStats, GuardPolicy, RolloutPlan
from trainhouse.registry.store import aware, loads
from trainhouse.v1 import deployment_pb2, feedback_pb2, model_version_pb2

VERSION_STATES = {
    "registered": model_version_pb2.VERSION_STATE_REGISTERED,
    "staging": model_version_pb2.VERSION_STATE_STAGING,
    "deployed": model_version_pb2.VERSION_STATE_DEPLOYED,
    "archived": model_version_pb2.VERSION_STATE_ARCHIVED,
    "rolled-back": model_version_pb2.VERSION_STATE_ROLLED_BACK,
}
VERSION_STATE_NAMES = {v: k for k, v in VERSION_STATES.items()}
STRATEGIES = {
    deployment_pb2.ROLLOUT_STRATEGY_UNSPECIFIED: "immediate",
    deployment_pb2.ROLLOUT_STRATEGY_IMMEDIATE: "immediate",
    deployment_pb2.ROLLOUT_STRATEGY_CANARY: "canary",
    deployment_pb2.ROLLOUT_STRATEGY_BLUE_GREEN: "blue-green",
}
STRATEGY_ENUMS = {"immediate": deployment_pb2.ROLLOUT_STRATEGY_IMMEDIATE,
                  "canary": deployment_pb2.ROLLOUT_STRATEGY_CANARY,
                  "blue-green": deployment_pb2.ROLLOUT_STRATEGY_BLUE_GREEN}
DEPLOYMENT_STATES = {
    "rolling-out": deployment_pb2.DEPLOYMENT_STATE_ROLLING_OUT,
    "completed": deployment_pb2.DEPLOYMENT_STATE_COMPLETED,
    "rolled-back": deployment_pb2.DEPLOYMENT_STATE_ROLLED_BACK,
    "superseded": deployment_pb2.DEPLOYMENT_STATE_SUPERSEDED,
    "inconclusive": deployment_pb2.DEPLOYMENT_STATE_INCONCLUSIVE,
}
DEPLOYMENT_STATE_NAMES = {v: k for k, v in DEPLOYMENT_STATES.items()}


def ts(value: dt.datetime | None):
    return to_timestamp(aware(value)) if value is not None else None


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(value)
    return s


def duration(seconds: float) -> Duration:
    d = Duration()
    d.FromNanoseconds(int(round(seconds * 1e9)))
    return d


def model_id(agent_id: str, version_id: str) -> str:
    return f"{agent_id}@{version_id}"


def agent_proto(row: dict[str, Any]) -> model_version_pb2.Agent:
    return model_version_pb2.Agent(
        agent_id=row["agent_id"], name=row["name"] or "", description=row["description"] or "",
        active_version_id=row["active_version_id"] or "", version_count=row.get("version_count") or 0,
        create_time=ts(row["create_time"]), update_time=ts(row["update_time"]),
        staging_version_id=row.get("staging_version_id") or "",
        active_provider_model=row.get("active_provider_model") or "",
        serve_first_version=row.get("serve_first_version") is not False,
        account_id=row.get("account_id") or "default")


SERVING_STATUSES = {"serving": model_version_pb2.SERVING_STATUS_SERVING,
                    "canary": model_version_pb2.SERVING_STATUS_CANARY,
                    "staging": model_version_pb2.SERVING_STATUS_STAGING,
                    "registered": model_version_pb2.SERVING_STATUS_REGISTERED,
                    "retired": model_version_pb2.SERVING_STATUS_RETIRED}


def version_proto(row: dict[str, Any], aliases: list[str] | None = None, active: bool = False,
                  serving: tuple[str, str] | None = None) -> model_version_pb2.ModelVersion:
    return model_version_pb2.ModelVersion(
        version_id=row["version_id"], agent_id=row["agent_id"], state=VERSION_STATES[row["state"]],
        metrics=loads(row["metrics_json"], {}), training_config=struct(loads(row["config_json"], {})),
        job_id=row["job_id"] or "", dataset_id=row["dataset_id"] or "",
        parent_version_id=row["parent_version_id"] or "", method=row["method"] or "",
        labels=loads(row["labels_json"], []), size_bytes=row["size_bytes"] or 0, sha256=row["sha256"] or "",
        create_time=ts(row["create_time"]), featurizer=struct(loads(row["featurizer_json"], {})),
        model_id=model_id(row["agent_id"], row["version_id"]), aliases=aliases or [],
        tags=loads(row.get("tags_json"), {}), bump_reason=row.get("bump_reason") or "",
        status_reason=row.get("status_reason") or "", update_time=ts(row.get("update_time") or row["create_time"]),
        active=active, serving_status=SERVING_STATUSES[serving[0]] if serving else 0,
        serving_reason=serving[1] if serving else "", promotion=promotion_proto(loads(row.get("promotion_json"), None)),
        checkpoint=checkpoint_proto(row))


def checkpoint_proto(row: dict[str, Any]) -> model_version_pb2.CheckpointLineage | None:
    """The checkpoint a version was made from; None for a job's final model."""
    if not row.get("checkpoint_id"):
        return None
    return model_version_pb2.CheckpointLineage(checkpoint_id=row["checkpoint_id"], step=row.get("checkpoint_step") or 0,
                                               epoch=row.get("checkpoint_epoch") or 0,
                                               kind=row.get("checkpoint_kind") or "")


def promotion_proto(decision: dict[str, Any] | None) -> model_version_pb2.PromotionDecision | None:
    if not decision:
        return None
    when = dt.datetime.fromisoformat(decision["decide_time"].replace("Z", "+00:00"))
    return model_version_pb2.PromotionDecision(
        **{k: v for k, v in decision.items() if k != "decide_time"}, decide_time=ts(when))


def arm_proto(version_id: str, predictions: int, stats: ArmStats) -> deployment_pb2.ArmHealth:
    return deployment_pb2.ArmHealth(version_id=version_id, predictions=predictions, feedback=stats.feedback,
                                    incorrect=stats.incorrect, error_rate=stats.error_rate,
                                    latency_p95_ms=stats.latency_p95_ms)


def deployment_proto(row: dict[str, Any], candidate: deployment_pb2.ArmHealth | None = None,
                     baseline: deployment_pb2.ArmHealth | None = None) -> deployment_pb2.Deployment:
    plan = RolloutPlan.from_dict(loads(row["plan_json"], {}))
    guard = GuardPolicy.from_dict(loads(row["guard_json"], {}))
    start = aware(row["create_time"])
    rollout = deployment_pb2.RolloutSpec(strategy=STRATEGY_ENUMS[plan.strategy], duration=duration(plan.duration_s))
    if plan.strategy == "canary":
        rollout.percentage = plan.steps[0]
        rollout.steps.extend(plan.steps)
    rollback = deployment_pb2.RollbackPolicy(automatic=guard.automatic, error_rate=guard.error_rate,
                                             min_samples=guard.min_samples)
    if guard.latency_ms is not None:
        rollback.latency_ms = guard.latency_ms
    schedule = []
    if plan.strategy == "canary":
        schedule = [deployment_pb2.RolloutStep(percentage=p, due_time=to_timestamp(plan.due_time(i, start)),
                                               reached=(row["state"] == "completed" or i <= row["step_index"]))
                    for i, p in enumerate(plan.steps)]
    out = deployment_pb2.Deployment(
        deployment_id=row["deployment_id"], agent_id=row["agent_id"], version_id=row["version_id"],
        previous_version_id=row["previous_version_id"] or "", environment=ENVIRONMENT_ENUMS[row["environment"]],
        rollout=rollout, rollback=rollback, state=DEPLOYMENT_STATES[row["state"]],
        current_percentage=float(row["current_percentage"]), schedule=schedule, create_time=ts(row["create_time"]),
        estimated_completion_time=ts(row["estimated_completion"]), end_time=ts(row["end_time"]),
        update_time=ts(row["update_time"]), status_reason=row["status_reason"] or "", source=row["source"] or "",
        actor=row["actor"] or "")
    if candidate is not None:
        out.candidate.CopyFrom(candidate)
    if baseline is not None:
        out.baseline.CopyFrom(baseline)
    return out


def feedback_proto(row: dict[str, Any]) -> feedback_pb2.FeedbackRecord:
    out = feedback_pb2.FeedbackRecord(
        feedback_id=row["feedback_id"], agent_id=row["agent_id"], prediction_id=row["prediction_id"] or "",
        version_id=row["version_id"] or "", deployment_id=row["deployment_id"] or "",
        arm=ARMS.get(row["arm"] or "", deployment_pb2.SERVING_ARM_UNSPECIFIED), correct=bool(row["correct"]),
        expected_output=row["expected_output"] or "", input=row["input"] or "",
        served_output=row["served_output"] or "", create_time=ts(row["create_time"]))
    if row["latency_ms"] is not None:
        out.latency_ms = row["latency_ms"]
    return out


def audit_proto(row: dict[str, Any]) -> deployment_pb2.AuditEvent:
    return deployment_pb2.AuditEvent(
        event_id=row["event_id"], time=ts(row["time"]), agent_id=row["agent_id"] or "", kind=row["kind"],
        version_id=row["version_id"] or "", deployment_id=row["deployment_id"] or "", actor=row["actor"] or "",
        message=row["message"] or "", details=struct(json.loads(row["details_json"] or "{}")))


def import_proto(row: dict[str, Any]) -> model_version_pb2.OllamaImport:
    return model_version_pb2.OllamaImport(
        import_id=row["import_id"], model_id=model_id(row["agent_id"], row["version_id"]), agent_id=row["agent_id"],
        version_id=row["version_id"], ollama_name=row["ollama_name"], base_model=row["base_model"],
        ollama_url=row["ollama_url"], system_prompt=row["system_prompt"] or "",
        demonstration_count=row["demonstration_count"] or 0, import_time=ts(row["import_time"]))
