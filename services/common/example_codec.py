"""Example and TrainingQuery protos <-> the plain dicts the trainer, the stores and job folders use."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from trainhouse.v1 import example_pb2


def example_dicts(examples: Iterable[Any]) -> list[dict[str, Any]]:
    out = []
    for ex in examples:
        item: dict[str, Any] = {"input": ex.input, "expected_output": ex.expected_output,
                                "feedback": ex.feedback or "correct"}
        if ex.HasField("weight"):
            item["weight"] = ex.weight
        if ex.HasField("level"):
            item["level"] = ex.level
        if ex.HasField("metadata"):
            item["metadata"] = MessageToDict(ex.metadata)
        out.append(item)
    return out


def example_proto(item: dict[str, Any]) -> example_pb2.Example:
    ex = example_pb2.Example(input=item["input"], expected_output=item["expected_output"],
                             feedback=item.get("feedback") or "correct")
    if item.get("weight") is not None:
        ex.weight = float(item["weight"])
    if item.get("level") is not None:
        ex.level = int(item["level"])
    if item.get("metadata"):
        meta = struct_pb2.Struct()
        meta.update(item["metadata"])
        ex.metadata.CopyFrom(meta)
    return ex


def query_dicts(items: Iterable[Any]) -> list[dict[str, Any]]:
    """GRPO TrainingQuery protos as {"query", "expected_outcome"} dicts."""
    return [{"query": q.query, "expected_outcome": MessageToDict(q.expected_outcome)} for q in items]


def query_proto(item: dict[str, Any]) -> example_pb2.TrainingQuery:
    out = example_pb2.TrainingQuery(query=item["query"])
    out.expected_outcome.update(item.get("expected_outcome") or {})
    return out
