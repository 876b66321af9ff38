"""The training loop every paradigm shares: epochs of shuffled mini-batches over hashed sparse
rows, optimizer + scheduler, validation, early stopping, checkpoints, stop requests, budget,
divergence.

A paradigm (``SupervisedTrainer``, ``FewShotTrainer``, ``TransferTrainer``,
``ReinforcementTrainer``) subclasses ``LoopTrainer`` and supplies its data and a few hooks:
how the model starts (``_init_mlp``), the loss of one batch (``_batch``), evaluation
(``_evaluate``), which layers train (``_first_trainable_layer``) and its extra state. The loop
is deterministic: every random choice (split, init, order, dropout) comes from generators seeded
by ``config.seed``, so the same seed and data give the same metrics, and a checkpoint holds the
full state so that resuming continues bit-identically.

The trainer talks to its host only through ``TrainerCallbacks``: events out, a stop flag in,
and a checkpoint directory. It knows nothing about gRPC, jobs or storage.
"""
from __future__ import annotations

import abc

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field, fields
from typing import Any, Sequence

import numpy as np

from trainhouse.core.configs.training import SupervisedConfig
from trainhouse.core.errors import InvalidArgument, TrainhouseError
from trainhouse.core.featurizer import SparseRows
from trainhouse.core.trainer.checkpoint import TrainingState, load_checkpoint, save_checkpoint
from trainhouse.core.trainer.cost import Budget, BudgetExceeded, PriceModel, token_counts
from trainhouse.core.trainer.examples import Example, LabelMap, Targets, parse_examples
from trainhouse.core.trainer.mlp import MLP, Grads, TrainedModel, feedback_loss
from trainhouse.core.trainer.optimizers import make_optimizer
from trainhouse.core.trainer.schedulers import make_scheduler
from trainhouse.core.trainer.sparse_ops import RowSparse

EVENT_KINDS = ("epoch", "step", "metric", "checkpoint", "status", "log", "budget")
# The trainer never emits "status" itself: hosts map "status" payloads to *job* states, and the
# training loop ending is not the job ending (export and registration follow). Start, resume,
# completion and stop are reported as "log" events and by the returned TrainResult.

# Config fields that may differ when resuming: they do not change the computation.
# A "best" checkpoint is the whole training state at the best validation so far. Epochs of a few
# milliseconds improve many times a second, and writing each (weights, best weights, optimizer
# moments: 16 MB for a hashed-sparse model, then fsync) was 220 MB/s of disk per job, the tail of
# every fsync on the machine (README "Benchmarks": event -> subscriber p99 31-37 -> 17-19 ms).
# The state at an improvement is kept in memory and written at most once per this many seconds,
# and always before another checkpoint, a stop, a divergence or the end, so a job that ends or
# stops (and every checkpoint it resumes from) finds its best on disk.
BEST_CHECKPOINT_MIN_INTERVAL_S = 5.0
_RESUME_MUTABLE = {"checkpoint_interval", "max_budget_usd"}


class TrainingDiverged(TrainhouseError):
    """The loss (or the weights) became NaN/inf: the learning rate is too high for this data.

    ``metadata["last_checkpoint"]`` names the last good checkpoint (kept on disk), if any.
    """

    grpc_code = "FAILED_PRECONDITION"
    reason = "diverged"


