"""Example protos <-> the plain dicts the trainer, the stores and job folders use."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf.json_format import MessageToDict


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
