"""First-order optimizers that update a flat list of NumPy arrays in place.

The learning rate is passed to every ``step`` rather than stored, so the scheduler stays the
single owner of "what is the lr at step t" and a resumed run cannot disagree with it.
Weight decay applies to matrices only (ndim >= 2): decaying biases only slows learning.

* ``Adam``  — weight decay, if any, is classic L2 added to the gradient (scaled by Adam).
* ``AdamW`` — decoupled weight decay (Loshchilov & Hutter): ``p -= lr * wd * p`` outside Adam.
* ``SGD``   — momentum (optionally Nesterov), L2 added to the gradient.

Row-sparse gradients (``RowSparse``: the hashed first layer, see sparse_ops.py) are handled
in two ways:

* default (``sparse_updates=False``): **exactly** the dense algorithm. Rows without gradient
  still decay their moments and move by their momentum, as if their gradient were a zero row;
  only the accumulation of the gradient itself is done on the touched rows. With SGD without
  momentum and weight decay the dense update *is* zero outside the touched rows, so only those
  rows are written.
* ``sparse_updates=True`` ("lazy" Adam/AdamW/SGD-momentum, as TensorFlow's LazyAdam and
  PyTorch's SparseAdam): moments, decoupled decay and parameter updates are applied to the
  touched rows only; untouched rows keep their moments frozen until next seen. Much cheaper per
  step for wide hashed layers, but a different algorithm: the results differ from dense Adam.
  Still deterministic and bit-exact on resume. (Bias correction uses the global step count.)
  Coupled weight decay (``adam``/``sgd`` with ``weightDecay > 0``) adds ``wd * p`` to every
  row's gradient, so the gradient is dense and lazy updates have nothing to skip; use
  ``adamw`` (decoupled decay, applied lazily to the touched rows) to combine the two.

The dense parameter update runs in cache-sized chunks with preallocated scratch space, so a
(16384, 64) layer costs a few passes over memory instead of a temporary per operation.

Subnormal guard: the moments (and SGD velocity) of rows that get no gradient decay
geometrically and, after a few hundred steps, would become subnormal floats, on which x86
arithmetic is 10-100x slower (measured 13x for a multiply). Every ``FLUSH_EVERY`` steps,
entries below ``FLUSH_BELOW`` (1e-30, still a normal float32) are set to exactly 0. Their
contribution to any weight is below 1e-20 of the learning rate, far under the float32
resolution of the weight, so the weights are unchanged; the flush is deterministic and happens
at fixed step numbers, so seeds and resumes stay bit-exact.
"""
from __future__ import annotations

import abc

import math
from typing import Any, Sequence

import numpy as np

from trainhouse.core.configs.training import OPTIMIZERS
from trainhouse.core.trainer.sparse_ops import RowSparse

_CHUNK = 1 << 16  # elements per chunk of the dense update (256 KiB of float32)
FLUSH_EVERY = 64
FLUSH_BELOW = 1e-30


def _flush_tiny(arrays: Sequence[np.ndarray]) -> None:
    for a in arrays:
        a[np.abs(a) < FLUSH_BELOW] = 0.0

def _decays(p: np.ndarray) -> bool:
    return p.ndim >= 2


def _with_l2(g: np.ndarray | RowSparse, p: np.ndarray, wd: float) -> np.ndarray:
    """``g + wd * p`` (dense: weight decay touches every row)."""
    if isinstance(g, RowSparse):
        out = (wd * p).astype(p.dtype, copy=False)
        out[g.rows] += g.values
        return out
    return g + wd * p