class TrainerCallbacks:
    """Host hooks. Subclass and override (or pass any object with these members); defaults are no-ops.

    ``on_event(kind, payload)`` receives, as plain JSON-ready dicts:

    * ``step``       {epoch, step, total_steps, loss, learning_rate} after every optimizer step
    * ``epoch``      {epoch, total_epochs, step, total_steps, loss, <metrics>, validation_loss,
                     validation_<metrics>, learning_rate, elapsed_s} once per epoch (supervised
                     metrics: accuracy; reinforcement: reward). Validation fields are None
                     without a validation set; loss/metrics are running training values.
    * ``metric``     {name, value, epoch, step} for every validation and epoch-level metric,
                     including ``cost_usd`` (and ``tokens_processed``) once per epoch
    * ``checkpoint`` {checkpoint_id, path, kind, epoch, step, metrics, best, size_bytes}
    * ``budget``     {cost_usd, budget_usd, fraction, level} once at 75 % and once at 90 % of
                     ``maxBudgetUsd`` (level "warning_75" / "warning_90")
    * ``log``        {level, message}: data diagnostics, curriculum stages, early stopping, ...

    ``should_stop`` is polled before every batch; when it returns True the trainer writes a
    resumable checkpoint of kind ``stop_checkpoint_kind`` (if ``checkpoint_dir`` is set) and
    returns a result with ``stopped=True``.
    """

    checkpoint_dir: str | None = None
    stop_checkpoint_kind: str = "cancel"

    def on_event(self, kind: str, payload: dict[str, Any]) -> None:
        return None

    def should_stop(self) -> bool:
        return False


class CallbackHost:
    """How a trainer talks to its host through ``self.callbacks`` (any object with some of the
    TrainerCallbacks members; missing ones behave as the defaults). Shared by every trainer."""

    callbacks: Any

    def _emit(self, kind: str, payload: dict[str, Any]) -> None:
        on_event = getattr(self.callbacks, "on_event", None)
        if on_event is not None:
            on_event(kind, payload)

    def _should_stop(self) -> bool:
        should_stop = getattr(self.callbacks, "should_stop", None)
        return bool(should_stop()) if should_stop is not None else False

    def _checkpoint_dir(self) -> str | None:
        return getattr(self.callbacks, "checkpoint_dir", None)

    def _log(self, message: str, level: str = "info") -> None:
        self._emit("log", {"level": level, "message": message})


@dataclass
class CheckpointInfo:
    checkpoint_id: str
    path: str
    kind: str              # "interval" | "best" | "cancel"/<stop kind> | "budget" | "final"
    epoch: int
    step: int
    metrics: dict[str, float]
    best: bool
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class TrainResult:
    """What every trainer returns.

    ``model`` exports with ``export_onnx``; ``metrics`` describe the returned weights plus
    ``cost_usd``/``tokens_processed``/``compute_seconds``; ``train_examples`` /
    ``validation_examples`` are the split the run really used (``Example`` objects, or
    ``FeedbackRecord`` objects for reinforcement: both have ``.input`` and ``.to_dict()``).
    """

    model: TrainedModel
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    checkpoints: list[CheckpointInfo] = field(default_factory=list)
    stopped: bool = False
    method: str = "supervised"
    train_examples: list[Any] = field(default_factory=list)
    validation_examples: list[Any] = field(default_factory=list)


def stratified_split(examples: Sequence[Any], split: float,
                     rng: np.random.Generator, key: Any = None) -> tuple[list[Any], list[Any]]:
    """Hold out ``round(split * n)`` examples (at least 1, at most n-1), proportionally per
    group (default: (output, is-incorrect)), so rare outputs are not all drawn into one side.

    Each group is shuffled; its j-th member gets the key (j + 0.5) / group_size and the smallest
    keys go to validation (random tie-break), which allocates proportionally without rounding
    every small group down to zero.
    """
    n = len(examples)
    if split <= 0 or n < 2:
        return list(examples), []
    key = key or (lambda e: (e.expected_output, e.feedback == "incorrect"))
    n_val = min(n - 1, max(1, int(round(split * n))))
    groups: dict[Any, list[int]] = {}
    for i, e in enumerate(examples):
        groups.setdefault(key(e), []).append(i)
    keys = np.empty(n)
    for members in groups.values():
        perm = rng.permutation(len(members))
        for rank, j in enumerate(perm):
            keys[members[j]] = (rank + 0.5) / len(members)
    tiebreak = rng.random(n)
    chosen = set(np.lexsort((tiebreak, keys))[:n_val].tolist())
    train = [e for i, e in enumerate(examples) if i not in chosen]
    val = [e for i, e in enumerate(examples) if i in chosen]
    return train, val


