"""GRPO training of a tool-use policy: rollouts in groups, group-normalised advantages, clipped
policy-gradient updates with a KL penalty to the initial policy.

``GRPOTrainer(config, training_queries, evaluation_queries, callbacks).train(resume_from)`` returns
a ``GRPOResult``. One iteration:

1. take ``batch_size`` queries from a shuffled pass over the training queries;
2. sample ``n_trajectories_per_query`` trajectories per query (one group each) with the current
   policy, which is also the "old" policy of the ratio. With ``rollout_shards`` K > 1 the groups
   are split into K contiguous shards (at most one per query), each sampled from its own generator
   seeded by a value drawn from the run's generator, by the injected ``rollout_pool``
   (``rollout_pool.py``: in-process, or Ray tasks on the Ray executor); the shard batches are
   merged into one. Trajectory ids keep the batch's group numbering; K = 1 samples the whole batch
   from the run's generator;
3. score every trajectory with the reward function, standardise rewards within each group;
4. take ``updates_per_batch`` Adam steps on the GRPO loss (``objective.py``) over all the steps;
5. report the iteration (events below), account its cost, and every ``checkpoint_interval``
   iterations evaluate the policy greedily (evaluation queries, or the training queries when none
   are given), keep the best one by success rate (then average reward) and write checkpoints.

Everything random (initialisation, query order, action sampling) comes from generators seeded by
``config.seed``; a checkpoint holds the policy, Adam's moments, the reference policy, the
generator state, the iteration, the query order and the position in it, the best-so-far policy,
the cost so far and the history, so a resumed run ends with bit-identical weights (shard seeds
come from that generator, so this holds for any ``rollout_shards``).

The host talks to the trainer only through callbacks, as ``TrainerCallbacks`` of the supervised
trainer (``on_event``, ``should_stop``, ``checkpoint_dir``, ``stop_checkpoint_kind``). Events:

* ``step``         {iteration, total_iterations, step, total_steps, loss, learning_rate, elapsed_s,
                    metrics: {...}} after every iteration (``step`` = ``iteration``; ``metrics`` are
                    the iteration's, see ``ITERATION_METRICS``, plus ``eval_*`` when it evaluated);
* ``metric``       {name, value, epoch, step} (epoch = step = iteration) for ``EVENT_METRICS`` every
                    iteration and the ``eval_*`` metrics at every evaluation (``baseline_*`` at 0);
* ``trajectories`` {iteration, trajectories: [seed-003 export dicts, see trajectories.py]};
* ``checkpoint``   {checkpoint_id, path, kind, epoch, step, metrics, best, size_bytes} with kind
                    "interval" | "best" | "final" | "budget" | <stop_checkpoint_kind>; epoch = step =
                    iteration;
* ``budget``       {cost_usd, budget_usd, fraction, level} once at 75% ("warning_75") and once at 90%
                    ("warning_90") of ``max_budget_usd`` (trainer/cost.py ``Budget``, shared with the
                    other paradigms);
* ``log``          {level, message}.

Cost follows trainer/cost.py: ``compute_seconds`` is the wall-clock time of the training loop
(rollouts, updates, evaluations, checkpoints; summed over resumes) and ``tokens`` counts what the
policy reads: for every step row it processes (rollout, reference pass, each update pass and
evaluation rollouts) the query's whitespace tokens plus one token per earlier step of its
trajectory. When the cost exceeds ``max_budget_usd`` at the end of an iteration (other than the
last), the trainer writes a checkpoint of kind "budget" and raises ``BudgetExceeded`` (reason
"budget_exceeded", metadata {cost_usd, checkpoint, iteration}), as the other trainers do; a
resumed run that is already over its budget does so before its first iteration. A NaN/inf loss
raises ``TrainingDiverged`` (earlier checkpoints are kept).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from trainhouse.core.configs.grpo import GRPOConfig
from trainhouse.core.errors import InvalidArgument
from trainhouse.core.featurizer import FeaturizerConfig, HashingFeaturizer
from trainhouse.core.grpo.environment import ToolEnvironment, TrainingQuery, parse_queries
from trainhouse.core.grpo.evaluation import run_evaluation
from trainhouse.core.grpo.objective import grpo_objective, trajectory_step_weights
from trainhouse.core.grpo.policy import ToolPolicy, encode_texts
from trainhouse.core.grpo.rewards import get_reward
from trainhouse.core.grpo.rollout_pool import LocalRolloutPool, RolloutPool, RolloutShard
from trainhouse.core.grpo.tools import RESERVED_FIELDS, parse_catalog
from trainhouse.core.grpo.trajectories import RolloutBatch, merge_batches, rollout, score_batch, summarize
from trainhouse.core.trainer.checkpoint import TrainingState, load_checkpoint, save_checkpoint
from trainhouse.core.trainer.loop import CallbackHost
from trainhouse.core.trainer.cost import Budget, BudgetExceeded, PriceModel
from trainhouse.core.trainer.loop import CheckpointInfo, TrainerCallbacks, TrainingDiverged
from trainhouse.core.trainer.mlp import MLP, log_softmax
from trainhouse.core.trainer.optimizers import Adam
from trainhouse.core.trainer.schedulers import make_scheduler

EVENT_KINDS = ("step", "metric", "trajectories", "checkpoint", "budget", "log")
ITERATION_METRICS = ("avg_reward", "success_rate", "avg_steps", "tool_accuracy", "train_loss", "kl",
                     "clip_fraction", "entropy", "frac_reward_zero_std", "reward_std", "grad_norm",
                     "learning_rate", "trajectories_generated", "cost_usd")
EVENT_METRICS = ("avg_reward", "success_rate", "train_loss", "kl", "frac_reward_zero_std", "cost_usd")
EVAL_METRICS = ("success_rate", "avg_reward", "avg_steps", "tool_accuracy")
# Config fields that may differ when resuming: they do not change the computation.
_RESUME_MUTABLE = {"checkpoint_interval", "max_budget_usd"}

__all__ = ["BudgetExceeded", "GRPOResult", "GRPOTrainer", "TrainerCallbacks", "TrainingDiverged", "EVENT_KINDS"]


@dataclass
class GRPOResult:
    policy: ToolPolicy                      # the final policy
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    checkpoints: list[CheckpointInfo] = field(default_factory=list)
    stopped: bool = False
    stop_reason: str | None = None          # the stop checkpoint kind ("cancel", "shutdown", ...) when stopped
    trajectories: list[dict[str, Any]] | None = None   # every trajectory, when keep_trajectories
    best_policy: ToolPolicy | None = None   # the best evaluated policy (None before any evaluation)
    best_checkpoint_id: str | None = None


def _fingerprint(*query_lists: Sequence[TrainingQuery]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for queries in query_lists:
        h.update(json.dumps([q.to_dict() for q in queries], sort_keys=True, ensure_ascii=False).encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def _clean(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def _copy_state(state: dict[str, Any]) -> dict[str, Any]:
    return {k: [np.array(a, copy=True) for a in v] for k, v in state.items()}


class GRPOTrainer(CallbackHost):
    def __init__(self, config: GRPOConfig, training_queries: Sequence[TrainingQuery | dict],
                 evaluation_queries: Sequence[TrainingQuery | dict] | None = None,
                 callbacks: TrainerCallbacks | Any | None = None, *, price_model: PriceModel | None = None,
                 keep_trajectories: bool = False, rollout_pool: RolloutPool | None = None):
        self.config = config
        self.rollout_pool = rollout_pool or LocalRolloutPool()
        self.callbacks = callbacks or TrainerCallbacks()
        self.train_queries = parse_queries(list(training_queries), "training_data")
        if not self.train_queries:
            raise InvalidArgument("training_data", "at least one training query is required")
        self.eval_queries = (parse_queries(list(evaluation_queries), "evaluation_data")
                             if evaluation_queries else [])
        self.price_model = price_model or PriceModel.from_env()
        self.keep_trajectories = keep_trajectories
        self.catalog = config.catalog
        self.actions = [t.name for t in self.catalog]
        self.env = ToolEnvironment(self.catalog, config.max_steps_per_trajectory)
        self.reward_fn = get_reward(config.reward_function)
        # Featurize every training query once; a batch takes rows.
        self.Q_train: sp.csr_matrix = encode_texts(HashingFeaturizer(config.featurizer),
                                                   [q.query for q in self.train_queries])
        self.fingerprint = _fingerprint(self.train_queries, self.eval_queries)
        self._relevance: dict[int, frozenset[str]] = {}
        self._last_checkpoint = ""

    def _diagnostics(self) -> None:
        cfg = self.config
        self._log(f"{len(self.train_queries)} training / {len(self.eval_queries)} evaluation queries, "
                  f"{len(self.actions)} actions ({', '.join(self.actions)}), {cfg.n_iterations} iterations of "
                  f"{cfg.batch_size} queries x {cfg.n_trajectories_per_query} trajectories")
        writable = {f for t in self.catalog for f in t.writes()} | set(RESERVED_FIELDS)
        unreachable = [q.query for q in self.train_queries if set(q.expected_outcome) - writable]
        if unreachable:
            self._log(f"{len(unreachable)} training queries expect fields no tool can write, so they can never "
                      f"succeed (e.g. {unreachable[0]!r})", "warning")
        if cfg.n_trajectories_per_query == 1:
            self._log("n_trajectories_per_query is 1: every group has zero reward spread, advantages are 0 and "
                      "only the KL term trains", "warning")
        if not self.eval_queries:
            self._log("no evaluation queries: the best checkpoint is chosen on the training queries", "warning")
        if cfg.rollout_shards > cfg.batch_size:
            self._log(f"rollout_shards is {cfg.rollout_shards} but a batch has {cfg.batch_size} queries: "
                      f"{cfg.batch_size} shards of one query each are used", "warning")

    # -- state ----------------------------------------------------------------------------------
    def initial_policy(self) -> ToolPolicy:
        """The untrained policy a fresh run starts from (and its KL reference): the baseline of
        ``evaluation.baseline_comparison``. Deterministic in ``config.seed``."""
        cfg = self.config
        return ToolPolicy.init(self.actions, cfg.featurizer, cfg.hidden_sizes, np.random.default_rng([cfg.seed, 1]),
                               metadata={"tools": [t.to_dict() for t in self.catalog]})

    def _fresh(self) -> tuple[TrainingState, ToolPolicy, ToolPolicy, Adam, Any, np.random.Generator, Budget]:
        cfg = self.config
        policy = self.initial_policy()
        reference = policy.copy()
        optimizer = Adam()
        scheduler = make_scheduler("constant", cfg.learning_rate, cfg.n_iterations * cfg.updates_per_batch)
        rng = np.random.default_rng([cfg.seed, 0])
        state = TrainingState(params={}, optimizer={}, scheduler={}, rng_state={}, epoch=0, global_step=0,
                              order=None, position=0, label_map=list(self.actions),
                              featurizer=cfg.featurizer.to_dict(), config=cfg.to_dict(),
                              data_fingerprint=self.fingerprint,
                              extra={"paradigm": "grpo", "trajectories_generated": 0,
                                     "best_success_rate": None, "best_avg_reward": None, "best_iteration": None,
                                     "baseline": None, "last_eval": None})
        return state, policy, reference, optimizer, scheduler, rng, self._new_budget()

    def _resumed(self, path: str) -> tuple[TrainingState, ToolPolicy, ToolPolicy, Adam, Any, np.random.Generator,
                                           Budget]:
        try:
            state = load_checkpoint(path)
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidArgument("resume_from", f"cannot read checkpoint: {exc}") from exc
        if state.extra.get("paradigm") != "grpo":
            raise InvalidArgument("resume_from", "not a GRPO checkpoint")
        mine = self.config.to_dict()
        # A field missing from an older checkpoint had its default value (e.g. rollout_shards = 1).
        theirs = {**GRPOConfig().to_dict(), **state.config}
        changed = sorted(k for k in set(mine) | set(theirs)
                         if k not in _RESUME_MUTABLE and mine.get(k) != theirs.get(k))
        if changed:
            raise InvalidArgument("resume_from", f"checkpoint was written with a different config: {', '.join(changed)}")
        if state.data_fingerprint != self.fingerprint or state.label_map != self.actions:
            raise InvalidArgument("resume_from", "checkpoint was written for different queries or tools")
        cfg = self.config
        metadata = {"tools": [t.to_dict() for t in self.catalog]}
        policy = ToolPolicy(_mlp(state.params), self.actions, cfg.featurizer, metadata)
        reference = ToolPolicy(_mlp(state.extra["reference"]), self.actions, cfg.featurizer, metadata)
        optimizer = Adam()
        optimizer.load_state_dict(state.optimizer)
        scheduler = make_scheduler("constant", cfg.learning_rate, cfg.n_iterations * cfg.updates_per_batch)
        scheduler.load_state_dict(state.scheduler)
        rng = np.random.default_rng()
        rng.bit_generator.state = state.rng_state
        budget = self._new_budget()
        budget.load(state.extra.get("budget"))
        state.config = mine
        return state, policy, reference, optimizer, scheduler, rng, budget

    def _new_budget(self) -> Budget:
        return Budget(self.config.max_budget_usd, self.price_model, self._emit)

    def _next_batch(self, state: TrainingState, rng: np.random.Generator) -> np.ndarray:
        n = len(self.train_queries)
        ids: list[int] = []
        while len(ids) < self.config.batch_size:
            if state.order is None or state.position >= len(state.order):
                if state.order is not None:
                    state.epoch += 1
                state.order = rng.permutation(n)
                state.position = 0
            take = min(self.config.batch_size - len(ids), len(state.order) - state.position)
            ids.extend(int(i) for i in state.order[state.position:state.position + take])
            state.position += take
        return np.array(ids, dtype=np.int64)

    # -- rollouts -------------------------------------------------------------------------------------
    def _rollout(self, policy: ToolPolicy, ids: np.ndarray, rng: np.random.Generator,
                 iteration: int) -> tuple[RolloutBatch, list[str]]:
        """The iteration's trajectories (unscored) and where their shards ran (empty when unsharded)."""
        cfg = self.config
        queries = [self.train_queries[i] for i in ids]
        prefix = f"traj-{iteration:05d}"
        n_shards = min(cfg.rollout_shards, len(ids))
        if n_shards == 1:  # the whole batch from the run's generator
            return rollout(policy, self.env, queries, self.Q_train[ids], cfg.n_trajectories_per_query, rng,
                           id_prefix=prefix, iteration=iteration), []
        seeds = rng.integers(0, 2 ** 63 - 1, size=n_shards)
        bounds = [k * len(ids) // n_shards for k in range(n_shards + 1)]
        shards = [RolloutShard(queries[lo:hi], self.Q_train[ids[lo:hi]], int(seed), lo)
                  for seed, lo, hi in zip(seeds, bounds[:-1], bounds[1:])]
        t0 = time.perf_counter()
        batches = self.rollout_pool.map(policy, self.env, shards, cfg.n_trajectories_per_query, id_prefix=prefix,
                                        iteration=iteration)
        merged = merge_batches(batches)
        if self.rollout_pool.remote:
            # The run's clock saw only its wait; what the shards used on other workers is billed too.
            merged.extra["remote_seconds"] = sum(b.extra.get("seconds", 0.0) for b in batches) - (
                time.perf_counter() - t0)
        return merged, [str(b.extra.get("worker", "?")) for b in batches]

    # -- one update ---------------------------------------------------------------------------------
    def _update(self, policy: ToolPolicy, reference: ToolPolicy, optimizer: Adam, scheduler: Any,
                batch: RolloutBatch, iteration: int) -> dict[str, float]:
        cfg = self.config
        n_traj = len(batch.trajectories)
        weights = trajectory_step_weights(batch.traj, n_traj)
        advantages = np.array([t.advantage for t in batch.trajectories], dtype=np.float64)[batch.traj]
        ref_logits, _ = reference.forward(batch.Q, batch.qidx, batch.S)
        ref_logp = log_softmax(ref_logits.astype(np.float64))
        sums = {"train_loss": 0.0, "kl": 0.0, "clip_fraction": 0.0, "entropy": 0.0, "grad_norm": 0.0}
        lr = scheduler.current_lr
        for _ in range(cfg.updates_per_batch):
            lr = scheduler.current_lr
            logits, cache = policy.forward(batch.Q, batch.qidx, batch.S)
            loss, dlogits, stats = grpo_objective(logits, batch.actions, weights, advantages, batch.logp_old, ref_logp,
                                                  clip_epsilon=cfg.clip_epsilon, kl_coef=cfg.kl_coef,
                                                  kl_estimator=cfg.kl_estimator)
            grads = policy.backward(cache, dlogits)
            flat = [g for pair in grads for g in pair]
            norm = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in flat))
            if not (math.isfinite(loss) and math.isfinite(norm)):
                self._log(f"loss {loss} / gradient norm {norm} at iteration {iteration}", "error")
                raise TrainingDiverged(f"training diverged at iteration {iteration} (loss {loss}); "
                                       f"lower learning_rate (now {cfg.learning_rate:g})",
                                       metadata={"last_checkpoint": self._last_checkpoint,
                                                 "iteration": str(iteration)})
            if cfg.max_grad_norm is not None and norm > cfg.max_grad_norm:
                scale = np.float32(cfg.max_grad_norm / norm)
                flat = [g * scale for g in flat]
            optimizer.step(policy.mlp.arrays(), flat, lr)
            scheduler.step()
            sums["train_loss"] += loss
            sums["kl"] += stats["kl"]
            sums["clip_fraction"] += stats["clip_fraction"]
            sums["entropy"] += stats["entropy"]
            sums["grad_norm"] += norm
        out = {k: v / cfg.updates_per_batch for k, v in sums.items()}
        out["learning_rate"] = lr
        return out

    # -- evaluation and checkpoints -------------------------------------------------------------------
    def _evaluate(self, policy: ToolPolicy, budget: Budget) -> dict[str, float]:
        trajs, tokens = run_evaluation(policy, self.eval_queries or self.train_queries, self.config)
        budget.add_tokens(tokens)
        return summarize(trajs)

    def _checkpoint(self, state: TrainingState, policy: ToolPolicy, reference: ToolPolicy, optimizer: Adam,
                    scheduler: Any, rng: np.random.Generator, budget: Budget, kind: str, checkpoint_id: str,
                    elapsed: float, out: list[CheckpointInfo]) -> CheckpointInfo | None:
        directory = self._checkpoint_dir()
        if not directory:
            return None
        state.params = policy.mlp.state_dict()
        state.optimizer = optimizer.state_dict()
        state.scheduler = scheduler.state_dict()
        state.rng_state = rng.bit_generator.state
        state.elapsed_s = elapsed
        state.extra["reference"] = reference.mlp.state_dict()
        state.extra["budget"] = budget.state()
        path = os.path.join(directory, f"{checkpoint_id}.npz")
        size = save_checkpoint(path, state)
        self._last_checkpoint = path
        metrics = dict(state.history[-1]) if state.history else {}
        if state.extra.get("last_eval"):
            metrics.update({f"eval_{k}": v for k, v in state.extra["last_eval"].items()})
        info = CheckpointInfo(checkpoint_id, path, kind, state.global_step, state.global_step, _clean(metrics),
                              kind == "best", size)
        out.append(info)
        self._emit("checkpoint", info.to_dict())
        return info

    # -- main loop --------------------------------------------------------------------------------------
    def train(self, resume_from: str | None = None) -> GRPOResult:
        """Run (or continue) training; see the module docstring for events, stopping and budget.

        Raises ``TrainingDiverged`` on a NaN/inf loss and ``BudgetExceeded`` (after writing a
        checkpoint) when ``max_budget_usd`` is spent.
        """
        cfg = self.config
        if resume_from:
            state, policy, reference, optimizer, scheduler, rng, budget = self._resumed(resume_from)
        else:
            state, policy, reference, optimizer, scheduler, rng, budget = self._fresh()
        t0 = time.perf_counter()
        base_elapsed = state.elapsed_s
        elapsed = lambda: base_elapsed + time.perf_counter() - t0  # noqa: E731
        checkpoints: list[CheckpointInfo] = []
        kept: list[dict[str, Any]] | None = [] if self.keep_trajectories else None
        best_policy = (ToolPolicy(_mlp(state.best_params), self.actions, cfg.featurizer, policy.metadata)
                       if state.best_params else None)
        best_id = "best" if state.best_params else None
        placement_logged = False

        def snapshot(kind: str, checkpoint_id: str) -> CheckpointInfo | None:
            return self._checkpoint(state, policy, reference, optimizer, scheduler, rng, budget, kind, checkpoint_id,
                                    elapsed(), checkpoints)

        def budget_stop() -> None:
            cost = budget.cost(elapsed())
            info = snapshot("budget", f"budget-iter-{state.global_step:05d}")
            self._log(f"budget of {cfg.max_budget_usd:g} USD exceeded (cost {cost:.6f} USD) after iteration "
                      f"{state.global_step}; checkpoint saved", "error")
            raise BudgetExceeded(f"budget of {cfg.max_budget_usd:g} USD exceeded: cost {cost:.6f} USD after "
                                 f"{state.global_step} iterations",
                                 metadata={"cost_usd": f"{cost:.6f}", "checkpoint": info.path if info else "",
                                           "iteration": str(state.global_step)})

        if resume_from:
            self._log(f"resumed from {os.path.basename(resume_from)} at iteration {state.global_step}")
            # A job that had already spent its budget stops before training any further (raise
            # max_budget_usd to continue it); within a run the check follows every iteration.
            if state.global_step < cfg.n_iterations and budget.check(elapsed()):
                budget_stop()
        else:
            self._diagnostics()
            baseline = self._evaluate(policy, budget)
            state.extra["baseline"] = baseline
            for name in EVAL_METRICS:
                self._emit("metric", {"name": f"baseline_{name}", "value": baseline[name], "epoch": 0, "step": 0})
            self._log(f"untrained policy: success rate {baseline['success_rate']:.3f}, "
                      f"average reward {baseline['avg_reward']:.3f}")

        while state.global_step < cfg.n_iterations:
            iteration = state.global_step + 1
            if self._should_stop():
                kind = getattr(self.callbacks, "stop_checkpoint_kind", None) or "cancel"
                if not snapshot(kind, f"{kind}-iter-{state.global_step:05d}"):
                    self._log("stop requested but no checkpoint_dir: the stop checkpoint was not written", "warning")
                self._log(f"stopped on request ({kind}) after iteration {state.global_step}")
                return self._result(state, policy, budget, elapsed(), checkpoints, kept, best_policy, best_id,
                                    stopped=True, reason=kind)
            ids = self._next_batch(state, rng)
            batch, workers = self._rollout(policy, ids, rng, iteration)
            budget.add_remote_seconds(batch.extra.get("remote_seconds", 0.0))
            if workers and not placement_logged:
                placement_logged = True
                self._log(f"rollouts run as {len(workers)} shards per iteration on the {self.rollout_pool.name} pool "
                          f"({', '.join(sorted(set(workers)))})")
            score_batch(batch, self.env, self.reward_fn, gamma=cfg.gamma, step_penalty=cfg.step_penalty,
                        scale_rewards=cfg.scale_rewards, reward_name="reward_function",
                        relevance_cache=self._relevance)
            update = self._update(policy, reference, optimizer, scheduler, batch, iteration)
            state.global_step = iteration
            state.extra["trajectories_generated"] += len(batch.trajectories)
            # rollout + the reference pass + every update pass read each step row
            budget.add_tokens(batch.tokens + int(batch.row_tokens.sum()) * (1 + cfg.updates_per_batch))
            exported = [t.to_dict() for t in batch.trajectories]
            self._emit("trajectories", {"iteration": iteration, "trajectories": exported})
            if kept is not None:
                kept.extend(exported)

            metrics: dict[str, Any] = {**summarize(batch.trajectories), **update,
                                       "frac_reward_zero_std": batch.frac_reward_zero_std,
                                       "reward_std": batch.extra.get("reward_std", 0.0),
                                       "trajectories_generated": state.extra["trajectories_generated"]}
            evaluated = iteration % cfg.checkpoint_interval == 0 or iteration == cfg.n_iterations
            new_best = False
            if evaluated:
                ev = self._evaluate(policy, budget)
                state.extra["last_eval"] = ev
                metrics.update({f"eval_{k}": v for k, v in ev.items()})
                key = (ev["success_rate"], ev["avg_reward"])
                best = state.extra.get("best_success_rate")
                if best is None or key > (best, state.extra.get("best_avg_reward")):
                    new_best = True
                    state.extra.update(best_success_rate=ev["success_rate"], best_avg_reward=ev["avg_reward"],
                                       best_iteration=iteration)
                    state.best_params = _copy_state(policy.mlp.state_dict())
                    best_policy = ToolPolicy(_mlp(state.best_params), self.actions, cfg.featurizer, policy.metadata)
            metrics["cost_usd"] = budget.cost(elapsed())
            metrics["elapsed_s"] = elapsed()
            state.history.append({"iteration": iteration, **metrics})
            self._emit("step", {"iteration": iteration, "total_iterations": cfg.n_iterations, "step": iteration,
                                "total_steps": cfg.n_iterations, "loss": update["train_loss"],
                                "learning_rate": update["learning_rate"], "elapsed_s": metrics["elapsed_s"],
                                "metrics": _clean(metrics)})
            for name in EVENT_METRICS:
                self._emit("metric", {"name": name, "value": float(metrics[name]), "epoch": iteration, "step": iteration})
            if evaluated:
                for name in EVAL_METRICS:
                    self._emit("metric", {"name": f"eval_{name}", "value": float(metrics[f"eval_{name}"]),
                                          "epoch": iteration, "step": iteration})
            # Past the budget the run stops, unless this was the last iteration anyway (then it
            # completes: stopping would save nothing).
            exceeded = budget.check(elapsed()) and iteration < cfg.n_iterations
            if new_best and snapshot("best", "best"):
                best_id = "best"
            if evaluated and iteration < cfg.n_iterations and not exceeded:
                snapshot("interval", f"iter-{iteration:05d}")
            if exceeded:
                budget_stop()

        state.finished = True
        snapshot("final", "final")
        self._log(f"training finished after {state.global_step} iterations "
                  f"({state.extra['trajectories_generated']} trajectories, {budget.cost(elapsed()):.6f} USD)")
        return self._result(state, policy, budget, elapsed(), checkpoints, kept, best_policy, best_id,
                            stopped=False, reason=None)

    def _result(self, state: TrainingState, policy: ToolPolicy, budget: Budget, elapsed: float,
                checkpoints: list[CheckpointInfo], kept: list[dict[str, Any]] | None, best_policy: ToolPolicy | None,
                best_id: str | None, *, stopped: bool, reason: str | None) -> GRPOResult:
        """Final metrics describe the returned (final) policy, evaluated greedily."""
        final = self._evaluate(policy, budget)
        last = state.history[-1] if state.history else {}
        baseline = state.extra.get("baseline") or {}
        metrics: dict[str, Any] = {
            **final,
            "train_loss": last.get("train_loss"), "kl": last.get("kl"),
            "train_success_rate": last.get("success_rate"), "train_avg_reward": last.get("avg_reward"),
            "frac_reward_zero_std": last.get("frac_reward_zero_std"),
            "trajectories_generated": state.extra.get("trajectories_generated", 0),
            "iterations_run": state.global_step,
            "best_iteration": state.extra.get("best_iteration"),
            "best_success_rate": state.extra.get("best_success_rate"),
            "baseline_success_rate": baseline.get("success_rate"),
            "baseline_avg_reward": baseline.get("avg_reward"),
            "evaluated_on": "evaluation" if self.eval_queries else "training",
            "cost_usd": budget.cost(elapsed), "tokens_processed": budget.tokens, "compute_seconds": elapsed,
        }
        return GRPOResult(policy=policy, metrics=metrics, history=[dict(h) for h in state.history],
                          checkpoints=checkpoints, stopped=stopped, stop_reason=reason, trajectories=kept,
                          best_policy=best_policy, best_checkpoint_id=best_id)


def _mlp(state: dict[str, Any]) -> MLP:
    return MLP.from_state_dict(state)


def load_policy_checkpoint(path: str) -> ToolPolicy:
    """The policy stored in a GRPO checkpoint (for evaluating a checkpoint, seed 003 ``evaluate``)."""
    try:
        state = load_checkpoint(path)
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidArgument("checkpoint_id", f"cannot read checkpoint: {exc}") from exc
    if state.extra.get("paradigm") != "grpo":
        raise InvalidArgument("checkpoint_id", "not a GRPO checkpoint")
    catalog = parse_catalog(state.config.get("tools"), "tools")
    return ToolPolicy(_mlp(state.params), state.label_map, FeaturizerConfig.from_dict(state.featurizer),
                      {"tools": [t.to_dict() for t in catalog]})
