"""Evaluations and their baseline comparisons: the canonical fields every surface renders.

An evaluation is a version (or a GRPO checkpoint) measured on a test set; its comparison is the
paired test against a baseline on the same examples. Seed 000's evaluate-agent, seed 003's
training.evaluate and the CLI start from these fields; each surface's table names them.
"""
from __future__ import annotations

from typing import Any

from trainhouse.gateway.convert import duration_s, struct_to_dict, ts_iso
from trainhouse.v1 import evaluation_pb2


def test_fields(t: evaluation_pb2.SignificanceTest) -> dict[str, Any] | None:
    """One significance test, or None when none was run."""
    if not t.test:
        return None
    return {"test": t.test, "statistic": t.statistic, "p_value": t.p_value, "adjusted_p_value": t.adjusted_p_value,
            "significant": t.significant, "alpha": t.alpha, "difference": t.difference}


def comparison_fields(c: evaluation_pb2.BaselineComparison) -> dict[str, Any]:
    return {
        "available": c.available, "note": c.note or None, "baseline_version_id": c.baseline_version_id or None,
        "baseline_agent_id": c.baseline_agent_id or None, "baseline_job_id": c.baseline_job_id or None,
        "baseline_kind": c.baseline_kind or None, "paired_examples": c.paired_examples,
        "baseline_metrics": dict(sorted(c.baseline_metrics.items())),
        "improvements": dict(sorted(c.improvements.items())),
        "relative_change_percent": dict(sorted(c.relative_change_percent.items())),
        "accuracy_test": test_fields(c.accuracy_test), "f1_test": test_fields(c.f1_test),
        "log_loss_test": test_fields(c.log_loss_test), "reward_test": test_fields(c.reward_test),
    }


def evaluation_fields(e: evaluation_pb2.Evaluation) -> dict[str, Any]:
    seconds = duration_s(e.duration)
    return {
        "evaluation_id": e.evaluation_id, "agent_id": e.agent_id, "version_id": e.version_id or None,
        "job_id": e.job_id or None, "checkpoint_id": e.checkpoint_id or None, "model_kind": e.model_kind or None,
        "dataset_id": e.dataset_id or None, "test_set_source": e.test_set_source,
        "test_set_job_id": e.test_set_job_id or None, "evaluation_type": e.evaluation_type,
        "example_count": e.example_count, "negative_example_count": e.negative_example_count,
        "metrics": dict(sorted(e.metrics.items())),
        "comparison": comparison_fields(e.comparison) if e.HasField("comparison") else None,
        "recommendations": [r.recommendation for r in e.recommendations],
        "policy_results": [struct_to_dict(r) for r in e.policy_results],
        "duration_ms": None if seconds is None else int(round(seconds * 1000)),
        "created_at": ts_iso(e.create_time),
    }
