"""Rated feedback records: the input of reinforcement (contextual-bandit) training.

One record says: for this ``input`` the agent served ``output`` (the action), and this is how
well it went. Accepted fields (camelCase or snake_case; errors name the field as
``feedback[3].rating``):

* ``input`` (string, required)
* ``output`` — the action that was served (required; aliases ``action``, ``actual``,
  ``served_output`` / ``servedOutput`` as in the registry's feedback records)
* exactly one of
  * ``rating``: integer 1..5, mapped to ``reward = (rating - 3) / 2`` in [-1, 1]
    (5 -> +1, 4 -> +0.5, 3 -> 0, 2 -> -0.5, 1 -> -1);
  * ``reward``: a finite number, used as is;
  * ``success`` (alias ``correct``): boolean, mapped to +1 (true) / -1 (false), the scale of
    the extreme ratings;
* ``propensity`` (optional): the probability, in (0, 1], with which the logging policy chose
  ``output`` for this input; enables importance weighting (see reinforcement_trainer.py);
* ``weight`` (optional, > 0, default 1): scales the record's loss.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from trainhouse.core.errors import InvalidArgument


_ACTION_KEYS = ("output", "action", "actual", "served_output", "servedOutput")


def rating_to_reward(rating: int) -> float:
    """The documented mapping of a 1..5 rating to a reward in [-1, 1]."""
    return (rating - 3) / 2.0


@dataclass
class FeedbackRecord:
    input: str
    output: str
    reward: float
    propensity: float | None = None
    weight: float = 1.0
    source: str = "reward"        # which field the reward came from: rating | reward | success
    level: int = 1
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "output": self.output, "reward": self.reward, "propensity": self.propensity,
                "weight": self.weight, "source": self.source, "metadata": dict(self.metadata)}


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def parse_feedback(items: Sequence[Mapping[str, Any]] | Sequence[FeedbackRecord],
                   field_prefix: str = "feedback") -> list[FeedbackRecord]:
    """Validate feedback records; see the module docstring for the accepted fields."""
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise InvalidArgument(field_prefix, "must be a list of feedback objects")
    out: list[FeedbackRecord] = []
    for i, item in enumerate(items):
        at = f"{field_prefix}[{i}]"
        if isinstance(item, FeedbackRecord):
            out.append(item)
            continue
        if not isinstance(item, Mapping):
            raise InvalidArgument(at, "must be an object with 'input', 'output' and a rating, reward or success")
        text = item.get("input")
        if not isinstance(text, str) or not text.strip():
            raise InvalidArgument(f"{at}.input", "must be a non-empty string")
        key = next((k for k in _ACTION_KEYS if item.get(k) is not None), "output")
        action = item.get(key)
        if not isinstance(action, str) or not action.strip():
            raise InvalidArgument(f"{at}.{key}", "must be a non-empty string: the output that was served")
        given = [k for k in ("rating", "reward", "success", "correct") if item.get(k) is not None]
        if not given:
            raise InvalidArgument(f"{at}.rating", "one of rating (1-5), reward (number) or success (boolean) is required")
        if len(given) > 1:
            raise InvalidArgument(f"{at}.{given[1]}", f"give only one of rating, reward, success (also got {given[0]})")
        source = given[0]
        value = item[source]
        if source == "rating":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
                raise InvalidArgument(f"{at}.rating", f"must be an integer between 1 and 5, got {value!r}")
            reward = rating_to_reward(value)
        elif source == "reward":
            if not _number(value):
                raise InvalidArgument(f"{at}.reward", "must be a finite number")
            reward = float(value)
        else:
            if not isinstance(value, bool):
                raise InvalidArgument(f"{at}.{source}", "must be a boolean")
            reward = 1.0 if value else -1.0
            source = "success"
        propensity = item.get("propensity")
        if propensity is not None:
            if not _number(propensity) or not 0.0 < propensity <= 1.0:
                raise InvalidArgument(f"{at}.propensity", f"must be a probability in (0, 1], got {propensity!r}")
            propensity = float(propensity)
        weight = item.get("weight")
        weight = 1.0 if weight is None else weight
        if not _number(weight) or weight <= 0:
            raise InvalidArgument(f"{at}.weight", "must be a finite number > 0")
        metadata = item.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise InvalidArgument(f"{at}.metadata", "must be an object")
        out.append(FeedbackRecord(text, action, reward, propensity, float(weight), source, 1, dict(metadata)))
    return out
