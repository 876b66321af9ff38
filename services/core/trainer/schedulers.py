"""Learning-rate schedules as pure functions of the global step.

Because ``lr_at(step)`` depends on nothing but the step number, the only state to checkpoint is
the step counter, and a resumed run reproduces the uninterrupted schedule exactly.

Warm-up (if ``warmup_steps > 0``) ramps linearly from ``base_lr/warmup_steps`` to ``base_lr``
over the first ``warmup_steps`` steps; the schedule proper then runs over the remaining steps:

* ``constant`` — ``base_lr``
* ``linear``   — ``base_lr * (1 - progress)``, reaching 0 after ``total_steps``
* ``cosine``   — ``base_lr * (1 + cos(pi * progress)) / 2``
* ``step``     — ``base_lr * gamma ** (steps_after_warmup // step_size)``

where ``progress = (step - warmup_steps) / (total_steps - warmup_steps)`` in [0, 1].
"""
from __future__ import annotations

import math
from typing import Any

from trainhouse.core.configs.training import SCHEDULERS


class LRScheduler:
    def __init__(self, kind: str, base_lr: float, total_steps: int, warmup_steps: int = 0,
                 step_size: int = 1, gamma: float = 0.1):
        if kind not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {kind!r}; expected one of {', '.join(SCHEDULERS)}")
        if total_steps < 1 or warmup_steps < 0 or step_size < 1:
            raise ValueError("total_steps and step_size must be >= 1, warmup_steps >= 0")
        self.kind, self.base_lr, self.total_steps = kind, float(base_lr), int(total_steps)
        self.warmup_steps, self.step_size, self.gamma = int(warmup_steps), int(step_size), float(gamma)
        self.step_count = 0

    def lr_at(self, step: int) -> float:
        """Learning rate used for the update at 0-based global ``step``."""
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        after = step - self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, after / span)
        if self.kind == "constant":
            return self.base_lr
        if self.kind == "linear":
            return self.base_lr * (1.0 - progress)
        if self.kind == "cosine":
            return self.base_lr * 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.base_lr * self.gamma ** (after // self.step_size)

    @property
    def current_lr(self) -> float:
        return self.lr_at(self.step_count)

    def step(self) -> None:
        self.step_count += 1

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step_count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step"])


def make_scheduler(kind: str, base_lr: float, total_steps: int, warmup_steps: int = 0,
                   step_size: int = 1, gamma: float = 0.1) -> LRScheduler:
    return LRScheduler(kind, base_lr, total_steps, warmup_steps, step_size, gamma)
