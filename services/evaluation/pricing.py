"""What a served task costs, at the platform's one price model (services/core/prices.py).

A task is one input answered on the serving path (for a policy: one query's whole episode). Its
cost is what the machine time and the text processed are billed at, the same prices training jobs
account their cost with::

    cost_per_task = compute_seconds_per_task * usd_per_compute_second
                  + tokens_per_task / 1000 * usd_per_1k_tokens

``compute_seconds_per_task`` is *measured*: the mean wall time of single-input Predict calls on
the serving path (ONNX Runtime runs one intra-op thread per session, so one request occupies one
CPU for that long). ``tokens_per_task`` is the inputs' mean count of whitespace tokens, the unit
the trainer bills too.

Prices come from the environment (``TRAINHOUSE_PRICE_PER_COMPUTE_SECOND``,
``TRAINHOUSE_PRICE_PER_1K_TOKENS``), read at every evaluation so an operator can change them
without a restart. Training cost (``cost_efficiency`` in run comparisons) is the job's own
``cost_usd`` metric when the trainer recorded one, else its measured ``training_seconds`` at the
compute price.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trainhouse.core.errors import FailedPrecondition
from trainhouse.core.prices import PriceModel, token_counts


@dataclass(frozen=True)
class TaskPricing:
    prices: PriceModel

    @classmethod
    def from_env(cls) -> "TaskPricing":
        try:
            return cls(PriceModel.from_env())
        except ValueError as err:  # an operator's typo must not look like a server crash
            raise FailedPrecondition(f"the price model is misconfigured: {err}") from None

    def task_cost(self, compute_seconds_per_task: float, inputs: Sequence[str]) -> dict[str, float]:
        """Cost per task from measured seconds per task and the inputs' mean token count."""
        tokens = float(token_counts(list(inputs)).mean()) if len(inputs) else 0.0
        compute = compute_seconds_per_task * self.prices.usd_per_compute_second
        token_cost = tokens / 1000.0 * self.prices.usd_per_1k_tokens
        return {"cost_per_task_usd": compute + token_cost, "compute_seconds_per_task": compute_seconds_per_task,
                "tokens_per_task": tokens, "price_per_cpu_second": self.prices.usd_per_compute_second,
                "price_per_1k_tokens": self.prices.usd_per_1k_tokens, "compute_cost_per_task_usd": compute,
                "token_cost_per_task_usd": token_cost}

    def training_cost(self, job_metrics: dict[str, float]) -> float | None:
        """A job's cost: its own ``cost_usd`` when recorded, else measured seconds at the compute price."""
        if job_metrics.get("cost_usd") is not None:
            return float(job_metrics["cost_usd"])
        if job_metrics.get("training_seconds") is not None:
            return float(job_metrics["training_seconds"]) * self.prices.usd_per_compute_second
        return None
