"""The HTTP shape of one training example and its translation to trainhouse.v1.Example.

Only the shape is checked here (types, required keys); what makes an example *valid* for
training (non-empty text, feedback values, weight > 0) is the services' rule, so it stays there.
"""
from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field, StrictStr
from trainhouse.v1 import example_pb2

from trainhouse.gateway.convert import dict_to_struct, struct_to_dict
from trainhouse.gateway.errors import INVALID, ApiError
from trainhouse.gateway.models import CamelModel, Int, Number


class ExampleIn(CamelModel):
    """{input, expected_output | expectedOutput | expected, feedback?, weight?, level? | difficulty?, metadata?}"""

    input: StrictStr
    expected_output: StrictStr = Field(
        validation_alias=AliasChoices("expected_output", "expectedOutput", "expected"),
        serialization_alias="expectedOutput",
        description="The output the agent should give (also accepted as expectedOutput or expected).")
    feedback: StrictStr | None = Field(None, description='"correct" (default), "partial" or "incorrect"')
    weight: Number | None = Field(None, description="Loss weight, > 0 (default 1)")
    level: Int | None = Field(None, validation_alias=AliasChoices("level", "difficulty"),
                              description="Difficulty level >= 1 for curriculum stages (also 'difficulty')")
    metadata: dict[str, Any] | None = None

    def to_proto(self) -> example_pb2.Example:
        ex = example_pb2.Example(input=self.input, expected_output=self.expected_output,
                                 feedback=self.feedback or "")
        if self.weight is not None:
            ex.weight = self.weight
        if self.level is not None:
            ex.level = self.level
        if self.metadata:
            ex.metadata.CopyFrom(dict_to_struct(self.metadata))
        return ex


def examples_to_proto(items: list[ExampleIn] | None) -> list[example_pb2.Example]:
    return [item.to_proto() for item in items or []]


# Seeds 001/002 label examples with feedback; for the reinforcement paradigm the same record is
# rated feedback on the answer `expected_output`: correct +1, partial +0.5 (as its half loss weight
# in supervised training), incorrect -1 (DESIGN.md "Feedback").
FEEDBACK_REWARD = {"correct": 1.0, "partial": 0.5, "incorrect": -1.0}


def examples_to_rated(items: list[ExampleIn] | None, field: str = "training_data") -> list[example_pb2.RatedExample]:
    out = []
    for i, item in enumerate(items or []):
        feedback = item.feedback or "correct"
        if feedback not in FEEDBACK_REWARD:
            raise ApiError(INVALID, "feedback must be correct, partial or incorrect", field=f"{field}[{i}].feedback",
                           issue=f"must be one of {', '.join(FEEDBACK_REWARD)}")
        out.append(example_pb2.RatedExample(input=item.input, output=item.expected_output,
                                            reward=FEEDBACK_REWARD[feedback]))
    return out


def example_to_json(ex: example_pb2.Example) -> dict[str, Any]:
    """One JSONL line of a dataset download, in the same form an upload accepts."""
    out: dict[str, Any] = {"input": ex.input, "expected_output": ex.expected_output}
    if ex.feedback:
        out["feedback"] = ex.feedback
    if ex.HasField("weight"):
        out["weight"] = ex.weight
    if ex.HasField("level"):
        out["level"] = ex.level
    if ex.HasField("metadata") and ex.metadata.fields:
        out["metadata"] = struct_to_dict(ex.metadata)
    return out
