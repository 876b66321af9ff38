"""Evaluation of a tool-use policy on held-out queries, and paired comparison of two policies.

``evaluate_policy`` runs one trajectory per query. By default actions are *greedy* (the most
probable action at every step, ties to the lower index): deterministic, so two evaluations of the
same policy agree and a comparison measures the policies, not sampling noise. With
``greedy=False`` actions are sampled from the policy with ``numpy.random.default_rng(seed)``.

Metrics (also the trainer's ``success_rate``/... metrics):

* ``success_rate``: fraction of queries whose final state matches every expected field;
* ``avg_reward``: mean reward under the config's reward function;
* ``avg_steps``: mean actions per trajectory, ``finish`` included;
* ``tool_accuracy``: over all tool calls (``finish`` excluded), the fraction that succeeded and used a
  tool on a dependency path to an expected field (``tools.relevant_tools``).

``compare_policies`` is a paired test over the same queries: success by McNemar's exact test
(a two-sided binomial test on the discordant queries, ``scipy.stats.binomtest``), rewards by a
paired sign-flip permutation test of the mean difference (``scipy.stats.permutation_test``,
exact when 2^n <= 9999 sign patterns, else 9999 seeded random ones).
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
from scipy import stats

from trainhouse.core.configs.grpo import GRPOConfig
from trainhouse.core.errors import InvalidArgument
from trainhouse.core.grpo.environment import ToolEnvironment, TrainingQuery, parse_queries
from trainhouse.core.grpo.policy import ToolPolicy
from trainhouse.core.grpo.rewards import get_reward
from trainhouse.core.grpo.trajectories import Trajectory, rollout, score_batch, summarize

EVAL_CHUNK = 256


def _environment_for(policy: ToolPolicy, config: GRPOConfig) -> ToolEnvironment:
    names = [t.name for t in config.catalog]
    if names != policy.actions:
        raise InvalidArgument("tools", f"the policy's actions {policy.actions} differ from the config's catalog {names}")
    return ToolEnvironment(config.catalog, config.max_steps_per_trajectory)


def run_evaluation(policy: ToolPolicy, queries: Sequence[TrainingQuery], config: GRPOConfig, *,
                   reward_function: str | None = None, greedy: bool = True, seed: int = 0,
                   id_prefix: str = "eval") -> tuple[list[Trajectory], int]:
    """(one scored trajectory per query, tokens processed)."""
    env = _environment_for(policy, config)
    name = reward_function or config.reward_function
    reward_fn = get_reward(name)
    rng = None if greedy else np.random.default_rng(seed)
    out: list[Trajectory] = []
    tokens = 0
    cache: dict[int, frozenset[str]] = {}
    for start in range(0, len(queries), EVAL_CHUNK):
        chunk = list(queries[start:start + EVAL_CHUNK])
        Q = policy.encode_queries([q.query for q in chunk])
        batch = rollout(policy, env, chunk, Q, 1, rng, id_prefix=f"{id_prefix}-{start // EVAL_CHUNK:04d}")
        score_batch(batch, env, reward_fn, gamma=config.gamma, step_penalty=config.step_penalty,
                    reward_name="reward_function", relevance_cache=cache)
        out.extend(batch.trajectories)
        tokens += batch.tokens
    return out, tokens


def evaluate_policy(policy: ToolPolicy, queries: Sequence[TrainingQuery | dict], reward_function: str | None = None,
                    config: GRPOConfig | None = None, *, greedy: bool = True, seed: int = 0) -> dict[str, Any]:
    """Metrics and per-query results of ``policy`` on ``queries`` (see the module docstring).

    ``config`` supplies the catalog, ``max_steps_per_trajectory``, ``gamma`` and ``step_penalty``
    (defaults: ``GRPOConfig()``); ``reward_function`` overrides its reward function.
    """
    config = config or GRPOConfig()
    parsed = parse_queries(list(queries), "evaluation_queries")
    t0 = time.perf_counter()
    trajs, tokens = run_evaluation(policy, parsed, config, reward_function=reward_function, greedy=greedy, seed=seed)
    metrics: dict[str, Any] = dict(summarize(trajs))
    metrics["queries_evaluated"] = len(trajs)
    metrics["tokens_processed"] = tokens
    metrics["evaluation_duration_ms"] = (time.perf_counter() - t0) * 1000.0
    metrics["greedy"] = greedy
    metrics["results"] = [{"query": t.query.query, "success": t.success, "reward": t.reward, "steps": t.n_steps,
                           "tools": [s["action"]["tool"] for s in t.episode.steps], "final_state": t.final_state}
                          for t in trajs]
    return metrics


def compare_policies(baseline: dict[str, Any], candidate: dict[str, Any], alpha: float = 0.05,
                     seed: int = 0) -> dict[str, Any]:
    """Paired comparison of two ``evaluate_policy`` results on the same queries (same order).

    Returns ``success_rate_improvement`` and ``avg_reward_improvement`` (candidate - baseline),
    ``p_value`` (McNemar exact, on success), ``reward_p_value`` (paired permutation test on rewards),
    ``statistically_significant`` (``p_value < alpha``), and the discordant counts.
    """
    a, b = baseline.get("results"), candidate.get("results")
    if not isinstance(a, list) or not isinstance(b, list) or len(a) != len(b):
        raise InvalidArgument("evaluation_queries", "both evaluations must cover the same queries")
    if any(x["query"] != y["query"] for x, y in zip(a, b)):
        raise InvalidArgument("evaluation_queries", "the evaluations list different queries (or in a different order)")
    n = len(a)
    sa = np.array([bool(x["success"]) for x in a])
    sb = np.array([bool(y["success"]) for y in b])
    ra = np.array([float(x["reward"]) for x in a])
    rb = np.array([float(y["reward"]) for y in b])
    improved = int(np.sum(~sa & sb))
    regressed = int(np.sum(sa & ~sb))
    discordant = improved + regressed
    p_success = float(stats.binomtest(improved, discordant, 0.5).pvalue) if discordant else 1.0
    diff = rb - ra
    if n == 0 or np.allclose(diff, 0.0):
        p_reward = 1.0
    else:
        res = stats.permutation_test((diff,), lambda d, axis: np.mean(d, axis=axis), permutation_type="samples",
                                     n_resamples=9999, alternative="two-sided", **_seeded(seed))
        p_reward = float(res.pvalue)
    return {
        "success_rate_improvement": float(sb.mean() - sa.mean()) if n else 0.0,
        "avg_reward_improvement": float(rb.mean() - ra.mean()) if n else 0.0,
        "p_value": p_success,
        "reward_p_value": p_reward,
        "statistically_significant": bool(p_success < alpha),
        "alpha": alpha,
        "queries_compared": n,
        "improved_queries": improved,
        "regressed_queries": regressed,
        "test": "mcnemar_exact",
    }


def _seeded(seed: int) -> dict[str, Any]:
    """SciPy >= 1.15 takes ``rng``; older versions ``random_state``."""
    import inspect
    key = "rng" if "rng" in inspect.signature(stats.permutation_test).parameters else "random_state"
    return {key: np.random.default_rng(seed)}


def baseline_comparison(baseline: ToolPolicy, candidate: ToolPolicy, queries: Sequence[TrainingQuery | dict],
                        config: GRPOConfig | None = None, alpha: float = 0.05) -> dict[str, Any]:
    """Evaluate both policies greedily on ``queries`` and compare them (``compare_policies``)."""
    base = evaluate_policy(baseline, queries, config=config)
    cand = evaluate_policy(candidate, queries, config=config)
    out = compare_policies(base, cand, alpha)
    out["baseline"] = {k: base[k] for k in ("success_rate", "avg_reward", "avg_steps", "tool_accuracy")}
    out["candidate"] = {k: cand[k] for k in ("success_rate", "avg_reward", "avg_steps", "tool_accuracy")}
    return out
