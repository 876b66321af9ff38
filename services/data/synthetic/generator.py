"""Synthetic example generation from a compiled scenario: deterministic for a seed, fast, measured.

For each example:

1. **output**: outputs take turns in a freshly shuffled order every round, so output counts differ
   by at most one (balanced data); **topic**: one of the output's allowed topics. A requested topic
   outside the scenario's catalogue adds one output of its own, written from generic templates
   (generic_topics.py); ``GenerationResult.generic_topics`` and each example's metadata
   (``generic_topic``) say which.
2. **level** (1..3) is drawn from the difficulty's mix (``LEVEL_MIX``); its ``LEVEL_EFFECTS`` decide
   whether a *shared* template is used (outputs then overlap: only the ``{subject}`` differs), the
   word typo rate (noise) and whether a distractor clause names another output's subject
   (ambiguity).
3. **template and slots** come from pools cut by ``diversity``: the first ceil(d * n) templates of
   the output and values of each slot (at least one), so d = 0 gives one phrasing per output and
   d = 1 all of them; openers, closers and synonyms are applied with probability 0.5 d, 0.5 d and
   0.3 d per word.
4. **edge case** (when enabled, with probability ``edge_case_rate``): one of typos, truncation,
   mixed case, very short, very long, negation; the example's level becomes 3.
5. ``constraints.max_length`` cuts the input at a word boundary.

Statistics are then computed from the examples (``diversity.measure``), never estimated.
"""
from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from trainhouse.data.synthetic.diversity import measure
from trainhouse.data.synthetic.generation_config import LEVEL_EFFECTS, LEVEL_MIX, GenerationConfig
from trainhouse.data.synthetic.generic_topics import generic_output, split_topics
from trainhouse.data.synthetic.perturbations import (EDGE_CASE_TYPES, add_typos, distractor, edge_case,
                                                   truncate_words)
from trainhouse.data.synthetic.templates import CompiledOutput, CompiledScenario, Template

LONG_CHARS = 1000  # target length of "very_long" edge cases when max_length does not cap it


@dataclass
class GenerationStatistics:
    generated: int
    average_length: float
    unique_scenarios: int
    edge_cases: int
    diversity: float
    distinct_1: float
    distinct_2: float
    unique_templates: int
    level_counts: dict[int, int] = field(default_factory=dict)
    topic_counts: dict[str, int] = field(default_factory=dict)
    edge_case_counts: dict[str, int] = field(default_factory=dict)


@dataclass
class GenerationResult:
    examples: list[dict[str, Any]]
    statistics: GenerationStatistics
    # Requested topics outside the scenario's catalogue, generated from generic templates.
    generic_topics: list[str] = field(default_factory=list)


def _take(values: Sequence[Any], diversity: float) -> tuple[Any, ...]:
    return tuple(values[:max(1, math.ceil(diversity * len(values)))])


@dataclass(frozen=True)
class Plan:
    """A template ready to fill: its slots with values already cut by diversity, and the positions
    of its words that have synonyms (paraphrases apply to the template's own words)."""

    template: Template
    slots: tuple[tuple[str, tuple[str, ...]], ...]
    words: tuple[str, ...]
    synonyms: tuple[tuple[int, tuple[str, ...]], ...]


