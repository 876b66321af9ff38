"""Supervised training of the hashed-n-gram MLP on labelled examples.

``SupervisedTrainer(config, train_examples, validation_examples, callbacks).train()`` returns a
``TrainResult``. The loop is deterministic: every random choice (split, init, data order,
dropout) comes from generators seeded by ``config.seed``, so the same seed and data give the same
metrics, and a checkpoint holds the full state so that resuming continues bit-identically.

The trainer talks to its host only through ``TrainerCallbacks``: events out, a stop flag in,
and a checkpoint directory. It knows nothing about gRPC, jobs or storage.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from services.common.errors import InvalidArgument, TrainhouseError
from services.common.featurizer import HashingFeaturizer, SparseRows
from services.training.trainer.checkpoint import TrainingState, load_checkpoint, save_checkpoint
from services.training.trainer.examples import Example, LabelMap, Targets, encode_targets, parse_examples
from services.training.trainer.mlp import MLP, TrainedModel, feedback_loss, loss_and_grads
from services.training.trainer.optimizers import make_optimizer
from services.training.trainer.schedulers import make_scheduler
from services.training.trainer.supervised_config import SupervisedConfig

EVENT_KINDS = ("epoch", "step", "metric", "checkpoint", "status", "log")
# The trainer never emits "status" itself: hosts map "status" payloads to *job* states, and the
# training loop ending is not the job ending (export and registration follow). Start, resume,
# completion and stop are reported as "log" events and by the returned TrainResult.

# Config fields that may differ when resuming: they do not change the computation.
_RESUME_MUTABLE = {"checkpoint_interval"}


class TrainingDiverged(TrainhouseError):
    """The loss became NaN/inf: the learning rate is too high for this data."""

    reason = "TRAINING_DIVERGED"


class TrainerCallbacks:
    """Host hooks. Subclass and override (or pass any object with these members); defaults are no-ops.

    ``on_event(kind, payload)`` receives, as plain JSON-ready dicts:

    * ``step``       {epoch, step, total_steps, loss, learning_rate} after every optimizer step
    * ``epoch``      {epoch, total_epochs, step, total_steps, loss, accuracy, validation_loss,
                     validation_accuracy, learning_rate, elapsed_s} once per epoch (validation
                     fields None without a validation set; loss/accuracy are running training values)
    * ``metric``     {name, value, epoch, step} for every validation and epoch-level metric
    * ``checkpoint`` {checkpoint_id, path, kind, epoch, step, metrics, best, size_bytes}
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


@dataclass
class CheckpointInfo:
    checkpoint_id: str
    path: str
    kind: str              # "interval" | "best" | "cancel"/<stop kind> | "final"
    epoch: int
    step: int
    metrics: dict[str, float]
    best: bool
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class TrainResult:
    model: TrainedModel
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    checkpoints: list[CheckpointInfo] = field(default_factory=list)
    stopped: bool = False


def stratified_split(examples: Sequence[Example], split: float,
                     rng: np.random.Generator) -> tuple[list[Example], list[Example]]:
    """Hold out ``round(split * n)`` examples (at least 1, at most n-1), proportionally per
    (output, is-incorrect) group, so rare outputs are not all drawn into one side by chance.

    Each group is shuffled; its j-th member gets the key (j + 0.5) / group_size and the smallest
    keys go to validation (random tie-break), which allocates proportionally without rounding
    every small group down to zero.
    """
    n = len(examples)
    if split <= 0 or n < 2:
        return list(examples), []
    n_val = min(n - 1, max(1, int(round(split * n))))
    groups: dict[tuple[str, bool], list[int]] = {}
    for i, e in enumerate(examples):
        groups.setdefault((e.expected_output, e.feedback == "incorrect"), []).append(i)
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
        logits, _ = mlp.forward(rows.to_dense(idx))
        loss, _, _ = feedback_loss(logits, t.y, t.coef, t.negative)
        loss_sum += loss * len(idx)
        pos = ~t.negative
        correct += int((logits.argmax(axis=1) == t.y)[pos].sum())
        positives += int(pos.sum())
    return loss_sum / n, (correct / positives if positives else None)