class Optimizer(abc.ABC):
    """What every optimizer offers the trainer loop (and a checkpoint)."""

    name = "base"

    @abc.abstractmethod
    def step(self, params: Sequence[np.ndarray], grads: Sequence[Any], lr: float) -> None: ...

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Adam(Optimizer):
    name = "adam"

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
                 sparse_updates: bool = False):
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay
        self.sparse_updates = sparse_updates
        self.t = 0
        self.m: list[np.ndarray] = []
        self.v: list[np.ndarray] = []
        self._scratch: np.ndarray | None = None

    def _ensure(self, params: Sequence[np.ndarray]) -> None:
        if not self.m:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]

    def _coupled_decay(self) -> float:
        return self.weight_decay

    def _buf(self, n: int, dtype: Any) -> np.ndarray:
        if self._scratch is None or self._scratch.dtype != dtype:
            self._scratch = np.empty(_CHUNK, dtype=dtype)
        return self._scratch[:min(n, _CHUNK)]

    def step(self, params: Sequence[np.ndarray], grads: Sequence[Any], lr: float) -> None:
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
                g = _with_l2(g, p, wd_coupled)
            if isinstance(g, RowSparse):
                if self.sparse_updates:
                    self._lazy(p, g, m, v, lr, step_size, eps_hat)
                else:
                    self._fused_rows(p, g, m, v, lr, step_size, eps_hat)
                continue
            else:
                m *= b1
                m += (1.0 - b1) * g
                v *= b2
                v += (1.0 - b2) * (g * g)
            self._decoupled_decay(p, lr)
            self._apply(p, m, v, step_size, eps_hat)
        if self.t % FLUSH_EVERY == 0:
            _flush_tiny(self.m + self.v)

    def _apply(self, p: np.ndarray, m: np.ndarray, v: np.ndarray, step_size: float, eps_hat: float) -> None:
        """``p -= step_size * m / (sqrt(v) + eps_hat)``, chunk by chunk, no temporaries."""
        pf, mf, vf = p.reshape(-1), m.reshape(-1), v.reshape(-1)
        n = pf.size
        buf = self._buf(n, p.dtype)
        for lo in range(0, n, _CHUNK):
            hi = min(n, lo + _CHUNK)
            b = buf[:hi - lo]
            np.sqrt(vf[lo:hi], out=b)
            b += eps_hat
            np.divide(mf[lo:hi], b, out=b)
            b *= step_size
            pf[lo:hi] -= b

    def _fused_rows(self, p: np.ndarray, g: RowSparse, m: np.ndarray, v: np.ndarray, lr: float, step_size: float,
                    eps_hat: float) -> None:
        """The exact dense update for a row-sparse gradient, one block of rows at a time: decay
        the block's moments, add the gradient rows that fall in it, decay (AdamW) and update the
        block's parameters while it is in cache. Element for element the same operations in the
        same order as the unblocked form, so the same bits, with one pass over memory instead of
        five."""
        b1, b2 = self.beta1, self.beta2
        n_rows, cols = p.shape
        block = max(1, _CHUNK // max(1, cols))
        gm = (1.0 - b1) * g.values
        gv = (1.0 - b2) * (g.values * g.values)
        bounds = np.searchsorted(g.rows, np.arange(0, n_rows + block, block)).tolist()
        buf = self._buf(block * cols, p.dtype)
        for i, r0 in enumerate(range(0, n_rows, block)):
            r1 = min(n_rows, r0 + block)
            mc, vc, pc = m[r0:r1], v[r0:r1], p[r0:r1]
            mc *= b1
            vc *= b2
            lo, hi = bounds[i], bounds[i + 1]
            if hi > lo:
                local = g.rows[lo:hi] - r0
                mc[local] += gm[lo:hi]
                vc[local] += gv[lo:hi]
            self._decoupled_decay(pc, lr)
            b = buf[:(r1 - r0) * cols].reshape(r1 - r0, cols)
            np.sqrt(vc, out=b)
            b += eps_hat
            np.divide(mc, b, out=b)
            b *= step_size
            pc -= b

    def _lazy(self, p: np.ndarray, g: RowSparse, m: np.ndarray, v: np.ndarray, lr: float, step_size: float,
              eps_hat: float) -> None:
        r, G = g.rows, g.values
        mr = m[r]
        mr *= self.beta1
        mr += (1.0 - self.beta1) * G
        vr = v[r]
        vr *= self.beta2
        vr += (1.0 - self.beta2) * (G * G)
        m[r] = mr
        v[r] = vr
        pr = p[r]
        if self.name == "adamw" and self.weight_decay:
            pr *= pr.dtype.type(1.0 - float(lr) * self.weight_decay)
        pr -= step_size * mr / (np.sqrt(vr) + eps_hat)
        p[r] = pr

    def _decoupled_decay(self, p: np.ndarray, lr: float) -> None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "t": self.t, "m": list(self.m), "v": list(self.v),
                "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps, "weight_decay": self.weight_decay,
                "sparse_updates": self.sparse_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"optimizer state is for {state.get('name')!r}, not {self.name!r}")
        self.t = int(state["t"])
        self.m = [np.array(a) for a in state["m"]]
        self.v = [np.array(a) for a in state["v"]]


