"""Rollouts: trajectories of the policy in the environment, scored and exportable.

``rollout`` runs every trajectory of a batch in lockstep (one policy forward per step for all
trajectories still running), samples actions from the policy with the given generator (or takes
the most probable one when ``rng`` is None) and keeps, per step, what the update needs: the
query, the state vector, the action and its log-probability under the sampling policy.

``Trajectory.to_dict`` is the export shape of seed 003 ``training.export_trajectories``::

    {trajectory_id, query, steps: [{state, action: {tool, params}, result, timestamp, duration_ms}],
     reward, normalized_reward, advantage, success, execution_time_ms, iteration, group_index}

* ``timestamp``: when the step started (the policy chooses the actions of all running
  trajectories in one batched pass, so the steps of one round share it);
* ``duration_ms``: measured wall time of executing the step's action in the environment.
* ``execution_time_ms``: measured wall time from the trajectory's first step to the end of its
  last one (it includes the policy's inference, which runs batched across the trajectories).
* ``normalized_reward``: the reward normalised within its group (``objective.group_advantages``:
  minus the group mean, divided by the group's std unless ``scale_rewards`` says otherwise);
  ``advantage``: the value that multiplies every step's policy-gradient term. Under GRPO's outcome
  supervision they are equal (both 0 for a group whose rewards are all equal).
"""
from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from trainhouse.core.grpo.environment import Episode, ToolEnvironment, TrainingQuery, iso_now, matched_fields
from trainhouse.core.grpo.objective import group_advantages
from trainhouse.core.grpo.policy import ToolPolicy
from trainhouse.core.grpo.rewards import RewardFn, RewardInput, score
from trainhouse.core.grpo.tools import relevant_tools
from trainhouse.core.trainer.cost import token_counts


@dataclass
class Trajectory:
    trajectory_id: str
    query: TrainingQuery
    episode: Episode
    group_index: int
    iteration: int | None = None
    reward: float = 0.0
    normalized_reward: float = 0.0
    advantage: float = 0.0
    success: bool = False
    tool_calls: int = 0            # calls of tools other than finish
    accurate_calls: int = 0        # ... that succeeded and are relevant to the expected outcome

    @property
    def n_steps(self) -> int:
        return len(self.episode.steps)

    @property
    def final_state(self) -> dict[str, Any]:
        return self.episode.final_state()

    def to_dict(self) -> dict[str, Any]:
        return {
            "trajectory_id": self.trajectory_id,
            "query": self.query.query,
            "steps": self.episode.steps,
            "reward": self.reward,
            "normalized_reward": self.normalized_reward,
            "advantage": self.advantage,
            "success": self.success,
            "execution_time_ms": self.episode.execution_time_ms,
            "iteration": self.iteration,
            "group_index": self.group_index,
        }


@dataclass
class RolloutBatch:
    trajectories: list[Trajectory]
    Q: sp.csr_matrix            # (n_groups, D) query features, one row per group
    qidx: np.ndarray            # (R,) group of each step row
    S: np.ndarray               # (R, 2T+1) state vectors
    actions: np.ndarray         # (R,)
    traj: np.ndarray            # (R,) trajectory of each step row
    logp_old: np.ndarray        # (R,) log pi_old(action), float64
    row_tokens: np.ndarray      # (R,) tokens the policy read for the row: the query's whitespace tokens
                                # (trainer/cost.py) + one per earlier step of the trajectory
    tokens: int = 0             # total tokens processed by the rollout's policy passes
    n_groups: int = 0
    group_size: int = 0
    frac_reward_zero_std: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a rollout allocates its step records.

    A large batch creates millions of small dicts and lists that stay alive until the batch is
    exported; the collector's repeated scans of them cost more than the rollout itself (measured:
    ~5x on a 128 x 16 x 100-step batch). The records hold no reference cycles, so reference
    counting frees them without the collector, which is restored afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def rollout(policy: ToolPolicy, env: ToolEnvironment, queries: Sequence[TrainingQuery], Q: sp.csr_matrix,
            group_size: int, rng: np.random.Generator | None, *, id_prefix: str = "traj",
            iteration: int | None = None, first_group: int = 0) -> RolloutBatch:
    """``group_size`` trajectories for each of ``queries`` (rows of ``Q`` are their features).

    Sampling draws ``len(active)`` uniforms per step from ``rng``, so the same generator state and
    policy give the same trajectories; ``rng=None`` means greedy (argmax) actions. A shard of a
    larger batch passes the batch index of its first query as ``first_group``: trajectory ids and
    ``group_index`` use the batch's numbering, ``qidx`` stays local to ``Q`` (``merge_batches``).
    """
    with _gc_paused():
        return _rollout(policy, env, queries, Q, group_size, rng, id_prefix, iteration, first_group)


