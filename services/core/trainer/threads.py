"""The trainer's own worker threads: elementwise passes over a large layer split across cores.

NumPy releases the GIL inside ufunc loops and ``take``/fancy assignment on numeric arrays, so the
exact Adam update of the hashed first layer (every one of its 1M weights moves every step, see
optimizers.py) can run its disjoint row ranges on several threads at once. Each element goes through
the same operations in the same order whatever the split, so the result is bit-identical for any
thread count (seeds and checkpoint resumes do not depend on the machine).

How many threads (``trainer_threads()``), read once per process:

* ``TRAINHOUSE_TRAINER_THREADS``: a positive integer, or ``auto`` (the default);
* ``auto``: the CPUs this process may run on, at most 4 (a (16384, 64) layer gains nothing from
  more), and no more than ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS`` when
  one is set: an operator who pinned the numerical libraries to one thread per process (several
  worker processes on one machine) gets a single-threaded trainer too.

The pool is created on first use, persists for the process and is re-created in a forked child
(a child does not inherit the parent's threads).
"""
from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Mapping

ENV_THREADS = "TRAINHOUSE_TRAINER_THREADS"
_LIBRARY_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
AUTO_MAX = 4

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_threads: int | None = None


def _available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def resolve_threads(environ: Mapping[str, str] | None = None, cpus: int | None = None) -> int:
    """The thread count the settings in ``environ`` (default ``os.environ``) ask for; raises
    ``ValueError`` naming the variable when ``TRAINHOUSE_TRAINER_THREADS`` is not a positive
    integer or ``auto``."""
    env = os.environ if environ is None else environ
    raw = (env.get(ENV_THREADS) or "").strip()
    if raw and raw.lower() != "auto":
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            raise ValueError(f"{ENV_THREADS} must be a positive integer or 'auto', got {raw!r}")
        return value
    limit = min(AUTO_MAX, cpus if cpus is not None else _available_cpus())
    for var in _LIBRARY_VARS:
        text = (env.get(var) or "").strip()
        if text.isdigit() and int(text) >= 1:
            limit = min(limit, int(text))
    return max(1, limit)


def trainer_threads() -> int:
    """The process's thread count for the trainer (see the module doc), resolved on first call."""
    global _threads
    if _threads is None:
        _threads = resolve_threads()
    return _threads


class ThreadChoice:
    """Picks, for one recurring pass (an optimizer's update of one parameter), between one thread
    and ``trainer_threads()`` by the wall time they take *now*.

    Measured on the 2-core bench machine shared with other jobs (issue #20): at load 3-4 two threads
    took 15-25% off the update of the (16384, 64) hashed layer, at load 6-8 one thread was as fast or
    faster (the second thread waits to be scheduled). Since the result is bit-identical
    for any thread count, the choice can follow the machine: both are timed on the first calls
    (``WARMUP`` each, alternating), then the one with the lower median of its last ``WINDOW`` times
    runs, and every ``PROBE_EVERY``-th call re-times the other so a change of load is noticed."""

    WARMUP = 3
    WINDOW = 5
    PROBE_EVERY = 16

    def __init__(self, threads: int):
        self.options = [1, threads] if threads > 1 else [1]
        self.times: dict[int, list[float]] = {o: [] for o in self.options}
        self.calls = 0
        self._lock = threading.Lock()  # shared by the optimizers of a process

    def pick(self) -> int:
        """The thread count for this call (time it and pass it to ``record``)."""
        if len(self.options) == 1:
            return 1
        with self._lock:
            return self._pick()

    def _pick(self) -> int:
        self.calls += 1
        for o in self.options:  # warm-up: alternate until each has WARMUP times
            if len(self.times[o]) < self.WARMUP and (self.calls % 2 == self.options.index(o) % 2
                                                     or all(len(self.times[x]) >= self.WARMUP
                                                            for x in self.options if x != o)):
                return o
        best = min(self.options, key=self._median)
        if self.calls % self.PROBE_EVERY == 0:
            return next(o for o in self.options if o != best)
        return best

    def record(self, option: int, seconds: float) -> None:
        with self._lock:
            window = self.times[option]
            window.append(seconds)
            if len(window) > self.WINDOW:
                del window[0]

    def _median(self, option: int) -> float:
        window = sorted(self.times[option])
        return window[len(window) // 2] if window else 0.0


def run_tasks(fn: Callable[[int, int], None], tasks: int, threads: int) -> None:
    """``fn(task, worker)`` for every task in ``range(tasks)``, shared by the calling thread and up to
    ``threads - 1`` pool threads; ``worker`` (0 = the caller) names the participant, so each can
    use its own scratch space. Tasks must write disjoint memory.

    Participants claim tasks one at a time from a shared counter (dynamic scheduling), and the
    caller never waits for a helper that has not started: on a loaded machine, where a helper may be
    descheduled for milliseconds, the caller simply does more tasks itself (a static split would
    wait for the slowest thread, which made two threads slower than one at load 4 on 2 cores).
    Returns when every task is done; re-raises the first error."""
    if threads <= 1 or tasks <= 1:
        for i in range(tasks):
            fn(i, 0)
        return
    claim = itertools.count()
    finished = itertools.count(1)
    all_done = threading.Event()
    errors: list[BaseException] = []

    def participate(worker: int) -> None:
        while True:
            i = next(claim)  # atomic under the GIL
            if i >= tasks:
                return
            try:
                if not errors:
                    fn(i, worker)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                errors.append(exc)
            finally:
                if next(finished) == tasks:
                    all_done.set()
    pool = _get_pool(threads - 1)
    for w in range(1, min(threads, tasks)):
        pool.submit(participate, w)
    participate(0)
    all_done.wait()
    if errors:
        raise errors[0]


def _reset_in_child() -> None:
    """A forked child has none of the parent's threads, and a lock held at the fork stays held."""
    global _lock, _pool
    _lock = threading.Lock()
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)


def _get_pool(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid() or _pool._max_workers < workers:
            _pool = ThreadPoolExecutor(max_workers=max(workers, trainer_threads() - 1),
                                       thread_name_prefix="trainhouse-trainer")
            _pool_pid = os.getpid()
        return _pool
