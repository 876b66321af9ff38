"""Configuration of reinforcement (contextual-bandit) training from rated feedback: the
supervised loop's options plus the policy-gradient ones. See reinforcement_trainer.py."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from services.core.featurizer import FeaturizerConfig
from services.core.trainer.supervised_config import _KEYS, SupervisedConfig, _choice, _float, _help

BASELINES = ("mean", "none")


@dataclass
class ReinforcementConfig(SupervisedConfig):
    inherits_model: ClassVar[bool] = True

    hidden_sizes: tuple[int, ...] | None = field(default=None, metadata=_help(
        "Hidden ReLU layer widths; unset = the base model's when one is given, else [64]."))
    featurizer: FeaturizerConfig | None = field(default=None, metadata=_help(
        "Featurizer settings; unset = the base model's when one is given, else the default featurizer."))
    learning_rate: float = field(default=0.01, metadata=_help("Peak learning rate, 0 < lr <= 1."))
    early_stopping: bool = field(default=False, metadata=_help(
        "Stop when the validation estimate of the greedy policy's reward stops improving."))
    scheduler_type: str = field(default="constant", metadata=_help("'constant', 'linear', 'cosine' or 'step'."))
    baseline: str = field(default="mean", metadata=_help(
        "'mean': subtract the running mean reward (variance reduction, no bias); 'none': raw rewards."))
    importance_weight_clip: float = field(default=10.0, metadata=_help(
        "Upper clip of the importance weight pi(a|x) / propensity, [1, 1000]: bounds the variance that "
        "rarely logged actions would add (at the price of a small bias)."))
    entropy_coef: float = field(default=0.0, metadata=_help(
        "Entropy bonus coefficient, [0, 1]: > 0 keeps the policy from collapsing on one output early."))

    def __post_init__(self) -> None:
        super().__post_init__()
        _choice(self, "baseline", BASELINES)
        _float(self, "importance_weight_clip", 1.0, 1000.0)
        _float(self, "entropy_coef", 0.0, 1.0)

    @classmethod
    def keys(cls) -> dict[str, Any]:
        return {**_KEYS,
                "baseline": ("str", (("baseline",),)),
                "importance_weight_clip": ("float", (("importanceWeightClip",), ("importance_weight_clip",))),
                "entropy_coef": ("float", (("entropyCoef",), ("entropy_coef",)))}
