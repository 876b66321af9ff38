"""The pure rules behind deployments and version ids, with an explicit clock."""
from __future__ import annotations

import datetime as dt

import pytest

from trainhouse.core.errors import InvalidArgument
from trainhouse.core.serving import bucket, takes_candidate
from trainhouse.registry.rollout import (ArmStats, GuardPolicy, breach, default_steps, parse_duration_text,
                                       resolve_guard, resolve_plan)
from trainhouse.registry.versioning import next_version

T0 = dt.datetime(2025, 12, 30, 15, 0, tzinfo=dt.timezone.utc)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def test_durations():
    assert parse_duration_text("1h", "d") == 3600
    assert parse_duration_text("1h30m", "d") == 5400
    assert parse_duration_text("90s", "d") == 90
    assert parse_duration_text("500ms", "d") == 0.5
    assert parse_duration_text("2d", "d") == 172800
    for bad in ("", "1x", "h", "1h 2", "-1h"):
        with pytest.raises(InvalidArgument):
            parse_duration_text(bad, "d")


def test_canary_schedule_from_seed_request():
    plan = resolve_plan("canary", 10, 3600, [])
    assert plan.steps == (10, 20, 40, 80, 100)
    assert [plan.due_time(i, T0) for i in range(5)] == [at(0), at(15), at(30), at(45), at(60)]
    assert plan.reached(T0, at(0)) == 0
    assert plan.reached(T0, at(14.9)) == 0
    assert plan.reached(T0, at(15)) == 1
    assert plan.reached(T0, at(59)) == 3
    assert not plan.is_complete(T0, at(59.9))
    assert plan.is_complete(T0, at(60))
    assert plan.next_due(0, T0) == at(15) and plan.next_due(4, T0) == at(60)
    assert plan.completion_time(T0) == at(60)


def test_explicit_steps_and_defaults():
    plan = resolve_plan("canary", None, None, [5, 50, 100])
    assert plan.steps == (5, 50, 100) and plan.duration_s == 3600
    assert plan.due_time(1, T0) == at(30)
    assert resolve_plan("canary", None, None, []).steps == (10, 20, 40, 80, 100)
    assert default_steps(30) == [30, 60, 100]
    blue_green = resolve_plan("blue-green", None, 600, [])
    assert blue_green.steps == (100,) and blue_green.reached(T0, T0) == 0
    assert not blue_green.is_complete(T0, at(9)) and blue_green.is_complete(T0, at(10))
    immediate = resolve_plan("immediate", None, None, [])
    assert immediate.is_complete(T0, T0)


@pytest.mark.parametrize("args,field", [
    (("canary", 0, None, []), "rollout.percentage"),
    (("canary", 100, None, []), "rollout.percentage"),
    (("canary", None, None, [10, 10, 100]), "rollout.steps[1]"),
    (("canary", None, None, [10, 50]), "rollout.steps"),
    (("canary", 20, None, [10, 100]), "rollout.percentage"),
    (("canary", None, -1, []), "rollout.duration"),
    (("immediate", None, None, [50, 100]), "rollout.steps"),
    (("rolling", None, None, []), "rollout.strategy"),
])
def test_bad_plans_name_their_field(args, field):
    with pytest.raises(InvalidArgument) as info:
        resolve_plan(*args)
    assert info.value.field == field


def test_traffic_split_is_stable_and_monotone():
    keys = [f"user-{i}" for i in range(2000)]
    buckets = {k: bucket("agent", "deploy-1", k) for k in keys}
    assert buckets == {k: bucket("agent", "deploy-1", k) for k in keys}  # deterministic
    at10 = {k for k in keys if takes_candidate(buckets[k], 10)}
    at50 = {k for k in keys if takes_candidate(buckets[k], 50)}
    assert at10 <= at50  # growing the share never moves a canary user back
    assert 120 <= len(at10) <= 280 and 850 <= len(at50) <= 1150
    assert all(takes_candidate(buckets[k], 100) for k in keys)
    assert not any(takes_candidate(buckets[k], 0) for k in keys)
    other = {k for k in keys if takes_candidate(bucket("agent", "deploy-2", k), 10)}
    assert other != at10  # each deployment draws its own users


def test_guard_waits_for_the_minimum_sample_then_judges():
    guard = resolve_guard(True, 0.05, 200.0, 10)
    assert breach(guard, ArmStats(9, 9, [])) is None
    assert breach(guard, ArmStats(20, 1, [10.0] * 20)) is None  # 5 % is not above 5 %
    assert breach(guard, ArmStats(20, 2, [])).startswith("automatic rollback: error rate 0.100 > 0.05")
    slow = ArmStats(20, 0, [50.0] * 18 + [500.0, 600.0])
    assert slow.latency_p95_ms == 500.0
    assert "p95 latency 500.0 ms > 200 ms" in breach(guard, slow)
    assert breach(GuardPolicy(automatic=False), ArmStats(100, 100, [])) is None
    assert resolve_guard(True, None, None, None) == GuardPolicy(True, 0.05, None, 20)
    with pytest.raises(InvalidArgument):
        resolve_guard(True, 0.05, None, 0)


def test_version_rule():
    four = ["billing", "technical", "shipping", "account"]
    assert next_version(None, [], four, "supervised", "").version_id == "v1.0.0"
    assert next_version("v1.0.0", four, four, "supervised", "").version_id == "v1.1.0"
    added = next_version("v1.1.0", four, four + ["refunds"], "transfer", "v1.1.0")
    assert added.version_id == "v1.2.0" and added.reason == "minor: outputs added since v1.1.0: refunds"
    assert next_version("v1.2.0", four, list(reversed(four)), "transfer", "v1.2.0").version_id == "v1.2.1"
    assert next_version("v1.2.0", four, four, "transfer", "v1.0.0").version_id == "v1.3.0"  # not from the newest
    assert next_version("v1.2.1", four, four[:3], "transfer", "v1.2.1").version_id == "v2.0.0"
