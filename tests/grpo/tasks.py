"""A generated family of tool-use tasks whose wording decides which tool chain solves them.

Six kinds of request, each solved by a different plan in the default catalog:

* code      "write a python function that sorts a list"    code_generator -> test_runner
* math      "what is 17 times 23"                          calculator (answer = 391)
* weather   "will it rain in Lisbon tomorrow"              weather (location = "Lisbon")
* report    "email ana@example.com a summary of the orders table"
                                                            database_query -> summarizer -> email_sender
* research  "find articles about solar panels and summarize them"
                                                            search -> summarizer
* file      "open notes.txt and tell me what it says"      file_reader (file_path = "notes.txt")

Slot values (languages, topics, cities, names, files, numbers) are split between a training pool
and a held-out pool, so held-out queries use words the policy never saw with that template.
"""
from __future__ import annotations

import numpy as np

from trainhouse.core.grpo.tools import evaluate_expression

_CODE = ["write a {lang} function that {does}", "implement {does} in {lang} and make sure the tests pass",
         "can you code a {lang} script to {does2}", "create a {lang} program which {does}"]
_MATH = ["what is {a} {op} {b}", "calculate {a} {op} {b} for me", "how much is {a} {op} {b}?",
         "compute {a} {op} {b} please"]
_WEATHER = ["what's the weather like in {city}", "will it rain in {city} tomorrow", "give me the forecast for {city}",
            "is it cold in {city} today"]
_REPORT = ["email {name}@example.com a summary of the {table} table", "send {name}@example.com a report on our {table} data",
           "mail a digest of the {table} records to {name}@example.com"]
_RESEARCH = ["find articles about {topic} and summarize them", "research {topic} and write me a short summary",
             "look up the latest news on {topic} and give me a summary"]
_FILE = ["open {file} and tell me what it says", "read the file {file}", "show me the contents of {file}"]

_SLOTS_TRAIN = {
    "lang": ["python", "java", "rust", "go"],
    "does": ["sorts a list", "reverses a string", "checks for primes", "merges two arrays", "parses dates"],
    "does2": ["sort a list", "reverse a string", "count words", "merge two arrays", "parse json"],
    "city": ["Lisbon", "Paris", "Tokyo", "Nairobi", "Lima", "Oslo"],
    "name": ["ana", "bob", "chen", "dara"],
    "table": ["orders", "customers", "invoices", "shipments"],
    "topic": ["solar panels", "quantum computing", "coral reefs", "electric cars", "vaccines"],
    "file": ["notes.txt", "report.pdf", "data/sales.csv", "config.yaml"],
}
_SLOTS_HELD_OUT = {
    "lang": ["kotlin", "ruby", "typescript"],
    "does": ["finds duplicates", "computes a checksum", "flattens nested lists"],
    "does2": ["find duplicates", "compute a checksum", "flatten nested lists"],
    "city": ["Montreal", "Cairo", "Sydney", "Berlin"],
    "name": ["eve", "femi", "gus"],
    "table": ["payments", "suppliers", "returns"],
    "topic": ["deep sea mining", "honey bees", "fusion energy"],
    "file": ["todo.md", "logs/app.log", "budget.xlsx"],
}
_OPS = {"plus": "+", "minus": "-", "times": "*", "+": "+", "*": "*", "-": "-"}


def _pick(rng: np.random.Generator, items: list[str]) -> str:
    return items[int(rng.integers(len(items)))]


def make_tasks(n: int, seed: int, held_out: bool = False) -> list[dict]:
    """``n`` TrainingQuery dicts, cycling through the six kinds, slot values from one pool."""
    rng = np.random.default_rng(seed)
    slots = _SLOTS_HELD_OUT if held_out else _SLOTS_TRAIN
    out = []
    for i in range(n):
        kind = i % 6
        s = {k: _pick(rng, v) for k, v in slots.items()}
        if kind == 0:
            text = _pick(rng, _CODE).format(**s)
            expected = {"test_passed": True}
        elif kind == 1:
            a, b = int(rng.integers(2, 500)), int(rng.integers(2, 50))
            if held_out:
                a, b = a + 500, b + 50
            word = _pick(rng, list(_OPS))
            text = _pick(rng, _MATH).format(a=a, b=b, op=word)
            expected = {"answer": evaluate_expression(f"{a} {_OPS[word]} {b}")}
        elif kind == 2:
            text = _pick(rng, _WEATHER).format(**s)
            expected = {"weather_checked": True, "location": s["city"]}
        elif kind == 3:
            text = _pick(rng, _REPORT).format(**s)
            expected = {"email_sent": True, "recipient": f"{s['name']}@example.com"}
        elif kind == 4:
            text = _pick(rng, _RESEARCH).format(**s)
            expected = {"summary_written": True, "context_retrieved": True}
        else:
            text = _pick(rng, _FILE).format(**s)
            expected = {"file_read": True, "file_path": s["file"]}
        out.append({"query": text, "expected_outcome": expected})
    return out


# The plan that solves each kind (for environment tests).
PLANS = {
    "test_passed": ["code_generator", "test_runner", "finish"],
    "answer": ["calculator", "finish"],
    "weather_checked": ["weather", "finish"],
    "email_sent": ["database_query", "summarizer", "email_sender", "finish"],
    "summary_written": ["search", "summarizer", "finish"],
    "file_read": ["file_reader", "finish"],
}


def plan_for(task: dict) -> list[str]:
    for key, plan in PLANS.items():
        if key in task["expected_outcome"]:
            return plan
    raise KeyError(task)
