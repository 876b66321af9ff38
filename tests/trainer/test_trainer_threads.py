"""The trainer's worker threads (threads.py): settings, task scheduling, and updates that are bit
for bit the same whatever the thread count."""
import threading

import numpy as np
import pytest

from trainhouse.core.trainer import make_optimizer, optimizers, threads
from trainhouse.core.trainer.sparse_ops import RowSparse


@pytest.mark.parametrize("env,cpus,expected", [
    ({}, 2, 2),
    ({}, 16, threads.AUTO_MAX),
    ({"TRAINHOUSE_TRAINER_THREADS": "auto"}, 3, 3),
    ({"TRAINHOUSE_TRAINER_THREADS": " 3 "}, 1, 3),          # explicit: taken as given
    ({"OMP_NUM_THREADS": "1"}, 8, 1),                         # numerical libraries pinned to one thread
    ({"OPENBLAS_NUM_THREADS": "2"}, 8, 2),
    ({"OPENBLAS_NUM_THREADS": "1", "TRAINHOUSE_TRAINER_THREADS": "2"}, 8, 2),
    ({"MKL_NUM_THREADS": ""}, 2, 2),
])
def test_thread_count_settings(env, cpus, expected):
    assert threads.resolve_threads(env, cpus=cpus) == expected


@pytest.mark.parametrize("bad", ["0", "-2", "two", "1.5"])
def test_bad_thread_setting_is_an_error_naming_the_variable(bad):
    with pytest.raises(ValueError, match="TRAINHOUSE_TRAINER_THREADS"):
        threads.resolve_threads({"TRAINHOUSE_TRAINER_THREADS": bad}, cpus=2)


def test_run_tasks_runs_every_task_once_and_reraises_errors():
    seen: list[int] = []
    workers: set[int] = set()
    lock = threading.Lock()

    def fn(i: int, worker: int) -> None:
        with lock:
            seen.append(i)
            workers.add(worker)
    threads.run_tasks(fn, 200, 3)
    assert sorted(seen) == list(range(200)) and workers <= {0, 1, 2}

    def failing(i: int, worker: int) -> None:
        if i == 7:
            raise RuntimeError("task 7 failed")
    with pytest.raises(RuntimeError, match="task 7"):
        threads.run_tasks(failing, 20, 3)


@pytest.mark.parametrize("name,kw", [("adam", {}), ("adamw", {"weight_decay": 0.05}), ("adam", {"weight_decay": 0.01}),
                                     ("sgd", {"momentum": 0.9})])
def test_parallel_updates_are_bit_identical_to_one_thread(name, kw, monkeypatch):
    """Large parameters split into row-range tasks on 3 threads (small thresholds so that a test-sized
    layer takes that path) give exactly the single-thread parameters and optimizer state, across
    scale folds and subnormal flushes, with row-sparse gradients touching few rows or most rows."""
    monkeypatch.setattr(optimizers, "PARALLEL_MIN", 64)
    monkeypatch.setattr(optimizers, "TASK_ELEMENTS", 40)
    monkeypatch.setattr(optimizers, "_CHUNK", 16)
    shape = (97, 5)
    results = []
    for n_threads in (1, 3):
        monkeypatch.setattr(optimizers, "trainer_threads", lambda n=n_threads: n)
        rng = np.random.default_rng(7)
        W = rng.standard_normal(shape).astype(np.float32)
        D = rng.standard_normal((30, 4)).astype(np.float32)   # a dense large parameter
        b = np.zeros(5, np.float32)
        opt = make_optimizer(name, **kw)
        for t in range(2 * optimizers.RENORM_EVERY + 5):
            k = 60 if t % 9 == 0 else 6                       # most rows (whole-array branch) or few
            rows = np.unique(rng.integers(0, shape[0], k)).astype(np.int64)
            g = RowSparse(rows, rng.standard_normal((len(rows), 5)).astype(np.float32), shape)
            opt.step([W, D, b], [g, rng.standard_normal(D.shape).astype(np.float32),
                                 rng.standard_normal(5).astype(np.float32)], 0.01)
        state = opt.state_dict()
        arrays = state.get("m", []) + state.get("v", []) + state.get("velocity", [])
        results.append(([W, D, b], [np.array(a) for a in arrays]))
    (p1, s1), (p3, s3) = results
    assert all(np.array_equal(a, c) for a, c in zip(p1, p3))
    assert len(s1) == len(s3) and all(np.array_equal(a, c) for a, c in zip(s1, s3))