def _rollout(policy: ToolPolicy, env: ToolEnvironment, queries: Sequence[TrainingQuery], Q: sp.csr_matrix,
             group_size: int, rng: np.random.Generator | None, id_prefix: str,
             iteration: int | None, first_group: int) -> RolloutBatch:
    n_groups = len(queries)
    trajs: list[Trajectory] = []
    for g, q in enumerate(queries, start=first_group):
        for j in range(group_size):
            trajs.append(Trajectory(f"{id_prefix}-{g:03d}-{j:02d}", q, env.reset(q.query), g, iteration))
    group_of = np.repeat(np.arange(n_groups), group_size)
    query_tokens = token_counts([q.query for q in queries])
    projected = policy.project_queries(Q)
    qidx_parts, s_parts, a_parts, t_parts, lp_parts, tok_parts = [], [], [], [], [], []
    active = np.arange(len(trajs))
    n_actions = len(policy.actions)
    for t in range(env.max_steps):
        if len(active) == 0:
            break
        timestamp = iso_now()
        S = np.stack([trajs[i].episode.state_vector() for i in active])
        qidx = group_of[active]
        logp = policy.action_log_probs(Q, qidx, S, projected)
        if rng is None:
            actions = np.argmax(logp, axis=1)
        else:
            cdf = np.cumsum(np.exp(logp), axis=1)
            u = rng.random(len(active))
            actions = np.minimum((cdf <= u[:, None]).sum(axis=1), n_actions - 1)
        qidx_parts.append(qidx)
        s_parts.append(S)
        a_parts.append(actions)
        t_parts.append(active)
        lp_parts.append(logp[np.arange(len(active)), actions])
        tok_parts.append(query_tokens[qidx] + t)
        for i, a in zip(active.tolist(), actions.tolist()):
            env.step(trajs[i].episode, a, timestamp)
        active = np.array([i for i in active.tolist() if not trajs[i].episode.done], dtype=np.int64)
    row_tokens = np.concatenate(tok_parts) if tok_parts else np.zeros(0, dtype=np.int64)
    return RolloutBatch(
        trajectories=trajs, Q=Q,
        qidx=np.concatenate(qidx_parts) if qidx_parts else np.zeros(0, dtype=np.int64),
        S=np.concatenate(s_parts) if s_parts else np.zeros((0, 2 * env.n_tools + 1), dtype=np.float32),
        actions=np.concatenate(a_parts) if a_parts else np.zeros(0, dtype=np.int64),
        traj=np.concatenate(t_parts) if t_parts else np.zeros(0, dtype=np.int64),
        logp_old=np.concatenate(lp_parts) if lp_parts else np.zeros(0),
        row_tokens=row_tokens, tokens=int(row_tokens.sum()), n_groups=n_groups, group_size=group_size)


