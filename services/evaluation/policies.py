"""Evaluate a GRPO tool-use policy on the serving path: ONNX Runtime rollouts in its environment.

A policy is not scored on labelled examples but rolled out on queries: at every step the ONNX
graph (query features + episode-state vector -> action probabilities) picks the most probable
action, the job's tool environment executes it, and the job's reward function scores the final
state against the query's ``expected_outcome``. The graph runs in ``OnnxModel``, the class and
session settings the ModelRegistry serves with, so what is measured is what is served.

What is evaluated:
* ``checkpoint_id`` given: that checkpoint of the job, exported by TrainingService.ExportPolicy;
* else a ``job_id``: the job's best checkpoint (seed 003 "default: best"; the job must be completed);
* else the agent's version (named, else the one Predict serves): its registered ONNX bytes.

Baseline: the job's untrained initial policy (``baseline_kind`` "untrained"), or the best
checkpoint of ``baseline_job_id`` (a GRPO job with the same tool catalog), on the same queries;
and, as ``heuristic_comparison``, the keyword-to-tool heuristic policy (grpo/heuristic.py) fitted on
the job's training queries, in the job's environment, on the same queries.
Paired tests: McNemar on per-query success (``accuracy_test``), paired bootstrap of the mean
reward difference (``reward_test``). Rollouts are greedy, so the numbers are deterministic.

Metrics: ``success_rate``, ``avg_reward``, ``avg_steps``, ``tool_accuracy`` (definitions in
services/core/grpo/evaluation.py); ``latency`` = wall time of single-query episodes (every
ONNX Runtime step and tool call) as ``latency_p50_ms`` / ``latency_p95_ms`` / ``latency_mean_ms``;
``cost`` = ``cost_per_task_usd`` from the price model (services/evaluation/pricing.py), one task
being one query's episode.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp
from google.protobuf.json_format import MessageToDict

from trainhouse.common import config
from trainhouse.core.errors import FailedPrecondition, InvalidArgument
from trainhouse.core.onnx_model import OnnxModel
from trainhouse.common.structs import to_struct
from trainhouse.common.timeutil import now, to_timestamp
from trainhouse.core import stats
from trainhouse.evaluation.significance import significance_proto
from trainhouse.evaluation.metrics import percentile_ms, validate_metric_names
from trainhouse.evaluation.peers import Peers
from trainhouse.evaluation.pricing import TaskPricing
from trainhouse.evaluation.store import EvaluationStore
from trainhouse.core.grpo.config import GRPOConfig
from trainhouse.core.grpo.environment import TrainingQuery, parse_queries
from trainhouse.core.grpo.environments import make_environment
from trainhouse.core.grpo.evaluation import run_evaluation
from trainhouse.core.grpo.heuristic import HeuristicPolicy
from trainhouse.core.grpo.policy import encode_texts
from trainhouse.core.grpo.trajectories import Trajectory, summarize
from trainhouse.v1 import evaluation_pb2, job_state_pb2
from trainhouse.core.ids import random_id

SUMMARY = ("success_rate", "avg_reward", "avg_steps", "tool_accuracy")
# Requestable policy metric names -> the keys they put into Evaluation.metrics.
POLICY_METRICS: dict[str, tuple[str, ...]] = {
    "success_rate": ("success_rate",), "avg_reward": ("avg_reward",), "avg_steps": ("avg_steps",),
    "tool_accuracy": ("tool_accuracy",),
    "latency": ("latency_p50_ms", "latency_p95_ms", "latency_mean_ms", "latency_samples"),
    "cost": ("cost_per_task_usd",),
}
POLICY_DEFAULTS = {"comprehensive": tuple(POLICY_METRICS), "standard": SUMMARY, "quick": SUMMARY}
MAX_QUERIES = 10_000


class OrtToolPolicy:
    """The rollout interface of ``ToolPolicy`` (``actions``, ``encode_queries``,
    ``project_queries``, ``action_log_probs``) answered by an ONNX Runtime session."""

    def __init__(self, model: OnnxModel):
        if model.kind != "policy":
            raise FailedPrecondition("the model is a classifier, not a GRPO tool policy")
        self.model = model
        self.actions = list(model.labels)

    def encode_queries(self, texts: Sequence[str]) -> sp.csr_matrix:
        return encode_texts(self.model.featurizer, texts)

    def project_queries(self, Q: sp.csr_matrix) -> np.ndarray:
        # The graph takes the whole input row; "projection" here is the dense query part.
        return np.asarray(Q.toarray(), dtype=np.float32)

    def action_log_probs(self, Q: sp.csr_matrix, qidx: np.ndarray, S: np.ndarray,
                         projected: np.ndarray | None = None) -> np.ndarray:
        dense = projected if projected is not None else self.project_queries(Q)
        features = np.concatenate([dense[qidx], np.asarray(S, dtype=np.float32)], axis=1)
        probs = self.model.predict_proba_features(features).astype(np.float64)
        return np.log(np.maximum(probs, 1e-300))


@dataclass
class PolicyRun:
    """One policy's greedy episodes on the query set."""

    trajectories: list[Trajectory]
    metrics: dict[str, float]

    @property
    def success(self) -> np.ndarray:
        return np.array([t.success for t in self.trajectories], dtype=bool)

    @property
    def rewards(self) -> np.ndarray:
        return np.array([t.reward for t in self.trajectories], dtype=float)


