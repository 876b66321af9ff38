"""Reward functions, pluggable by name (``GRPOConfig.reward_function``).

A reward function receives a ``RewardInput`` (the episode's final state, the query's
``expected_outcome``, the number of steps taken, ``gamma`` and ``step_penalty`` from the config,
and the query text) and returns a finite float. Built in:

* ``exact_match``   1.0 when the final state matches ``expected_outcome`` on every field, else 0.0.
* ``partial_match`` the fraction of ``expected_outcome``'s fields that the final state matches.
* ``step_cost``     ``exact_match * gamma ** (steps - 1) - step_penalty * steps``: a solved task is
                    worth less the longer it took (the discount), and every step, ``finish``
                    included, costs ``step_penalty`` (so even unsolved episodes prefer to stop).

Field matching is ``environment.values_match`` (numbers with a 1e-9 tolerance, objects on the
expected keys). Independently of the reward function, an episode counts as a *success* when it
matches every expected field (that is what ``success_rate`` measures).

Register more with ``register_reward(name, fn)``; a registered name is valid in configs of the
same process (the training worker must register it before building the config).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from trainhouse.core.errors import InvalidArgument
from trainhouse.core.grpo.environment import matched_fields


@dataclass(frozen=True)
class RewardInput:
    final_state: Mapping[str, Any]
    expected_outcome: Mapping[str, Any]
    steps: int
    gamma: float
    step_penalty: float
    query: str = ""

    @property
    def fraction_matched(self) -> float:
        return matched_fields(self.final_state, self.expected_outcome) / len(self.expected_outcome)

    @property
    def success(self) -> bool:
        return matched_fields(self.final_state, self.expected_outcome) == len(self.expected_outcome)


RewardFn = Callable[[RewardInput], float]


def exact_match(inp: RewardInput) -> float:
    return 1.0 if inp.success else 0.0


def partial_match(inp: RewardInput) -> float:
    return inp.fraction_matched


def step_cost(inp: RewardInput) -> float:
    steps = max(1, inp.steps)
    return exact_match(inp) * inp.gamma ** (steps - 1) - inp.step_penalty * steps


_REGISTRY: dict[str, RewardFn] = {"exact_match": exact_match, "partial_match": partial_match, "step_cost": step_cost}
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def register_reward(name: str, fn: RewardFn, *, replace: bool = False) -> None:
    """Make ``fn`` available as ``reward_function=name``. Built-ins cannot be replaced."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError("reward names are lowercase letters, digits and _, starting with a letter")
    if not callable(fn):
        raise TypeError("a reward function must be callable")
    if name in _REGISTRY and (not replace or name in ("exact_match", "partial_match", "step_cost")):
        raise ValueError(f"reward function {name!r} is already registered")
    _REGISTRY[name] = fn


def reward_names() -> list[str]:
    return sorted(_REGISTRY)


def get_reward(name: str, field: str = "reward_function") -> RewardFn:
    fn = _REGISTRY.get(name) if isinstance(name, str) else None
    if fn is None:
        raise InvalidArgument(field, f"unknown reward function {name!r}; valid: {', '.join(reward_names())}")
    return fn


class RewardError(InvalidArgument):
    """A reward function returned something that is not a finite number."""


def score(fn: RewardFn, inp: RewardInput, name: str = "reward_function") -> float:
    """Call ``fn`` and insist on a finite float (a NaN reward would poison every advantage)."""
    value = fn(inp)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RewardError(name, f"the reward function returned {value!r}; it must return a finite number")
    return float(value)
