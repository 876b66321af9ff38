"""Training throughput of our NumPy trainer vs the same MLP in PyTorch (CPU), in the same run.

    .venv/bin/python bench/trainer.py [--quick] [--threads N] [--repeats R]

Prints training samples/s and the ratio NumPy / PyTorch for:

* **hashed-sparse** inputs — the featurizer's rows (dim 2^14, ~100 nonzeros each): our
  ``SupervisedTrainer.train()`` end to end (sparse first layer, exact dense Adam; also the old
  dense-batch path and the lazy ``sparseUpdates`` variant for reference) vs a PyTorch loop over
  the same rows, the same MLP (Linear(dim, 64) -> ReLU -> Dropout(0.1) -> Linear(64, k)), the same
  Adam, batch size and epochs. PyTorch gets the fastest of four variants: a dense batch into
  ``X @ W1`` or ``F.embedding_bag`` with per-sample weights (its idiomatic sparse path), each
  with the default or the fused (``fused=True``) Adam. Like our trainer, the PyTorch job ends
  with one eval-mode pass over the training set (final metrics).
* **dense** inputs — 512 dense float features per example: our MLP training step (forward,
  feedback loss, backward, Adam) vs PyTorch's (default or fused Adam, the faster), the same
  architecture.

Batch sizes 64 and 256. Each configuration runs NumPy and PyTorch alternately, five times, and
keeps each side's best time, so load from other processes hits both sides alike. Threads, unless
``--threads N`` sets both sides to N (OpenBLAS/OpenMP env before NumPy is imported,
``torch.set_num_threads``): our trainer runs as a training job runs it, in a worker process of
the TrainingService, which starts its workers with one OpenBLAS thread
(services/training/__main__.py: several jobs share the cores) and so one trainer thread (the
Adam update of the hashed layer, ``TRAINHOUSE_TRAINER_THREADS``, services/core/trainer/threads.py);
PyTorch gets the faster of its default thread count and one thread for every variant.
The hashed layer's update runs as a long job runs it: the compiled loops that
``TRAINHOUSE_TRAINER_KERNELS=auto`` switches to once a job has spent 0.5 s in NumPy passes
(services/core/trainer/kernels.py), loaded before timing as PyTorch is imported before timing;
the notes give the same update as NumPy passes (bit-identical results) in the same run. The
thread counts are printed. On this 2-core VM single runs of either side swing by up to ~1.5x
between invocations (CPU shared with other tenants), so each side keeps its best of five. PyTorch is optional (``.venv/bin/pip install
torch==2.13.0``); without it the NumPy figures are printed with a note.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import result  # noqa: E402


def _threads_arg() -> int | None:
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            return int(sys.argv[i + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return None


THREADS = _threads_arg()
if THREADS:  # must happen before NumPy (and its OpenBLAS) is imported
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(THREADS)
else:  # as the TrainingService starts its workers (PyTorch's MKL/OpenMP threads are not OpenBLAS's)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainhouse.core.featurizer import FeaturizerConfig, HashingFeaturizer, SparseRows  # noqa: E402
from trainhouse.core.trainer import kernels  # noqa: E402
from trainhouse.core.trainer.examples import Example  # noqa: E402
from trainhouse.core.trainer.mlp import MLP, loss_and_grads  # noqa: E402
from trainhouse.core.trainer.optimizers import make_optimizer  # noqa: E402
from trainhouse.core.trainer.supervised_config import SupervisedConfig  # noqa: E402
from trainhouse.core.trainer.supervised_trainer import SupervisedTrainer  # noqa: E402
from trainhouse.core.trainer.threads import trainer_threads  # noqa: E402
from tests.intents import make_examples  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # optional bench dependency
    torch = None  # type: ignore[assignment]

HIDDEN = 64
LR = 0.001
DROPOUT = 0.1
REPEATS = 5


CLOCK = time.perf_counter  # --cpu-time: time.thread_time


def best_of(fns: dict[str, Callable[[], None]], repeats: int | None = None) -> dict[str, float]:
    """Alternate the candidates ``repeats`` times; the best time of each (wall, or CPU with --cpu-time)."""
    best = {k: float("inf") for k in fns}
    for _ in range(repeats or REPEATS):
        for name, fn in fns.items():
            t0 = CLOCK()
            fn()
            best[name] = min(best[name], CLOCK() - t0)
    return best


# -- NumPy side ------------------------------------------------------------------------------------
def numpy_trainer(examples: list[Example], batch: int, epochs: int, kernel_mode: str | None = None,
                  **options: Any) -> Callable[[], None]:
    """Our trainer end to end (data featurized beforehand, as a job does before its first step);
    ``kernel_mode`` runs it with that ``TRAINHOUSE_TRAINER_KERNELS`` mode (then restores the
    process's)."""
    # The featurizer and the update rule are pinned: with 2,000 examples the "auto" settings would
    # pick the large-data ones (a 2^17-wide featurizer, lazy updates), not the problem PyTorch solves.
    options = {"sparse_updates": False, **options}
    cfg = SupervisedConfig(epochs=epochs, batch_size=batch, learning_rate=LR, validation_split=0.0,
                           early_stopping=False, hidden_sizes=(HIDDEN,), dropout=DROPOUT,
                           scheduler_type="constant", featurizer=FeaturizerConfig(), **options)
    trainer = SupervisedTrainer(cfg, examples)
    if kernel_mode is None:
        return lambda: trainer.train()

    def run() -> None:
        before = kernels.mode()
        kernels.use(kernel_mode)
        try:
            trainer.train()
        finally:
            kernels.use(before)
    return run


def numpy_dense_batches(examples: list[Example], batch: int, epochs: int) -> Callable[[], None]:
    """The previous dense path for reference: each batch densified to (batch, dim) before W1."""
    cfg = SupervisedConfig(epochs=epochs, batch_size=batch, learning_rate=LR, validation_split=0.0,
                           early_stopping=False, hidden_sizes=(HIDDEN,), dropout=DROPOUT, scheduler_type="constant",
                           featurizer=FeaturizerConfig(), sparse_updates=False)
    trainer = SupervisedTrainer(cfg, examples)
    x = trainer.x_train

    class Dense:  # a view of the rows whose take() densifies, so the loop runs the dense code path
        def take(self, rows: np.ndarray) -> np.ndarray:
            return x.to_dense(rows)
    trainer.x_train = Dense()  # type: ignore[assignment]

    def run() -> None:
        mlp = MLP.init(x.dim, (HIDDEN,), len(trainer.label_map), np.random.default_rng(1))
        opt = make_optimizer("adam")
        rng = np.random.default_rng(0)
        for _ in range(epochs):
            order = rng.permutation(len(x))
            for s in range(0, len(order), batch):
                rows = order[s:s + batch]
                t = trainer.t_train.take(rows)
                _, grads, _ = loss_and_grads(mlp, x.to_dense(rows), t.y, t.coef, t.negative, dropout=DROPOUT, rng=rng)
                opt.step(mlp.arrays(), [g for pair in grads for g in pair], LR)
    return run


def numpy_dense_steps(X: np.ndarray, y: np.ndarray, k: int, batch: int, epochs: int) -> Callable[[], None]:
    def run() -> None:
        mlp = MLP.init(X.shape[1], (HIDDEN,), k, np.random.default_rng(1))
        opt = make_optimizer("adam")
        rng = np.random.default_rng(0)
        coef, neg = np.ones(len(y)), np.zeros(len(y), bool)
        for _ in range(epochs):
            order = rng.permutation(len(X))
            for s in range(0, len(order), batch):
                rows = order[s:s + batch]
                _, grads, _ = loss_and_grads(mlp, X[rows], y[rows], coef[rows], neg[rows], dropout=DROPOUT, rng=rng)
                opt.step(mlp.arrays(), [g for pair in grads for g in pair], LR)
    return run


# -- PyTorch side ----------------------------------------------------------------------------------
def torch_loop(make_input: Callable[[np.ndarray], tuple], first: Callable[..., Any], dim: int, n: int,
               y: np.ndarray, k: int, batch: int, epochs: int, final_eval: bool = True,
               fused: bool = False, threads: int | None = None) -> Callable[[], None]:
    yt = torch.from_numpy(y)

    def run() -> None:
        if threads is None:
            return train()
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return train()
        finally:
            torch.set_num_threads(before)

    def train() -> None:
        torch.manual_seed(0)
        W1 = torch.nn.Parameter(torch.randn(dim, HIDDEN) * (2.0 / dim) ** 0.5)
        b1 = torch.nn.Parameter(torch.zeros(HIDDEN))
        W2 = torch.nn.Parameter(torch.randn(HIDDEN, k) * (2.0 / HIDDEN) ** 0.5)
        b2 = torch.nn.Parameter(torch.zeros(k))
        opt = torch.optim.Adam([W1, b1, W2, b2], lr=LR, fused=fused or None)
        rng = np.random.default_rng(0)
        for _ in range(epochs):
            order = rng.permutation(n)
            for s in range(0, n, batch):
                rows = order[s:s + batch]
                h = F.dropout(torch.relu(first(W1, *make_input(rows)) + b1), DROPOUT, training=True)
                loss = F.cross_entropy(h @ W2 + b2, yt[rows])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        if final_eval:  # our trainer ends with one eval-mode pass over the training set (final metrics)
            with torch.no_grad():
                for s in range(0, n, 512):
                    rows = np.arange(s, min(n, s + 512))
                    F.cross_entropy(torch.relu(first(W1, *make_input(rows)) + b1) @ W2 + b2, yt[rows])
    return run


def torch_thread_counts() -> list[int | None]:
    """PyTorch's thread counts to try: its default (None) and one thread, unless --threads fixed it."""
    return [None] if THREADS or torch.get_num_threads() == 1 else [None, 1]


def torch_sparse_variants(x: SparseRows, y: np.ndarray, k: int, batch: int, epochs: int) -> dict[str, Callable]:
    def dense_input(rows: np.ndarray) -> tuple:
        return (torch.from_numpy(x.to_dense(rows)),)

    def bag_input(rows: np.ndarray) -> tuple:
        b = x.take(rows)
        return (torch.from_numpy(b.indices), torch.from_numpy(b.indptr[:-1]), torch.from_numpy(b.values))

    def bag(W1: Any, idx: Any, offsets: Any, weights: Any) -> Any:
        return F.embedding_bag(idx, W1, offsets, mode="sum", per_sample_weights=weights)
    out = {}
    for fused in (False, True):
        for threads in torch_thread_counts():
            tag = (" + fused Adam" if fused else "") + (f", {threads} thread" if threads else "")
            out[f"torch dense batch{tag}"] = torch_loop(dense_input, lambda W1, X: X @ W1, x.dim, len(x), y, k,
                                                        batch, epochs, fused=fused, threads=threads)
            out[f"torch embedding_bag{tag}"] = torch_loop(bag_input, bag, x.dim, len(x), y, k, batch, epochs,
                                                          fused=fused, threads=threads)
    return out


# -- main ------------------------------------------------------------------------------------------
def main() -> None:
    global REPEATS, CLOCK
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer examples (a smoke run)")
    parser.add_argument("--threads", type=int, default=None, help="threads for both NumPy/BLAS and PyTorch")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="alternating runs per configuration")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time each run by the calling thread's CPU time instead of wall time: on a machine "
                             "loaded by other processes wall time mostly measures the scheduler. Only with "
                             "--threads 1, where both libraries compute on the calling thread (helper threads, "
                             "e.g. PyTorch's idle pools, are not charged)")
    args = parser.parse_args()
    REPEATS = max(1, args.repeats)
    if args.cpu_time:
        if args.threads != 1:
            parser.error("--cpu-time needs --threads 1")
        CLOCK = time.thread_time
    if torch is not None and args.threads:
        torch.set_num_threads(args.threads)
    per_intent, epochs = (150, 1) if args.quick else (500, 2)
    raw = make_examples(per_intent, seed=1)
    examples = [Example(e["input"], e["expected_output"]) for e in raw]
    labels = sorted({e.expected_output for e in examples})
    y = np.array([labels.index(e.expected_output) for e in examples], dtype=np.int64)
    x = HashingFeaturizer(FeaturizerConfig()).transform_sparse([e.input for e in examples])
    n, k = len(examples), len(labels)
    samples = n * epochs
    print(f"{n} examples x {epochs} epochs, {k} outputs, hidden {HIDDEN}, Adam lr {LR}, dropout {DROPOUT}")
    print(f"hashed features: dim {x.dim}, {x.nnz_per_row().mean():.0f} nonzeros per row on average")
    # As a long job runs (kernels.py: "auto" loads the compiled update once a job has spent 0.5 s in
    # the NumPy passes); a process-wide one-time cost, like importing PyTorch, so not timed.
    loaded = kernels.load() is not None if kernels.mode() != "numpy" else False
    print(f"update kernels: {'compiled (numba), bit-identical to the NumPy passes' if loaded else 'NumPy passes'} "
          f"({kernels.ENV_KERNELS}={kernels.mode()})")
    print(f"clock: {'calling thread CPU time' if args.cpu_time else 'wall time'}; "
          f"threads: numpy/BLAS {os.environ.get('OPENBLAS_NUM_THREADS')}, trainer {trainer_threads()} "
          f"({os.cpu_count()} cores)"
          + (f", torch best of {' and '.join(str(t or torch.get_num_threads()) for t in torch_thread_counts())} "
             f"(torch {torch.__version__})" if torch is not None else ""))
    if torch is None:
        print("NOTE: PyTorch is not installed (optional: .venv/bin/pip install torch==2.13.0); "
              "printing the NumPy figures only, no ratios.")
    print()
    print(f"{'input':<14} {'batch':>5} {'numpy samples/s':>16} {'torch samples/s':>16} {'ratio':>6}  notes")
    rows_out: list[tuple[str, int, float, float | None, str]] = []
    for batch in (64, 256):
        fns: dict[str, Callable[[], None]] = {
            "numpy": numpy_trainer(examples, batch, epochs),
            "numpy passes": numpy_trainer(examples, batch, epochs, kernel_mode="numpy"),
            "numpy lazy": numpy_trainer(examples, batch, epochs, sparse_updates=True),
            "numpy dense batches": numpy_dense_batches(examples, batch, epochs),
        }
        if torch is not None:
            fns.update(torch_sparse_variants(x, y, k, batch, epochs))
        t = best_of(fns)
        torch_best = min((v for name, v in t.items() if name.startswith("torch")), default=None)
        torch_name = min((name for name in t if name.startswith("torch")), key=t.get, default="")
        notes = (f"torch best: {torch_name.removeprefix('torch ')}; " if torch_best else "") + (
            f"the same update as NumPy passes (kernels off) {samples / t['numpy passes']:,.0f}/s, "
            f"numpy lazy sparseUpdates {samples / t['numpy lazy']:,.0f}/s, "
            f"numpy dense batches (old path) {samples / t['numpy dense batches']:,.0f}/s")
        rows_out.append(("hashed-sparse", batch, samples / t["numpy"], samples / torch_best if torch_best else None,
                         notes))
    dense_dim = 512
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((k, dense_dim)).astype(np.float32)
    Xd = (centers[y] + rng.standard_normal((n, dense_dim)).astype(np.float32)) / np.float32(np.sqrt(dense_dim))
    for batch in (64, 256):
        fns = {"numpy": numpy_dense_steps(Xd, y, k, batch, epochs)}
        if torch is not None:
            Xt = torch.from_numpy(Xd)
            for fused in (False, True):
                for threads in torch_thread_counts():
                    tag = (" + fused Adam" if fused else "") + (f", {threads} thread" if threads else "")
                    fns[f"torch{tag}"] = torch_loop(
                        lambda rows: (Xt[torch.from_numpy(rows)],), lambda W1, X: X @ W1, dense_dim, n, y, k, batch,
                        epochs, final_eval=False, fused=fused, threads=threads)
        t = best_of(fns)
        torch_best = min((v for name, v in t.items() if name.startswith("torch")), default=None)
        torch_name = min((name for name in t if name.startswith("torch")), key=t.get, default="")
        label = torch_name.removeprefix("torch").strip(" +") or "default Adam"
        rows_out.append((f"dense ({dense_dim})", batch, samples / t["numpy"],
                         samples / torch_best if torch_best else None,
                         (f"torch best: {label}; " if torch_best else "") + "training steps only (no trainer loop)"))
    for kind, batch, ours, theirs, notes in rows_out:
        ratio = f"{ours / theirs:6.2f}" if theirs else "   n/a"
        theirs_s = f"{theirs:16,.0f}" if theirs else f"{'n/a':>16}"
        print(f"{kind:<14} {batch:>5} {ours:16,.0f} {theirs_s} {ratio}  {notes}")
        if theirs:
            result(f"NumPy trainer, {kind} input, batch {batch}", ours, "samples/s", theirs, "PyTorch CPU")
    print("\nratio = NumPy samples/s / PyTorch samples/s (target >= 1.0); best of "
          f"{REPEATS} alternating runs each.")


if __name__ == "__main__":
    main()
