"""Examples and their validation, shared by every service that accepts them.

An example says "for this input the agent should give this output" plus how much to trust it:
``feedback`` ("correct" = positive, "partial" = positive at ``PARTIAL_WEIGHT``, "incorrect" =
push this output *down*), a loss ``weight`` and a difficulty ``level`` for curriculum stages.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from trainhouse.core.errors import InvalidArgument

FEEDBACK_VALUES = ("correct", "partial", "incorrect")
# A "partial" answer is a positive whose loss counts half: it is evidence for the output, but
# weaker than a confirmed one. Documented in DESIGN.md ("partial are positives with reduced weight").
PARTIAL_WEIGHT = 0.5


@dataclass
class Example:
    """One validated example; ``weight`` scales its loss, ``level`` >= 1 orders a curriculum."""

    input: str
    expected_output: str
    feedback: str = "correct"
    weight: float = 1.0
    level: int = 1
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "expected_output": self.expected_output, "feedback": self.feedback,
                "weight": self.weight, "level": self.level, "metadata": dict(self.metadata)}


def _pick(item: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in item and item[key] is not None:
            return item[key]
    return None


def parse_examples(items: Sequence[Mapping[str, Any]], field_prefix: str = "examples") -> list[Example]:
    """Validate user-supplied example objects; errors name the field as ``examples[i].input``.

    Accepts ``expected_output``/``expectedOutput`` and ``level``/``difficulty``; numbers may come
    as floats (JSON/Struct), integral levels are accepted.
    """
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise InvalidArgument(field_prefix, "must be a list of example objects")
    out: list[Example] = []
    for i, item in enumerate(items):
        at = f"{field_prefix}[{i}]"
        if isinstance(item, Example):
            item = item.to_dict()
        if not isinstance(item, Mapping):
            raise InvalidArgument(at, "must be an object with 'input' and 'expected_output'")
        text = item.get("input")
        if not isinstance(text, str) or not text.strip():
            raise InvalidArgument(f"{at}.input", "must be a non-empty string")
        expected = _pick(item, "expected_output", "expectedOutput")
        if not isinstance(expected, str) or not expected.strip():
            # Name the field the way the caller spelled it.
            name = "expectedOutput" if "expectedOutput" in item else "expected_output"
            raise InvalidArgument(f"{at}.{name}", "must be a non-empty string")
        feedback = item.get("feedback") or "correct"
        if feedback not in FEEDBACK_VALUES:
            raise InvalidArgument(f"{at}.feedback", f"must be one of {', '.join(FEEDBACK_VALUES)}")
        weight = item.get("weight")
        weight = 1.0 if weight is None else weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight <= 0:
            raise InvalidArgument(f"{at}.weight", "must be a finite number > 0")
        level_key = "level" if item.get("level") is not None else "difficulty"
        level = item.get(level_key)
        level = 1 if level is None else level
        if isinstance(level, float) and level.is_integer():
            level = int(level)
        if isinstance(level, bool) or not isinstance(level, int) or level < 1:
            raise InvalidArgument(f"{at}.{level_key}", "must be an integer >= 1")
        metadata = item.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise InvalidArgument(f"{at}.metadata", "must be an object")
        out.append(Example(text, expected, feedback, float(weight), level, dict(metadata)))
    return out