def test_packed_small_parameters_resume_bit_exactly():
    """The small dense parameters' moments live packed in one buffer; a state saved and loaded into
    a new optimizer (packed again on its first step) continues bit-exactly."""
    rng = np.random.default_rng(2)
    params = [rng.standard_normal(s).astype(np.float32) for s in ((6, 3), (3,), (3, 2), (2,))]
    grads = [[rng.standard_normal(p.shape).astype(np.float32) for p in params] for _ in range(30)]
    o1 = make_optimizer("adam")
    for g in grads[:10]:
        o1.step(params, g, 0.01)
    copy = [p.copy() for p in params]
    o2 = make_optimizer("adam")
    o2.load_state_dict({k: ([np.array(a) for a in v] if k in ("m", "v") else v) for k, v in o1.state_dict().items()})
    for g in grads[10:]:
        o1.step(params, g, 0.01)
        o2.step(copy, g, 0.01)
    assert all(np.array_equal(a, c) for a, c in zip(params, copy))


def test_thread_choice_follows_the_faster_option_and_keeps_probing():
    """Both options are timed first; then the faster runs, and the other is re-timed now and then,
    so a change (the machine got busy) switches the choice."""
    choice = threads.ThreadChoice(2)
    cost = {1: 3.0, 2: 1.0}
    picks = []
    for _ in range(64):
        o = choice.pick()
        picks.append(o)
        choice.record(o, cost[o])
    warm = picks[:2 * threads.ThreadChoice.WARMUP]
    assert sorted(warm) == [1] * threads.ThreadChoice.WARMUP + [2] * threads.ThreadChoice.WARMUP
    later = picks[2 * threads.ThreadChoice.WARMUP:]
    assert later.count(2) > 0.8 * len(later) and 1 in later   # mostly the faster, the other probed
    cost = {1: 1.0, 2: 5.0}                                   # two threads became slow
    for _ in range(6 * threads.ThreadChoice.PROBE_EVERY):
        o = choice.pick()
        choice.record(o, cost[o])
    assert [choice.pick() for _ in range(5)].count(1) >= 4
    assert threads.ThreadChoice(1).pick() == 1


def test_training_service_settings_refuse_a_bad_thread_count(monkeypatch):
    from trainhouse.common.config import TrainingSettings
    monkeypatch.setenv("TRAINHOUSE_TRAINER_THREADS", "lots")
    with pytest.raises(SystemExit, match="TRAINHOUSE_TRAINER_THREADS"):
        TrainingSettings.from_env()
    monkeypatch.setenv("TRAINHOUSE_TRAINER_THREADS", "3")
    assert TrainingSettings.from_env().trainer_threads == 3


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_pool(monkeypatch):
    """Worker processes may be forked from a process whose pool already ran: the child must not wait
    for the parent's threads (it has none) and must produce the same update."""
    import os
    monkeypatch.setattr(optimizers, "PARALLEL_MIN", 64)
    monkeypatch.setattr(optimizers, "TASK_ELEMENTS", 40)
    monkeypatch.setattr(optimizers, "trainer_threads", lambda: 2)
    monkeypatch.setattr(threads.ThreadChoice, "pick", lambda self: 2)   # always the pool

    def run() -> np.ndarray:
        rng = np.random.default_rng(3)
        W = rng.standard_normal((50, 4)).astype(np.float32)
        opt = make_optimizer("adam")
        for _ in range(5):
            opt.step([W], [rng.standard_normal(W.shape).astype(np.float32)], 0.01)
        return W
    expected = run()                      # the parent's pool now exists
    pid = os.fork()
    if pid == 0:                          # child: exit code 0 only if the update ran and matched
        ok = False
        try:
            ok = np.array_equal(run(), expected)
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
