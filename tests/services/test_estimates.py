"""Duration estimates per method and size, from this platform's completed jobs (issue 14): a
queued job is estimated from its own method's measured throughput and its own work (GRPO in
rollouts), and a method with no history says so instead of guessing from a constant."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainhouse.gateway.resources.jobs import estimated_duration
from trainhouse.training.convert import job_proto
from trainhouse.training.store import JobStore


def _job(store: JobStore, job_id: str, method: str, state: str, examples: int, epochs: int,
         resolved: dict, seconds: float | None = None) -> dict:
    store.create_job({"job_id": job_id, "agent_id": "a", "account_id": "default", "method": method, "state": state,
                      "config_json": json.dumps({"resolved": resolved}), "example_count": examples,
                      "total_epochs": epochs,
                      "metrics_json": json.dumps({"training_seconds": seconds} if seconds else {})})
    return store.get_job(job_id)


@pytest.fixture()
def store(tmp_path: Path):
    s = JobStore(tmp_path / "training.duckdb")
    yield s
    s.close()


def test_a_queued_job_is_estimated_from_its_own_methods_throughput(store: JobStore) -> None:
    # Two supervised jobs: 100 x 10 passes in 2 s and 300 x 10 in 6 s -> 500 passes/s.
    _job(store, "s1", "supervised", "completed", 100, 10, {"epochs": 10}, 2.0)
    _job(store, "s2", "supervised", "completed", 300, 10, {"epochs": 10}, 6.0)
    # A GRPO job: 10 iterations x 4 queries x 2 trajectories = 80 rollouts in 8 s -> 10 rollouts/s.
    _job(store, "g1", "grpo", "completed", 100, 10,
         {"n_iterations": 10, "batch_size": 4, "n_trajectories_per_query": 2}, 8.0)

    supervised = store.recent_throughput("supervised")
    assert supervised.units_per_s == pytest.approx(500.0) and supervised.jobs == 2
    queued = _job(store, "q1", "supervised", "queued", 200, 5, {"epochs": 5})
    job = job_proto(queued, supervised)
    assert job.progress.estimated_time_remaining.seconds == 2  # 1000 passes / 500 per s
    assert "1000 example-passes at 500.0 example-passes/s" in job.progress.estimate_basis
    assert "2 completed supervised job(s)" in job.progress.estimate_basis

    grpo = store.recent_throughput("grpo")
    assert grpo.units_per_s == pytest.approx(10.0)
    big = _job(store, "q2", "grpo", "queued", 50, 100,
               {"n_iterations": 100, "batch_size": 8, "n_trajectories_per_query": 4})
    job = job_proto(big, grpo)
    assert job.progress.estimated_time_remaining.seconds == 320  # 3200 rollouts / 10 per s
    assert "rollouts" in job.progress.estimate_basis


def test_a_method_without_history_has_no_estimate_and_says_why(store: JobStore) -> None:
    _job(store, "s1", "supervised", "completed", 100, 10, {"epochs": 10}, 2.0)
    assert store.recent_throughput("few_shot") is None
    queued = _job(store, "q1", "few_shot", "queued", 40, 5, {"epochs": 5})
    job = job_proto(queued, store.recent_throughput("few_shot"))
    assert not job.progress.HasField("estimated_time_remaining") and not job.HasField("estimated_completion_time")
    assert job.progress.estimate_basis == ("no estimate: no completed few_shot job on this platform yet to measure "
                                           "its throughput")
    assert estimated_duration(job).startswith("unknown (no estimate: no completed few_shot job")
