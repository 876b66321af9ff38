"""How a generation run's options shape the examples: the level mix per difficulty and what makes
a level harder. The options themselves (``GenerationConfig``: fields, ranges, help text) are the
core's model, ``trainhouse.core.configs.generation``, validated where the request arrives.
"""
from __future__ import annotations

from dataclasses import dataclass

from trainhouse.core.configs.generation import DEFAULT_COUNT, MAX_COUNT, GenerationConfig
from trainhouse.core.errors import InvalidArgument

__all__ = ["DEFAULT_COUNT", "GenerationConfig", "LEVEL_EFFECTS", "LEVEL_MIX", "LevelEffects", "MAX_COUNT", "check_count"]

# Share of examples at difficulty level 1 / 2 / 3 for each requested difficulty.
LEVEL_MIX: dict[str, tuple[float, float, float]] = {
    "easy": (0.8, 0.2, 0.0),
    "medium": (0.4, 0.4, 0.2),
    "hard": (0.15, 0.35, 0.5),
}


@dataclass(frozen=True)
class LevelEffects:
    """What makes a level harder: word typo rate, chance of a shared (overlapping) template,
    chance of a distractor clause naming another output's subject."""

    typo_rate: float
    shared_template: float
    distractor: float


LEVEL_EFFECTS: dict[int, LevelEffects] = {
    1: LevelEffects(0.0, 0.0, 0.0),
    2: LevelEffects(0.04, 0.3, 0.25),
    3: LevelEffects(0.08, 0.5, 0.6),
}


def check_count(count: int, max_count: int, field_name: str = "count") -> None:
    """``max_count`` is the caller's limit (0 = the service's); it may only lower MAX_COUNT."""
    if max_count < 0 or max_count > MAX_COUNT:
        raise InvalidArgument("max_count", f"must be between 0 and {MAX_COUNT} (0 = {MAX_COUNT})",
                              metadata={"limit": str(MAX_COUNT)})
    limit = max_count or MAX_COUNT
    if not 1 <= count <= limit:
        raise InvalidArgument(field_name, f"must be between 1 and {limit}, got {count}",
                              metadata={"limit": str(limit)})
