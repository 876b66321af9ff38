"""Outputs for requested topics that a scenario's catalogue does not have.

Why: clients name topics in their own words (seed 002's own example asks `customer_queries` for
`["billing", "support"]`; the customer-support catalogue has billing but no "support"). Refusing
such a request makes the documented example fail; silently dropping the topic would hand back
data without it. Instead each such topic gets one new output of its own, written from the
generic templates below with ``{topic}`` filled in, and the answer lists it under
``generic_topics`` so nobody mistakes it for catalogue data.

The new output's name is the topic as an identifier (``"Account Security"`` ->
``account_security``; ``<name>_generic`` when an output of that name exists already).
Its ``subject`` slot (what shared templates and distractors name it by) is the topic in a few
phrasings. Generation stays deterministic for a seed: the templates are fixed and every choice
among them is the generator's seeded draw.
"""
from __future__ import annotations

import re

from trainhouse.core.errors import InvalidArgument
from trainhouse.data.synthetic.templates import CompiledOutput, parse_template

# More generic topics than this in one request are refused: each is an output of its own.
MAX_GENERIC_TOPICS = 100

GENERIC_TEMPLATES = (
    "I have a question about {topic}",
    "can you help me with {topic}?",
    "I need help with a {topic} issue",
    "who should I talk to about {topic}",
    "something is not right with {topic}",
    "where can I find information on {topic}",
    "I'd like some advice on {topic}",
    "please explain how {topic} works here",
    "is there someone who handles {topic}?",
    "{topic}: I'm stuck and need guidance",
    "quick {topic} question for you",
    "can you point me to the right place for {topic}",
)

_NOT_WORD = re.compile(r"[^0-9a-z]+")


def output_name(topic: str, taken: set[str]) -> str:
    """The topic as an output identifier that no output in ``taken`` has."""
    name = _NOT_WORD.sub("_", topic.lower()).strip("_") or "topic"
    if name not in taken:
        return name
    candidate, n = f"{name}_generic", 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_generic_{n}"
    return candidate


def generic_output(topic: str, taken: set[str]) -> CompiledOutput:
    """One output for ``topic`` made of the generic templates (ids ``generic#<i>``)."""
    templates = tuple(parse_template(text, f"generic_templates[{i}]", f"generic#{i}")
                      for i, text in enumerate(GENERIC_TEMPLATES))
    subjects = (topic, f"{topic} questions", f"my {topic} request", f"help with {topic}")
    return CompiledOutput(output_name(topic, taken), (topic,), templates, {"subject": subjects})


def split_topics(requested: tuple[str, ...], catalogue: list[str]) -> tuple[list[str], list[str]]:
    """(catalogue topics, generic topics) for a request's topics: catalogue names match without
    regard to case and take the catalogue's spelling; the rest keep the caller's (stripped), each
    once."""
    by_lower = {t.lower(): t for t in catalogue}
    chosen: dict[str, None] = {}
    generic: dict[str, str] = {}
    for topic in requested:
        key = topic.strip().lower()
        if key in by_lower:
            chosen.setdefault(by_lower[key], None)
        else:
            generic.setdefault(key, topic.strip())
    if len(generic) > MAX_GENERIC_TOPICS:
        raise InvalidArgument("constraints.topics", f"at most {MAX_GENERIC_TOPICS} topics outside the scenario's "
                              f"catalogue ({', '.join(catalogue)}); got {len(generic)}",
                              metadata={"limit": str(MAX_GENERIC_TOPICS)})
    return list(chosen), list(generic.values())
