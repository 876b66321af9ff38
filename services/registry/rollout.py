"""Rollout plans and rollback guards: pure functions of the request and a clock.

Nothing here reads the wall clock or the database, so the schedule is testable with any `now`:
the deployment manager asks `plan.reached(start, now)` on every Predict/feedback touching a
rollout and on its background tick, and moves the deployment when a step fell due.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Sequence

from trainhouse.core.errors import InvalidArgument

IMMEDIATE, CANARY, BLUE_GREEN = "immediate", "canary", "blue-green"
STRATEGIES = (IMMEDIATE, CANARY, BLUE_GREEN)

DEFAULT_CANARY_PERCENTAGE = 10.0
DEFAULT_CANARY_DURATION_S = 3600.0
MAX_DURATION_S = 30 * 24 * 3600.0
MAX_STEPS = 20
DEFAULT_ERROR_RATE = 0.05
DEFAULT_MIN_SAMPLES = 20

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration_text(text: str, field_name: str) -> float:
    """Seed-style durations: "1h", "30m", "90s", "1h30m", "2d", "500ms" -> seconds."""
    raw = text.strip().lower().replace(" ", "")
    if not raw:
        raise InvalidArgument(field_name, "must not be empty")
    pos, total = 0, 0.0
    for m in _PART.finditer(raw):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(raw):
        raise InvalidArgument(field_name, f"'{text}' is not a duration like '1h', '30m', '90s' or '1h30m'")
    return total


def default_steps(first: float) -> list[float]:
    """`first` doubled until it reaches 100: 10 -> 20 -> 40 -> 80 -> 100."""
    steps = [first]
    while steps[-1] < 100.0 and len(steps) < MAX_STEPS:
        steps.append(min(100.0, steps[-1] * 2))
    if steps[-1] < 100.0:
        steps.append(100.0)
    return steps


@dataclass(frozen=True)
class RolloutPlan:
    """What a deployment will do with traffic, resolved from the request (defaults filled in).

    CANARY: `steps` (percentages, ending at 100) evenly spaced over `duration_s`: step i of n is
    due at start + i * duration / (n - 1). IMMEDIATE / BLUE_GREEN: one step, 100 % at start;
    `duration_s` is the watch window after which the deployment completes.
    """

    strategy: str
    steps: tuple[float, ...]
    duration_s: float

    def due_time(self, index: int, start: dt.datetime) -> dt.datetime:
        if self.strategy != CANARY or len(self.steps) == 1:
            return start
        return start + dt.timedelta(seconds=self.duration_s * index / (len(self.steps) - 1))

    def completion_time(self, start: dt.datetime) -> dt.datetime:
        return start + dt.timedelta(seconds=self.duration_s)

    def reached(self, start: dt.datetime, now: dt.datetime) -> int:
        """Index of the last step due at `now` (0 at the start)."""
        index = 0
        for i in range(len(self.steps)):
            if self.due_time(i, start) <= now:
                index = i
        return index

    def is_complete(self, start: dt.datetime, now: dt.datetime) -> bool:
        """True once the last step is reached and the watch window is over."""
        return now >= self.completion_time(start) and self.reached(start, now) == len(self.steps) - 1

    def next_due(self, index: int, start: dt.datetime) -> dt.datetime:
        """When the deployment next needs attention after reaching step `index`."""
        if index + 1 < len(self.steps):
            return self.due_time(index + 1, start)
        return self.completion_time(start)

    def to_dict(self) -> dict:
        return {"strategy": self.strategy, "steps": list(self.steps), "duration_s": self.duration_s}

    @classmethod
    def from_dict(cls, d: dict) -> "RolloutPlan":
        return cls(d["strategy"], tuple(float(x) for x in d["steps"]), float(d["duration_s"]))


def resolve_plan(strategy: str, percentage: float | None, duration_s: float | None,
                 steps: Sequence[float]) -> RolloutPlan:
    """Validate a rollout request (field names as in DeployVersionRequest) into a plan."""
    if strategy not in STRATEGIES:
        raise InvalidArgument("rollout.strategy", f"must be one of {', '.join(STRATEGIES)}")
    if duration_s is not None and (not math.isfinite(duration_s) or duration_s < 0 or duration_s > MAX_DURATION_S):
        raise InvalidArgument("rollout.duration", "must be between 0 and 30 days")
    if strategy != CANARY:
        if steps:
            raise InvalidArgument("rollout.steps", f"only a canary has steps, not '{strategy}'")
        if percentage is not None and percentage != 100:
            raise InvalidArgument("rollout.percentage", f"only a canary takes a percentage, not '{strategy}'")
        return RolloutPlan(strategy, (100.0,), duration_s or 0.0)
    if steps:
        if len(steps) > MAX_STEPS:
            raise InvalidArgument("rollout.steps", f"at most {MAX_STEPS} steps")
        for i, s in enumerate(steps):
            if not math.isfinite(s) or s <= 0 or s > 100:
                raise InvalidArgument(f"rollout.steps[{i}]", "must be in (0, 100]")
            if i and s <= steps[i - 1]:
                raise InvalidArgument(f"rollout.steps[{i}]", "steps must increase strictly")
        if steps[-1] != 100:
            raise InvalidArgument("rollout.steps", "the last step must be 100")
        if percentage is not None and percentage != steps[0]:
            raise InvalidArgument("rollout.percentage", "differs from the first step; give one of the two")
        planned = [float(s) for s in steps]
    else:
        first = DEFAULT_CANARY_PERCENTAGE if percentage is None else percentage
        if not math.isfinite(first) or first <= 0 or first >= 100:
            raise InvalidArgument("rollout.percentage", "a canary starts with a share in (0, 100)")
        planned = default_steps(float(first))
    duration = DEFAULT_CANARY_DURATION_S if duration_s is None else duration_s
    return RolloutPlan(CANARY, tuple(planned), duration)


@dataclass(frozen=True)
class GuardPolicy:
    """rollback.automatic and its thresholds, resolved."""

    automatic: bool = False
    error_rate: float = DEFAULT_ERROR_RATE
    latency_ms: float | None = None
    min_samples: int = DEFAULT_MIN_SAMPLES

    def to_dict(self) -> dict:
        return {"automatic": self.automatic, "error_rate": self.error_rate, "latency_ms": self.latency_ms,
                "min_samples": self.min_samples}

    @classmethod
    def from_dict(cls, d: dict) -> "GuardPolicy":
        return cls(bool(d.get("automatic")), float(d.get("error_rate", DEFAULT_ERROR_RATE)),
                   d.get("latency_ms"), int(d.get("min_samples", DEFAULT_MIN_SAMPLES)))


def resolve_guard(automatic: bool, error_rate: float | None, latency_ms: float | None,
                  min_samples: int | None) -> GuardPolicy:
    if error_rate is not None and (not math.isfinite(error_rate) or not 0 <= error_rate <= 1):
        raise InvalidArgument("rollback.threshold.error_rate", "must be in [0, 1]")
    if latency_ms is not None and (not math.isfinite(latency_ms) or latency_ms <= 0):
        raise InvalidArgument("rollback.threshold.latency_ms", "must be > 0")
    if min_samples is not None and min_samples < 1:
        raise InvalidArgument("rollback.min_samples", "must be >= 1")
    return GuardPolicy(automatic, DEFAULT_ERROR_RATE if error_rate is None else error_rate, latency_ms,
                       DEFAULT_MIN_SAMPLES if min_samples is None else min_samples)


@dataclass
class ArmStats:
    """What one arm of a deployment was seen to do: feedback on its answers and the predictions
    it failed to serve (an exception, an invalid output, a deadline that passed).

    An observation is a request whose outcome is known: a failed prediction, or a served one that
    was judged. The error rate is (failures + incorrect) / observations, so a candidate that
    fails at serving time is caught without any feedback, and one nobody uses or judges has no
    observations to decide on.
    """

    feedback: int = 0
    incorrect: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0

    @property
    def observations(self) -> int:
        return self.feedback + self.failures

    @property
    def error_rate(self) -> float:
        return (self.incorrect + self.failures) / self.observations if self.observations else 0.0

    def describe(self) -> str:
        return (f"{self.observations} observations ({self.failures} serving failures, {self.feedback} feedback "
                f"records of which {self.incorrect} incorrect)")

    @property
    def latency_p95_ms(self) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def breach(policy: GuardPolicy, candidate: ArmStats) -> str | None:
    """Why the candidate must be rolled back now, or None.

    Judged only once the candidate has `min_samples` observations (see ArmStats); the error rate
    must *exceed* the threshold (an error rate equal to it passes).
    """
    if not policy.automatic or candidate.observations < policy.min_samples:
        return None
    if candidate.error_rate > policy.error_rate:
        return (f"automatic rollback: error rate {candidate.error_rate:.3f} > {policy.error_rate:g} "
                f"over {candidate.describe()}")
    if policy.latency_ms is not None and candidate.latency_p95_ms > policy.latency_ms:
        return (f"automatic rollback: p95 latency {candidate.latency_p95_ms:.1f} ms > {policy.latency_ms:g} ms "
                f"over {candidate.describe()}")
    return None
