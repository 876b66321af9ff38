"""Trajectories: validation at ingest, the canonical stored form, and example extraction.

One schema holds runtime agent trajectories (LLM calls, provider accesses) and GRPO training
trajectories (query, steps, rewards); see protos/trainhouse/v1/trajectory.proto.
"""
from __future__ import annotations

import hashlib
import math
import uuid
from typing import Any

from trainhouse.core.errors import InvalidArgument
from trainhouse.common.validation import RESOURCE_ID
from trainhouse.v1 import trajectory_pb2

STATUS_NAMES = {v.number: v.name for v in trajectory_pb2.TrajectoryStatus.DESCRIPTOR.values}
SKIPPED_STATUSES = (trajectory_pb2.TRAJECTORY_STATUS_FAILED, trajectory_pb2.TRAJECTORY_STATUS_CANCELLED)
OUTPUT_ONLY = ("llm_call_count", "provider_access_count", "step_count", "create_time", "update_time")


def _id(value: str, at: str) -> None:
    if value and not RESOURCE_ID.fullmatch(value):
        raise InvalidArgument(at, "must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _finite(value: float, at: str) -> None:
    if not math.isfinite(value):
        raise InvalidArgument(at, "must be a finite number")


def _non_negative_duration(msg: Any, at: str) -> None:
    if msg.seconds < 0 or msg.nanos < 0:
        raise InvalidArgument(at, "must not be negative")


def canonical(t: trajectory_pb2.Trajectory, at: str) -> trajectory_pb2.Trajectory:
    """Validate an ingested trajectory and return the form that is stored: id filled in (a new
    UUID when empty) and output-only fields cleared (the service computes them)."""
    _id(t.trajectory_id, f"{at}.trajectory_id")
    _id(t.agent_id, f"{at}.agent_id")
    _id(t.job_id, f"{at}.job_id")
    if t.status not in STATUS_NAMES:
        raise InvalidArgument(f"{at}.status", f"unknown status {t.status}")
    if t.iteration < 0:
        raise InvalidArgument(f"{at}.iteration", "must be >= 0")
    for name in ("reward", "normalized_reward", "advantage"):
        if t.HasField(name):
            _finite(getattr(t, name), f"{at}.{name}")
    _non_negative_duration(t.execution_time, f"{at}.execution_time")
    if t.HasField("start_time") and t.HasField("end_time") and t.end_time.ToNanoseconds() < t.start_time.ToNanoseconds():
        raise InvalidArgument(f"{at}.end_time", "must not be before start_time")
    for j, call in enumerate(t.llm_calls):
        where = f"{at}.llm_calls[{j}]"
        for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
            if getattr(call, name) < 0:
                raise InvalidArgument(f"{where}.{name}", "must be >= 0")
        _non_negative_duration(call.latency, f"{where}.latency")
        _finite(call.temperature, f"{where}.temperature")
    for k, step in enumerate(t.steps):
        where = f"{at}.steps[{k}]"
        _non_negative_duration(step.duration, f"{where}.duration")
        if step.HasField("reward"):
            _finite(step.reward, f"{where}.reward")
        tool = step.action.fields.get("tool")
        if tool is not None and tool.WhichOneof("kind") not in ("string_value", "null_value"):
            raise InvalidArgument(f"{where}.action.tool", "must be a string")
    out = trajectory_pb2.Trajectory()
    out.CopyFrom(t)
    for name in OUTPUT_ONLY:
        out.ClearField(name)
    if not out.trajectory_id:
        out.trajectory_id = str(uuid.uuid4())
    return out


def content_hash(t: trajectory_pb2.Trajectory) -> str:
    """Same content -> same hash (deterministic serialisation): re-ingesting it is a no-op."""
    return hashlib.sha256(t.SerializeToString(deterministic=True)).hexdigest()


def step_tool(step: trajectory_pb2.TrajectoryStep) -> str:
    value = step.action.fields.get("tool")
    return value.string_value.strip() if value is not None and value.WhichOneof("kind") == "string_value" else ""


def last_user_message(call: trajectory_pb2.LlmCall) -> str:
    for message in reversed(call.messages):
        if message.role.strip().lower() == "user" and message.content.strip():
            return message.content.strip()
    return ""


def extract_examples(t: trajectory_pb2.Trajectory) -> list[dict[str, Any]]:
    """Examples a trajectory teaches (the rules are documented on BuildDatasetFromTrajectories)."""
    if t.status in SKIPPED_STATUSES:
        return []
    base = {"trajectory_id": t.trajectory_id, "agent_id": t.agent_id, "source": t.source}
    out: list[dict[str, Any]] = []
    for j, call in enumerate(t.llm_calls):
        text = call.prompt.strip() or last_user_message(call)
        target = call.tool_name.strip() or call.response.strip()
        if text and target:
            meta = {**base, "llm_call": j, "model": call.model}
            out.append({"input": text, "expected_output": target, "feedback": "correct", "weight": 1.0,
                        "level": 1, "metadata": meta})
    query = t.query.strip()
    if query and not (t.HasField("success") and not t.success):
        previous: list[str] = []
        for k, step in enumerate(t.steps):
            tool = step_tool(step)
            if not tool:
                continue
            text = query if not previous else f"{query}\nprevious: {', '.join(previous)}"
            out.append({"input": text, "expected_output": tool, "feedback": "correct", "weight": 1.0,
                        "level": 1, "metadata": {**base, "step": k, "job_id": t.job_id}})
            previous.append(tool)
    return out
