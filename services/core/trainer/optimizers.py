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

  Adam/AdamW keep the moments of a row-sparse parameter in a *scaled* form so that decaying the
  untouched rows costs nothing: ``m = m' * sm`` and ``sqrt(v) = d' * sd`` with two scalars that
  absorb every step's ``beta1`` / ``sqrt(beta2)``. A step then writes ``m'``, ``d'`` on the
  touched rows only (``m' += (1-b1)/sm * g``, ``d' = sqrt(d'^2 + (1-b2)/sd^2 * g^2)``) and moves
  every weight by ``(step_size*sm/sd) * m' / (d' + eps_hat/sd)``: four in-cache passes instead of
  seven, and no square root over the whole layer (``sqrt(v)`` is kept, not recomputed). This is
  the dense Adam update (PyTorch's ``torch.optim.Adam``) in exact arithmetic; in float32 it differs
  from the unscaled form by rounding only (tests/trainer/test_sparse_gradients.py checks it
  against a float64 reference). Every ``RENORM_EVERY`` steps the scales are folded back into the
  arrays (they stay within float32 range: ``0.9^-64`` ~ 850); a checkpoint stores the scaled
  arrays and scales themselves, so a resume stays bit-exact.
* ``sparse_updates=True`` ("lazy" Adam/AdamW/SGD-momentum, as TensorFlow's LazyAdam and
  PyTorch's SparseAdam): moments, decoupled decay and parameter updates are applied to the
  touched rows only; untouched rows keep their moments frozen until next seen. Much cheaper per
  step for wide hashed layers, but a different algorithm: the results differ from dense Adam.
  Still deterministic and bit-exact on resume. (Bias correction uses the global step count.)
  Coupled weight decay (``adam``/``sgd`` with ``weightDecay > 0``) adds ``wd * p`` to every
  row's gradient, so the gradient is dense and lazy updates have nothing to skip; use
  ``adamw`` (decoupled decay, applied lazily to the touched rows) to combine the two.

The dense parameter update runs in cache-sized chunks with preallocated scratch space, so a
(16384, 64) layer costs a few passes over memory instead of a temporary per operation. Where the
time goes at batch 64 (issue #20) and what is done about it:

* a large parameter's update (>= ``PARALLEL_MIN`` elements: the hashed first layer) is split into
  row ranges that the calling thread and the trainer's pool threads claim one by one
  (threads.py); every element goes through the same operations whatever the split, so the result
  is bit-identical for any thread count, and a ``ThreadChoice`` per kind of pass keeps whichever of
  one thread or ``trainer_threads()`` is faster on the machine as loaded now;
* the touched rows' gathers and products go to per-thread scratch buffers: two live NumPy
  temporaries of a batch's rows (~600 KiB each) were page-faulted afresh on every step;
* the small dense parameters (biases, the output layer) keep their m and v packed in one buffer
  per dtype, so their update is about fifteen NumPy calls in all instead of a dozen per parameter
  (at batch 64 the per-call overhead was most of their cost). Same operations, same bits.

Once a process has spent ``kernels.COMPILE_AFTER_S`` in the scaled update of a row-sparse layer,
that update runs as compiled loops (compiled_kernels.py, kernels.py): the same operations per
element in the same order, so the same bits, in one pass over the touched rows and one over the
weights instead of fifteen NumPy passes (issue #20: 2x the samples/s of the NumPy passes at batch 64).

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
import os
import threading
import time
from typing import Any, Sequence

import numpy as np

from trainhouse.core.configs.training import OPTIMIZERS
from trainhouse.core.trainer import kernels
from trainhouse.core.trainer.sparse_ops import RowSparse
from trainhouse.core.trainer.threads import ThreadChoice, run_tasks, trainer_threads

_CHUNK = 1 << 16  # elements per chunk of the dense update (256 KiB of float32)


def _moments(m: np.ndarray, v: np.ndarray, g: np.ndarray, scratch: np.ndarray, b1: float, b2: float) -> None:
    """Adam's moment update in place, m = b1 m + (1 - b1) g and v = b2 v + (1 - b2) g^2, through one
    scratch array of g's size: the same operations in the same order wherever it is called, so the
    packed, chunked and threaded updates give the same bits."""
    m *= b1
    np.multiply(g, 1.0 - b1, out=scratch)
    m += scratch
    v *= b2
    np.multiply(g, g, out=scratch)
    scratch *= 1.0 - b2
    v += scratch
PARALLEL_MIN = 1 << 18  # elements: smaller parameters are updated on the calling thread only
TASK_ELEMENTS = 1 << 18  # elements per task of a parallel pass (threads claim tasks one by one); measured
# on the (16384, 64) layer with 2 threads: 4 tasks 20% faster than 8 (per-task call overhead), as fast as 2
FLUSH_EVERY = 64
RENORM_EVERY = 64  # steps between folding the moment scales of a row-sparse parameter back in
FLUSH_BELOW = 1e-30
_CHOICES: dict[tuple[str, tuple[int, ...], str], ThreadChoice] = {}
_CHOICES_LOCK = threading.Lock()


def _forget_choices_in_child() -> None:
    """A forked child starts with fresh choices and lock (a lock held by another thread at the fork
    would stay held forever in the child)."""
    global _CHOICES_LOCK
    _CHOICES_LOCK = threading.Lock()
    _CHOICES.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_choices_in_child)


class _Scratch:
    """Preallocated work space, one per thread of a parallel update. Reusing buffers matters:
    NumPy temporaries of a batch's gradient rows (~600 KiB) cost page faults when two are alive
    at once (measured 420 us for two such products vs 25 us into reused buffers)."""

    def __init__(self) -> None:
        self.arrays: dict[tuple[str, Any], np.ndarray] = {}

    def get(self, name: str, n: int, dtype: Any) -> np.ndarray:
        """A flat buffer of ``n`` elements (its contents are garbage)."""
        key = (name, np.dtype(dtype))
        a = self.arrays.get(key)
        if a is None or a.size < n:
            a = self.arrays[key] = np.empty(max(n, 1024), dtype=dtype)
        return a[:n]


def _split(p: np.ndarray, work: list["_Scratch"], threads: int | None = None) -> tuple[int, int]:
    """(tasks, threads) of an elementwise pass over ``p``: one task on the calling thread below
    ``PARALLEL_MIN`` elements (a hand-off costs more than it saves), else row ranges of about
    ``TASK_ELEMENTS`` shared by ``threads`` (default ``trainer_threads()``, threads.py). Makes sure
    ``work`` has a scratch space per thread."""
    if p.size < PARALLEL_MIN or p.ndim == 0:
        threads = 1
    elif threads is None:
        threads = trainer_threads()
    tasks = 1 if threads == 1 else max(1, min(p.shape[0], max(threads, -(-p.size // TASK_ELEMENTS))))
    while len(work) < threads:
        work.append(_Scratch())
    return tasks, threads


def _bounds(n: int, parts: int) -> list[int]:
    """``n`` rows split into ``parts`` contiguous ranges of nearly equal size."""
    return [n * i // parts for i in range(parts + 1)]


def _flush_tiny(arrays: Sequence[np.ndarray], work: list["_Scratch"] | None = None,
                fold: Sequence[float | None] | None = None) -> None:
    """Set entries below ``FLUSH_BELOW`` in magnitude to 0 (module doc), after multiplying each array
    by its ``fold`` factor if one is given; chunk by chunk, large arrays on several threads."""
    work = work if work is not None else []
    for j, a in enumerate(arrays):
        factor = fold[j] if fold is not None else None
        _chunked_pass(a, work, lambda c, b, mask: _fold_flush_chunk(c, b, mask, factor, True))


def _fold_flush_chunk(c: np.ndarray, b: np.ndarray, mask: np.ndarray, factor: float | None, flush: bool) -> None:
    if factor is not None:
        c *= c.dtype.type(factor)
    if flush:
        np.abs(c, out=b)
        np.less(b, FLUSH_BELOW, out=mask)
        np.copyto(c, 0, where=mask)


def _chunked_pass(a: np.ndarray, work: list["_Scratch"], fn: Any) -> None:
    """``fn(chunk, scratch, bool_scratch)`` over the flat array ``a`` in ``_CHUNK`` pieces; the row
    ranges of a large array run on several threads."""
    if not a.flags.c_contiguous:  # never the case for arrays this module allocates
        b, mask = np.empty(a.shape, a.dtype), np.empty(a.shape, bool)
        fn(a, b, mask)
        return
    tasks, threads = _split(a, work)
    flat = a.reshape(-1)
    per_row = flat.size // max(1, a.shape[0]) if a.ndim else 1
    bounds = _bounds(a.shape[0] if a.ndim else 1, tasks)

    def run(i: int, worker: int) -> None:
        lo0, hi0 = bounds[i] * per_row, bounds[i + 1] * per_row
        ws = work[worker]
        buf, mask = ws.get("chunk", _CHUNK, a.dtype), ws.get("mask", _CHUNK, bool)
        for lo in range(lo0, hi0, _CHUNK):
            hi = min(hi0, lo + _CHUNK)
            fn(flat[lo:hi], buf[:hi - lo], mask[:hi - lo])
    run_tasks(run, tasks, threads)


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
        # Per parameter: None (plain m, v) or [sm, sd], the scales of the scaled form (module doc):
        # then m holds m' and v holds d' = sqrt(v) / sd.
        self.scales: list[list[float] | None] = []
        self._work: list[_Scratch] = []  # per thread
        # The small dense parameters' m and v are views into one flat buffer each, so that their
        # update is a dozen NumPy calls in all instead of a dozen per parameter (issue #20: at
        # batch 64 per-call overhead is most of a small layer's update). Key: (indices, dtype).
        self._packs: dict[tuple[tuple[int, ...], Any], tuple[np.ndarray, np.ndarray, list[int]]] = {}

    def _choice(self, kind: str, p: np.ndarray) -> ThreadChoice | None:
        """The process-wide ``ThreadChoice`` of this kind of pass over parameters of ``p``'s shape
        (shared by every optimizer of the process: the load it adapts to is the machine's, and a
        job's next run, e.g. the refit, starts from what was learnt)."""
        if p.size < PARALLEL_MIN or p.ndim == 0 or trainer_threads() == 1:
            return None
        key = (kind, p.shape, p.dtype.str)
        with _CHOICES_LOCK:
            choice = _CHOICES.get(key)
            if choice is None:
                choice = _CHOICES[key] = ThreadChoice(trainer_threads())
        return choice

    def _run(self, kind: str, p: np.ndarray, make: Any) -> float:
        """Run a pass over ``p`` as tasks: ``make(bounds)`` returns ``run(task, worker)`` for the row
        ``bounds`` of the tasks; the thread count is the parameter's ``ThreadChoice`` (timed).
        Returns the pass's wall time in seconds."""
        choice = self._choice(kind, p)
        threads = choice.pick() if choice is not None else None
        tasks, threads = _split(p, self._work, threads)
        run = make(_bounds(p.shape[0] if p.ndim else 1, tasks))
        started = time.perf_counter()
        run_tasks(run, tasks, threads)
        elapsed = time.perf_counter() - started
        if choice is not None:
            choice.record(threads, elapsed)
        return elapsed

    def _ensure(self, params: Sequence[np.ndarray], grads: Sequence[Any]) -> None:
        if not self.m:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
            # The scaled form pays off where gradients are row-sparse (the hashed first layer) and
            # the update is exact (not lazy); coupled L2 makes the gradient dense anyway.
            scaled = not self.sparse_updates and not (self._coupled_decay() and any(_decays(p) for p in params))
            self.scales = [[1.0, 1.0] if scaled and isinstance(g, RowSparse) else None for g in grads]
            self._packs = {}
        elif len(self.scales) != len(self.m):
            self.scales = [None] * len(self.m)
        if not self._work:
            self._work.append(_Scratch())

    def _coupled_decay(self) -> float:
        return self.weight_decay

    def _decay_factor(self, p: np.ndarray, lr: float) -> Any:
        """The factor decoupled weight decay multiplies ``p`` by this step (AdamW), or None."""
        return None

    def _decoupled_decay(self, p: np.ndarray, lr: float) -> None:
        factor = self._decay_factor(p, lr)
        if factor is not None:
            p *= factor

    def _buf(self, n: int, dtype: Any) -> np.ndarray:
        return self._work[0].get("chunk", min(n, _CHUNK), dtype)

    def step(self, params: Sequence[np.ndarray], grads: Sequence[Any], lr: float) -> None:
        self._ensure(params, grads)
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        # Bias corrections folded into the step size (as in the Adam paper, Algorithm 1 note).
        # Python floats, not NumPy float64 scalars: under NEP 50 those would upcast float32 math.
        step_size = float(lr) * math.sqrt(1.0 - b2 ** self.t) / (1.0 - b1 ** self.t)
        eps_hat = self.eps * math.sqrt(1.0 - b2 ** self.t)
        wd_coupled = self._coupled_decay()
        packed: dict[Any, list[int]] = {}
        plain_grads: dict[int, np.ndarray] = {}
        for i, (p, g, m, v, scales) in enumerate(zip(params, grads, self.m, self.v, self.scales)):
            if wd_coupled and _decays(p):
                g = _with_l2(g, p, wd_coupled)
            if scales is not None:
                self._scaled(p, g, m, v, scales, lr, step_size, eps_hat)
                continue
            if isinstance(g, RowSparse):
                if self.sparse_updates:
                    self._lazy(p, g, m, v, lr, step_size, eps_hat)
                else:
                    self._fused_rows(p, g, m, v, lr, step_size, eps_hat)
                continue
            g = np.asarray(g)
            if p.size < PARALLEL_MIN and g.dtype == p.dtype == m.dtype == v.dtype and g.shape == p.shape:
                packed.setdefault(p.dtype, []).append(i)
                plain_grads[i] = g
            else:
                self._dense(p, g, m, v, lr, step_size, eps_hat)
        for dtype, idx in packed.items():
            self._packed_step(params, idx, [plain_grads[i] for i in idx], dtype, lr, step_size, eps_hat)
        fold = self.t % RENORM_EVERY == 0 and any(s is not None for s in self.scales)
        flush = self.t % FLUSH_EVERY == 0
        if fold or flush:
            factors: list[float | None] = []
            arrays: list[np.ndarray] = []
            for m, v, scales in zip(self.m, self.v, self.scales):
                fm = fv = None
                if fold and scales is not None:
                    fm, fv = scales[0], scales[1]
                    scales[0] = scales[1] = 1.0
                if fm is not None or flush:
                    arrays += [m, v]
                    factors += [fm, fv]
            for a, factor in zip(arrays, factors):
                _chunked_pass(a, self._work, lambda c, b, mask, f=factor: _fold_flush_chunk(c, b, mask, f, flush))

    def _packed_step(self, params: Sequence[np.ndarray], idx: list[int], grads: list[np.ndarray], dtype: Any,
                     lr: float, step_size: float, eps_hat: float) -> None:
        """The dense Adam update of several small parameters at once, on their packed m and v.
        Element for element the operations of the unpacked update, so the same bits."""
        b1, b2 = self.beta1, self.beta2
        mflat, vflat, offsets = self._pack(tuple(idx), dtype)
        ws = self._work[0]
        n = mflat.size
        gflat = ws.get("packed_g", n, dtype)
        np.concatenate([g.reshape(-1) for g in grads], out=gflat)
        t = ws.get("packed_t", n, dtype)
        _moments(mflat, vflat, gflat, t, b1, b2)
        for i in idx:
            self._decoupled_decay(params[i], lr)
        np.sqrt(vflat, out=t)
        t += eps_hat
        np.divide(mflat, t, out=t)
        t *= step_size
        for j, i in enumerate(idx):
            p = params[i]
            np.subtract(p, t[offsets[j]:offsets[j + 1]].reshape(p.shape), out=p)

    def _pack(self, idx: tuple[int, ...], dtype: Any) -> tuple[np.ndarray, np.ndarray, list[int]]:
        key = (idx, np.dtype(dtype))
        pack = self._packs.get(key)
        if pack is None:
            sizes = [self.m[i].size for i in idx]
            offsets = [0]
            for s in sizes:
                offsets.append(offsets[-1] + s)
            mflat, vflat = np.empty(offsets[-1], dtype), np.empty(offsets[-1], dtype)
            for j, i in enumerate(idx):
                lo, hi = offsets[j], offsets[j + 1]
                mflat[lo:hi] = self.m[i].reshape(-1)
                vflat[lo:hi] = self.v[i].reshape(-1)
                self.m[i] = mflat[lo:hi].reshape(self.m[i].shape)
                self.v[i] = vflat[lo:hi].reshape(self.v[i].shape)
            pack = (mflat, vflat, offsets)
            self._packs = {key: pack} if not self._packs else {**self._packs, key: pack}
        return pack

    def _dense(self, p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, lr: float, step_size: float,
               eps_hat: float) -> None:
        """The plain dense Adam update of a large parameter: moments, decoupled decay and weights
        chunk by chunk while the chunk is in cache, row ranges on several threads."""
        b1, b2 = self.beta1, self.beta2
        if not (p.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous) or g.shape != p.shape:
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            self._decoupled_decay(p, lr)
            p -= step_size * m / (np.sqrt(v) + eps_hat)
            return
        decay = self._decay_factor(p, lr)
        gf = np.ascontiguousarray(g).reshape(-1)
        pf, mf, vf = p.reshape(-1), m.reshape(-1), v.reshape(-1)
        per_row = pf.size // max(1, p.shape[0]) if p.ndim else 1

        def make(bounds: list[int]) -> Any:
            return lambda i, worker: run(bounds, i, worker)

        def run(bounds: list[int], i: int, worker: int) -> None:
            buf = self._work[worker].get("chunk", _CHUNK, p.dtype)
            for lo in range(bounds[i] * per_row, bounds[i + 1] * per_row, _CHUNK):
                hi = min(bounds[i + 1] * per_row, lo + _CHUNK)
                b, gc, mc, vc, pc = buf[:hi - lo], gf[lo:hi], mf[lo:hi], vf[lo:hi], pf[lo:hi]
                _moments(mc, vc, gc, b, b1, b2)
                if decay is not None:
                    pc *= decay
                np.sqrt(vc, out=b)
                b += eps_hat
                np.divide(mc, b, out=b)
                b *= step_size
                pc -= b
        self._run("dense", p, make)

    def _scaled(self, p: np.ndarray, g: np.ndarray | RowSparse, m: np.ndarray, d: np.ndarray, scales: list[float],
                lr: float, step_size: float, eps_hat: float) -> None:
        """The exact dense Adam step on the scaled moments (module doc): the decay of every row is
        two scalar multiplications, the gradient touches its rows only, and the weight update is
        one fused chunked pass. Row ranges of a large layer are tasks shared by several threads (threads.py):
        each does its touched rows, then its weights."""
        b1, b2 = self.beta1, self.beta2
        scales[0] *= b1
        scales[1] *= math.sqrt(b2)
        sm, sd = scales
        c1, c2 = (1.0 - b1) / sm, (1.0 - b2) / (sd * sd)
        rows_only = isinstance(g, RowSparse) and 2 * len(g.rows) < g.shape[0]
        if not rows_only:  # a dense gradient, or a row-sparse one touching most rows: whole-array passes are
            # cheaper than gathering and scattering most rows (an untouched row computes sqrt(d'^2) = d')
            g = np.ascontiguousarray(g.to_dense() if isinstance(g, RowSparse) else g)
            if g.shape != p.shape or not (p.flags.c_contiguous and m.flags.c_contiguous and d.flags.c_contiguous):
                raise ValueError("the scaled Adam update needs C-contiguous arrays of one shape")
        decay = self._decay_factor(p, lr)
        k, e = step_size * sm / sd, eps_hat / sd
        pf, mf, df = p.reshape(-1), m.reshape(-1), d.reshape(-1)
        n_rows = p.shape[0]
        per_row = pf.size // max(1, n_rows)
        # The compiled loops (kernels.py) once they pay: the same operations on the same float32
        # scalars as the NumPy code below (NEP 50 casts a Python float to the array's dtype), so the
        # same bits whichever runs.
        compiled = kernels.compiled()
        f = p.dtype.type
        fc1, fc2, fk, fe = f(c1), f(c2), f(k), f(e)
        fdecay = decay if decay is not None else f(1.0)

        def make(bounds: list[int]) -> Any:
            cuts = np.searchsorted(g.rows, bounds).tolist() if rows_only else []
            return lambda i, worker: run(bounds, cuts, i, worker)

        def run(bounds: list[int], cuts: list[int], i: int, worker: int) -> None:
            lo0, hi0 = bounds[i] * per_row, bounds[i + 1] * per_row
            if compiled is not None:
                if rows_only:
                    r = g.rows[cuts[i]:cuts[i + 1]]
                    if len(r):
                        compiled.scaled_rows(m.reshape(n_rows, -1), d.reshape(n_rows, -1), r,
                                             g.values[cuts[i]:cuts[i + 1]].reshape(len(r), -1), fc1, fc2)
                else:
                    compiled.scaled_dense(mf[lo0:hi0], df[lo0:hi0], g.reshape(-1)[lo0:hi0], fc1, fc2)
                compiled.scaled_weights(pf[lo0:hi0], mf[lo0:hi0], df[lo0:hi0], fk, fe, fdecay, decay is not None)
                return
            ws = self._work[worker]
            buf = ws.get("chunk", _CHUNK, p.dtype)
            if rows_only:
                r, G = g.rows[cuts[i]:cuts[i + 1]], g.values[cuts[i]:cuts[i + 1]]
                if len(r):
                    shape = (len(r),) + p.shape[1:]
                    t = ws.get("rows_t", G.size, p.dtype).reshape(shape)
                    np.multiply(G, G, out=t)
                    t *= c2
                    mr = np.take(m, r, axis=0, out=ws.get("rows_m", G.size, p.dtype).reshape(shape), mode="clip")
                    dr = np.take(d, r, axis=0, out=ws.get("rows_d", G.size, p.dtype).reshape(shape), mode="clip")
                    dr *= dr
                    dr += t
                    np.sqrt(dr, out=dr)
                    d[r] = dr
                    np.multiply(G, c1, out=t)
                    mr += t
                    m[r] = mr
            for lo in range(lo0, hi0, _CHUNK):
                hi = min(hi0, lo + _CHUNK)
                b, mc, dc, pc = buf[:hi - lo], mf[lo:hi], df[lo:hi], pf[lo:hi]
                if not rows_only:
                    gc = g.reshape(-1)[lo:hi]
                    np.multiply(gc, c1, out=b)
                    mc += b
                    np.multiply(gc, gc, out=b)
                    b *= c2
                    dc *= dc
                    dc += b
                    np.sqrt(dc, out=dc)
                if decay is not None:
                    pc *= decay
                np.add(dc, e, out=b)
                np.divide(mc, b, out=b)
                b *= k
                pc -= b
        kind = ("rows" if rows_only else "scaled") + (" compiled" if compiled is not None else "")
        elapsed = self._run(kind, p, make)
        if compiled is None:
            kernels.charge(elapsed)

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

    def state_dict(self) -> dict[str, Any]:
        # "scales": per parameter None (m, v are Adam's moments) or [sm, sd] (m, v hold the scaled
        # m' and d'; see the module doc), stored as they are so a resume is bit-exact.
        return {"name": self.name, "t": self.t, "m": list(self.m), "v": list(self.v),
                "scales": [list(s) if s is not None else None for s in self.scales],
                "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps, "weight_decay": self.weight_decay,
                "sparse_updates": self.sparse_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"optimizer state is for {state.get('name')!r}, not {self.name!r}")
        self.t = int(state["t"])
        self.m = [np.array(a) for a in state["m"]]
        self.v = [np.array(a) for a in state["v"]]
        scales = state.get("scales") or [None] * len(self.m)  # older checkpoints: plain moments
        self.scales = [[float(s[0]), float(s[1])] if s is not None else None for s in scales]
        self._packs = {}  # the loaded arrays are packed again on the next step


class AdamW(Adam):
    name = "adamw"

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.01,
                 sparse_updates: bool = False):
        super().__init__(beta1, beta2, eps, weight_decay, sparse_updates)

    def _coupled_decay(self) -> float:
        return 0.0

    def _decay_factor(self, p: np.ndarray, lr: float) -> Any:
        if self.weight_decay and _decays(p):
            return p.dtype.type(1.0 - float(lr) * self.weight_decay)
        return None


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
        self._work: list[_Scratch] = []

    def step(self, params: Sequence[np.ndarray], grads: Sequence[Any], lr: float) -> None:
        if self.momentum and not self.velocity:
            self.velocity = [np.zeros_like(p) for p in params]
        self.t += 1
        if self.momentum and self.t % FLUSH_EVERY == 0:
            _flush_tiny(self.velocity, self._work)
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
