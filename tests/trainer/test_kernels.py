"""The compiled Adam kernels (services/core/trainer/compiled_kernels.py) give the NumPy code's bits,
and ``auto`` switches to them only after the NumPy passes have cost enough."""
from __future__ import annotations

import numpy as np
import pytest

from trainhouse.common.config import TrainingSettings
from trainhouse.core.trainer import kernels, make_optimizer, optimizers
from trainhouse.core.trainer.sparse_ops import RowSparse


@pytest.fixture
def kernel_mode(monkeypatch):
    """Set the process's kernel mode for one test (the module reads the variable once per process)."""
    def set_mode(mode: str, spent: float = 0.0) -> None:
        monkeypatch.setattr(kernels, "_mode", mode)
        monkeypatch.setattr(kernels, "_spent", spent)
        monkeypatch.setattr(kernels, "_compiled", None)
        monkeypatch.setattr(kernels, "_failed", False)
    return set_mode


def _gradients(steps: int, shape: tuple[int, int], seed: int) -> list[RowSparse]:
    """Mostly a few rows (the touched-rows branch), every fifth step most rows (the whole-array
    branch), gradients over many magnitudes so that rounding differences would show."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(steps):
        n = int(shape[0] * 0.8) if t % 5 == 0 else int(rng.integers(1, shape[0] // 4))
        rows = np.sort(rng.choice(shape[0], n, replace=False)).astype(np.int64)
        scale = np.float32(10.0) ** rng.integers(-6, 2, (n, 1)).astype(np.float32)
        out.append(RowSparse(rows, (rng.standard_normal((n, shape[1])) * scale).astype(np.float32), shape))
    return out


def _train(name: str, kw: dict, grads: list[RowSparse], shape: tuple[int, int], switch_at: int | None = None,
           set_mode=None) -> tuple[np.ndarray, list[np.ndarray]]:
    p = np.random.default_rng(7).standard_normal(shape).astype(np.float32)
    opt = make_optimizer(name, **kw)
    for t, g in enumerate(grads):
        if switch_at is not None and t == switch_at:
            set_mode("compiled")
        opt.step([p], [g], 0.01 * (1 - t / len(grads)) + 1e-4)
    return p, opt.m + opt.v


@pytest.mark.parametrize("name,kw", [("adam", {}), ("adamw", {"weight_decay": 0.05})])
def test_compiled_kernels_give_the_numpy_bits(name, kw, kernel_mode, monkeypatch):
    """Across scale folds and subnormal flushes (RENORM_EVERY, FLUSH_EVERY), on the touched-rows and
    the whole-array branch, with the layer split into row ranges on two threads: every weight and
    moment is bit-identical, whether the kernels run from the start or from the middle of a run."""
    monkeypatch.setattr(optimizers, "PARALLEL_MIN", 256)   # the small layer below splits into tasks
    monkeypatch.setattr(optimizers, "TASK_ELEMENTS", 256)
    shape = (400, 8)
    grads = _gradients(2 * optimizers.RENORM_EVERY + 9, shape, seed=1)
    kernel_mode("numpy")
    p_numpy, state_numpy = _train(name, kw, grads, shape)
    kernel_mode("compiled")
    p_compiled, state_compiled = _train(name, kw, grads, shape)
    assert kernels._compiled is not None
    kernel_mode("numpy")
    p_switched, state_switched = _train(name, kw, grads, shape, switch_at=70, set_mode=kernel_mode)
    assert not np.array_equal(p_numpy, np.random.default_rng(7).standard_normal(shape).astype(np.float32))
    for got in (p_compiled, p_switched):
        assert got.tobytes() == p_numpy.tobytes()
    for got in (state_compiled, state_switched):
        assert all(a.tobytes() == b.tobytes() for a, b in zip(got, state_numpy))


def test_compiled_kernels_run_instead_of_the_numpy_passes(kernel_mode):
    """In compiled mode the NumPy passes' scratch buffers are never allocated; in NumPy mode they are."""
    shape = (64, 4)
    grads = _gradients(3, shape, seed=2)[1:]   # touched-rows branch only
    for mode, uses_numpy in (("compiled", False), ("numpy", True)):
        kernel_mode(mode)
        opt = make_optimizer("adam")
        p = np.zeros(shape, np.float32)
        for g in grads:
            opt.step([p], [g], 0.01)
        names = {key[0] for ws in opt._work for key in ws.arrays}
        assert ("rows_t" in names) is uses_numpy


def test_auto_waits_until_the_numpy_passes_have_cost_enough(kernel_mode, monkeypatch):
    kernel_mode("auto")
    monkeypatch.setattr(kernels, "COMPILE_AFTER_S", 0.05)
    opt = make_optimizer("adam")
    shape = (2048, 64)
    p = np.zeros(shape, np.float32)
    grads = _gradients(4, shape, seed=3)
    opt.step([p], [grads[1]], 0.01)
    assert kernels.compiled() is None or kernels._spent >= 0.05  # (a very slow machine may pass 0.05 s at once)
    while kernels._spent < 0.05:
        for g in grads:
            opt.step([p], [g], 0.01)
    assert kernels.compiled() is not None


@pytest.mark.parametrize("value,expected", [(None, "auto"), ("auto", "auto"), (" Compiled ", "compiled"),
                                            ("numpy", "numpy")])
def test_mode_from_environment(value, expected):
    env = {} if value is None else {kernels.ENV_KERNELS: value}
    assert kernels.resolve_mode(env) == expected


def test_bad_mode_stops_the_training_service_at_start(monkeypatch):
    with pytest.raises(ValueError, match=kernels.ENV_KERNELS):
        kernels.resolve_mode({kernels.ENV_KERNELS: "fast"})
    monkeypatch.setenv(kernels.ENV_KERNELS, "fast")
    with pytest.raises(SystemExit, match=kernels.ENV_KERNELS):
        TrainingSettings.from_env()
