"""Supervised training of the hashed-n-gram MLP on labelled examples.

``SupervisedTrainer(config, train_examples, validation_examples, callbacks).train()`` returns a
``TrainResult``. The loop itself (batches, optimizer, validation, early stopping, checkpoints,
budget, divergence) is ``LoopTrainer`` in loop.py, shared with the other paradigms; this module
supplies the data handling and the feedback loss (see mlp.py): correct/partial examples are
positives, incorrect ones push their output down, ``weight`` scales each example's loss.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from services.core.configs.training import SupervisedConfig
from services.core.errors import InvalidArgument
from services.core.featurizer import HashingFeaturizer
from services.core.trainer.checkpoint import TrainingState
from services.core.trainer.cost import PriceModel
from services.core.trainer.examples import Example, LabelMap, encode_targets
from services.core.trainer.loop import (EVENT_KINDS, CheckpointInfo, LoopTrainer, TrainerCallbacks,
                                            TrainingDiverged, TrainResult, as_examples, evaluate,
                                            stratified_split)
from services.core.trainer.mlp import MLP, Grads, Params, loss_and_grads

__all__ = ["EVENT_KINDS", "CheckpointInfo", "SupervisedTrainer", "split_examples", "TrainerCallbacks", "TrainingDiverged",
           "TrainResult", "evaluate", "stratified_split"]


def split_examples(config: SupervisedConfig, train: list[Example],
                   validation: list[Example] | None) -> tuple[list[Example], list[Example]]:
    """The (train, validation) a classifier job uses: the given validation examples, else a
    stratified hold-out of ``validation_split`` drawn with the config's seed. TrainingService calls
    it when it accepts a job, so the sizes it announces are the ones the worker will train on."""
    if validation is not None:
        return train, validation
    return stratified_split(train, config.validation_split, np.random.default_rng([config.seed, 2]))


class SupervisedTrainer(LoopTrainer):
    paradigm = "supervised"
    metric_names = ("accuracy",)

    def __init__(self, config: SupervisedConfig, train_examples: Sequence[Example | dict],
                 validation_examples: Sequence[Example | dict] | None = None,
                 callbacks: TrainerCallbacks | Any = None, *, price_model: PriceModel | None = None):
        super().__init__(config, callbacks, price_model)
        train = as_examples(train_examples, "examples") or []
        val = as_examples(validation_examples, "validationExamples")
        if not train:
            raise InvalidArgument("examples", "at least one training example is required")
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
