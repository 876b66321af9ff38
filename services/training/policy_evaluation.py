"""Evaluate a GRPO job's policy from one of its checkpoints against the untrained policy.

Runs in the RPC thread: greedy rollouts over tens of queries take milliseconds, unlike training.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from services.common.errors import FailedPrecondition, NotFound
from services.training.grpo.config import GRPOConfig
from services.training.grpo.environment import parse_queries
from services.training.grpo.evaluation import compare_policies, evaluate_policy
from services.training.grpo.trainer import GRPOTrainer, load_policy_checkpoint
from services.training.store import JobStore

SUMMARY = ("success_rate", "avg_reward", "avg_steps", "tool_accuracy")


def _checkpoint(job: dict[str, Any], store: JobStore, checkpoint_id: str) -> dict[str, Any]:
    rows, _ = store.checkpoints(job["job_id"])
    by_id = {r["checkpoint_id"]: r for r in rows}
    if checkpoint_id:
        if checkpoint_id not in by_id:
            raise NotFound("checkpoint", checkpoint_id)
        return by_id[checkpoint_id]
    if job["best_checkpoint_id"] in by_id:
        return by_id[job["best_checkpoint_id"]]
    latest = store.latest_checkpoint(job["job_id"])
    if latest is None:
        raise FailedPrecondition(f"job {job['job_id']} has no checkpoint yet")
    return latest


def evaluate_job_policy(job: dict[str, Any], job_dir: Path, store: JobStore, checkpoint_id: str,
                        queries: list[dict[str, Any]] | None) -> dict[str, Any]:
    started = time.perf_counter()
    checkpoint = _checkpoint(job, store, checkpoint_id)
    policy = load_policy_checkpoint(checkpoint["path"])
    config = GRPOConfig.from_dict(json.loads(job["config_json"])["raw"], strict=False)
    data = json.loads((job_dir / "examples.json").read_text())
    if queries is not None:
        parse_queries(queries, "evaluation_queries")
    else:
        queries = data["evaluation_queries"] or data["training_queries"]
    baseline_policy = GRPOTrainer(config, parse_queries(data["training_queries"], "training_queries")).initial_policy()
    candidate = evaluate_policy(policy, queries, config=config)
    baseline = evaluate_policy(baseline_policy, queries, config=config)
    comparison = compare_policies(baseline, candidate)
    comparison["baseline"] = {k: float(baseline[k]) for k in SUMMARY}
    return {"checkpoint_id": checkpoint["checkpoint_id"], "metrics": {k: float(candidate[k]) for k in SUMMARY},
            "baseline_comparison": comparison, "queries_evaluated": len(queries), "results": candidate["results"],
            "seconds": time.perf_counter() - started}
