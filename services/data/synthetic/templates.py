"""The generator specification format and its compiler.

A specification (the `template` of scenario type "custom", the content of a training module and
the way the built-in scenarios are written) is a JSON-shaped mapping::

    {
      "outputs": [
        {"output": "refund_request", "topics": ["billing"],
         "templates": ["I want a refund for my {product}", "refund the {amount} charge"],
         "slots": {"amount": ["$20", "$49.99"], "subject": ["a refund"]}}
      ],
      "slots": {"product": ["laptop", "phone"]},                 # shared by every output
      "topics": [{"name": "billing", "slots": {...}}],           # topic-specific values
      "shared_templates": ["question about {subject}"],          # every output may use these
      "openers": ["hi,"], "closers": ["thanks"],                 # paraphrase wrappers
      "synonyms": {"want": ["would like", "need"]}               # word -> alternatives
    }

Templates are literal text with ``{slot}`` placeholders (``{{``/``}}`` are literal braces). A slot
is looked up in the output's slots, then the topic's, then the shared ones; ``{topic}`` is
predefined as the example's topic. Compilation checks every placeholder resolves for every topic
an output can take, so generation itself never fails.
"""
from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trainhouse.core.errors import InvalidArgument

SLOT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_TOPIC = "general"
MAX_OUTPUTS = 1000
MAX_TEMPLATES = 1000
MAX_VALUES = 10_000
MAX_TEMPLATE_CHARS = 2000
_FORMATTER = string.Formatter()


@dataclass(frozen=True)
class Template:
    """A validated template: ``text`` is a str.format pattern whose fields are ``slots``."""

    text: str
    slots: tuple[str, ...]
    template_id: str


@dataclass(frozen=True)
class CompiledOutput:
    output: str
    topics: tuple[str, ...]
    templates: tuple[Template, ...]
    slots: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class CompiledScenario:
    """A specification checked and indexed for generation."""

    name: str
    outputs: tuple[CompiledOutput, ...]
    slots: dict[str, tuple[str, ...]]
    topic_slots: dict[str, dict[str, tuple[str, ...]]]
    shared_templates: tuple[Template, ...]
    openers: tuple[str, ...] = ()
    closers: tuple[str, ...] = ()
    synonyms: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def topics(self) -> list[str]:
        """Distinct topics in first-seen order over the outputs."""
        seen: dict[str, None] = {}
        for out in self.outputs:
            for t in out.topics:
                seen.setdefault(t, None)
        return list(seen)

    def slot_values(self, output: CompiledOutput, topic: str) -> dict[str, tuple[str, ...]]:
        """Every slot resolvable for (output, topic): shared < topic < output, plus {topic}."""
        merged: dict[str, tuple[str, ...]] = {"topic": (topic,)}
        merged.update(self.slots)
        merged.update(self.topic_slots.get(topic, {}))
        merged.update(output.slots)
        return merged


