"""Shared fixtures for the trainer tests: a small, realistic, seeded intent data set."""
from __future__ import annotations

import numpy as np
import pytest

from trainhouse.core.trainer import Example

# Six intents with overlapping vocabulary ("order", "my account", "payment" appear in several),
# so the model must use word combinations, not single keywords.
_TEMPLATES = {
    "reset_password": ["i forgot my {pw}", "how do i reset my {pw}", "can't log in, need a new {pw}",
                       "{pw} not working for my account", "help me change the {pw} on my account"],
    "cancel_order": ["please cancel my {order}", "i want to cancel the {order} i placed",
                     "stop my {order} before it ships", "cancel {order} number {num}", "i no longer want my {order}"],
    "track_order": ["where is my {order}", "track {order} {num}", "when will my {order} arrive",
                    "has my {order} shipped yet", "status of the {order} i placed"],
    "refund": ["i want my money back for the {order}", "refund the {pay} on my account",
               "how do i get a refund for {order} {num}", "you charged my {pay} twice, refund it",
               "return the item and refund my {pay}"],
    "human_agent": ["let me talk to a {human}", "connect me with a {human} please", "i need a real {human}",
                    "can a {human} call me about my account", "stop the bot, get me a {human}"],
    "update_payment": ["update the {pay} on my account", "change my {pay} details", "my {pay} expired, add a new one",
                       "replace the {pay} for my {order}", "use a different {pay} for future orders"],
}
_SLOTS = {
    "pw": ["password", "passcode", "login password", "pin"],
    "order": ["order", "purchase", "package", "delivery"],
    "pay": ["card", "credit card", "payment method", "visa"],
    "human": ["human", "person", "agent", "representative"],
}
_PREFIX = ["", "", "hi, ", "hello ", "hey there, ", "excuse me, "]
_SUFFIX = ["", "", "?", "!", " thanks", " asap", " please"]


def _noisy(text: str, rng: np.random.Generator) -> str:
    if rng.random() < 0.3 and len(text) > 5:  # a dropped character (typo)
        i = int(rng.integers(len(text)))
        text = text[:i] + text[i + 1:]
    if rng.random() < 0.2:
        text = text.upper() if rng.random() < 0.3 else text.capitalize()
    return text


def make_intents(seed: int, per_intent: int = 40) -> list[Example]:
    """``per_intent`` templated, noisy utterances for each of the six intents, shuffled."""
    rng = np.random.default_rng(seed)
    out = []
    for label, templates in _TEMPLATES.items():
        for _ in range(per_intent):
            tpl = templates[int(rng.integers(len(templates)))]
            slots = {k: v[int(rng.integers(len(v)))] for k, v in _SLOTS.items()}
            text = tpl.format(num=int(rng.integers(1000, 99999)), **slots)
            text = _PREFIX[int(rng.integers(len(_PREFIX)))] + text + _SUFFIX[int(rng.integers(len(_SUFFIX)))]
            out.append(Example(_noisy(text, rng), label))
    order = rng.permutation(len(out))
    return [out[i] for i in order]


@pytest.fixture(scope="session")
def intents():
    """The intent generator (seed, per_intent) -> list[Example]."""
    return make_intents
