"""Pluggable GRPO environments (``GRPOConfig.environment``; docs/grpo_environments.md).

* ``simulated`` - ``environment.ToolEnvironment`` over the declarative catalog (``tools.py``);
* ``builtin``   - ``builtin.BuiltinEnvironment``: calculator, units, dates, DuckDB lookup, and a
                  sandboxed code runner that measures ``test_passed`` / ``execution_time_ms``;
* ``http``      - ``http.HttpEnvironment``: the user's tool server.

``make_environment(config)`` builds the one a job names; ``make_reward(config)`` the reward
function (the registered one, or the user's grader endpoint).
"""
from __future__ import annotations

from typing import Any

from trainhouse.core.grpo.environment import ToolEnvironment
from trainhouse.core.grpo.environments.spec import (DEFAULT_COMPARISONS, EnvironmentSpec, GraderSpec,
                                                      parse_comparisons, parse_environment, parse_grader)


def make_environment(config: Any) -> ToolEnvironment:
    """The environment of a ``GRPOConfig`` (the HTTP one reads its tool list here)."""
    spec: EnvironmentSpec = config.environment
    if spec.type == "builtin":
        from trainhouse.core.grpo.environments.builtin import BuiltinEnvironment

        return BuiltinEnvironment(config.max_steps_per_trajectory, spec)
    if spec.type == "http":
        from trainhouse.core.grpo.environments.http import HttpEnvironment

        return HttpEnvironment(spec, config.max_steps_per_trajectory)
    return ToolEnvironment(config.catalog, config.max_steps_per_trajectory)


def make_reward(config: Any) -> Any:
    """The job's reward function: its grader endpoint when it names one, else the registered one."""
    if config.grader is not None:
        from trainhouse.core.grpo.environments.http import GraderReward

        return GraderReward(config.grader)
    from trainhouse.core.grpo.rewards import get_reward

    return get_reward(config.reward_function)


__all__ = ["DEFAULT_COMPARISONS", "EnvironmentSpec", "GraderSpec", "make_environment", "make_reward",
           "parse_comparisons", "parse_environment", "parse_grader"]