def epoch_pool(config: Any, levels: np.ndarray, epoch: int) -> np.ndarray:
    """The training examples (indices) of one epoch: all of them, or under a curriculum those
    whose level the epoch's stage admits."""
    stage = config.stage_for_epoch(epoch)
    if stage is None:
        return np.arange(len(levels))
    i, st = stage
    pool = np.flatnonzero(levels <= st.level)
    if len(pool) == 0:
        raise InvalidArgument(f"curriculum.stages[{i}].level", f"no training example has level <= {st.level}")
    return pool


def planned_steps(config: Any, train: Sequence[Any]) -> int:
    """Optimizer steps of a whole run over `train` (what the trainer's ``total_steps`` will be)."""
    levels = np.array([getattr(e, "level", 1) for e in train], dtype=np.int64)
    return sum(math.ceil(len(epoch_pool(config, levels, e)) / config.batch_size) for e in range(config.total_epochs))


def evaluate(mlp: MLP, rows: SparseRows, targets: Targets, batch_size: int = 512) -> tuple[float, float | None]:
    """Eval-mode (loss, accuracy). Accuracy counts positive examples only: an "incorrect"
    example says what the answer is not, so it has no right answer to match."""
    n = len(rows)
    if n == 0:
        return float("nan"), None
    loss_sum = 0.0
    correct = 0
    positives = 0
    for start in range(0, n, batch_size):
        idx = np.arange(start, min(start + batch_size, n))
        t = targets.take(idx)
        logits, _ = mlp.forward(rows.take(idx))
        loss, _, _ = feedback_loss(logits, t.y, t.coef, t.negative)
        loss_sum += loss * len(idx)
        pos = ~t.negative
        correct += int((logits.argmax(axis=1) == t.y)[pos].sum())
        positives += int(pos.sum())
    return loss_sum / n, (correct / positives if positives else None)


