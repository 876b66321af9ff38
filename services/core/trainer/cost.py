"""What a training job costs, and the budget that stops it (DESIGN.md "Cost and budget").

Price model: the platform's one (services/core/prices.py), configurable by the operator, never by
the job's submitter:

    cost_usd = compute_seconds * usd_per_compute_second
             + tokens / 1000   * usd_per_1k_tokens

* ``compute_seconds`` — wall-clock seconds the trainer spent in its training loop (summed over
  resumes: a checkpoint carries the seconds already spent);
* ``tokens`` — whitespace-separated tokens (``len(text.split())``) of every input the trainer
  processed: each training example once per time it is in a batch, each validation input once
  per validation pass.

Defaults: ``usd_per_compute_second = 0.0001`` (0.36 USD per worker-hour, a small cloud CPU) and
``usd_per_1k_tokens = 0.0001``. Operators override them with the environment variables
``TRAINHOUSE_PRICE_PER_COMPUTE_SECOND`` and ``TRAINHOUSE_PRICE_PER_1K_TOKENS`` (non-negative
numbers), read when a trainer starts.

``Budget`` enforces ``maxBudgetUsd``: it emits ``on_event("budget", {cost_usd, budget_usd,
fraction, level})`` once when the cost first reaches 75 % (``level="warning_75"``) and once at
90 % (``"warning_90"``) of the budget, and reports "exceeded" once the cost is strictly above
the budget; the trainer then writes a checkpoint and raises ``BudgetExceeded``
(reason ``budget_exceeded``, gRPC RESOURCE_EXHAUSTED). A budget of 0 allows no spending: the
job stops after its first step.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping

from trainhouse.core.errors import ResourceExhausted
from trainhouse.core.prices import PriceModel, token_counts  # noqa: F401 - the trainers' import point

WARNING_LEVELS = ((0.75, "warning_75"), (0.90, "warning_90"))


class BudgetExceeded(ResourceExhausted):
    """The job's cost went above ``maxBudgetUsd``; a checkpoint was written first."""

    reason = "budget_exceeded"


class Budget:
    """Cost accounting for one training run; ``state()``/``load()`` carry it through checkpoints."""

    def __init__(self, max_usd: float | None, prices: PriceModel,
                 emit: Callable[[str, dict[str, Any]], None]):
        self.max_usd = max_usd
        self.prices = prices
        self.emit = emit
        self.tokens = 0
        self.warned: list[str] = []
        # Compute spent outside the run's own wall clock: GRPO rollout shards on other Ray workers.
        self.remote_seconds = 0.0

    def add_tokens(self, n: int) -> None:
        self.tokens += int(n)

    def add_remote_seconds(self, seconds: float) -> None:
        self.remote_seconds += max(0.0, float(seconds))

    def cost(self, compute_seconds: float) -> float:
        return self.prices.cost(compute_seconds + self.remote_seconds, self.tokens)

    def check(self, compute_seconds: float) -> bool:
        """Emit any warning now due; True when the budget is exceeded."""
        if self.max_usd is None:
            return False
        cost = self.cost(compute_seconds)
        fraction = cost / self.max_usd if self.max_usd > 0 else (math.inf if cost > 0 else 0.0)
        for threshold, level in WARNING_LEVELS:
            if fraction >= threshold and level not in self.warned:
                self.warned.append(level)
                self.emit("budget", {"cost_usd": cost, "budget_usd": self.max_usd,
                                     "fraction": min(fraction, 1e9), "level": level})
        return cost > self.max_usd

    def state(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "warned": list(self.warned), "remote_seconds": self.remote_seconds}

    def load(self, state: Mapping[str, Any] | None) -> None:
        if state:
            self.tokens = int(state.get("tokens", 0))
            self.warned = list(state.get("warned", []))
            self.remote_seconds = float(state.get("remote_seconds", 0.0))
