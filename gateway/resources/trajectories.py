"""Trajectory JSON <-> trainhouse.v1.Trajectory, for the runtime (seed 004) and JSON-RPC (seed 003)
surfaces.

Seed 004 writes times as Unix epoch milliseconds and durations as milliseconds (`latencyMs`,
`durationMs`); the proto uses Timestamp/Duration. Input keys may be camelCase or snake_case
(protobuf's JSON parser accepts both) and `id` stands for `trajectory_id`.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from google.protobuf import json_format
from trainhouse.v1 import trajectory_pb2

from trainhouse.gateway.convert import enum_word, epoch_ms, finite, struct_to_dict, ts_iso
from trainhouse.gateway.errors import INVALID, ApiError

_TIME_KEYS = {"startTime", "start_time", "endTime", "end_time", "time", "timestamp"}
_DURATION_KEYS = {"latencyMs": "latency", "latency_ms": "latency", "durationMs": "duration",
                  "duration_ms": "duration", "executionTimeMs": "executionTime",
                  "execution_time_ms": "executionTime"}
_STATUS = {name.removeprefix("TRAJECTORY_STATUS_").lower(): name
           for name in trajectory_pb2.TrajectoryStatus.keys() if name != "TRAJECTORY_STATUS_UNSPECIFIED"}


def _ms_to_rfc3339(value: Any, where: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value  # already an RFC 3339 string (or wrong, and the parser names it)
    try:
        return dt.datetime.fromtimestamp(value / 1000, dt.timezone.utc).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        raise ApiError(INVALID, f"{where}: not a valid epoch-millisecond time", field=where,
                       issue="not a valid epoch-millisecond time") from None


def _normalise(value: Any, where: str) -> Any:
    if isinstance(value, list):
        return [_normalise(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{where}.{key}" if where else key
        if key in ("state", "action", "result", "metadata", "data"):
            out[key] = item  # free-form JSON (Struct)
        elif key == "id" and where == "":
            out["trajectoryId"] = item
        elif key in _TIME_KEYS:
            out[key] = _ms_to_rfc3339(item, path)
        elif key in _DURATION_KEYS and isinstance(item, (int, float)) and not isinstance(item, bool):
            out[_DURATION_KEYS[key]] = f"{item / 1000:.6f}s"
        elif key == "status" and isinstance(item, str) and item.lower() in _STATUS:
            out[key] = _STATUS[item.lower()]
        else:
            out[key] = _normalise(item, path)
    return out


def trajectory_from_json(value: Any, where: str) -> trajectory_pb2.Trajectory:
    if not isinstance(value, dict):
        raise ApiError(INVALID, f"{where}: must be an object", field=where, issue="must be an object")
    out = trajectory_pb2.Trajectory()
    try:
        json_format.ParseDict(_normalise(value, ""), out)
    except json_format.ParseError as exc:
        raise ApiError(INVALID, f"{where}: {exc}", field=where, issue=str(exc)) from None
    return out


def _duration_ms(d: Any) -> float | None:
    if d.seconds == 0 and d.nanos == 0:
        return None
    return round(d.seconds * 1000 + d.nanos / 1e6, 3)


def basic_json(t: trajectory_pb2.Trajectory) -> dict[str, Any]:
    """Seed 004's list item."""
    out = {"id": t.trajectory_id, "agentId": t.agent_id or None, "source": t.source or None,
           "status": enum_word(trajectory_pb2.TrajectoryStatus.Name(t.status), "TRAJECTORY_STATUS_"),
           "llmCallCount": t.llm_call_count, "providerAccessCount": t.provider_access_count,
           "stepCount": t.step_count, "startTime": epoch_ms(t.start_time), "endTime": epoch_ms(t.end_time),
           "jobId": t.job_id or None, "reward": t.reward if t.HasField("reward") else None}
    return {k: v for k, v in out.items() if v is not None}


def full_json(t: trajectory_pb2.Trajectory) -> dict[str, Any]:
    """Seed 004's detail: everything, camelCase, times in epoch ms, durations in ms."""
    out = basic_json(t)
    out["llmCalls"] = [{
        **{k: v for k, v in {"callId": c.call_id or None, "model": c.model or None, "prompt": c.prompt or None,
                             "response": c.response or None, "toolName": c.tool_name or None,
                             "purpose": c.purpose or None}.items() if v is not None},
        "messages": [{"role": m.role, "content": m.content} for m in c.messages],
        "promptTokens": c.prompt_tokens, "completionTokens": c.completion_tokens, "totalTokens": c.total_tokens,
        "latencyMs": _duration_ms(c.latency), "time": epoch_ms(c.time), "temperature": c.temperature,
        "metadata": struct_to_dict(c.metadata)} for c in t.llm_calls]
    out["providerAccesses"] = [{"provider": p.provider, "purpose": p.purpose, "data": struct_to_dict(p.data),
                                "time": epoch_ms(p.time)} for p in t.provider_accesses]
    out["steps"] = [step_json(s, camel=True) for s in t.steps]
    if t.query:
        out["query"] = t.query
    out["metadata"] = struct_to_dict(t.metadata)
    return finite(out)


def step_json(s: trajectory_pb2.TrajectoryStep, camel: bool = False) -> dict[str, Any]:
    out = {"state": struct_to_dict(s.state), "action": struct_to_dict(s.action), "result": struct_to_dict(s.result)}
    if camel:
        out.update(timestamp=epoch_ms(s.timestamp), durationMs=_duration_ms(s.duration))
    else:
        out.update(timestamp=ts_iso(s.timestamp), duration_ms=_duration_ms(s.duration))
    if s.HasField("reward"):
        out["reward"] = s.reward
    return out


def export_json(t: trajectory_pb2.Trajectory) -> dict[str, Any]:
    """Seed 003's exported trajectory (snake_case)."""
    out: dict[str, Any] = {"trajectory_id": t.trajectory_id, "query": t.query, "iteration": t.iteration,
                           "steps": [step_json(s) for s in t.steps]}
    for name in ("reward", "normalized_reward", "advantage", "success"):
        if t.HasField(name):
            out[name] = getattr(t, name)
    ms = _duration_ms(t.execution_time)
    if ms is not None:
        out["execution_time_ms"] = ms
    return finite(out)
