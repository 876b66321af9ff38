"""Tasks for the built-in environment whose outcomes only real tool work can meet.

Five kinds, each solved by a different plan in the builtin catalog:

* math    "what is 417 times 23"                         calculator                    answer
* units   "convert 12.5 km to miles"                     unit_converter                answer (float)
* dates   "what date is 45 days after 2024-03-10"         date_calculator               answer (ISO date)
* lookup  "what is the population of Lisbon"             table_lookup                  answer (from DuckDB)
* code    "check that merge_sort passes the sort_list    code_loader -> code_runner    test_passed, and
           tests in under 100 ms"                                                      execution_time_ms <= 100

Expected values are computed here independently of the environment (unit factors typed again,
``datetime`` for dates, the table's values written out, and which implementations are correct
from knowing them), so a test that they match checks the tools' work. Slot values are split
between training and held-out pools.
"""
from __future__ import annotations

import datetime as dt

import numpy as np

_MATH = ["what is {a} {op} {b}", "calculate {a} {op} {b} for me", "how much is {a} {op} {b}?"]
_UNITS = ["convert {v} {u1} to {u2}", "how many {u2} are in {v} {u1}", "please express {v} {u1} in {u2}"]
_DATES = ["what date is {n} days after {d}", "which day comes {n} days after {d}",
          "tell me the date {n} days before {d}"]
_LOOKUP = ["what is the population of {city}", "look up the population of {city} in the table",
           "how large is the population of {city}"]
_CODE = ["check that {impl} passes the {task} tests in under 100 ms",
         "run the {task} test suite on {impl} and tell me if it passes",
         "does the {impl} implementation of {task} pass its tests"]

# to metres / kilograms: typed independently of builtin.UNITS
_FACTORS = {"km": 1000.0, "miles": 1609.344, "feet": 0.3048, "meters": 1.0, "inches": 0.0254, "kg": 1.0,
            "pounds": 0.45359237, "grams": 0.001, "yards": 0.9144}
_PAIRS = [("km", "miles"), ("feet", "meters"), ("inches", "meters"), ("kg", "pounds"), ("pounds", "grams"),
          ("yards", "feet"), ("miles", "km")]
_POPULATION = {"Lisbon": 545000, "Paris": 2103000, "Tokyo": 13960000, "Nairobi": 4397000, "Lima": 9750000,
               "Oslo": 709000, "Madrid": 3332000, "Rome": 2873000, "Vienna": 1931000, "Prague": 1357000,
               "Dublin": 592000, "Warsaw": 1863000, "Montreal": 1762000, "Cairo": 10230000, "Sydney": 5312000,
               "Berlin": 3645000, "Seoul": 9411000, "Toronto": 2794000, "Helsinki": 664000}
_TRAIN_CITIES = ["Lisbon", "Paris", "Tokyo", "Nairobi", "Lima", "Oslo", "Madrid", "Rome", "Vienna", "Prague"]
_HELD_CITIES = ["Dublin", "Warsaw", "Montreal", "Cairo", "Sydney", "Berlin", "Seoul", "Toronto", "Helsinki"]
# (implementation, task, passes its tests) - fast ones only (all well under 100 ms)
_TRAIN_IMPLS = [("merge_sort", "sort_list", True), ("builtin_sort", "sort_list", True),
                ("dedup_sort", "sort_list", False), ("slice_reverse", "reverse_string", True),
                ("buggy_reverse", "reverse_string", False)]
_HELD_IMPLS = [("sqrt_prime", "is_prime", True), ("buggy_prime", "is_prime", False),
               ("loop_reverse", "reverse_string", True)]
_OPS = {"plus": "+", "minus": "-", "times": "*"}

# Comparisons the jobs training on these tasks use: converted values within 1e-4 relative.
COMPARISONS = {"answer": {"rel_tolerance": 1e-4}}


def _pick(rng: np.random.Generator, items: list):
    return items[int(rng.integers(len(items)))]


def make_builtin_tasks(n: int, seed: int, held_out: bool = False) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            a, b = int(rng.integers(2, 900)), int(rng.integers(2, 60))
            if held_out:
                a, b = a + 1000, b + 100
            word = _pick(rng, list(_OPS))
            text = _pick(rng, _MATH).format(a=a, b=b, op=word)
            expected = {"answer": {"+": a + b, "-": a - b, "*": a * b}[_OPS[word]]}
        elif kind == 1:
            u1, u2 = _pick(rng, _PAIRS)
            v = round(float(rng.uniform(1, 100) if not held_out else rng.uniform(100, 1000)), 1)
            text = _pick(rng, _UNITS).format(v=v, u1=u1, u2=u2)
            expected = {"answer": v * _FACTORS[u1] / _FACTORS[u2]}
        elif kind == 2:
            n_days = int(rng.integers(1, 200))
            start = dt.date(2020 if not held_out else 2030, 1, 1) + dt.timedelta(days=int(rng.integers(0, 700)))
            template = _pick(rng, _DATES)
            sign = -1 if "before" in template else 1
            text = template.format(n=n_days, d=start.isoformat())
            expected = {"answer": (start + dt.timedelta(days=sign * n_days)).isoformat()}
        elif kind == 3:
            city = _pick(rng, _HELD_CITIES if held_out else _TRAIN_CITIES)
            text = _pick(rng, _LOOKUP).format(city=city)
            expected = {"answer": _POPULATION[city]}
        else:
            impl, task, passes = _pick(rng, _HELD_IMPLS if held_out else _TRAIN_IMPLS)
            text = _pick(rng, _CODE).format(impl=impl, task=task)
            expected = {"test_passed": True, "execution_time_ms": 100} if passes else {"test_passed": False}
        out.append({"query": text, "expected_outcome": expected})
    return out


PLANS = {0: ["calculator", "finish"], 1: ["unit_converter", "finish"], 2: ["date_calculator", "finish"],
         3: ["table_lookup", "finish"], 4: ["code_loader", "code_runner", "finish"]}
