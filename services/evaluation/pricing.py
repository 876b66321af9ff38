"""The price model behind every cost this service reports.

A task is one input answered on the serving path. Its cost is what the machine time and the
text processed would be billed at::

    cost_per_task = compute_seconds_per_task * price_per_cpu_second
                  + tokens_per_task / 1000 * price_per_1k_tokens

``compute_seconds_per_task`` is *measured*: the mean wall time of single-input Predict calls on
the serving path (ONNX Runtime runs one intra-op thread per session, so one request occupies
one CPU for that long). ``tokens_per_task`` counts the featurizer's tokens (runs of word
characters or single punctuation marks) in the inputs.

Prices come from the environment, read at every evaluation so an operator can change them
without a rebuild:

* ``TRAINHOUSE_PRICE_PER_CPU_SECOND`` (default 0.0000134 USD: a 0.048 USD/hour vCPU, a common
  on-demand cloud price)
* ``TRAINHOUSE_PRICE_PER_1K_TOKENS`` (default 0.00002 USD: metering of processed text; 0 prices
  compute only)

Training cost (``cost_efficiency`` in run comparisons) uses the job's own ``cost_usd`` metric
when the trainer records one, else the job's measured ``training_seconds`` at the same CPU price.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from services.common import config

DEFAULT_PRICE_PER_CPU_SECOND = 0.048 / 3600.0
DEFAULT_PRICE_PER_1K_TOKENS = 0.00002

# The featurizer's tokenisation (services/common/featurizer.py): word runs or one punctuation mark.
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    return len(_TOKEN_RE.findall(text))


@dataclass(frozen=True)
class PriceModel:
    price_per_cpu_second: float
    price_per_1k_tokens: float

    @classmethod
    def from_env(cls) -> "PriceModel":
        cpu = config.env_float("PRICE_PER_CPU_SECOND", DEFAULT_PRICE_PER_CPU_SECOND)
        tokens = config.env_float("PRICE_PER_1K_TOKENS", DEFAULT_PRICE_PER_1K_TOKENS)
        # A negative price is a configuration mistake; clamp rather than report negative costs.
        return cls(max(cpu, 0.0), max(tokens, 0.0))

    def task_cost(self, compute_seconds_per_task: float, inputs: Sequence[str]) -> dict[str, float]:
        """Cost per task from measured seconds per task and the inputs' mean token count."""
        tokens = sum(count_tokens(t) for t in inputs) / len(inputs) if inputs else 0.0
        compute = compute_seconds_per_task * self.price_per_cpu_second
        token_cost = tokens / 1000.0 * self.price_per_1k_tokens
        return {"cost_per_task_usd": compute + token_cost, "compute_seconds_per_task": compute_seconds_per_task,
                "tokens_per_task": tokens, "price_per_cpu_second": self.price_per_cpu_second,
                "price_per_1k_tokens": self.price_per_1k_tokens, "compute_cost_per_task_usd": compute,
                "token_cost_per_task_usd": token_cost}

    def training_cost(self, job_metrics: dict[str, float]) -> float | None:
        """A job's cost: its own ``cost_usd`` when recorded, else measured seconds at the CPU price."""
        if job_metrics.get("cost_usd") is not None:
            return float(job_metrics["cost_usd"])
        if job_metrics.get("training_seconds") is not None:
            return float(job_metrics["training_seconds"]) * self.price_per_cpu_second
        return None
