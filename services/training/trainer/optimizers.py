"""First-order optimizers that update a flat list of NumPy arrays in place.

The learning rate is passed to every ``step`` rather than stored, so the scheduler stays the
single owner of "what is the lr at step t" and a resumed run cannot disagree with it.
Weight decay applies to matrices only (ndim >= 2): decaying biases only slows learning.

* ``Adam``  — weight decay, if any, is classic L2 added to the gradient (scaled by Adam).
* ``AdamW`` — decoupled weight decay (Loshchilov & Hutter): ``p -= lr * wd * p`` outside Adam.
* ``SGD``   — momentum (optionally Nesterov), L2 added to the gradient.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


def _decays(p: np.ndarray) -> bool:
    return p.ndim >= 2


class Optimizer:
    name = "base"

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], lr: float) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


class Adam(Optimizer):
    name = "adam"

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0):
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay
        self.t = 0
        self.m: list[np.ndarray] = []
        self.v: list[np.ndarray] = []

    def _ensure(self, params: Sequence[np.ndarray]) -> None:
        if not self.m:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]

    def _coupled_decay(self) -> float:
        return self.weight_decay

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], lr: float) -> None:
        self._ensure(params)
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        # Bias corrections folded into the step size (as in the Adam paper, Algorithm 1 note).
        # Python floats, not NumPy float64 scalars: under NEP 50 those would upcast float32 math.
        step_size = float(lr) * math.sqrt(1.0 - b2 ** self.t) / (1.0 - b1 ** self.t)
        eps_hat = self.eps * math.sqrt(1.0 - b2 ** self.t)
        wd_coupled = self._coupled_decay()
        for p, g, m, v in zip(params, grads, self.m, self.v):
            if wd_coupled and _decays(p):
                g = g + wd_coupled * p
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            self._decoupled_decay(p, lr)
            p -= (step_size * m / (np.sqrt(v) + eps_hat)).astype(p.dtype, copy=False)

    def _decoupled_decay(self, p: np.ndarray, lr: float) -> None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "t": self.t, "m": list(self.m), "v": list(self.v),
                "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps, "weight_decay": self.weight_decay}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"optimizer state is for {state.get('name')!r}, not {self.name!r}")
        self.t = int(state["t"])
        self.m = [np.array(a) for a in state["m"]]
        self.v = [np.array(a) for a in state["v"]]


class AdamW(Adam):
    name = "adamw"

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.01):
        super().__init__(beta1, beta2, eps, weight_decay)

    def _coupled_decay(self) -> float:
        return 0.0

    def _decoupled_decay(self, p: np.ndarray, lr: float) -> None:
        if self.weight_decay and _decays(p):
            p *= p.dtype.type(1.0 - float(lr) * self.weight_decay)


class SGD(Optimizer):
    name = "sgd"

    def __init__(self, momentum: float = 0.9, nesterov: bool = False, weight_decay: float = 0.0):
        if nesterov and momentum <= 0:
            raise ValueError("nesterov needs momentum > 0")
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay
        self.velocity: list[np.ndarray] = []

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], lr: float) -> None:
        if self.momentum and not self.velocity:
            self.velocity = [np.zeros_like(p) for p in params]
        for i, (p, g) in enumerate(zip(params, grads)):
            if self.weight_decay and _decays(p):
                g = g + self.weight_decay * p
            if self.momentum:
                buf = self.velocity[i]
                buf *= self.momentum
                buf += g
                g = g + self.momentum * buf if self.nesterov else buf
            p -= (float(lr) * g).astype(p.dtype, copy=False)

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "velocity": list(self.velocity), "momentum": self.momentum,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"optimizer state is for {state.get('name')!r}, not {self.name!r}")
        self.velocity = [np.array(a) for a in state["velocity"]]


OPTIMIZERS = ("adam", "adamw", "sgd")


def make_optimizer(name: str, *, momentum: float = 0.9, nesterov: bool = False,
                   weight_decay: float = 0.0, beta1: float = 0.9, beta2: float = 0.999,
                   eps: float = 1e-8) -> Optimizer:
    """Build an optimizer by its config name ("adam", "adamw", "sgd")."""
    if name == "adam":
        return Adam(beta1, beta2, eps, weight_decay)
    if name == "adamw":
        return AdamW(beta1, beta2, eps, weight_decay)
    if name == "sgd":
        return SGD(momentum, nesterov, weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")
