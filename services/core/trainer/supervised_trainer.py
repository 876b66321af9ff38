"""Supervised training of the hashed-n-gram MLP on labelled examples.

``SupervisedTrainer(config, train_examples, validation_examples, callbacks).train()`` returns a
``TrainResult``. The loop itself (batches, optimizer, validation, early stopping, checkpoints,
budget, divergence) is ``LoopTrainer`` in loop.py, shared with the other paradigms; this module
supplies the data handling and the feedback loss (see mlp.py): correct/partial examples are
positives, incorrect ones push their output down, ``weight`` scales each example's loss.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from trainhouse.core.abstention import abstention_score, out_of_scope_column
from trainhouse.core.configs.training import SupervisedConfig
from trainhouse.core.errors import InvalidArgument
from trainhouse.core.featurizer import HashingFeaturizer
from trainhouse.core.trainer.checkpoint import TrainingState
from trainhouse.core.trainer.cost import PriceModel
from trainhouse.core.trainer import calibration
from trainhouse.core.trainer.examples import OUT_OF_SCOPE, Example, LabelMap, encode_targets
from trainhouse.core.trainer.loop import (EVENT_KINDS, CheckpointInfo, LoopTrainer, TrainerCallbacks,
                                            TrainingDiverged, TrainResult, as_examples, evaluate,
                                            stratified_split)
from trainhouse.core.trainer.mlp import MLP, Grads, Params, TrainedModel, loss_and_grads

__all__ = ["EVENT_KINDS", "CheckpointInfo", "SupervisedTrainer", "split_examples", "TrainerCallbacks", "TrainingDiverged",
           "TrainResult", "evaluate", "stratified_split"]


def in_scope(examples: Sequence[Example]) -> list[Example]:
    return [e for e in examples if e.expected_output != OUT_OF_SCOPE]


def out_of_scope(examples: Sequence[Example]) -> list[Example]:
    return [e for e in examples if e.expected_output == OUT_OF_SCOPE]


def resolve_config(config: SupervisedConfig, examples: Sequence[Example], *,
                   promotion: bool = False) -> SupervisedConfig:
    """The config with its "auto" fields chosen from the in-scope labelled examples (count and
    distinct outputs); TrainingService calls it when it accepts a job and stores the result."""
    labelled = [e for e in in_scope(examples) if e.feedback != "incorrect"]
    return config.resolved_for(len(labelled), len({e.expected_output for e in labelled}), promotion=promotion)


def split_examples(config: SupervisedConfig, train: list[Example],
                   validation: list[Example] | None) -> tuple[list[Example], list[Example]]:
    """The (train, validation) a classifier job uses: the given validation examples, else a
    stratified hold-out of ``validation_split`` drawn with the config's seed. TrainingService calls
    it when it accepts a job, so the sizes it announces are the ones the worker will train on.
    ``__out_of_scope__`` examples are split like any output: trained as a real output (the model
    learns what out of scope looks like) and, held out, they choose the abstention threshold."""
    if validation is not None:
        return list(train), list(validation)
    return stratified_split(train, config.validation_split, np.random.default_rng([config.seed, 2]))


class _RefitCallbacks:
    """The refit's view of the host: logs and stop requests pass, progress and checkpoints do not
    (the job's progress and checkpoints are the first run's)."""

    checkpoint_dir = None

    def __init__(self, host: Any):
        self.host = host

    def on_event(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "log":
            on_event = getattr(self.host, "on_event", None)
            if on_event is not None:
                on_event(kind, payload)

    def should_stop(self) -> bool:
        should_stop = getattr(self.host, "should_stop", None)
        return bool(should_stop()) if should_stop is not None else False


class SupervisedTrainer(LoopTrainer):
    paradigm = "supervised"
    metric_names = ("accuracy",)

    def __init__(self, config: SupervisedConfig, train_examples: Sequence[Example | dict],
                 validation_examples: Sequence[Example | dict] | None = None,
                 callbacks: TrainerCallbacks | Any = None, *, price_model: PriceModel | None = None):
        train = as_examples(train_examples, "examples") or []
        val = as_examples(validation_examples, "validationExamples")
        if not train:
            raise InvalidArgument("examples", "at least one training example is required")
        if not config.is_resolved or config.refit is None:
            config = resolve_config(config, train + (val or []))
        super().__init__(config, callbacks, price_model)
        self.out_of_scope_examples = out_of_scope(train + (val or []))
        if not in_scope(train):
            raise InvalidArgument("examples", f"every example is {OUT_OF_SCOPE}: nothing to learn the catalogue from")
        train, val = split_examples(config, train, val)
        self.train_examples, self.validation_examples = train, val
        self.label_map = self._catalog(train, val)
        self._featurize()
        self._prepare()

    def _catalog(self, train: list[Example], val: list[Example]) -> LabelMap:
        return LabelMap.from_examples(train, val)

    def _featurize(self) -> None:
        featurizer = HashingFeaturizer(self.featurizer_config)
        self.x_train = featurizer.transform_sparse([e.input for e in self.train_examples])
        self.t_train = encode_targets(self.train_examples, self.label_map)
        self.x_val = featurizer.transform_sparse([e.input for e in self.validation_examples])
        self.t_val = encode_targets(self.validation_examples, self.label_map)

    # -- hooks ------------------------------------------------------------------------------------
    def _anchor(self) -> tuple[Params | None, float]:
        """(anchor weights, strength) of an L2 pull toward fixed weights; none for supervised."""
        return None, 0.0

    def _batch(self, mlp: MLP, rows: np.ndarray, rng: np.random.Generator,
               state: TrainingState) -> tuple[float, Grads, dict[str, float]]:
        t = self.t_train.take(rows)
        anchor, strength = self._anchor()
        first = self._first_trainable_layer(mlp)
        loss, grads, logits = loss_and_grads(mlp, self.x_train.take(rows), t.y, t.coef, t.negative,
                                             dropout=self.config.dropout, rng=rng, anchor=anchor,
                                             anchor_strength=strength, first_layer=first)
        pos = ~t.negative
        return loss, grads, {"correct": float((logits.argmax(axis=1) == t.y)[pos].sum()),
                             "positives": float(pos.sum())}

    def _epoch_metrics(self, acc: dict[str, float]) -> dict[str, float | None]:
        positives = acc.get("positives", 0.0)
        return {"accuracy": acc.get("correct", 0.0) / positives if positives else None}

    def _evaluate(self, mlp: MLP, split: str) -> dict[str, float | None]:
        rows, targets = (self.x_train, self.t_train) if split == "train" else (self.x_val, self.t_val)
        loss, accuracy = evaluate(mlp, rows, targets)
        return {"loss": loss, "accuracy": accuracy}

    def _diagnostics(self) -> None:
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

    # -- after training: calibration, abstention threshold, refit ---------------------------------
    def train(self, resume_from: str | None = None) -> TrainResult:
        """Train (see ``LoopTrainer.train``); then, on the held-out split and with the early-stopped
        model, fit the temperature and choose the out-of-scope threshold; then, with ``refit``,
        train again on every example for the epoch count early stopping picked."""
        result = super().train(resume_from)
        if result.stopped:
            return result
        return self._calibrate_and_refit(result)

    def _held_out_logits(self, model: Any) -> tuple[np.ndarray, np.ndarray]:
        pos = np.flatnonzero(~self.t_val.negative) if self.has_validation else np.zeros(0, dtype=np.int64)
        mlp = MLP(model.params)
        logits = (mlp.forward(self.x_val.take(pos))[0] if len(pos)
                  else np.zeros((0, len(self.label_map)), dtype=np.float32))
        return logits.astype(np.float64), self.t_val.y[pos] if len(pos) else np.zeros(0, dtype=np.int64)

    def calibrate(self, model: TrainedModel, metrics: dict[str, Any]) -> TrainedModel:
        """``model`` with the temperature and out-of-scope threshold fitted on this trainer's held-out
        split (their figures are added to ``metrics``). One procedure for a finished run and for a
        checkpoint registered as a version (TrainingService.RegisterCheckpoint), so both serve
        probabilities calibrated the same way."""
        cfg = self.config
        logits, y = self._held_out_logits(model)
        temperature = 1.0
        if len(y) >= 2:
            temperature = calibration.fit_temperature(logits, y)
            before = calibration.expected_calibration_error(calibration.softmax_t(logits, 1.0), y)
            after = calibration.cross_fitted_ece(logits, y, np.random.default_rng([cfg.seed, 3]))
            metrics.update(temperature=temperature, ece_before=float(before), ece_after=float(after),
                           calibration_examples=len(y))
            self._log(f"temperature {temperature:.3f} fitted on {len(y)} held-out examples: ECE {before:.4f} -> "
                      f"{after:.4f} (cross-fitted)")
        else:
            self._log("no held-out examples: probabilities are not calibrated (temperature 1)", "warning")
        # The abstention score (services/core/abstention.py) of every held-out example; held-out
        # __out_of_scope__ examples (trained as an output) are the out-of-scope side of the choice.
        labels = self.label_map.to_list()
        probs = calibration.softmax_t(logits, temperature) if len(y) else np.zeros((0, len(labels)))
        score = abstention_score(probs, labels)
        column = out_of_scope_column(labels)
        is_oos = y == column if column is not None else np.zeros(len(y), dtype=bool)
        right = probs.argmax(axis=1) == y if len(y) else np.zeros(0, dtype=bool)
        oos = self.out_of_scope_examples
        threshold = calibration.choose_threshold(
            score[~is_oos], right[~is_oos], score[is_oos], fixed=cfg.out_of_scope_threshold,
            target_precision=cfg.out_of_scope_precision, target_recall=cfg.out_of_scope_recall,
            in_scope_loss=cfg.in_scope_loss if len(y) else 0.0)
        metrics.update(out_of_scope_threshold=threshold.value, out_of_scope_examples=len(oos),
                       **{f"held_out_{k}": v for k, v in threshold.metrics.items()})
        if oos:  # only then: a job without OOS data keeps the metric set it always had
            metrics["held_out_out_of_scope_examples"] = int(is_oos.sum())
        self._log(f"out-of-scope threshold {threshold.value:.4f} ({threshold.rule}) on {int((~is_oos).sum())} "
                  f"in-scope and {int(is_oos.sum())} out-of-scope held-out examples ({len(oos)} {OUT_OF_SCOPE} "
                  f"examples, trained as an output)")
        meta = dict(model.metadata)
        meta.update(config=cfg.to_dict(), metrics=metrics, temperature=temperature,
                    out_of_scope_threshold=threshold.value, out_of_scope_rule=threshold.rule)
        return TrainedModel(params=model.params, label_map=model.label_map, featurizer_config=model.featurizer_config,
                            hidden_sizes=model.hidden_sizes, metadata=meta, temperature=temperature,
                            out_of_scope_threshold=threshold.value)

    def _calibrate_and_refit(self, result: TrainResult) -> TrainResult:
        cfg = self.config
        model = result.model
        metrics = result.metrics
        calibrated = self.calibrate(model, metrics)
        refit = bool(cfg.refit) and self.has_validation
        if refit:
            epochs = int(result.metrics.get("best_epoch") or result.metrics["epochs_run"])
            started = time.perf_counter()
            refitted = self._refit(epochs)
            if refitted is None:
                return TrainResult(model=model, history=result.history, metrics=metrics,
                                   checkpoints=result.checkpoints, stopped=True, method=result.method,
                                   train_examples=result.train_examples, validation_examples=result.validation_examples)
            seconds = time.perf_counter() - started
            model = refitted
            metrics.update(refit_epochs=epochs, refit_examples=len(self.train_examples) + len(self.validation_examples),
                           compute_seconds=float(metrics.get("compute_seconds") or 0.0) + seconds)
        metrics["refit"] = refit
        meta = dict(model.metadata)
        meta.update(config=cfg.to_dict(), metrics=metrics)
        meta.update(temperature=calibrated.temperature, out_of_scope_threshold=calibrated.out_of_scope_threshold,
                    out_of_scope_rule=calibrated.metadata["out_of_scope_rule"], refit=refit)
        final = TrainedModel(params=model.params, label_map=model.label_map, featurizer_config=model.featurizer_config,
                             hidden_sizes=model.hidden_sizes, metadata=meta, temperature=calibrated.temperature,
                             out_of_scope_threshold=calibrated.out_of_scope_threshold)
        result.model = final
        result.metrics = metrics
        return result

    def _refit(self, epochs: int) -> TrainedModel | None:
        """Train again from the start on train + validation for ``epochs`` epochs, no early stopping
        and no checkpoints; None when a stop was requested meanwhile."""
        cfg = self.config
        n_val = len(self.validation_examples)
        self._log(f"refit on all {len(self.train_examples) + n_val} examples for {epochs} epochs "
                  f"(early stopping chose {epochs})")
        split = self.train_examples, self.validation_examples
        self.train_examples = list(self.train_examples) + list(self.validation_examples)
        self.validation_examples = []
        host = self.callbacks
        self.config = cfg.model_copy(update={"epochs": epochs, "early_stopping": False, "validation_split": 0.0,
                                            "curriculum_enabled": False, "curriculum_stages": ()})
        self.callbacks = _RefitCallbacks(host)
        try:
            self._featurize()
            self._prepare()
            refitted = LoopTrainer.train(self)
        finally:  # the trainer describes the job's split again (the worker reports on it)
            self.callbacks, self.config = host, cfg
            self.train_examples, self.validation_examples = split
        return None if refitted.stopped else refitted.model
