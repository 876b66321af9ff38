"""A small, realistic intent-routing task for tests: templated, noisy utterances per output."""
from __future__ import annotations

import random

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
