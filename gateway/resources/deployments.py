"""Deployments (rollouts of a version to an environment): the canonical fields and seed 000's table.

Enum values are the proto enum's words (``rolling_out``, ``blue_green``); seed 000 writes them with
a dash (``rolling-out``) and names the previous version ``previousVersion``.
"""
from __future__ import annotations

from typing import Any

from trainhouse.gateway.convert import enum_word, ts_iso
from trainhouse.gateway.resources.tables import FieldTable
from trainhouse.v1 import deployment_pb2


def deployment_fields(d: deployment_pb2.Deployment) -> dict[str, Any]:
    return {
        "deployment_id": d.deployment_id, "agent_id": d.agent_id, "version_id": d.version_id,
        "previous_version_id": d.previous_version_id or None,
        "environment": enum_word(deployment_pb2.Environment.Name(d.environment), "ENVIRONMENT_"),
        "state": enum_word(deployment_pb2.DeploymentState.Name(d.state), "DEPLOYMENT_STATE_"),
        "strategy": enum_word(deployment_pb2.RolloutStrategy.Name(d.rollout.strategy), "ROLLOUT_STRATEGY_"),
        "current_percentage": d.current_percentage,
        "estimated_completion": ts_iso(d.estimated_completion_time),
        "schedule": [{"percentage": s.percentage, "due_time": ts_iso(s.due_time), "reached": s.reached}
                     for s in d.schedule],
        "status_reason": d.status_reason or None, "created_at": ts_iso(d.create_time),
    }


DEPLOYMENT_V1 = FieldTable({"previous_version_id": "previous_version", "state": "status"}, camel_case=True)


def deployment_v1(d: deployment_pb2.Deployment) -> dict[str, Any]:
    out = DEPLOYMENT_V1.render(deployment_fields(d))
    out.update(status=out["status"].replace("_", "-"), strategy=out["strategy"].replace("_", "-"),
               schedule=[{"percentage": s["percentage"], "dueTime": s["due_time"], "reached": s["reached"]}
                         for s in out["schedule"]])
    return out
