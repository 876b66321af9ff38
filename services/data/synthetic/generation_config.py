"""Options of one synthetic generation run: a dataclass whose fields document and validate themselves.

Errors name the request field (``count``, ``difficulty``, ``constraints.max_length``, ...).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from services.core.errors import InvalidArgument

# A generous per-request ceiling: 100k examples take a few seconds and ~20 MB. The per-hour budget
# (seed 000: 10,000 examples/hour) is the gateway's rate limit, not the service's.
MAX_COUNT = 100_000
DEFAULT_COUNT = 100
DIFFICULTIES = ("easy", "medium", "hard")
LABEL_BY = ("output", "topic")
SUPPORTED_LANGUAGES = ("en",)

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


@dataclass(frozen=True)
class GenerationConfig:
    count: int = field(default=DEFAULT_COUNT, metadata={"help": f"Examples to generate, 1..{MAX_COUNT}."})
    difficulty: str = field(default="medium", metadata={"help": "easy | medium | hard: the mix of levels (LEVEL_MIX)."})
    edge_cases: bool = field(default=False, metadata={"help": "Turn edge_case_rate of the examples into edge cases."})
    edge_case_rate: float = field(default=0.15, metadata={"help": "(0, 1]: share of edge cases when enabled."})
    diversity: float = field(default=0.7, metadata={"help": (
        "0..1: the share of each output's templates, of each slot's values and of the paraphrase material "
        "drawn on (at least one of each), and the probability of openers, closers and synonyms.")})
    max_length: int | None = field(default=None, metadata={"help": "Cap on input length in characters, 10..100000."})
    topics: tuple[str, ...] = field(default=(), metadata={"help": "Restrict to these topics; empty = all."})
    languages: tuple[str, ...] = field(default=("en",), metadata={"help": "Only en can be generated."})
    seed: int = field(default=0, metadata={"help": "Seed of every random choice."})
    label_by: str = field(default="output", metadata={"help": "expected_output = the output or the topic."})

    def __post_init__(self) -> None:
        _bounded_int("count", self.count, 1, MAX_COUNT)
        if self.difficulty not in DIFFICULTIES:
            raise InvalidArgument("difficulty", f"must be one of {', '.join(DIFFICULTIES)}, got '{self.difficulty}'")
        _unit("edge_case_rate", self.edge_case_rate, low_open=True)
        _unit("diversity", self.diversity)
        if self.max_length is not None:
            _bounded_int("constraints.max_length", self.max_length, 10, 100_000)
        for i, lang in enumerate(self.languages):
            if language_code(lang) not in SUPPORTED_LANGUAGES:
                raise InvalidArgument(f"constraints.languages[{i}]",
                                      f"cannot generate language '{lang}'; supported languages: "
                                      f"{', '.join(SUPPORTED_LANGUAGES)}")
        for i, topic in enumerate(self.topics):
            if not topic.strip():
                raise InvalidArgument(f"constraints.topics[{i}]", "must be a non-empty string")
        if self.label_by not in LABEL_BY:
            raise InvalidArgument("label_by", f"must be one of {', '.join(LABEL_BY)}, got '{self.label_by}'")
        if not 0 <= self.seed < 2 ** 63:
            raise InvalidArgument("seed", "must be in [0, 2^63)")


def language_code(lang: str) -> str:
    """"en", "EN", "en-US", "en_GB", "english" -> "en"; anything else keeps its primary subtag."""
    lowered = lang.strip().lower()
    if lowered == "english":
        return "en"
    return lowered.replace("_", "-").split("-")[0]


def check_count(count: int, max_count: int, field_name: str = "count") -> None:
    """``max_count`` is the caller's limit (0 = the service's); it may only lower MAX_COUNT."""
    if max_count < 0 or max_count > MAX_COUNT:
        raise InvalidArgument("max_count", f"must be between 0 and {MAX_COUNT} (0 = {MAX_COUNT})",
                              metadata={"limit": str(MAX_COUNT)})
    limit = max_count or MAX_COUNT
    if not 1 <= count <= limit:
        raise InvalidArgument(field_name, f"must be between 1 and {limit}, got {count}",
                              metadata={"limit": str(limit)})


def _bounded_int(name: str, value: int, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidArgument(name, f"must be an integer between {lo} and {hi}, got {value}",
                              metadata={"limit": str(hi)})


def _unit(name: str, value: float, *, low_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value > 1 or value < 0 or (low_open and value == 0):
        raise InvalidArgument(name, f"must be in {'(' if low_open else '['}0, 1], got {value}")
