"""Where the shards of a GRPO iteration's rollouts run: in the worker, or as Ray tasks.

With ``rollout_shards`` K > 1 the trainer splits the iteration's query groups into K contiguous
``RolloutShard``s, each with a seed drawn from the run's generator, hands them to its pool, and
merges the batches it gets back (``trajectories.merge_batches``). A shard's trajectories depend
only on the policy, the environment and the shard (queries, feature rows, seed, index of its first
group), so every pool returns the same batches for the same shards: where the shards run changes
the speed, never the result.

* ``LocalRolloutPool`` runs the shards one after another in the calling process: the default, and
  what jobs on the local executor use.
* ``RayRolloutPool`` runs each shard as a Ray task: the policy goes into the object store once per
  iteration, the environment once per job; a shard carries only its queries, feature rows and seed.
  Jobs on the Ray executor use it (a job there is itself a Ray task; nested tasks are fine). Ray is
  imported only when one is built. A shard is deterministic, so Ray may retry a lost one.

``make_rollout_pool(executor, shards)`` picks the pool for a job.
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np
import scipy.sparse as sp

from trainhouse.core.grpo.environment import ToolEnvironment, TrainingQuery
from trainhouse.core.grpo.policy import ToolPolicy
from trainhouse.core.grpo.trajectories import RolloutBatch, rollout


@dataclass(frozen=True)
class RolloutShard:
    queries: Sequence[TrainingQuery]   # consecutive queries of the iteration's batch
    Q: sp.csr_matrix                   # their features, one row per query
    seed: int                          # seeds the shard's own generator (drawn from the run's generator)
    first_group: int                   # batch index of the shard's first query (trajectory ids, group_index)


class RolloutPool(Protocol):
    name: str
    remote: bool

    def map(self, policy: ToolPolicy, env: ToolEnvironment, shards: Sequence[RolloutShard], group_size: int, *,
            id_prefix: str, iteration: int | None) -> list[RolloutBatch]:
        """One unscored batch per shard, in shard order; each ``extra["worker"]`` says where it ran."""
        ...


def run_shard(policy: ToolPolicy, env: ToolEnvironment, shard: RolloutShard, group_size: int, id_prefix: str,
              iteration: int | None) -> RolloutBatch:
    """``group_size`` sampled trajectories for each query of ``shard`` (what every pool computes);
    ``extra["seconds"]`` is the shard's measured wall time, for cost accounting."""
    t0 = time.perf_counter()
    batch = rollout(policy, env, shard.queries, shard.Q, group_size, np.random.default_rng(shard.seed),
                    id_prefix=id_prefix, iteration=iteration, first_group=shard.first_group)
    batch.extra["seconds"] = time.perf_counter() - t0
    return batch


def _worker_tag() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


class LocalRolloutPool:
    """Shards one after another in this process."""

    name = "local"
    remote = False  # shard time is the run's own wall time

    def map(self, policy: ToolPolicy, env: ToolEnvironment, shards: Sequence[RolloutShard], group_size: int, *,
            id_prefix: str, iteration: int | None) -> list[RolloutBatch]:
        out = []
        for shard in shards:
            batch = run_shard(policy, env, shard, group_size, id_prefix, iteration)
            batch.extra["worker"] = "in-process"
            out.append(batch)
        return out


def _ray_shard(policy: ToolPolicy, env: ToolEnvironment, shard: RolloutShard, group_size: int, id_prefix: str,
               iteration: int | None) -> RolloutBatch:
    batch = run_shard(policy, env, shard, group_size, id_prefix, iteration)
    batch.extra["worker"] = _worker_tag()
    return batch


class RayRolloutPool:
    """Each shard a Ray task on the cluster this process is connected to (a local one if none)."""

    name = "ray"
    remote = True  # shards use other workers' CPUs while this process waits

    def __init__(self, address: str | None = None, num_cpus: float = 1):
        import ray

        if not ray.is_initialized():
            ray.init(address=address or None, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
        self._ray = ray
        self._task = ray.remote(num_cpus=num_cpus)(_ray_shard)
        self._env: ToolEnvironment | None = None
        self._env_ref: Any = None

    def map(self, policy: ToolPolicy, env: ToolEnvironment, shards: Sequence[RolloutShard], group_size: int, *,
            id_prefix: str, iteration: int | None) -> list[RolloutBatch]:
        ray = self._ray
        if self._env is not env:
            self._env, self._env_ref = env, ray.put(env)
        policy_ref = ray.put(policy)
        refs = [self._task.remote(policy_ref, self._env_ref, shard, group_size, id_prefix, iteration)
                for shard in shards]
        batches = ray.get(refs)
        for shard, batch in zip(shards, batches):
            # The trajectories came back with copies of the queries: give them the caller's own
            # (score_batch caches relevance per query object).
            for tr in batch.trajectories:
                tr.query = shard.queries[tr.group_index - shard.first_group]
        return batches


def make_rollout_pool(executor: str | None, shards: int) -> RolloutPool:
    """The Ray pool for a job with ``shards`` > 1 on the Ray executor, the local pool otherwise."""
    if executor == "ray" and shards > 1:
        return RayRolloutPool()
    return LocalRolloutPool()
