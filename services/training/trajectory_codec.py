"""GRPO trajectory dicts (seed-003 export shape) -> the DataService Trajectory message."""
from __future__ import annotations

import datetime as dt
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from trainhouse.common.structs import to_struct
from trainhouse.v1 import trajectory_pb2


def _struct(value: Any) -> struct_pb2.Struct:
    return to_struct(value if isinstance(value, dict) else {"value": value})


def _duration_ms(ms: float | None) -> Duration:
    d = Duration()
    d.FromNanoseconds(int(round((ms or 0.0) * 1e6)))
    return d


def _timestamp(iso: str | None) -> Timestamp | None:
    if not iso:
        return None
    ts = Timestamp()
    ts.FromDatetime(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(dt.timezone.utc))
    return ts


def trajectory_proto(job: dict[str, Any], t: dict[str, Any]) -> trajectory_pb2.Trajectory:
    """Ids are prefixed with the job id: the trainer's ids are unique within a job only."""
    msg = trajectory_pb2.Trajectory(
        trajectory_id=f"{job['job_id']}.{t['trajectory_id']}", agent_id=job["agent_id"], source="grpo",
        status=trajectory_pb2.TRAJECTORY_STATUS_COMPLETED, job_id=job["job_id"],
        iteration=int(t.get("iteration") or 0), query=t.get("query", ""), reward=float(t.get("reward", 0.0)),
        normalized_reward=float(t.get("normalized_reward", 0.0)), advantage=float(t.get("advantage", 0.0)),
        success=bool(t.get("success")), execution_time=_duration_ms(t.get("execution_time_ms")))
    msg.metadata.CopyFrom(_struct({"group_index": t.get("group_index"), "trainer_trajectory_id": t["trajectory_id"]}))
    for step in t.get("steps", []):
        s = msg.steps.add(state=_struct(step.get("state") or {}), action=_struct(step.get("action") or {}),
                          result=_struct(step.get("result") or {}), duration=_duration_ms(step.get("duration_ms")))
        ts = _timestamp(step.get("timestamp"))
        if ts is not None:
            s.timestamp.CopyFrom(ts)
    return msg
