"""How long a job will take, from what this platform measured for jobs of the same method.

A job's work is counted in the unit its method's cost grows with: example-passes (examples x
epochs) for the classifier methods and reinforcement, rollouts (iterations x queries per
iteration x trajectories per query) for GRPO. Throughput is work per second of training, over the
method's most recent completed jobs on this platform; a queued job's estimate is its work divided
by that throughput. With no completed job of the method there is no estimate, and the basis says
so instead of guessing from a constant.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Throughput:
    method: str
    units_per_s: float
    jobs: int


def work_units(method: str, example_count: int, total_epochs: int, resolved: dict[str, Any]) -> tuple[float, str]:
    """(amount, unit) of a job's work."""
    if method == "grpo":
        rollouts = (resolved.get("n_iterations") or 0) * (resolved.get("batch_size") or 0) \
            * (resolved.get("n_trajectories_per_query") or 0)
        return float(rollouts), "rollouts"
    return float((example_count or 0) * (total_epochs or 0)), "example-passes"


def measured(method: str, jobs: list[tuple[int, int, dict[str, Any], float | None]]) -> Throughput | None:
    """Throughput of completed jobs given as (example_count, total_epochs, resolved config, seconds)."""
    units = seconds = 0.0
    counted = 0
    for count, epochs, resolved, took in jobs:
        amount, _ = work_units(method, count, epochs, resolved)
        if amount > 0 and took:
            units, seconds, counted = units + amount, seconds + took, counted + 1
    return Throughput(method, units / seconds, counted) if seconds > 0 else None


def queued_estimate(method: str, work: tuple[float, str], throughput: Throughput | None) -> tuple[float | None, str]:
    """(seconds or None, basis) for a job that has not started."""
    amount, unit = work
    if throughput is None:
        return None, f"no estimate: no completed {method} job on this platform yet to measure its throughput"
    return amount / throughput.units_per_s, (
        f"{amount:.0f} {unit} at {throughput.units_per_s:.1f} {unit}/s, measured over the last {throughput.jobs} "
        f"completed {method} job(s) on this platform")
