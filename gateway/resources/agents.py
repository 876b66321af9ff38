"""Agents and their model versions: the canonical fields every surface and the CLI render.

A version's ``state`` is the proto enum's word (``registered``, ``rolled_back``...); seed 000
writes it with a dash and shows a human size too, which its table adds on top.
"""
from __future__ import annotations

from typing import Any

from trainhouse.gateway.convert import camel, enum_word, human_size, struct_to_dict, ts_iso
from trainhouse.gateway.resources.tables import FieldTable
from trainhouse.v1 import model_version_pb2

AGENT_FIELDS = ("agent_id", "name", "description", "active_version_id", "staging_version_id", "serve_first_version",
                "version_count", "created_at", "updated_at")
VERSION_FIELDS = ("version_id", "agent_id", "state", "serving", "serving_reason", "promotion", "aliases", "tags",
                  "created_at",
                  "metrics", "training_config", "method", "job_id", "dataset_id", "parent_version_id", "size_bytes",
                  "sha256", "labels", "checkpoint")


def version_state_word(state: int) -> str:
    return enum_word(model_version_pb2.VersionState.Name(state), "VERSION_STATE_")


def serving_word(status: int) -> str | None:
    """serving | canary | staging | registered | retired (None from a registry that does not say)."""
    if not status:
        return None
    return enum_word(model_version_pb2.ServingStatus.Name(status), "SERVING_STATUS_")


def promotion_fields(d: model_version_pb2.PromotionDecision) -> dict[str, Any]:
    """The promotion gate's decision on a version, with its numbers."""
    return {"outcome": d.outcome, "reason": d.reason, "requested_by": d.requested_by,
            "baseline_version_id": d.baseline_version_id or None, "candidate_accuracy": d.candidate_accuracy,
            "baseline_accuracy": d.baseline_accuracy, "accuracy_tolerance": d.accuracy_tolerance,
            "examples": d.examples, "test": d.test, "p_value": d.p_value, "decided_at": ts_iso(d.decide_time)}


def agent_fields(a: model_version_pb2.Agent) -> dict[str, Any]:
    return {"agent_id": a.agent_id, "name": a.name, "description": a.description,
            "active_version_id": a.active_version_id or None, "staging_version_id": a.staging_version_id or None,
            "serve_first_version": a.serve_first_version, "version_count": a.version_count,
            "created_at": ts_iso(a.create_time), "updated_at": ts_iso(a.update_time)}


def version_fields(v: model_version_pb2.ModelVersion) -> dict[str, Any]:
    return {"version_id": v.version_id, "agent_id": v.agent_id, "state": version_state_word(v.state),
            "serving": serving_word(v.serving_status), "serving_reason": v.serving_reason or None,
            "promotion": promotion_fields(v.promotion) if v.HasField("promotion") else None,
            "aliases": sorted(v.aliases), "tags": dict(sorted(v.tags.items())),
            "created_at": ts_iso(v.create_time), "metrics": dict(sorted(v.metrics.items())),
            "training_config": struct_to_dict(v.training_config), "method": v.method or None,
            "job_id": v.job_id or None, "dataset_id": v.dataset_id or None,
            "parent_version_id": v.parent_version_id or None, "size_bytes": v.size_bytes, "sha256": v.sha256,
            "labels": list(v.labels),
            "checkpoint": {"checkpoint_id": v.checkpoint.checkpoint_id, "step": v.checkpoint.step,
                           "epoch": v.checkpoint.epoch, "kind": v.checkpoint.kind}
            if v.HasField("checkpoint") else None}


# The v1 surface's (and seed 000's) spellings: camelCase; a version says "trainedAt" and "status",
# the status written with a dash ("rolled-back"), with a human size beside the bytes.
AGENT_V1 = FieldTable(camel_case=True)
VERSION_V1 = FieldTable({"created_at": "trained_at", "state": "status"}, camel_case=True)


def agent_v1(a: model_version_pb2.Agent) -> dict[str, Any]:
    return AGENT_V1.render(agent_fields(a))


def version_v1(v: model_version_pb2.ModelVersion) -> dict[str, Any]:
    out = VERSION_V1.render(version_fields(v))
    out.update(status=out["status"].replace("_", "-"), size=human_size(v.size_bytes))
    if out["promotion"]:  # a record of the surface's own, so its keys follow the surface's case
        out["promotion"] = {camel(k): value for k, value in out["promotion"].items()}
    if out["checkpoint"]:
        out["checkpoint"] = {camel(k): value for k, value in out["checkpoint"].items()}
    return out