class AdamW(Adam):
    name = "adamw"

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.01,
                 sparse_updates: bool = False):
        super().__init__(beta1, beta2, eps, weight_decay, sparse_updates)

    def _coupled_decay(self) -> float:
        return 0.0

    def _decoupled_decay(self, p: np.ndarray, lr: float) -> None:
        if self.weight_decay and _decays(p):
            p *= p.dtype.type(1.0 - float(lr) * self.weight_decay)


class SGD(Optimizer):
    name = "sgd"

    def __init__(self, momentum: float = 0.9, nesterov: bool = False, weight_decay: float = 0.0,
                 sparse_updates: bool = False):
        if nesterov and momentum <= 0:
            raise ValueError("nesterov needs momentum > 0")
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay
        self.sparse_updates = sparse_updates
        self.velocity: list[np.ndarray] = []
        self.t = 0

    def step(self, params: Sequence[np.ndarray], grads: Sequence[Any], lr: float) -> None:
        if self.momentum and not self.velocity:
            self.velocity = [np.zeros_like(p) for p in params]
        self.t += 1
        if self.momentum and self.t % FLUSH_EVERY == 0:
            _flush_tiny(self.velocity)
        lr = float(lr)
        mom = self.momentum
        for i, (p, g) in enumerate(zip(params, grads)):
            if self.weight_decay and _decays(p):
                g = _with_l2(g, p, self.weight_decay)
            if isinstance(g, RowSparse):
                r, G = g.rows, g.values
                if not mom:  # the dense update is zero outside the touched rows: exact
                    p[r] -= (lr * G).astype(p.dtype, copy=False)
                    continue
                buf = self.velocity[i]
                if self.sparse_updates:
                    br = buf[r]
                    br *= mom
                    br += G
                    buf[r] = br
                    upd = G + mom * br if self.nesterov else br
                    p[r] -= (lr * upd).astype(p.dtype, copy=False)
                    continue
                buf *= mom
                buf[r] += G
                if self.nesterov:
                    upd = mom * buf
                    upd[r] += G
                else:
                    upd = buf
                p -= (lr * upd).astype(p.dtype, copy=False)
                continue
            if mom:
                buf = self.velocity[i]
                buf *= mom
                buf += g
                g = g + mom * buf if self.nesterov else buf
            p -= (lr * g).astype(p.dtype, copy=False)

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "velocity": list(self.velocity), "momentum": self.momentum,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay, "sparse_updates": self.sparse_updates,
                "t": self.t}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"optimizer state is for {state.get('name')!r}, not {self.name!r}")
        self.velocity = [np.array(a) for a in state["velocity"]]
        self.t = int(state.get("t", 0))


def make_optimizer(name: str, *, momentum: float = 0.9, nesterov: bool = False,
                   weight_decay: float = 0.0, beta1: float = 0.9, beta2: float = 0.999,
                   eps: float = 1e-8, sparse_updates: bool = False) -> Optimizer:
    """Build an optimizer by its config name ("adam", "adamw", "sgd")."""
    if name == "adam":
        return Adam(beta1, beta2, eps, weight_decay, sparse_updates)
    if name == "adamw":
        return AdamW(beta1, beta2, eps, weight_decay, sparse_updates)
    if name == "sgd":
        return SGD(momentum, nesterov, weight_decay, sparse_updates)
    raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")
