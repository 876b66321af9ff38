"""GRPO rollouts in the built-in environment: one round of tool calls on threads vs one after another.

A rollout steps all running trajectories together (one batched policy pass per round, then the
round's tool calls). When the policy has learnt to run code, a round is mostly code_runner calls,
each spawning and measuring a sandboxed subprocess (no cache); ``parallel_calls`` overlaps them.
The bench plays that round directly: 32 episodes (4 code tasks x 8) load their implementation,
then run it, once with ``parallel_calls`` 1 and once with 4. The measured outcomes agree (checked).
"""
from __future__ import annotations

import time

import _common  # noqa: F401  (puts the repo on sys.path)
import numpy as np

from trainhouse.core.grpo.environments.builtin import BuiltinEnvironment
from trainhouse.core.grpo.environments.spec import EnvironmentSpec
from tests.grpo.builtin_tasks import make_builtin_tasks

QUERIES = [t["query"] for i, t in enumerate(make_builtin_tasks(20, seed=7)) if i % 5 == 4] * 8


def round_seconds(parallel: int, repeats: int = 3) -> tuple[float, list]:
    env = BuiltinEnvironment(4, EnvironmentSpec(type="builtin", parallel_calls=parallel))
    loader, runner = env.names.index("code_loader"), env.names.index("code_runner")
    times, outcomes = [], None
    for _ in range(repeats):
        episodes = [env.reset(q) for q in QUERIES]
        env.step_many(episodes, [loader] * len(episodes))
        t0 = time.perf_counter()
        env.step_many(episodes, [runner] * len(episodes))
        times.append(time.perf_counter() - t0)
        outcomes = [(e.outcome.get("test_passed"), e.outcome.get("tests_passed")) for e in episodes]
    return float(np.median(times)), outcomes


def main() -> None:
    sequential, a = round_seconds(1)
    threaded, b = round_seconds(4)
    assert a == b and all(x is not None for x, _ in a), "the runs' outcomes differ"
    _common.result(f"GRPO builtin: one round of {len(QUERIES)} code_runner calls, parallel_calls=4", threaded, "s",
                   sequential, "parallel_calls=1")


if __name__ == "__main__":
    main()