class SyntheticGenerator:
    def __init__(self, scenario: CompiledScenario, config: GenerationConfig):
        self.scenario = scenario
        self.config = config
        d = config.diversity
        if config.topics:
            topics, self.generic_topics = split_topics(config.topics, scenario.topics)
        else:
            topics, self.generic_topics = scenario.topics, []
        self.outputs: list[CompiledOutput] = [o for o in scenario.outputs if any(t in topics for t in o.topics)]
        self.topics_of = [tuple(t for t in o.topics if t in topics) for o in self.outputs]
        taken = {o.output for o in scenario.outputs}
        for topic in self.generic_topics:
            out = generic_output(topic, taken)
            taken.add(out.output)
            self.outputs.append(out)
            self.topics_of.append((topic,))
        self.own: list[dict[str, list[Plan]]] = []
        self.shared: list[dict[str, list[Plan]]] = []
        for out, out_topics in zip(self.outputs, self.topics_of):
            own: dict[str, list[Plan]] = {}
            shared: dict[str, list[Plan]] = {}
            for topic in out_topics:
                values = scenario.slot_values(out, topic)
                own[topic] = [self._plan(t, values) for t in _take(out.templates, d)]
                # The compiler checked every shared template against the catalogue's outputs; a
                # generic output uses those whose slots it can fill.
                usable = [t for t in scenario.shared_templates if all(s in values for s in t.slots)]
                shared[topic] = [self._plan(t, values) for t in _take(usable, d)] if usable else []
            self.own.append(own)
            self.shared.append(shared)
        self.keywords = [self._keywords(o) for o in self.outputs]
        self.openers = _take(scenario.openers, d) if scenario.openers else ()
        self.closers = _take(scenario.closers, d) if scenario.closers else ()
        mix = LEVEL_MIX[config.difficulty]
        self.level_cuts = (mix[0], mix[0] + mix[1])

    def _plan(self, template: Template, values: dict[str, tuple[str, ...]]) -> Plan:
        d = self.config.diversity
        words = tuple(template.text.split(" "))
        synonyms = tuple((j, _take(self.scenario.synonyms[w.lower()], d)) for j, w in enumerate(words)
                         if w.lower() in self.scenario.synonyms)
        return Plan(template, tuple((slot, _take(values[slot], d)) for slot in template.slots), words, synonyms)

    @staticmethod
    def _keywords(out: CompiledOutput) -> tuple[str, ...]:
        """What names an output in distractors and negations: its subject slot, else its first slot."""
        if "subject" in out.slots:
            return out.slots["subject"]
        if out.slots:
            return next(iter(out.slots.values()))
        return (out.output.replace("_", " ").replace("-", " "),)

    def _other_keyword(self, i: int, rng: random.Random) -> str:
        k = len(self.outputs)
        if k < 2:
            return "something else"
        j = int(rng.random() * (k - 1))
        if j >= i:
            j += 1
        kws = self.keywords[j]
        return kws[int(rng.random() * len(kws))]

    def generate(self) -> GenerationResult:
        cfg = self.config
        rng = random.Random(cfg.seed)
        rnd = rng.random  # int(rnd() * n) is a uniform index, several times faster than randrange
        d = cfg.diversity
        p_open, p_close, p_syn = 0.5 * d, 0.5 * d, 0.3 * d
        cut1, cut2 = self.level_cuts
        long_chars = min(LONG_CHARS, cfg.max_length) if cfg.max_length else LONG_CHARS
        openers, closers = self.openers, self.closers
        order = list(range(len(self.outputs)))
        examples: list[dict[str, Any]] = []
        used: set[tuple[int, str]] = set()
        name = self.scenario.name
        by_topic = cfg.label_by == "topic"
        n_catalogue = len(self.outputs) - len(self.generic_topics)  # generic outputs come last
        for n in range(cfg.count):
            if n % len(order) == 0:
                rng.shuffle(order)
            i = order[n % len(order)]
            out = self.outputs[i]
            topics = self.topics_of[i]
            topic = topics[int(rnd() * len(topics))]
            r = rnd()
            level = 1 if r < cut1 else (2 if r < cut2 else 3)
            effects = LEVEL_EFFECTS[level]
            shared = self.shared[i][topic]
            plans = shared if shared and effects.shared_template and rnd() < effects.shared_template \
                else self.own[i][topic]
            plan = plans[int(rnd() * len(plans))]
            template = plan.template
            used.add((i, template.template_id))
            pattern = template.text
            if plan.synonyms and p_syn:
                words = list(plan.words)
                for j, alts in plan.synonyms:
                    if rnd() < p_syn:
                        words[j] = alts[int(rnd() * len(alts))]
                pattern = " ".join(words)
            text = pattern.format_map({s: v[int(rnd() * len(v))] for s, v in plan.slots})
            if openers and rnd() < p_open:
                text = f"{openers[int(rnd() * len(openers))]} {text}"
            if closers and rnd() < p_close:
                text = f"{text}, {closers[int(rnd() * len(closers))]}"
            if effects.typo_rate:
                text = add_typos(text, effects.typo_rate, rng)
            if effects.distractor and rnd() < effects.distractor:
                text = distractor(text, self._other_keyword(i, rng), rng)
            metadata: dict[str, Any] = {"topic": topic, "scenario": name, "template": template.template_id,
                                        "generic_topic": i >= n_catalogue, "edge_case": False}
            if cfg.edge_cases and rnd() < cfg.edge_case_rate:
                kind = EDGE_CASE_TYPES[int(rnd() * len(EDGE_CASE_TYPES))]
                text = edge_case(kind, text, self._other_keyword(i, rng), rng, long_chars)
                metadata["edge_case"] = True
                metadata["edge_case_type"] = kind
                level = 3
            if cfg.max_length and len(text) > cfg.max_length:
                text = truncate_words(text, cfg.max_length)
            text = text.strip() or out.output[:cfg.max_length or None]
            examples.append({"input": text, "expected_output": topic if by_topic else out.output,
                             "feedback": "correct", "weight": 1.0, "level": level, "metadata": metadata})
        return GenerationResult(examples, self._statistics(examples, len(used)), list(self.generic_topics))

    @staticmethod
    def _statistics(examples: list[dict[str, Any]], unique_templates: int) -> GenerationStatistics:
        inputs = [e["input"] for e in examples]
        measures = measure(inputs)
        levels = Counter(e["level"] for e in examples)
        topics = Counter(e["metadata"]["topic"] for e in examples)
        edge_types = Counter(e["metadata"]["edge_case_type"] for e in examples if e["metadata"]["edge_case"])
        n = len(examples)
        return GenerationStatistics(
            generated=n, average_length=sum(len(t) for t in inputs) / n if n else 0.0,
            unique_scenarios=measures.unique, edge_cases=sum(edge_types.values()),
            diversity=measures.diversity, distinct_1=measures.distinct_1, distinct_2=measures.distinct_2,
            unique_templates=unique_templates, level_counts=dict(sorted(levels.items())),
            topic_counts=dict(topics), edge_case_counts=dict(edge_types))
