"""Export a GRPO job's policy (one checkpoint, or the untrained start) as ONNX for evaluation.

TrainingService owns checkpoints and the job's queries; EvaluationService owns evaluation. This is
the seam: EvaluationService asks for the ONNX graph of a checkpoint plus what rolling it out needs,
and runs it with ONNX Runtime exactly as the ModelRegistry serves a registered policy.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainhouse.core.errors import FailedPrecondition, NotFound
from trainhouse.core.configs import GRPOConfig
from trainhouse.core.grpo.environment import parse_queries
from trainhouse.core.grpo.trainer import GRPOTrainer, load_policy_checkpoint
from trainhouse.training.store import JobStore

INITIAL = "initial"


@dataclass
class ExportedPolicy:
    checkpoint_id: str
    onnx_model: bytes
    config: dict[str, Any]
    default_queries: list[dict[str, Any]]
    default_queries_source: str


def _checkpoint(job: dict[str, Any], store: JobStore, checkpoint_id: str) -> dict[str, Any]:
    """The named checkpoint, else the best, else the newest (seed 003: "default: best")."""
    rows, _ = store.checkpoints(job["job_id"], 0, 100_000)
    by_id = {r["checkpoint_id"]: r for r in rows}
    if checkpoint_id:
        if checkpoint_id not in by_id:
            raise NotFound("checkpoint", checkpoint_id)
        return by_id[checkpoint_id]
    if job["best_checkpoint_id"] in by_id:
        return by_id[job["best_checkpoint_id"]]
    latest = store.latest_checkpoint(job["job_id"])
    if latest is None:
        raise FailedPrecondition(f"job {job['job_id']} has no checkpoint yet",
                                 metadata={"resource": "job", "id": job["job_id"]})
    return latest


def export_job_policy(job: dict[str, Any], job_dir: Path, store: JobStore, checkpoint_id: str) -> ExportedPolicy:
    if job["method"] != "grpo":
        raise FailedPrecondition(f"job {job['job_id']} trained a {job['method']} model, not a GRPO policy",
                                 metadata={"resource": "job", "id": job["job_id"], "method": job["method"]})
    resolved = json.loads(job["config_json"])["resolved"]
    data = json.loads((job_dir / "examples.json").read_text())
    if checkpoint_id == INITIAL:
        config = GRPOConfig.from_dict(resolved)
        policy = GRPOTrainer(config, parse_queries(data["training_queries"], "training_queries")).initial_policy()
    else:
        checkpoint = _checkpoint(job, store, checkpoint_id)
        checkpoint_id = checkpoint["checkpoint_id"]
        policy = load_policy_checkpoint(checkpoint["path"])
    source = "evaluation_queries" if data["evaluation_queries"] else "training_queries"
    return ExportedPolicy(checkpoint_id, policy.onnx_bytes(), resolved, data[source], source)
