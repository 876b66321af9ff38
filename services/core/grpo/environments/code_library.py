"""The reference environment's library of coding tasks: tests, and candidate implementations.

Each task has a function name, test cases whose expected values come from a reference function
in this process, and several candidate implementations (source text) that are correct, buggy or
correct-but-slow. The ``code_runner`` tool runs the candidate named in the query against the
task's cases in the sandbox (``sandbox.py``), so whether the tests pass and how long they take
are measured, not declared. The slow candidates are quadratic (or linear where the fast one is
a square root) on the largest case: about 0.1-0.5 s of CPU, against a few ms for the fast ones.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Callable

# --- implementations (source text, run only in the sandbox) -------------------------------------
_SORTS = {
    "builtin_sort": "def sort_list(xs):\n    return sorted(xs)\n",
    "merge_sort": (
        "def sort_list(xs):\n"
        "    if len(xs) <= 1:\n        return list(xs)\n"
        "    mid = len(xs) // 2\n    a, b = sort_list(xs[:mid]), sort_list(xs[mid:])\n"
        "    out, i, j = [], 0, 0\n"
        "    while i < len(a) and j < len(b):\n"
        "        if a[i] <= b[j]:\n            out.append(a[i]); i += 1\n"
        "        else:\n            out.append(b[j]); j += 1\n"
        "    return out + a[i:] + b[j:]\n"),
    "insertion_sort": (
        "def sort_list(xs):\n    out = list(xs)\n"
        "    for i in range(1, len(out)):\n        v, j = out[i], i - 1\n"
        "        while j >= 0 and out[j] > v:\n            out[j + 1] = out[j]; j -= 1\n"
        "        out[j + 1] = v\n    return out\n"),
    "dedup_sort": "def sort_list(xs):\n    return sorted(set(xs))\n",
    "bubble_sort": (
        "def sort_list(xs):\n    out = list(xs)\n"
        "    for n in range(len(out) - 1, 1, -1):\n"  # stops one pass early: the first two may stay swapped
        "        for i in range(n):\n            if out[i] > out[i + 1]:\n"
        "                out[i], out[i + 1] = out[i + 1], out[i]\n    return out\n"),
}
_REVERSES = {
    "slice_reverse": "def reverse_string(s):\n    return s[::-1]\n",
    "loop_reverse": "def reverse_string(s):\n    out = ''\n    for ch in s:\n        out = ch + out\n    return out\n",
    "buggy_reverse": "def reverse_string(s):\n    return s[-1:0:-1]\n",
}
_PRIMES = {
    "sqrt_prime": (
        "def is_prime(n):\n    if n < 2:\n        return False\n"
        "    i = 2\n    while i * i <= n:\n        if n % i == 0:\n            return False\n        i += 1\n"
        "    return True\n"),
    "naive_prime": (
        "def is_prime(n):\n    if n < 2:\n        return False\n"
        "    for i in range(2, n):\n        if n % i == 0:\n            return False\n    return True\n"),
    "buggy_prime": (
        "def is_prime(n):\n    if n < 2:\n        return False\n"
        "    for i in range(2, int(n ** 0.5)):\n        if n % i == 0:\n            return False\n    return True\n"),
}


def _ref_prime(n: int) -> bool:
    return n >= 2 and all(n % i for i in range(2, math.isqrt(n) + 1))


def _next_prime(n: int) -> int:
    while not _ref_prime(n):
        n += 1
    return n


def _sort_cases() -> list[dict[str, Any]]:
    rnd = random.Random(17)
    inputs = [[], [1], [2, 1], [3, 1, 2], [5, -1, 5, 0, -1], [9, 8, 7, 6, 5, 4, 3, 2, 1],
              [rnd.randint(-1000, 1000) for _ in range(2500)]]
    return [{"args": [xs], "expected": sorted(xs)} for xs in inputs]


def _reverse_cases() -> list[dict[str, Any]]:
    inputs = ["", "a", "ab", "racecar", "hello world", "trainhouse" * 300]
    return [{"args": [s], "expected": s[::-1]} for s in inputs]


def _prime_cases() -> list[dict[str, Any]]:
    inputs = [0, 1, 2, 3, 4, 9, 25, 49, 97, 7919, 7921, _next_prime(3_000_000)]
    return [{"args": [n], "expected": _ref_prime(n)} for n in inputs]


@dataclass(frozen=True)
class CodingTask:
    name: str
    function: str
    description: str
    cases: Callable[[], list[dict[str, Any]]]
    implementations: dict[str, str]


TASKS: dict[str, CodingTask] = {
    "sort_list": CodingTask("sort_list", "sort_list", "sort a list of integers ascending (duplicates kept)",
                            _sort_cases, _SORTS),
    "reverse_string": CodingTask("reverse_string", "reverse_string", "reverse a string", _reverse_cases, _REVERSES),
    "is_prime": CodingTask("is_prime", "is_prime", "tell whether an integer is prime", _prime_cases, _PRIMES),
}
# implementation name -> task name
IMPLEMENTATIONS: dict[str, str] = {impl: t.name for t in TASKS.values() for impl in t.implementations}