def _fingerprint(*example_lists: Sequence[Example]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for examples in example_lists:
        payload = [[e.input, e.expected_output, e.feedback, e.weight, e.level] for e in examples]
        h.update(json.dumps(payload, ensure_ascii=False).encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def _as_examples(items: Sequence[Any] | None, prefix: str) -> list[Example] | None:
    if items is None:
        return None
    if all(isinstance(e, Example) for e in items):
        return list(items)
    return parse_examples(items, prefix)


def _clean(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


class SupervisedTrainer:
    def __init__(self, config: SupervisedConfig, train_examples: Sequence[Example | dict],
                 validation_examples: Sequence[Example | dict] | None = None,
                 callbacks: TrainerCallbacks | None = None):
        self.config = config
        # Duck-typed: any object with on_event/should_stop/checkpoint_dir works; missing ones default.
        self.callbacks = callbacks or TrainerCallbacks()
        train = _as_examples(train_examples, "examples") or []
        val = _as_examples(validation_examples, "validationExamples")
        if not train:
            raise InvalidArgument("examples", "at least one training example is required")
        if val is None:
            train, val = stratified_split(train, config.validation_split, np.random.default_rng([config.seed, 2]))
        self.train_examples, self.validation_examples = train, val
        self.label_map = LabelMap.from_examples(train, val)
        featurizer = HashingFeaturizer(config.featurizer)
        self.x_train = featurizer.transform_sparse([e.input for e in train])
        self.t_train = encode_targets(train, self.label_map)
        self.x_val = featurizer.transform_sparse([e.input for e in val])
        self.t_val = encode_targets(val, self.label_map)
        self.levels = np.array([e.level for e in train], dtype=np.int64)
        self.has_validation = len(val) > 0

        bs = config.batch_size
        self.epoch_pools = [self._pool(e) for e in range(config.total_epochs)]
        self.total_steps = sum(math.ceil(len(p) / bs) for p in self.epoch_pools)
        self.steps_per_epoch = math.ceil(len(train) / bs)
        self.validation_steps = config.validation_steps or max(1, math.ceil(self.steps_per_epoch / 4))
        self.fingerprint = _fingerprint(train, val)

    def _pool(self, epoch: int) -> np.ndarray:
        stage = self.config.stage_for_epoch(epoch)
        if stage is None:
            return np.arange(len(self.train_examples))
        i, st = stage
        pool = np.flatnonzero(self.levels <= st.level)
        if len(pool) == 0:
            raise InvalidArgument(f"curriculum.stages[{i}].level", f"no training example has level <= {st.level}")
        return pool

    # -- events -------------------------------------------------------------------------------
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

    def _diagnostics(self) -> None:
        """Log what explains a disappointing model before any training happens."""
        cfg = self.config
        self._log(f"{len(self.train_examples)} training / {len(self.validation_examples)} validation examples, "
                  f"{len(self.label_map)} outputs, {self.total_steps} steps over {cfg.total_epochs} epochs")
        positives = set(self.t_train.y[~self.t_train.negative].tolist())
        unlearnable = [self.label_map.label(i) for i in range(len(self.label_map)) if i not in positives]
        if unlearnable:
            self._log(f"{len(unlearnable)} outputs have no positive training example and can only be pushed down: "
                      f"{unlearnable[:10]}", "warning")
        empty = int((self.x_train.nnz_per_row() == 0).sum())
        if empty:
            self._log(f"{empty} training inputs produce no features (empty after tokenisation)", "warning")
        if self.has_validation:
            pos = ~self.t_val.negative
            if pos.any():
                train_pos = self.t_train.y[~self.t_train.negative]
                majority = np.bincount(train_pos, minlength=len(self.label_map)).argmax() if len(train_pos) else 0
                base = float((self.t_val.y[pos] == majority).mean())
                self._log(f"majority-class baseline validation accuracy: {base:.3f}")
        else:
            self._log("no validation set: early stopping and best checkpoints are disabled")

    # -- state ----------------------------------------------------------------------------------
    def _fresh_state(self) -> tuple[TrainingState, MLP, Any, Any, np.random.Generator]:
        cfg = self.config
        mlp = MLP.init(cfg.featurizer.dim, cfg.hidden_sizes, len(self.label_map), np.random.default_rng([cfg.seed, 1]))
        optimizer, scheduler = self._make_opt_sched()
        rng = np.random.default_rng([cfg.seed, 0])
        state = TrainingState(params={}, optimizer={}, scheduler={}, rng_state={}, epoch=0, global_step=0,
                              order=None, position=0, label_map=self.label_map.to_list(),
                              featurizer=cfg.featurizer.to_dict(), config=cfg.to_dict(),
                              data_fingerprint=self.fingerprint)
        return state, mlp, optimizer, scheduler, rng

    def _make_opt_sched(self) -> tuple[Any, Any]:
        cfg = self.config
        optimizer = make_optimizer(cfg.optimizer, momentum=cfg.momentum, nesterov=cfg.nesterov,
                                   weight_decay=cfg.weight_decay)
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
        mlp = MLP.from_state_dict(state.params)
        optimizer, scheduler = self._make_opt_sched()
        optimizer.load_state_dict(state.optimizer)
        scheduler.load_state_dict(state.scheduler)
        rng = np.random.default_rng()
        rng.bit_generator.state = state.rng_state
        state.config = mine
        return state, mlp, optimizer, scheduler, rng

    # -- checkpoints ------------------------------------------------------------------------------
    def _metrics_now(self, state: TrainingState) -> dict[str, float]:
        latest: dict[str, Any] = dict(state.history[-1]) if state.history else {}
        if state.last_validation:
            latest.update(state.last_validation)
        return _clean({k: latest.get(k) for k in ("loss", "accuracy", "validation_loss", "validation_accuracy")})

    def _checkpoint(self, state: TrainingState, mlp: MLP, optimizer: Any, scheduler: Any,
                    rng: np.random.Generator, kind: str, checkpoint_id: str, elapsed: float,
                    out: list[CheckpointInfo]) -> None:
        directory = self._checkpoint_dir()
        if not directory:
            return
        state.params = mlp.state_dict()
        state.optimizer = optimizer.state_dict()
        state.scheduler = scheduler.state_dict()
        state.rng_state = rng.bit_generator.state
        state.elapsed_s = elapsed
        path = os.path.join(directory, f"{checkpoint_id}.npz")
        size = save_checkpoint(path, state)
        info = CheckpointInfo(checkpoint_id, path, kind, state.epoch, state.global_step, self._metrics_now(state),
                              kind == "best", size)
        out.append(info)
        self._emit("checkpoint", info.to_dict())

    # -- main loop --------------------------------------------------------------------------------
    def train(self, resume_from: str | None = None) -> TrainResult:
        """Run (or continue) training; see ``TrainerCallbacks`` for events and stopping."""
        cfg = self.config
        if resume_from:
            state, mlp, optimizer, scheduler, rng = self._resumed_state(resume_from)
        else:
            state, mlp, optimizer, scheduler, rng = self._fresh_state()
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
            val_loss, val_acc = evaluate(mlp, self.x_val, self.t_val)
            state.last_validation = {"validation_loss": val_loss, "validation_accuracy": val_acc,
                                     "step": state.global_step}
            for name, value in (("validation_loss", val_loss), ("validation_accuracy", val_acc)):
                if value is not None:
                    self._emit("metric", {"name": name, "value": value, "epoch": epoch_label, "step": state.global_step})
            if state.best_val_loss is None or val_loss < state.best_val_loss - cfg.min_delta:
                state.best_val_loss = val_loss
                state.best_epoch = epoch_label
                state.best_step = state.global_step
                state.best_params = {k: [a.copy() for a in v] for k, v in mlp.state_dict().items()}
                state.epoch_accum["improved"] = 1.0
                return True
            return False

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
                state.epoch_accum = {"loss_sum": 0.0, "count": 0.0, "correct": 0.0, "positives": 0.0, "improved": 0.0}
            n_batches = math.ceil(len(state.order) / bs)
            acc = state.epoch_accum
            while state.position < n_batches:
                if self._should_stop():
                    return self._stopped(state, mlp, optimizer, scheduler, rng, elapsed(), checkpoints)
                rows = state.order[state.position * bs:(state.position + 1) * bs]
                t = self.t_train.take(rows)
                lr = scheduler.current_lr
                loss, grads, logits = loss_and_grads(mlp, self.x_train.to_dense(rows), t.y, t.coef, t.negative,
                                                     dropout=cfg.dropout, rng=rng)
                if not math.isfinite(loss):
                    self._log(f"loss became {loss} at step {state.global_step + 1}", "error")
                    raise TrainingDiverged(f"training diverged at step {state.global_step + 1} (loss {loss}); "
                                           f"lower learningRate (now {cfg.learning_rate:g})")
                flat = [g for pair in grads for g in pair]
                if cfg.max_grad_norm is not None:
                    norm = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in flat))
                    if norm > cfg.max_grad_norm:
                        flat = [g * np.float32(cfg.max_grad_norm / norm) for g in flat]
                optimizer.step(mlp.arrays(), flat, lr)
                scheduler.step()
                state.global_step += 1
                state.position += 1
                pos = ~t.negative
                acc["loss_sum"] += loss * len(rows)
                acc["count"] += len(rows)
                acc["correct"] += float((logits.argmax(axis=1) == t.y)[pos].sum())
                acc["positives"] += float(pos.sum())
                self._emit("step", {"epoch": epoch_label, "step": state.global_step, "total_steps": self.total_steps,
                                    "loss": loss, "learning_rate": lr})
                if (self.has_validation and cfg.validation_frequency == "step" and state.position < n_batches
                        and state.global_step % self.validation_steps == 0):
                    if validate(epoch_label):
                        self._checkpoint(state, mlp, optimizer, scheduler, rng, "best", "best", elapsed(), checkpoints)

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
            entry = {
                "epoch": state.epoch, "total_epochs": cfg.total_epochs,
                "step": state.global_step, "total_steps": self.total_steps,
                "loss": acc["loss_sum"] / acc["count"],
                "accuracy": acc["correct"] / acc["positives"] if acc["positives"] else None,
                "validation_loss": state.last_validation["validation_loss"] if self.has_validation else None,
                "validation_accuracy": state.last_validation["validation_accuracy"] if self.has_validation else None,
                "learning_rate": scheduler.lr_at(state.global_step - 1),
                "elapsed_s": elapsed(),
            }
            state.history.append(entry)
            self._emit("epoch", dict(entry))
            for name in ("loss", "accuracy", "learning_rate"):
                if entry[name] is not None:
                    self._emit("metric", {"name": name, "value": entry[name], "epoch": state.epoch, "step": state.global_step})
            if new_best:
                self._checkpoint(state, mlp, optimizer, scheduler, rng, "best", "best", elapsed(), checkpoints)
            if state.epoch % cfg.checkpoint_interval == 0 and state.epoch < cfg.total_epochs:
                self._checkpoint(state, mlp, optimizer, scheduler, rng, "interval", f"epoch-{state.epoch:04d}",
                                 elapsed(), checkpoints)
            if state.stopped_early:
                self._log(f"early stopping after epoch {state.epoch}: validation loss has not improved for "
                          f"{cfg.patience} epochs (best {state.best_val_loss:.4f} at epoch {state.best_epoch})")

        if early and state.best_params is not None:
            mlp.load_state_dict(state.best_params)
        state.finished = True
        self._checkpoint(state, mlp, optimizer, scheduler, rng, "final", "final", elapsed(), checkpoints)
        result = self._result(state, mlp, checkpoints, stopped=False)
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
        return self._result(state, mlp, checkpoints, stopped=True)

    def _result(self, state: TrainingState, mlp: MLP, checkpoints: list[CheckpointInfo], stopped: bool) -> TrainResult:
        """Final metrics describe the returned weights (best ones after early stopping)."""
        loss, accuracy = evaluate(mlp, self.x_train, self.t_train)
        val_loss, val_acc = evaluate(mlp, self.x_val, self.t_val) if self.has_validation else (None, None)
        metrics = {"loss": loss, "accuracy": accuracy, "validation_loss": val_loss, "validation_accuracy": val_acc,
                   "epochs_run": state.epoch, "steps": state.global_step, "best_epoch": state.best_epoch,
                   "stopped_early": state.stopped_early}
        model = TrainedModel(params=[(W.copy(), b.copy()) for W, b in mlp.params], label_map=self.label_map,
                             featurizer_config=self.config.featurizer, hidden_sizes=tuple(self.config.hidden_sizes),
                             metadata={"paradigm": "supervised", "config": self.config.to_dict(), "metrics": metrics})
        return TrainResult(model=model, history=[dict(h) for h in state.history], metrics=metrics,
                           checkpoints=checkpoints, stopped=stopped)
