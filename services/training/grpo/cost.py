"""Cost accounting of a GRPO job against ``max_budget_usd``.

    cost_usd = compute_seconds * price_per_cpu_second + tokens / 1000 * price_per_1k_tokens

* ``compute_seconds`` is *measured*: wall-clock seconds of the training loop (rollouts, updates,
  evaluations, checkpoints), summed over every run of the job (resumes included).
* ``tokens`` counts the text the policy processes: every forward pass of the policy over a step
  reads the query (the featurizer's tokens: runs of word characters or single punctuation marks)
  plus one token per earlier step of the trajectory (its summary of the history). Rollouts,
  the reference policy's pass, each update pass and evaluation rollouts all count.

The prices are the operator's (the service passes a ``PriceModel``; users only set the budget).
Defaults match services/evaluation/pricing.py: 0.048 USD per vCPU-hour and 0.00002 USD per 1k
tokens. The trainer core does not read the environment; ``PriceModel.from_mapping`` lets the host
build one from its settings.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

DEFAULT_PRICE_PER_CPU_SECOND = 0.048 / 3600.0
DEFAULT_PRICE_PER_1K_TOKENS = 0.00002
BUDGET_WARNING_THRESHOLDS = (0.75, 0.90)

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    return len(_TOKEN_RE.findall(text))


@dataclass(frozen=True)
class PriceModel:
    price_per_cpu_second: float = DEFAULT_PRICE_PER_CPU_SECOND
    price_per_1k_tokens: float = DEFAULT_PRICE_PER_1K_TOKENS

    def __post_init__(self) -> None:
        for name in ("price_per_cpu_second", "price_per_1k_tokens"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite number >= 0")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> "PriceModel":
        d = d or {}
        return cls(float(d.get("price_per_cpu_second", DEFAULT_PRICE_PER_CPU_SECOND)),
                   float(d.get("price_per_1k_tokens", DEFAULT_PRICE_PER_1K_TOKENS)))

    def to_dict(self) -> dict[str, float]:
        return {"price_per_cpu_second": self.price_per_cpu_second, "price_per_1k_tokens": self.price_per_1k_tokens}


@dataclass
class CostMeter:
    """Running totals; ``state_dict`` goes into checkpoints so a resumed job keeps its spend."""

    prices: PriceModel
    compute_seconds: float = 0.0
    tokens: int = 0

    def add(self, *, seconds: float = 0.0, tokens: int = 0) -> None:
        self.compute_seconds += max(0.0, float(seconds))
        self.tokens += int(tokens)

    @property
    def cost_usd(self) -> float:
        return (self.compute_seconds * self.prices.price_per_cpu_second
                + self.tokens / 1000.0 * self.prices.price_per_1k_tokens)

    def state_dict(self) -> dict[str, Any]:
        return {"compute_seconds": self.compute_seconds, "tokens": self.tokens}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.compute_seconds = float(state.get("compute_seconds", 0.0))
        self.tokens = int(state.get("tokens", 0))

    def summary(self) -> dict[str, float]:
        return {"cost_usd": self.cost_usd, "compute_seconds": self.compute_seconds, "tokens_processed": float(self.tokens),
                **self.prices.to_dict()}