def merge_batches(batches: Sequence[RolloutBatch]) -> RolloutBatch:
    """One batch from the rollouts of consecutive shards of a batch's query groups (unscored).

    Trajectories and step rows are concatenated in shard order, ``qidx`` and ``traj`` offset to
    index the stacked ``Q`` and the concatenated trajectories; ``tokens`` add up. The result has
    the layout the update expects (trajectories group-major, ``group_size`` per group); its rows
    come shard by shard instead of step by step, which the objective does not depend on.
    """
    if not batches:
        raise ValueError("no rollout batches to merge")
    group_size = batches[0].group_size
    if any(b.group_size != group_size for b in batches):
        raise ValueError("shards of one batch must share the group size")
    group_offsets = np.cumsum([0] + [b.n_groups for b in batches])[:-1]
    traj_offsets = np.cumsum([0] + [len(b.trajectories) for b in batches])[:-1]
    return RolloutBatch(
        trajectories=[t for b in batches for t in b.trajectories],
        Q=sp.vstack([b.Q for b in batches], format="csr"),
        qidx=np.concatenate([b.qidx + off for b, off in zip(batches, group_offsets)]),
        S=np.concatenate([b.S for b in batches]),
        actions=np.concatenate([b.actions for b in batches]),
        traj=np.concatenate([b.traj + off for b, off in zip(batches, traj_offsets)]),
        logp_old=np.concatenate([b.logp_old for b in batches]),
        row_tokens=np.concatenate([b.row_tokens for b in batches]),
        tokens=sum(b.tokens for b in batches), n_groups=sum(b.n_groups for b in batches), group_size=group_size)


def score_batch(batch: RolloutBatch, env: ToolEnvironment, reward_fn: RewardFn, *, gamma: float,
                step_penalty: float, scale_rewards: str = "group", reward_name: str = "reward_function",
                relevance_cache: dict[int, frozenset[str]] | None = None) -> None:
    """Reward, success, tool accuracy and group-normalised advantage of every trajectory (in place)."""
    cache = relevance_cache if relevance_cache is not None else {}
    for tr in batch.trajectories:
        final = tr.episode.final_state()
        expected = tr.query.expected_outcome
        tr.reward = score(reward_fn, RewardInput(final, expected, len(tr.episode.steps), gamma, step_penalty,
                                                 tr.query.query), reward_name)
        tr.success = matched_fields(final, expected) == len(expected)
        key = id(tr.query)
        relevant = cache.get(key)
        if relevant is None:
            relevant = cache[key] = relevant_tools(env.catalog, expected)
        calls = [(env.names[a], ok) for a, ok in zip(tr.episode.actions, tr.episode.succeeded) if a < env.n_tools]
        tr.tool_calls = len(calls)
        tr.accurate_calls = sum(1 for name, ok in calls if ok and name in relevant)
    if batch.group_size and batch.n_groups:
        rewards = np.array([tr.reward for tr in batch.trajectories], dtype=np.float64).reshape(
            batch.n_groups, batch.group_size)
        adv, zero = group_advantages(rewards, scale_rewards)
        for tr, a in zip(batch.trajectories, adv.ravel().tolist()):
            tr.normalized_reward = a
            tr.advantage = a
        batch.frac_reward_zero_std = float(zero.mean())
        batch.extra["reward_std"] = float(rewards.std(axis=1).mean())


def summarize(trajectories: Sequence[Trajectory]) -> dict[str, float]:
    """success_rate, avg_reward, avg_steps and tool_accuracy (micro-averaged over tool calls)."""
    n = len(trajectories)
    if n == 0:
        return {"success_rate": 0.0, "avg_reward": 0.0, "avg_steps": 0.0, "tool_accuracy": 0.0}
    calls = sum(t.tool_calls for t in trajectories)
    return {
        "success_rate": sum(t.success for t in trajectories) / n,
        "avg_reward": float(np.mean([t.reward for t in trajectories])),
        "avg_steps": float(np.mean([t.n_steps for t in trajectories])),
        "tool_accuracy": sum(t.accurate_calls for t in trajectories) / calls if calls else 0.0,
    }


def export_shape_keys() -> Mapping[str, tuple[str, ...]]:
    """The keys of an exported trajectory and of each of its steps (for hosts and tests)."""
    return {"trajectory": ("trajectory_id", "query", "steps", "reward", "normalized_reward", "advantage", "success",
                           "execution_time_ms", "iteration", "group_index"),
            "step": ("state", "action", "result", "timestamp", "duration_ms"),
            "action": ("tool", "params")}