def _is_seq(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _text(value: Any, at: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(at, "must be a non-empty string")
    return value


def _texts(value: Any, at: str, *, maximum: int, required: bool = False) -> tuple[str, ...]:
    if value is None:
        value = []
    if not _is_seq(value):
        raise InvalidArgument(at, "must be a list of strings")
    if required and not value:
        raise InvalidArgument(at, "needs at least one entry")
    if len(value) > maximum:
        raise InvalidArgument(at, f"at most {maximum} entries", metadata={"limit": str(maximum)})
    return tuple(_text(v, f"{at}[{i}]") for i, v in enumerate(value))


def _slots(value: Any, at: str) -> dict[str, tuple[str, ...]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(at, "must be an object: slot name -> list of values")
    out: dict[str, tuple[str, ...]] = {}
    for name, values in value.items():
        if not isinstance(name, str) or not SLOT_NAME.match(name):
            raise InvalidArgument(f"{at}.{name}", "slot names must match [A-Za-z_][A-Za-z0-9_]*")
        if isinstance(values, Mapping) and "values" in values:  # proto SlotValues as JSON
            values = values["values"]
        out[name] = _texts(values, f"{at}.{name}", maximum=MAX_VALUES, required=True)
    return out


def parse_template(text: Any, at: str, template_id: str) -> Template:
    """Check one template: balanced braces, plain ``{name}`` fields (no format specs)."""
    text = _text(text, at)
    if len(text) > MAX_TEMPLATE_CHARS:
        raise InvalidArgument(at, f"at most {MAX_TEMPLATE_CHARS} characters",
                              metadata={"limit": str(MAX_TEMPLATE_CHARS)})
    try:
        parts = list(_FORMATTER.parse(text))
    except ValueError as exc:
        raise InvalidArgument(at, f"malformed template ({exc}); write {{{{ and }}}} for literal braces") from None
    slots: dict[str, None] = {}
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if not SLOT_NAME.match(name) or spec or conversion:
            raise InvalidArgument(at, f"placeholder {{{name}{'!' + conversion if conversion else ''}"
                                      f"{':' + spec if spec else ''}}} is not a plain {{slot}} name")
        slots.setdefault(name, None)
    return Template(text, tuple(slots), template_id)


def compile_scenario(spec: Mapping[str, Any], name: str, at: str = "template") -> CompiledScenario:
    """Validate a specification (see the module docstring); errors name the field under ``at``."""
    if not isinstance(spec, Mapping):
        raise InvalidArgument(at, "must be an object with 'outputs'")
    raw_outputs = spec.get("outputs") or []
    if not _is_seq(raw_outputs) or not raw_outputs:
        raise InvalidArgument(f"{at}.outputs", "needs at least one output")
    if len(raw_outputs) > MAX_OUTPUTS:
        raise InvalidArgument(f"{at}.outputs", f"at most {MAX_OUTPUTS} outputs", metadata={"limit": str(MAX_OUTPUTS)})
    shared = _slots(spec.get("slots"), f"{at}.slots")
    topic_slots: dict[str, dict[str, tuple[str, ...]]] = {}
    for i, topic in enumerate(spec.get("topics") or []):
        where = f"{at}.topics[{i}]"
        if not isinstance(topic, Mapping):
            raise InvalidArgument(where, "must be an object {name, slots}")
        topic_name = _text(topic.get("name"), f"{where}.name")
        if topic_name in topic_slots:
            raise InvalidArgument(f"{where}.name", f"duplicate topic '{topic_name}'")
        topic_slots[topic_name] = _slots(topic.get("slots"), f"{where}.slots")

    outputs: list[CompiledOutput] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_outputs):
        where = f"{at}.outputs[{i}]"
        if not isinstance(raw, Mapping):
            raise InvalidArgument(where, "must be an object {output, templates, topics?, slots?}")
        output = _text(raw.get("output"), f"{where}.output").strip()
        if output in seen:
            raise InvalidArgument(f"{where}.output", f"duplicate output '{output}': list all its templates in one entry")
        seen.add(output)
        raw_templates = raw.get("templates")
        _texts(raw_templates, f"{where}.templates", maximum=MAX_TEMPLATES, required=True)
        templates = tuple(parse_template(t, f"{where}.templates[{j}]", f"{output}#{j}")
                          for j, t in enumerate(raw_templates))
        topics = tuple(dict.fromkeys(t.strip() for t in _texts(raw.get("topics"), f"{where}.topics",
                                                                maximum=MAX_OUTPUTS))) or (DEFAULT_TOPIC,)
        outputs.append(CompiledOutput(output, topics, templates, _slots(raw.get("slots"), f"{where}.slots")))

    raw_shared = spec.get("shared_templates") or []
    _texts(raw_shared, f"{at}.shared_templates", maximum=MAX_TEMPLATES)
    shared_templates = tuple(parse_template(t, f"{at}.shared_templates[{j}]", f"shared#{j}")
                             for j, t in enumerate(raw_shared))
    scenario = CompiledScenario(
        name=name, outputs=tuple(outputs), slots=shared, topic_slots=topic_slots,
        shared_templates=shared_templates,
        openers=_texts(spec.get("openers"), f"{at}.openers", maximum=MAX_VALUES),
        closers=_texts(spec.get("closers"), f"{at}.closers", maximum=MAX_VALUES),
        synonyms={k.lower(): v for k, v in _slots_free(spec.get("synonyms"), f"{at}.synonyms").items()})
    _check_resolvable(scenario, at)
    return scenario


def _slots_free(value: Any, at: str) -> dict[str, tuple[str, ...]]:
    """Synonyms: word -> alternatives (keys are words, not slot names)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(at, "must be an object: word -> list of alternatives")
    out: dict[str, tuple[str, ...]] = {}
    for word, alternatives in value.items():
        if not isinstance(word, str) or not word.strip() or " " in word.strip():
            raise InvalidArgument(f"{at}.{word}", "keys must be single words")
        if isinstance(alternatives, Mapping) and "values" in alternatives:
            alternatives = alternatives["values"]
        out[word.strip()] = _texts(alternatives, f"{at}.{word}", maximum=MAX_VALUES, required=True)
    return out


def _check_resolvable(scenario: CompiledScenario, at: str) -> None:
    for i, out in enumerate(scenario.outputs):
        for topic in out.topics:
            available = scenario.slot_values(out, topic)
            for j, tpl in enumerate(out.templates):
                for slot in tpl.slots:
                    if slot not in available:
                        raise InvalidArgument(
                            f"{at}.outputs[{i}].templates[{j}]",
                            f"slot {{{slot}}} has no values for output '{out.output}' under topic '{topic}'; "
                            "define it in the output's, the topic's or the shared slots")
            for j, tpl in enumerate(scenario.shared_templates):
                for slot in tpl.slots:
                    if slot not in available:
                        raise InvalidArgument(
                            f"{at}.shared_templates[{j}]",
                            f"slot {{{slot}}} has no values for output '{out.output}' under topic '{topic}'; "
                            "shared templates may only use slots every output defines")
