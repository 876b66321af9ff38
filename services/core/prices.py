"""The platform's one price model: what a second of compute and a thousand tokens cost.

Training jobs account their cost with it (budgets, ``cost_usd``) and EvaluationService prices a
served task with it (``cost_per_task_usd``), so a job's cost and its model's serving cost are in
the same units at the same prices::

    cost_usd = compute_seconds * usd_per_compute_second + tokens / 1000 * usd_per_1k_tokens

* ``tokens`` are whitespace-separated tokens (``len(text.split())``) of the text processed.
* Defaults: 0.0001 USD per compute second (0.36 USD per worker-hour, a small cloud CPU) and
  0.0001 USD per 1K tokens. Operators set ``TRAINHOUSE_PRICE_PER_COMPUTE_SECOND`` and
  ``TRAINHOUSE_PRICE_PER_1K_TOKENS`` (non-negative numbers); ``TRAINHOUSE_PRICE_PER_CPU_SECOND``,
  EvaluationService's earlier name, is still read when the first is unset.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

ENV_PRICE_PER_SECOND = "TRAINHOUSE_PRICE_PER_COMPUTE_SECOND"
ENV_PRICE_PER_SECOND_LEGACY = "TRAINHOUSE_PRICE_PER_CPU_SECOND"
ENV_PRICE_PER_1K_TOKENS = "TRAINHOUSE_PRICE_PER_1K_TOKENS"


@dataclass(frozen=True)
class PriceModel:
    usd_per_compute_second: float = 0.0001
    usd_per_1k_tokens: float = 0.0001

    def __post_init__(self) -> None:
        for name in ("usd_per_compute_second", "usd_per_1k_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    def cost(self, compute_seconds: float, tokens: float) -> float:
        return compute_seconds * self.usd_per_compute_second + tokens / 1000.0 * self.usd_per_1k_tokens

    def to_dict(self) -> dict[str, float]:
        return {"usd_per_compute_second": self.usd_per_compute_second, "usd_per_1k_tokens": self.usd_per_1k_tokens}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "PriceModel":
        env = os.environ if environ is None else environ
        kwargs: dict[str, float] = {}
        per_second = ENV_PRICE_PER_SECOND if (env.get(ENV_PRICE_PER_SECOND) or "").strip() else ENV_PRICE_PER_SECOND_LEGACY
        for var, attr in ((per_second, "usd_per_compute_second"), (ENV_PRICE_PER_1K_TOKENS, "usd_per_1k_tokens")):
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                continue
            try:
                kwargs[attr] = float(raw)
            except ValueError as exc:
                raise ValueError(f"{var} must be a number, got {raw!r}") from exc
        return cls(**kwargs)


def token_counts(texts: Sequence[str]) -> np.ndarray:
    """Whitespace tokens per text (int64), the unit of the token price."""
    return np.fromiter((len(t.split()) for t in texts), dtype=np.int64, count=len(texts))
