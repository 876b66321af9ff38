"""Options of one synthetic data generation run (DataService.GenerateSyntheticData).

The shape follows the request: ``count``, ``difficulty``, ... and ``constraints`` {``max_length``,
``topics``, ``languages``}; errors name the request field (``constraints.max_length``). The
constraint fields may also be given flat (``GenerationConfig(max_length=200)``).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Optional

from pydantic import ConfigDict, Field, field_validator, model_validator

from trainhouse.core.configs.base import ConfigModel, Flag, Int, Number, Text, choice, custom_error, spellings

# A generous per-request ceiling: 100k examples take a few seconds and ~20 MB. The per-hour budget
# (seed 000: 10,000 examples/hour) is the gateway's rate limit, not the service's.
MAX_COUNT = 100_000
DEFAULT_COUNT = 100
DIFFICULTIES = ("easy", "medium", "hard")
LABEL_BY = ("output", "topic")
SUPPORTED_LANGUAGES = ("en",)


def language_code(lang: str) -> str:
    """"en", "EN", "en-US", "en_GB", "english" -> "en"; anything else keeps its primary subtag."""
    lowered = lang.strip().lower()
    if lowered == "english":
        return "en"
    return lowered.replace("_", "-").split("-")[0]


class GenerationConstraints(ConfigModel):
    model_config = ConfigDict(frozen=True, alias_generator=spellings(camel_first=False))

    max_length: Optional[Int] = Field(None, ge=10, le=100_000, description=(
        "Cap on input length in characters, 10..100000."))
    topics: tuple[Text, ...] = Field((), description=(
        "Restrict to these topics; empty = all. A topic outside the scenario's catalogue gets a generic output."))
    languages: tuple[Text, ...] = Field(("en",), description="Only en can be generated.")

    @field_validator("topics")
    @classmethod
    def _named_topics(cls, topics: tuple[str, ...]) -> tuple[str, ...]:
        for i, topic in enumerate(topics):
            if not topic:
                raise custom_error("must be a non-empty string", f"[{i}]")
        return topics

    @field_validator("languages")
    @classmethod
    def _supported(cls, languages: tuple[str, ...]) -> tuple[str, ...]:
        for i, lang in enumerate(languages):
            if language_code(lang) not in SUPPORTED_LANGUAGES:
                raise custom_error(f"cannot generate language '{lang}'; supported languages: "
                                   f"{', '.join(SUPPORTED_LANGUAGES)}", f"[{i}]")
        return languages


_CONSTRAINTS = tuple(GenerationConstraints.model_fields)


class GenerationConfig(ConfigModel):
    model_config = ConfigDict(frozen=True, alias_generator=spellings(camel_first=False))

    kind: ClassVar[str] = "generation"

    count: Int = Field(DEFAULT_COUNT, ge=1, le=MAX_COUNT, description=f"Examples to generate, 1..{MAX_COUNT}.")
    difficulty: choice(*DIFFICULTIES) = Field("medium", description=(
        "easy | medium | hard: the mix of levels (LEVEL_MIX)."))
    edge_cases: Flag = Field(False, description="Turn edge_case_rate of the examples into edge cases.")
    edge_case_rate: Number = Field(0.15, gt=0, le=1, description="(0, 1]: share of edge cases when enabled.")
    diversity: Number = Field(0.7, ge=0, le=1, description=(
        "0..1: the share of each output's templates, of each slot's values and of the paraphrase material drawn "
        "on (at least one of each), and the probability of openers, closers and synonyms."))
    constraints: GenerationConstraints = Field(default_factory=GenerationConstraints, description=(
        "Limits on the generated inputs: max_length, topics, languages."))
    seed: Int = Field(0, ge=0, le=2 ** 63 - 1, description="Seed of every random choice.")
    label_by: choice(*LABEL_BY) = Field("output", description="expected_output = the output or the topic.")

    @model_validator(mode="before")
    @classmethod
    def _nested(cls, data: Any) -> Any:
        """Flat constraint fields (``max_length=...``) go where the request has them."""
        if not isinstance(data, Mapping) or not any(k in data for k in _CONSTRAINTS):
            return data
        out = {k: v for k, v in data.items() if k not in _CONSTRAINTS}
        given = data.get("constraints")
        out["constraints"] = {**(given if isinstance(given, Mapping) else {}),
                              **{k: data[k] for k in _CONSTRAINTS if k in data}}
        return out

    @property
    def max_length(self) -> int | None:
        return self.constraints.max_length

    @property
    def topics(self) -> tuple[str, ...]:
        return self.constraints.topics

    @property
    def languages(self) -> tuple[str, ...]:
        return self.constraints.languages