def fingerprint(*lists: Sequence[Any]) -> str:
    """Digest of the training data (anything with ``to_dict``), stored in checkpoints so a
    resume with other data is refused."""
    h = hashlib.blake2b(digest_size=16)
    for items in lists:
        payload: list[Any] = []
        for e in items:
            if isinstance(e, Example):  # the layout checkpoints have always used for examples
                payload.append([e.input, e.expected_output, e.feedback, e.weight, e.level])
            else:
                d = e.to_dict()
                d.pop("metadata", None)
                payload.append(d)
        h.update(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def as_examples(items: Sequence[Any] | None, prefix: str) -> list[Example] | None:
    if items is None:
        return None
    if all(isinstance(e, Example) for e in items):
        return list(items)
    return parse_examples(items, prefix)


def clean_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def _frozen(value: Any) -> Any:
    """A copy that later training steps cannot change: arrays and containers copied (the weights
    and optimizer moments are updated in place), everything else shared.

    Of a TrainingState, three parts are shared instead: the history (rows are appended, never
    changed), the best weights (replaced by new copies at the next improvement, never changed in
    place), and the weights themselves while no step has run since the best ones were copied from
    them (``best_step == global_step``: a "best" checkpoint right after its validation). A best
    state is frozen at every improvement, each epoch of a small job; copying all of it (weights,
    best weights, Adam moments: 16 MB for a hashed model) took ~17% of such a job's time."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, TrainingState):
        shared: dict[str, Any] = {"history": list(value.history), "best_params": value.best_params}
        if value.best_params is not None and value.best_step == value.global_step:
            shared["params"] = value.best_params
        return TrainingState(**{f.name: shared[f.name] if f.name in shared else _frozen(getattr(value, f.name))
                                for f in fields(value)})
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_frozen(v) for v in value)
    return value


def _finite(mlp: MLP) -> bool:
    return all(np.isfinite(W).all() and np.isfinite(b).all() for W, b in mlp.params)


class LoopTrainer(CallbackHost, abc.ABC):
    """Base of every paradigm's trainer; see the module docstring for the hooks."""

    paradigm = "supervised"
    # names of the running training metrics (besides "loss") in the order they are reported
    metric_names: tuple[str, ...] = ("accuracy",)

    config: SupervisedConfig
    train_examples: list[Any]
    validation_examples: list[Any]
    label_map: LabelMap
    x_train: SparseRows
    x_val: SparseRows

    def __init__(self, config: SupervisedConfig, callbacks: Any = None, price_model: PriceModel | None = None):
        self.config = config
        # Duck-typed: any object with on_event/should_stop/checkpoint_dir works; missing ones default.
        self.callbacks = callbacks or TrainerCallbacks()
        self.price_model = price_model or PriceModel.from_env()

    # -- set-up shared by the paradigms ----------------------------------------------------------
    def _prepare(self) -> None:
        """After the subclass set train/validation data: schedule sizes and accounting."""
        cfg = self.config
        bs = cfg.batch_size
        self.has_validation = len(self.validation_examples) > 0
        self.levels = np.array([getattr(e, "level", 1) for e in self.train_examples], dtype=np.int64)
        self.epoch_pools = [epoch_pool(cfg, self.levels, e) for e in range(cfg.total_epochs)]
        self.total_steps = sum(math.ceil(len(p) / bs) for p in self.epoch_pools)
        self.steps_per_epoch = math.ceil(len(self.train_examples) / bs)
        self.validation_steps = cfg.validation_steps or max(1, math.ceil(self.steps_per_epoch / 4))
        self.fingerprint = fingerprint(self.train_examples, self.validation_examples)
        self.train_tokens = token_counts([e.input for e in self.train_examples])
        self.val_tokens = int(token_counts([e.input for e in self.validation_examples]).sum())


    @property
    def featurizer_config(self) -> Any:
        return self.config.featurizer

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        return tuple(self.config.hidden_sizes)

    # -- hooks --------------------------------------------------------------------------------------
    def _init_mlp(self) -> MLP:
        """The model before the first step (He init; paradigms override)."""
        return MLP.init(self.featurizer_config.dim, self.hidden_sizes, len(self.label_map),
                        np.random.default_rng([self.config.seed, 1]))

    def _first_trainable_layer(self, mlp: MLP) -> int:
        """Layers below this index are frozen (no gradient computed, never updated)."""
        return 0

    @abc.abstractmethod
    def _batch(self, mlp: MLP, rows: np.ndarray, rng: np.random.Generator,
               state: TrainingState) -> tuple[float, Grads, dict[str, float]]:
        """Loss, gradients (of the trainable layers) and running-metric sums for one batch."""

    @abc.abstractmethod
    def _epoch_metrics(self, acc: dict[str, float]) -> dict[str, float | None]:
        """Running training metrics of the epoch from the sums ``_batch`` returned."""

    @abc.abstractmethod
    def _evaluate(self, mlp: MLP, split: str) -> dict[str, float | None]:
        """Eval-mode metrics on "train" or "validation": {"loss": ..., <metric_names>...}."""

    def _selection_value(self, metrics: dict[str, float | None]) -> float:
        """Lower is better: what early stopping and the best checkpoint track."""
        return float(metrics["loss"])  # type: ignore[arg-type]

    def _diagnostics(self) -> None:
        """Log what explains a disappointing model before any training happens."""

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        return None

    def _model_metadata(self) -> dict[str, Any]:
        return {}


    # -- state ----------------------------------------------------------------------------------
    def _fresh_state(self) -> tuple[TrainingState, MLP, Any, Any, np.random.Generator]:
        cfg = self.config
        mlp = self._init_mlp()
        optimizer, scheduler = self._make_opt_sched()
        rng = np.random.default_rng([cfg.seed, 0])
        state = TrainingState(params={}, optimizer={}, scheduler={}, rng_state={}, epoch=0, global_step=0,
                              order=None, position=0, label_map=self.label_map.to_list(),
                              featurizer=self.featurizer_config.to_dict(), config=cfg.to_dict(),
                              data_fingerprint=self.fingerprint)
        return state, mlp, optimizer, scheduler, rng

    def _make_opt_sched(self) -> tuple[Any, Any]:
        cfg = self.config
        optimizer = make_optimizer(cfg.optimizer, momentum=cfg.momentum, nesterov=cfg.nesterov,
                                   weight_decay=cfg.weight_decay, sparse_updates=cfg.sparse_updates)
        scheduler = make_scheduler(cfg.scheduler_type, cfg.learning_rate, self.total_steps, cfg.warmup_steps,
                                   step_size=cfg.step_size * self.steps_per_epoch, gamma=cfg.gamma)
        return optimizer, scheduler

    def _resumed_state(self, path: str) -> tuple[TrainingState, MLP, Any, Any, np.random.Generator]:
        try:
            state = load_checkpoint(path)
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidArgument("resumeFrom", f"cannot read checkpoint: {exc}") from exc
        mine = self.config.to_dict()
        changed = sorted(k for k in set(mine) | set(state.config)
                         if k not in _RESUME_MUTABLE and mine.get(k) != state.config.get(k))
        if changed:
            raise InvalidArgument("resumeFrom", f"checkpoint was written with a different config: {', '.join(changed)}")
        if state.data_fingerprint != self.fingerprint or state.label_map != self.label_map.to_list():
            raise InvalidArgument("resumeFrom", "checkpoint was written for different training data")
        if state.extra.get("paradigm", "supervised") != self.paradigm:
            raise InvalidArgument("resumeFrom", f"checkpoint is of a {state.extra.get('paradigm')} run")
        mlp = MLP.from_state_dict(state.params)
        optimizer, scheduler = self._make_opt_sched()
        optimizer.load_state_dict(state.optimizer)
        scheduler.load_state_dict(state.scheduler)
        rng = np.random.default_rng()
        rng.bit_generator.state = state.rng_state
        state.config = mine
        self._load_extra_state(state.extra.get("paradigm_state") or {})
        return state, mlp, optimizer, scheduler, rng

    # -- checkpoints ------------------------------------------------------------------------------
    def _metrics_now(self, state: TrainingState) -> dict[str, float]:
        latest: dict[str, Any] = dict(state.history[-1]) if state.history else {}
        if state.last_validation:
            latest.update(state.last_validation)
        names = ["loss", *self.metric_names]
        return clean_metrics({k: latest.get(k) for k in names + [f"validation_{n}" for n in names]})

    def _checkpoint(self, state: TrainingState, mlp: MLP, optimizer: Any, scheduler: Any,
                    rng: np.random.Generator, kind: str, checkpoint_id: str, elapsed: float,
                    out: list[CheckpointInfo]) -> None:
        directory = self._checkpoint_dir()
        if not directory:
            return
        if not _finite(mlp):  # never overwrite a good checkpoint with NaN weights
            self._diverged(state, "weights became NaN/inf", out)
        state.params = mlp.state_dict()
        state.optimizer = optimizer.state_dict()
        state.scheduler = scheduler.state_dict()
        state.rng_state = rng.bit_generator.state
        state.elapsed_s = elapsed
        state.extra = {"paradigm": self.paradigm, "paradigm_state": self._extra_state(),
                       "budget": self._budget.state()}
        if kind == "best" and time.monotonic() - self._best_written_at < BEST_CHECKPOINT_MIN_INTERVAL_S:
            # The state as it is now, kept until it is due (or superseded by a better one).
            self._pending_best = (_frozen(state), self._metrics_now(state))
            return
        if kind != "best":
            self._write_pending_best(out)  # the best on disk always matches the state's best_*
        self._write(state, kind, checkpoint_id, self._metrics_now(state), out)

    def _write(self, state: TrainingState, kind: str, checkpoint_id: str, metrics: dict[str, float],
               out: list[CheckpointInfo]) -> None:
        path = os.path.join(self._checkpoint_dir(), f"{checkpoint_id}.npz")
        size = save_checkpoint(path, state)
        if kind == "best":
            self._best_written_at = time.monotonic()
            self._pending_best = None
        info = CheckpointInfo(checkpoint_id, path, kind, state.epoch, state.global_step, metrics, kind == "best", size)
        out.append(info)
        self._emit("checkpoint", info.to_dict())

    def _write_pending_best(self, out: list[CheckpointInfo], only_if_due: bool = False) -> None:
        """Write the best state kept in memory: when it is due, or before anything that must find
        it on disk (another checkpoint, a stop, a divergence, the end)."""
        if self._pending_best is None or (
                only_if_due and time.monotonic() - self._best_written_at < BEST_CHECKPOINT_MIN_INTERVAL_S):
            return
        snapshot, metrics = self._pending_best
        self._write(snapshot, "best", "best", metrics, out)

    def _diverged(self, state: TrainingState, what: str, checkpoints: list[CheckpointInfo]) -> None:
        if self._checkpoint_dir():
            self._write_pending_best(checkpoints)  # the last good weights are the best ones
        last = checkpoints[-1].path if checkpoints else ""
        self._log(f"{what} at step {state.global_step + 1}"
                  + (f"; last good checkpoint {os.path.basename(last)} is kept" if last else ""), "error")
        raise TrainingDiverged(f"training diverged at step {state.global_step + 1} ({what}); "
                               f"lower learningRate (now {self.config.learning_rate:g})",
                               metadata={"last_checkpoint": last, "step": str(state.global_step + 1)})

    # -- main loop --------------------------------------------------------------------------------
    def train(self, resume_from: str | None = None) -> TrainResult:
        """Run (or continue) training; see ``TrainerCallbacks`` for events and stopping.

        Raises ``TrainingDiverged`` (reason "diverged") on NaN/inf and ``BudgetExceeded``
        (reason "budget_exceeded", after writing a checkpoint) when ``maxBudgetUsd`` is spent.
        """
        cfg = self.config
        self._budget = Budget(cfg.max_budget_usd, self.price_model, self._emit)
        self._best_written_at, self._pending_best = -math.inf, None
        if resume_from:
            state, mlp, optimizer, scheduler, rng = self._resumed_state(resume_from)
            self._budget.load(state.extra.get("budget"))
        else:
            state, mlp, optimizer, scheduler, rng = self._fresh_state()
        first = self._first_trainable_layer(mlp)
        trainable = [a for pair in mlp.params[first:] for a in pair]
        t0 = time.perf_counter()
        base_elapsed = state.elapsed_s
        elapsed = lambda: base_elapsed + time.perf_counter() - t0  # noqa: E731
        checkpoints: list[CheckpointInfo] = []
        early = cfg.early_stopping and self.has_validation
        bs = cfg.batch_size
        if resume_from:
            self._log(f"resumed from {os.path.basename(resume_from)} at epoch {state.epoch}, step {state.global_step}")
        else:
            self._diagnostics()

        def validate(epoch_label: int) -> bool:
            """Evaluate, update the best weights; True when this is a new best."""
            metrics = self._evaluate(mlp, "validation")
            self._budget.add_tokens(self.val_tokens)
            state.last_validation = {f"validation_{k}": v for k, v in metrics.items()}
            state.last_validation["step"] = state.global_step
            for name, value in metrics.items():
                if value is not None:
                    self._emit("metric", {"name": f"validation_{name}", "value": value, "epoch": epoch_label,
                                          "step": state.global_step})
            value = self._selection_value(metrics)
            if state.best_val_loss is None or value < state.best_val_loss - cfg.min_delta:
                state.best_val_loss = value
                state.best_epoch = epoch_label
                state.best_step = state.global_step
                state.best_params = {k: [a.copy() for a in v] for k, v in mlp.state_dict().items()}
                state.epoch_accum["improved"] = 1.0
                return True
            return False

        def over_budget() -> None:
            if self._budget.check(elapsed()):
                cost = self._budget.cost(elapsed())
                self._checkpoint(state, mlp, optimizer, scheduler, rng, "budget",
                                 f"budget-step-{state.global_step:08d}", elapsed(), checkpoints)
                self._log(f"budget of {cfg.max_budget_usd:g} USD exceeded (cost {cost:.6f} USD) at step "
                          f"{state.global_step}; checkpoint saved", "error")
                last = checkpoints[-1].path if checkpoints else ""
                raise BudgetExceeded(f"budget of {cfg.max_budget_usd:g} USD exceeded: cost {cost:.6f} USD after "
                                     f"{state.global_step} steps", metadata={"cost_usd": f"{cost:.6f}",
                                                                             "checkpoint": last})

        while state.epoch < cfg.total_epochs and not state.stopped_early:
            epoch_label = state.epoch + 1
            if state.order is None:
                pool = self.epoch_pools[state.epoch]
                stage = cfg.stage_for_epoch(state.epoch)
                if stage is not None and (state.epoch == 0 or cfg.stage_for_epoch(state.epoch - 1) != stage):
                    self._log(f"curriculum stage {stage[0] + 1}: level <= {stage[1].level}, "
                              f"{len(pool)} examples, {stage[1].duration} epochs")
                state.order = pool[rng.permutation(len(pool))]
                state.position = 0
                state.epoch_accum = {"loss_sum": 0.0, "count": 0.0, "improved": 0.0}
            n_batches = math.ceil(len(state.order) / bs)
            acc = state.epoch_accum
            while state.position < n_batches:
                if self._should_stop():
                    return self._stopped(state, mlp, optimizer, scheduler, rng, elapsed(), checkpoints)
                rows = state.order[state.position * bs:(state.position + 1) * bs]
                lr = scheduler.current_lr
                with np.errstate(over="ignore", invalid="ignore"):  # NaN/inf is detected just below
                    loss, grads, sums = self._batch(mlp, rows, rng, state)
                if not math.isfinite(loss):
                    self._diverged(state, f"loss became {loss}", checkpoints)
                flat: list[Any] = [g for pair in grads for g in pair]
                if cfg.max_grad_norm is not None:
                    norm = math.sqrt(sum(g.sq_norm() if isinstance(g, RowSparse)
                                         else float(np.sum(g.astype(np.float64) ** 2)) for g in flat))
                    if norm > cfg.max_grad_norm:
                        factor = np.float32(cfg.max_grad_norm / norm)
                        flat = [g.scaled(factor) if isinstance(g, RowSparse) else g * factor for g in flat]
                optimizer.step(trainable, flat, lr)
                scheduler.step()
                state.global_step += 1
                state.position += 1
                self._budget.add_tokens(int(self.train_tokens[rows].sum()))
                acc["loss_sum"] += loss * len(rows)
                acc["count"] += len(rows)
                for k, v in sums.items():
                    acc[k] = acc.get(k, 0.0) + v
                self._emit("step", {"epoch": epoch_label, "step": state.global_step, "total_steps": self.total_steps,
                                    "loss": loss, "learning_rate": lr})
                if (self.has_validation and cfg.validation_frequency == "step" and state.position < n_batches
                        and state.global_step % self.validation_steps == 0):
                    if validate(epoch_label):
                        self._checkpoint(state, mlp, optimizer, scheduler, rng, "best", "best", elapsed(), checkpoints)
                    self._write_pending_best(checkpoints, only_if_due=True)
                over_budget()

            # End of epoch: validation, early-stopping bookkeeping, history, checkpoints.
            new_best = self.has_validation and validate(epoch_label)
            stage = cfg.stage_for_epoch(state.epoch)
            # Under a curriculum, earlier stages are deliberately partial training: patience only
            # counts epochs of the final stage (the best weights are still tracked throughout).
            in_final_stage = stage is None or stage[0] == len(cfg.curriculum_stages) - 1
            if early and in_final_stage:
                state.bad_evals = 0 if acc.get("improved") else state.bad_evals + 1
                if state.bad_evals >= cfg.patience and state.epoch + 1 < cfg.total_epochs:
                    state.stopped_early = True
            state.epoch += 1
            state.order = None
            state.position = 0
            running = self._epoch_metrics(acc)
            entry: dict[str, Any] = {"epoch": state.epoch, "total_epochs": cfg.total_epochs,
                                     "step": state.global_step, "total_steps": self.total_steps,
                                     "loss": acc["loss_sum"] / acc["count"]}
            entry.update({k: running.get(k) for k in self.metric_names})
            for name in ("loss", *self.metric_names):
                key = f"validation_{name}"
                entry[key] = state.last_validation.get(key) if self.has_validation and state.last_validation else None
            entry["learning_rate"] = scheduler.lr_at(state.global_step - 1)
            entry["elapsed_s"] = elapsed()
            state.history.append(entry)
            self._emit("epoch", dict(entry))
            for name in ("loss", *self.metric_names, "learning_rate"):
                if entry[name] is not None:
                    self._emit("metric", {"name": name, "value": entry[name], "epoch": state.epoch,
                                          "step": state.global_step})
            self._emit("metric", {"name": "cost_usd", "value": self._budget.cost(elapsed()), "epoch": state.epoch,
                                  "step": state.global_step})
            self._emit("metric", {"name": "tokens_processed", "value": float(self._budget.tokens),
                                  "epoch": state.epoch, "step": state.global_step})
            if new_best:
                self._checkpoint(state, mlp, optimizer, scheduler, rng, "best", "best", elapsed(), checkpoints)
            self._write_pending_best(checkpoints, only_if_due=True)
            if state.epoch % cfg.checkpoint_interval == 0 and state.epoch < cfg.total_epochs:
                self._checkpoint(state, mlp, optimizer, scheduler, rng, "interval", f"epoch-{state.epoch:04d}",
                                 elapsed(), checkpoints)
            if state.stopped_early:
                self._log(f"early stopping after epoch {state.epoch}: validation has not improved for "
                          f"{cfg.patience} epochs (best {state.best_val_loss:.4f} at epoch {state.best_epoch})")
            over_budget()

        if early and state.best_params is not None:
            mlp.load_state_dict(state.best_params)
        state.finished = True
        self._checkpoint(state, mlp, optimizer, scheduler, rng, "final", "final", elapsed(), checkpoints)
        result = self._result(state, mlp, checkpoints, stopped=False, elapsed=elapsed())
        self._log(f"training finished after {state.epoch} epochs, {state.global_step} steps"
                  + (" (early stopping)" if state.stopped_early else ""))
        return result

    def _stopped(self, state: TrainingState, mlp: MLP, optimizer: Any, scheduler: Any, rng: np.random.Generator,
                 elapsed: float, checkpoints: list[CheckpointInfo]) -> TrainResult:
        kind = getattr(self.callbacks, "stop_checkpoint_kind", None) or "cancel"
        if self._checkpoint_dir():
            self._checkpoint(state, mlp, optimizer, scheduler, rng, kind, f"{kind}-step-{state.global_step:08d}",
                             elapsed, checkpoints)
        else:
            self._log("stop requested but no checkpoint_dir: the stop checkpoint was not written", "warning")
        self._log(f"stopped on request at epoch {state.epoch + 1}, step {state.global_step}")
        return self._result(state, mlp, checkpoints, stopped=True, elapsed=elapsed)

    def _result(self, state: TrainingState, mlp: MLP, checkpoints: list[CheckpointInfo], stopped: bool,
                elapsed: float) -> TrainResult:
        """Final metrics describe the returned weights (best ones after early stopping)."""
        train_m = self._evaluate(mlp, "train")
        val_m = self._evaluate(mlp, "validation") if self.has_validation else {k: None for k in train_m}
        metrics: dict[str, Any] = dict(train_m)
        metrics.update({f"validation_{k}": v for k, v in val_m.items()})
        metrics.update({"epochs_run": state.epoch, "steps": state.global_step, "best_epoch": state.best_epoch,
                        "stopped_early": state.stopped_early, "cost_usd": self._budget.cost(elapsed),
                        "tokens_processed": self._budget.tokens, "compute_seconds": elapsed})
        meta = {"paradigm": self.paradigm, "config": self.config.to_dict(), "metrics": metrics,
                **self._model_metadata()}
        model = TrainedModel(params=[(W.copy(), b.copy()) for W, b in mlp.params], label_map=self.label_map,
                             featurizer_config=self.featurizer_config, hidden_sizes=tuple(mlp.hidden_sizes),
                             metadata=meta)
        return TrainResult(model=model, history=[dict(h) for h in state.history], metrics=metrics,
                           checkpoints=checkpoints, stopped=stopped, method=self.paradigm,
                           train_examples=list(self.train_examples),
                           validation_examples=list(self.validation_examples))