@dataclass
class PolicyTarget:
    agent_id: str
    version_id: str
    job_id: str
    checkpoint_id: str
    onnx_model: bytes


class PolicyEvaluator:
    def __init__(self, store: EvaluationStore, peers: Peers):
        self.store = store
        self.peers = peers

    # --- request resolution -----------------------------------------------------------------------
    @staticmethod
    def metric_names(metrics: Sequence[str], evaluation_type: str, field: str) -> list[str]:
        if not metrics:
            return list(POLICY_DEFAULTS[evaluation_type])
        return validate_metric_names(metrics, field, POLICY_METRICS, "policy metric")

    def target(self, agent_id: str, version_id: str, job_id: str, checkpoint_id: str) -> PolicyTarget:
        if checkpoint_id and not job_id:
            raise InvalidArgument("checkpoint_id", "a checkpoint needs the job_id it belongs to")
        if job_id:
            if not checkpoint_id:
                self.peers.completed_job(job_id, "job_id")
            exported = self.peers.export_policy(job_id, checkpoint_id)
            return PolicyTarget(exported.agent_id, version_id, job_id, exported.checkpoint_id, exported.onnx_model)
        version, onnx_model = self.peers.version_artifact(agent_id, version_id)
        if not version.job_id:
            raise FailedPrecondition(f"policy version '{version.version_id}' was not trained by a GRPO job: "
                                     "its environment is unknown")
        return PolicyTarget(agent_id, version.version_id, version.job_id, "", onnx_model)

    @staticmethod
    def queries(inline: list[dict[str, Any]] | None, exported: Any, field: str) -> tuple[list[TrainingQuery], str]:
        if inline:
            parsed = parse_queries(inline, field)
            source = "inline"
        else:
            parsed = parse_queries([MessageToDict(q, preserving_proto_field_name=True) for q in
                                    exported.default_queries], "default_queries")
            source = f"job:{exported.default_queries_source}"
        if not parsed:
            raise InvalidArgument(field, "no queries to evaluate the policy on")
        if len(parsed) > MAX_QUERIES:
            raise InvalidArgument(field, f"at most {MAX_QUERIES} queries")
        return parsed, source

    # --- measuring ----------------------------------------------------------------------------------
    @staticmethod
    def run(model: OnnxModel, queries: list[TrainingQuery], cfg: GRPOConfig) -> PolicyRun:
        policy = OrtToolPolicy(model)
        env = make_environment(cfg)   # the job's environment: simulated, builtin or its tool server
        if policy.actions != list(env.names):
            raise FailedPrecondition(f"the policy's actions {policy.actions} differ from the job's tools {env.names}")
        trajectories, _ = run_evaluation(policy, queries, cfg, env=env)  # type: ignore[arg-type]
        return PolicyRun(trajectories, dict(summarize(trajectories)))

    @staticmethod
    def heuristic(initial: Any, queries: list[TrainingQuery], cfg: GRPOConfig) -> PolicyRun:
        """The keyword-to-tool heuristic (grpo/heuristic.py) fitted on the job's training queries,
        rolled out greedily on ``queries`` in the job's environment."""
        env = make_environment(cfg)
        train = parse_queries([MessageToDict(q, preserving_proto_field_name=True) for q in initial.training_queries],
                              "training_queries")
        policy = HeuristicPolicy.fit(env, train, cfg.comparisons)
        trajectories, _ = run_evaluation(policy, queries, cfg, env=env)
        return PolicyRun(trajectories, dict(summarize(trajectories)))

    @staticmethod
    def serving(model: OnnxModel, queries: list[TrainingQuery], cfg: GRPOConfig, names: list[str],
                metrics: dict[str, float]) -> evaluation_pb2.CostBreakdown | None:
        """Latency and cost per task from single-query episodes (one task = one query answered)."""
        count = min(len(queries), max(1, config.env_int("EVAL_LATENCY_SAMPLES", 50)))
        policy = OrtToolPolicy(model)
        env = make_environment(cfg)
        samples = []
        for q in queries[:count]:
            t0 = time.perf_counter()
            run_evaluation(policy, [q], cfg, env=env)  # type: ignore[arg-type]
            samples.append(time.perf_counter() - t0)
        if "latency" in names:
            metrics.update(latency_p50_ms=percentile_ms(samples, 50), latency_p95_ms=percentile_ms(samples, 95),
                           latency_mean_ms=float(np.mean(samples)) * 1000.0, latency_samples=float(len(samples)))
        if "cost" not in names:
            return None
        cost = TaskPricing.from_env().task_cost(float(np.mean(samples)), [q.query for q in queries])
        metrics["cost_per_task_usd"] = cost["cost_per_task_usd"]
        return evaluation_pb2.CostBreakdown(**cost)

    def evaluate(self, *, agent_id: str, version_id: str, job_id: str, checkpoint_id: str,
                 queries: list[dict[str, Any]] | None, queries_field: str, metrics: Sequence[str],
                 metrics_field: str, evaluation_type: str, baseline_job_id: str, evaluation_id: str,
                 seed: int) -> evaluation_pb2.Evaluation:
        started = time.perf_counter()
        names = self.metric_names(metrics, evaluation_type, metrics_field)
        target = self.target(agent_id, version_id, job_id, checkpoint_id)
        if agent_id and target.agent_id and agent_id != target.agent_id:
            raise InvalidArgument("agent_id", f"job '{target.job_id}' belongs to agent '{target.agent_id}'")
        # The untrained policy and the environment come from the job that trained the target.
        initial = self.peers.export_policy(target.job_id, "initial")
        cfg = GRPOConfig.from_dict(MessageToDict(initial.grpo_config), strict=False)
        parsed, source = self.queries(queries, initial, queries_field)
        model = OnnxModel.from_bytes(target.onnx_model)
        candidate = self.run(model, parsed, cfg)
        measured = {k: float(candidate.metrics[k]) for k in SUMMARY if k in names}
        cost = self.serving(model, parsed, cfg, names, measured) if {"latency", "cost"} & set(names) else None

        if baseline_job_id:
            self.peers.completed_job(baseline_job_id, "baseline_job_id")
            base_export = self.peers.export_policy(baseline_job_id, "")
            info = {"kind": "job", "agent_id": base_export.agent_id, "job_id": baseline_job_id,
                    "version_id": self.peers.job(baseline_job_id).model_version_id}
        else:
            base_export = initial
            info = {"kind": "untrained", "agent_id": target.agent_id, "job_id": target.job_id, "version_id": ""}
        baseline = self.run(OnnxModel.from_bytes(base_export.onnx_model), parsed, cfg)
        comparison = self.comparison(candidate, baseline, info, seed)
        heuristic = self.heuristic(initial, parsed, cfg)
        heuristic_comparison = self.comparison(
            candidate, heuristic, {"kind": "heuristic", "agent_id": target.agent_id, "job_id": target.job_id,
                                   "version_id": ""}, seed)

        evaluation = evaluation_pb2.Evaluation(
            evaluation_id=evaluation_id or random_id("eval", 12), agent_id=target.agent_id,
            version_id=target.version_id, example_count=len(parsed), metrics=measured,
            create_time=to_timestamp(now()), job_id=target.job_id, test_set_source=source,
            test_set_job_id=target.job_id if source.startswith("job:") else "", requested_metrics=names,
            evaluation_type=evaluation_type, seed=seed, model_kind="policy", checkpoint_id=target.checkpoint_id,
            policy_results=[to_struct({"query": t.query.query, "success": t.success, "reward": t.reward,
                                     "steps": t.n_steps, "tools": [s["action"]["tool"] for s in t.episode.steps],
                                     "final_state": t.final_state}) for t in candidate.trajectories],
            comparison=comparison, heuristic_comparison=heuristic_comparison)
        if cost is not None:
            evaluation.cost.CopyFrom(cost)
        evaluation.duration.FromNanoseconds(int((time.perf_counter() - started) * 1e9))
        self.store.add_evaluation(evaluation)
        return evaluation

    @staticmethod
    def comparison(candidate: PolicyRun, baseline: PolicyRun, info: dict[str, str],
                   seed: int) -> evaluation_pb2.BaselineComparison:
        improvements = {k: float(candidate.metrics[k] - baseline.metrics[k]) for k in SUMMARY}
        relative = {k: improvements[k] / abs(baseline.metrics[k]) * 100.0 for k in SUMMARY if baseline.metrics[k]}
        success = stats.paired_accuracy_test(candidate.success, baseline.success)
        reward = stats.paired_mean_test(candidate.rewards, baseline.rewards, seed)
        return evaluation_pb2.BaselineComparison(
            available=True, baseline_version_id=info["version_id"], baseline_agent_id=info["agent_id"],
            baseline_job_id=info["job_id"], baseline_kind=info["kind"], paired_examples=len(candidate.trajectories),
            baseline_metrics={k: float(baseline.metrics[k]) for k in SUMMARY}, improvements=improvements,
            relative_change_percent=relative, accuracy_test=significance_proto(success.as_dict()),
            reward_test=significance_proto(reward.as_dict()))


def is_policy_job(job: Any) -> bool:
    return job.config.method == job_state_pb2.TRAINING_METHOD_GRPO
