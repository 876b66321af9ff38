"""Intent-routing data for tests: a small templated task with typos, and a real HWU64 subset."""
from __future__ import annotations

import json
import random
from pathlib import Path

INTENTS: dict[str, dict[str, list[str]]] = {
    "billing": {
        "templates": ["I was charged twice for my {thing}", "why is my {thing} bill so high",
                      "refund the {thing} payment please", "my invoice for {thing} is wrong",
                      "can I change the card used for {thing}"],
        "thing": ["subscription", "plan", "order", "account", "membership"],
    },
    "technical": {
        "templates": ["the {thing} crashes when I open it", "{thing} keeps showing an error",
                      "I cannot log in to the {thing}", "the {thing} is very slow today",
                      "how do I reset the {thing} settings"],
        "thing": ["app", "website", "dashboard", "mobile client", "desktop tool"],
    },
    "shipping": {
        "templates": ["where is my {thing}", "my {thing} has not arrived yet", "track the {thing} I ordered",
                      "the {thing} was delivered to the wrong address", "when will the {thing} ship"],
        "thing": ["package", "parcel", "order", "delivery", "box"],
    },
    "account": {
        "templates": ["how do I delete my {thing}", "change the email on my {thing}",
                      "I want to update my {thing} password", "close my {thing} permanently",
                      "add a second user to my {thing}"],
        "thing": ["account", "profile", "login", "workspace", "team"],
    },
}


def make_examples(per_intent: int, seed: int = 0, typo_rate: float = 0.05) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for intent, spec in INTENTS.items():
        for _ in range(per_intent):
            text = rng.choice(spec["templates"]).format(thing=rng.choice(spec["thing"]))
            chars = list(text)
            for i in range(len(chars)):
                if chars[i].isalpha() and rng.random() < typo_rate:
                    chars[i] = rng.choice("abcdefghijklmnopqrstuvwxyz")
            out.append({"input": "".join(chars), "expected_output": intent})
    rng.shuffle(out)
    return out


HWU64_SUBSET = Path(__file__).with_name("hwu64_subset.jsonl")


def hwu64_subset() -> list[dict]:
    """840 real user requests to a home assistant, 40 for each of 21 intents (every third intent
    of HWU64 with >= 40 examples, seeded sample of /work/shared/data/hwu64_train.jsonl).

    HWU64: Liu, Eshghi, Swietojanski, Rieser, "Benchmarking Natural Language Understanding
    Services for building Conversational Agents", IWSDS 2019; github xliuhw/NLU-Evaluation-Data,
    CC BY 4.0. Real phrasing (and a few genuinely debatable labels), unlike the templates above.
    """
    with HWU64_SUBSET.open() as f:
        return [json.loads(line) for line in f]


def flip_labels(examples: list[dict], share: float, seed: int = 0) -> tuple[list[dict], set[int]]:
    """A copy where a random ``share`` of the examples get another output (always a different
    one), and the indexes of those examples."""
    rng = random.Random(seed)
    outputs = sorted({e["expected_output"] for e in examples})
    flipped = set(rng.sample(range(len(examples)), round(share * len(examples))))
    out = [dict(e) for e in examples]
    for i in flipped:
        out[i]["expected_output"] = rng.choice([o for o in outputs if o != examples[i]["expected_output"]])
    return out, flipped


def shuffle_labels(examples: list[dict], share: float, seed: int = 0) -> list[dict]:
    """A copy where the outputs of a random ``share`` of the examples are permuted among them
    (class balance is kept; a few keep their own output by chance)."""
    rng = random.Random(seed)
    chosen = rng.sample(range(len(examples)), round(share * len(examples)))
    permuted = [examples[i]["expected_output"] for i in chosen]
    rng.shuffle(permuted)
    out = [dict(e) for e in examples]
    for i, output in zip(chosen, permuted):
        out[i]["expected_output"] = output
    return out
