"""Reinforcement learning from rated feedback, as a contextual bandit.

The policy is the same hashed-feature MLP with a softmax over the catalog: ``pi(a | x)``. Each
feedback record (feedback.py) is one logged round: context ``x`` (the input), action ``a`` (the
output that was served), reward ``r`` (from the rating, reward or success flag) and, when
known, the logging policy's probability ``mu(a | x)`` (``propensity``).

Loss per batch (mlp.policy_gradient_loss), averaged over its N records::

    L = -(1/N) sum_i  weight_i * w_i * (r_i - b) * log pi(a_i | x_i)  -  entropyCoef * mean H(pi(.|x_i))

* **baseline** ``b`` (``baseline: "mean"``): the running mean of the rewards processed so far,
  started at the mean reward of the training records (as if one pass had been seen). A
  constant w.r.t. the parameters, it leaves the gradient unbiased and reduces its variance.
  ``baseline: "none"`` uses b = 0.
* **importance weight** ``w_i = min(pi(a_i|x_i) / mu(a_i|x_i), importanceWeightClip)`` for records
  with a propensity (1 otherwise), computed from the policy *before* the step and treated as a
  constant. Then ``E_mu[w (r - b) grad log pi] = grad E_pi[r]``: the policy climbs its own
  expected reward instead of the logging policy's preferences. Without it, actions the logger
  over-served are reinforced in proportion to how often they were served. The clip (default
  10) bounds the variance from rarely logged actions at the price of a small bias.
* **entropy bonus** (``entropyCoef``, default 0) keeps the policy from collapsing early.

Metrics: ``loss`` and ``reward``: the self-normalised importance-sampling (SNIPS) estimate of
the *greedy* policy's average reward on the records (records whose logged action equals the
greedy action, weighted by 1/propensity). Early stopping and the best checkpoint maximise the
validation ``reward``.

With ``base_model`` (e.g. the agent's active version, for adapt-agent) the policy starts from
that model (catalog kept and extended, as in transfer learning).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from trainhouse.core.configs.training import ReinforcementConfig
from trainhouse.core.errors import InvalidArgument
from trainhouse.core.featurizer import FeaturizerConfig, HashingFeaturizer
from trainhouse.core.trainer.checkpoint import TrainingState
from trainhouse.core.trainer.cost import PriceModel
from trainhouse.core.trainer.examples import LabelMap
from trainhouse.core.trainer.feedback import FeedbackRecord, parse_feedback
from trainhouse.core.trainer.loop import LoopTrainer, TrainerCallbacks, stratified_split
from trainhouse.core.trainer.mlp import MLP, Grads, TrainedModel, policy_gradient_loss, softmax
from trainhouse.core.trainer.transfer_trainer import check_base_compatible, extend_from_base


DEFAULT_HIDDEN = (64,)  # the supervised default, used when there is no base model


class _Records:
    """Feedback as arrays aligned with the featurized rows."""

    def __init__(self, records: Sequence[FeedbackRecord], label_map: LabelMap):
        n = len(records)
        self.actions = np.fromiter((label_map.index(r.output) for r in records), dtype=np.int64, count=n)
        self.rewards = np.fromiter((r.reward for r in records), dtype=np.float64, count=n)
        self.propensity = np.fromiter((np.nan if r.propensity is None else r.propensity for r in records),
                                      dtype=np.float64, count=n)
        self.weights = np.fromiter((r.weight for r in records), dtype=np.float64, count=n)


class ReinforcementTrainer(LoopTrainer):
    paradigm = "reinforcement"
    metric_names = ("reward",)

    def __init__(self, config: ReinforcementConfig, train_records: Sequence[FeedbackRecord | dict],
                 validation_records: Sequence[FeedbackRecord | dict] | None = None,
                 callbacks: TrainerCallbacks | Any = None, *, base_model: TrainedModel | None = None,
                 price_model: PriceModel | None = None, field_prefix: str = "feedback"):
        super().__init__(config, callbacks, price_model)
        self.config: ReinforcementConfig = config
        self.base_model = base_model
        if base_model is not None:
            check_base_compatible(config, base_model)
        train = parse_feedback(train_records, field_prefix)
        val = parse_feedback(validation_records, f"validation_{field_prefix}") if validation_records is not None else None
        if not train:
            raise InvalidArgument(field_prefix, "at least one feedback record is required")
        if val is None:
            train, val = stratified_split(train, config.validation_split, np.random.default_rng([config.seed, 2]),
                                          key=lambda r: r.output)
        self.train_examples, self.validation_examples = train, val
        self.label_map = LabelMap(base_model.label_map.to_list() if base_model is not None else [])
        for records in (train, val):
            self.label_map.extend(r.output for r in records)
        featurizer = HashingFeaturizer(self.featurizer_config)
        self.x_train = featurizer.transform_sparse([r.input for r in train])
        self.x_val = featurizer.transform_sparse([r.input for r in val])
        self.r_train = _Records(train, self.label_map)
        self.r_val = _Records(val, self.label_map)
        w = self.r_train.weights
        self._reward_sum = float((self.r_train.rewards * w).sum())
        self._reward_count = float(w.sum())
        self._prepare()

    @property
    def featurizer_config(self) -> Any:
        if self.base_model is not None:
            return self.base_model.featurizer_config
        return self.config.featurizer or FeaturizerConfig()

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        if self.base_model is not None:
            return tuple(self.base_model.hidden_sizes)
        return DEFAULT_HIDDEN if self.config.hidden_sizes is None else tuple(self.config.hidden_sizes)

    # -- the policy-gradient step -------------------------------------------------------------------
    @property
    def baseline(self) -> float:
        if self.config.baseline == "none" or self._reward_count <= 0:
            return 0.0
        return self._reward_sum / self._reward_count

    def _importance(self, probs: np.ndarray, rec: _Records, rows: np.ndarray | slice) -> np.ndarray:
        prop = rec.propensity[rows]
        pa = probs[np.arange(len(prop)), rec.actions[rows]].astype(np.float64)
        has = ~np.isnan(prop)
        w = np.ones(len(prop))
        w[has] = np.minimum(pa[has] / prop[has], self.config.importance_weight_clip)
        return w

    def _loss(self, logits: np.ndarray, rec: _Records, rows: np.ndarray | slice) -> tuple[float, np.ndarray]:
        probs = softmax(logits)
        w = self._importance(probs, rec, rows) * rec.weights[rows]
        advantages = rec.rewards[rows] - self.baseline
        loss, dlogits, _ = policy_gradient_loss(logits, rec.actions[rows], advantages, w, self.config.entropy_coef)
        return loss, dlogits

    @staticmethod
    def _greedy_value_sums(logits: np.ndarray, rec: _Records, rows: np.ndarray | slice) -> tuple[float, float]:
        """(numerator, denominator) of the SNIPS estimate of the greedy policy's reward."""
        match = logits.argmax(axis=1) == rec.actions[rows]
        prop = rec.propensity[rows]
        inv = np.where(np.isnan(prop), 1.0, 1.0 / np.where(np.isnan(prop), 1.0, prop))
        return float((match * inv * rec.rewards[rows]).sum()), float((match * inv).sum())

    def _batch(self, mlp: MLP, rows: np.ndarray, rng: np.random.Generator,
               state: TrainingState) -> tuple[float, Grads, dict[str, float]]:
        first = self._first_trainable_layer(mlp)
        logits, cache = mlp.forward(self.x_train.take(rows), dropout=self.config.dropout, rng=rng)
        loss, dlogits = self._loss(logits, self.r_train, rows)
        grads = mlp.backward(cache, dlogits, first)
        num, den = self._greedy_value_sums(logits, self.r_train, rows)
        w = self.r_train.weights[rows]
        self._reward_sum += float((self.r_train.rewards[rows] * w).sum())
        self._reward_count += float(w.sum())
        return loss, grads, {"reward_num": num, "reward_den": den}

    def _epoch_metrics(self, acc: dict[str, float]) -> dict[str, float | None]:
        den = acc.get("reward_den", 0.0)
        return {"reward": acc.get("reward_num", 0.0) / den if den else None}

    def _evaluate(self, mlp: MLP, split: str) -> dict[str, float | None]:
        X, rec = (self.x_train, self.r_train) if split == "train" else (self.x_val, self.r_val)
        n = len(X)
        if n == 0:
            return {"loss": float("nan"), "reward": None}
        loss_sum, num, den = 0.0, 0.0, 0.0
        for start in range(0, n, 512):
            idx = np.arange(start, min(start + 512, n))
            logits, _ = mlp.forward(X.take(idx))
            loss, _ = self._loss(logits, rec, idx)
            loss_sum += loss * len(idx)
            a, b = self._greedy_value_sums(logits, rec, idx)
            num, den = num + a, den + b
        return {"loss": loss_sum / n, "reward": num / den if den else None}

    def _selection_value(self, metrics: dict[str, float | None]) -> float:
        reward = metrics.get("reward")
        return -float(reward) if reward is not None else float(metrics["loss"])  # type: ignore[arg-type]

    # -- state and set-up -----------------------------------------------------------------------------
    def _init_mlp(self) -> MLP:
        if self.base_model is None:
            return super()._init_mlp()
        good = np.flatnonzero(self.r_train.rewards > 0)
        return extend_from_base(self.base_model, self.label_map, self.x_train.take(good),
                                self.r_train.actions[good], self.r_train.weights[good])

    def _extra_state(self) -> dict[str, Any]:
        return {"reward_sum": self._reward_sum, "reward_count": self._reward_count}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        if extra:
            self._reward_sum = float(extra["reward_sum"])
            self._reward_count = float(extra["reward_count"])

    def _model_metadata(self) -> dict[str, Any]:
        return {"kind": "policy", "baseline": self.config.baseline,
                "importance_weighted": bool((~np.isnan(self.r_train.propensity)).any())}

    def _diagnostics(self) -> None:
        r = self.r_train
        logged = int((~np.isnan(r.propensity)).sum())
        self._log(f"{len(r.rewards)} training / {len(self.validation_examples)} validation feedback records, "
                  f"{len(self.label_map)} actions, mean reward {r.rewards.mean():.3f}, "
                  f"{logged} with a propensity (importance weighted)")
        if float(r.rewards.std()) == 0.0:
            self._log("every record has the same reward: with the mean baseline every advantage is 0 and "
                      "nothing is learned", "warning")
        served = np.bincount(r.actions, minlength=len(self.label_map))
        never = [self.label_map.label(i) for i in np.flatnonzero(served == 0)]
        if never:
            self._log(f"{len(never)} actions were never served in the training feedback: {never[:10]}", "warning")


