"""When the trainer's hot update runs as compiled loops (compiled_kernels.py) instead of NumPy passes.

The compiled loops give the same bits as the NumPy code (compiled_kernels.py), so which one runs is
purely a matter of speed and may change in the middle of a job. Loading them costs a process
~0.3 s once (numba's import and its on-disk cache; ~0.6 s for the very first compile of an
installation), which a short job would never earn back. ``TRAINHOUSE_TRAINER_KERNELS`` (read once per process):

* ``auto`` (the default): NumPy until this process's optimizers have spent ``COMPILE_AFTER_S``
  in the passes the kernels replace, then compiled: a job that has already spent that much there
  is long enough to earn the load back, while the many short jobs (a few seconds) never pay it;
* ``compiled``: from the first step (an error at start when numba cannot be imported);
* ``numpy``: never (e.g. where numba has no wheel for the platform).

In ``auto``, a numba that cannot be imported or compile leaves the trainer on NumPy, logged once.
"""
from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from types import ModuleType
from typing import Mapping

ENV_KERNELS = "TRAINHOUSE_TRAINER_KERNELS"
MODES = ("auto", "compiled", "numpy")
COMPILE_AFTER_S = 0.5

log = logging.getLogger("trainhouse.trainer.kernels")

_lock = threading.Lock()
_mode: str | None = None
_spent = 0.0
_compiled: ModuleType | None = None
_failed = False


def resolve_mode(environ: Mapping[str, str] | None = None) -> str:
    """The mode ``environ`` (default ``os.environ``) asks for; ``ValueError`` naming the variable
    when it is not one of ``MODES``, or when it asks for ``compiled`` and numba cannot be imported."""
    env = os.environ if environ is None else environ
    raw = (env.get(ENV_KERNELS) or "auto").strip().lower()
    if raw not in MODES:
        raise ValueError(f"{ENV_KERNELS} must be one of {', '.join(MODES)}, got {raw!r}")
    if raw == "compiled":
        try:
            importlib.import_module("numba")
        except ImportError as exc:
            raise ValueError(f"{ENV_KERNELS}=compiled needs numba, which cannot be imported: {exc}") from exc
    return raw


def mode() -> str:
    global _mode
    if _mode is None:
        _mode = resolve_mode()
    return _mode


def use(new_mode: str) -> None:
    """Switch this process to ``new_mode`` now (benchmarks that compare the two; tests); the
    compiled kernels load at once for ``compiled``. Results do not change (module doc)."""
    global _mode
    if new_mode not in MODES:
        raise ValueError(f"kernel mode must be one of {', '.join(MODES)}, got {new_mode!r}")
    _mode = new_mode
    if new_mode == "compiled":
        load()


def compiled() -> ModuleType | None:
    """The compiled kernels if they should run now (module doc), else None (run the NumPy code)."""
    current = mode()
    if current == "numpy":
        return None
    if _compiled is not None:
        return _compiled
    if _failed or (current == "auto" and _spent < COMPILE_AFTER_S):
        return None
    return load()


def charge(seconds: float) -> None:
    """Time spent in NumPy passes that the kernels would replace (what ``auto`` waits for)."""
    global _spent
    _spent += seconds


def load() -> ModuleType | None:
    """Import and compile the kernels now (once per process; thread-safe). None if that failed,
    which only ``auto`` tolerates."""
    global _compiled, _failed
    with _lock:
        if _compiled is None and not _failed:
            try:
                from trainhouse.core.trainer import compiled_kernels as kernels
                started = time.perf_counter()
                _warm(kernels)
                _compiled = kernels
                log.info("trainer update runs compiled from now on (loaded in %.2f s, after %.2f s in NumPy "
                         "passes; mode %s)", time.perf_counter() - started, _spent, mode())
            except Exception as exc:  # noqa: BLE001 - numba missing or failing: NumPy still gives the same bits
                if mode() == "compiled":
                    raise
                _failed = True
                log.warning("trainer kernels stay on NumPy: %s: %s", type(exc).__name__, exc)
    return _compiled


def _warm(kernels: ModuleType) -> None:
    """Compile (or load from numba's cache) the float32 specialisations, the trainer's dtype, on the
    calling thread, so that no pool thread compiles in the middle of a step."""
    import numpy as np
    f = np.float32
    m, d, p = np.zeros((2, 2), f), np.ones((2, 2), f), np.zeros(4, f)
    kernels.scaled_rows(m, d, np.array([1], np.int64), np.ones((1, 2), f), f(0.1), f(0.001))
    kernels.scaled_dense(m.reshape(-1), d.reshape(-1), p, f(0.1), f(0.001))
    kernels.scaled_weights(p, m.reshape(-1), d.reshape(-1), f(0.001), f(1e-8), f(1.0), False)


def _reset_in_child() -> None:
    """A forked child gets its own lock (one held by a parent thread at the fork stays held)."""
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)
