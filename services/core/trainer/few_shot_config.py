"""Configuration of few-shot training (1-5 examples per output): supervised options with
few-shot defaults, plus the prototype scale and the pull toward the prototype initialisation.

Defaults differ from supervised on purpose: a linear head (``hiddenSizes: []``, see
few_shot_trainer.py), no validation split and no early stopping (with 3 examples per output
every example is needed for training), a higher learning rate over few epochs, small batches.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.core.trainer.supervised_config import _KEYS, SupervisedConfig, _float, _help


@dataclass
class FewShotConfig(SupervisedConfig):
    epochs: int = field(default=10, metadata=_help("Fine-tuning passes over the few examples, 1..10000."))
    batch_size: int = field(default=8, metadata=_help("Examples per gradient step, 1..65536."))
    learning_rate: float = field(default=0.01, metadata=_help("Peak learning rate of the fine-tune, 0 < lr <= 1."))
    validation_split: float = field(default=0.0, metadata=_help(
        "Fraction held out for validation when no validation set is given, [0, 1); default 0: few-shot "
        "data is too small to split."))
    early_stopping: bool = field(default=False, metadata=_help(
        "Stop when validation loss stops improving (needs a validation set)."))
    scheduler_type: str = field(default="constant", metadata=_help(
        "'constant', 'linear', 'cosine' or 'step'."))
    hidden_sizes: tuple[int, ...] = field(default=(), metadata=_help(
        "Hidden ReLU layers; default none: the prototypes are the output layer of a linear model. With hidden "
        "layers the prototypes are projected through the (He-initialised) hidden layers."))
    dropout: float = field(default=0.0, metadata=_help("Dropout on hidden activations during training, [0, 1)."))
    prototype_scale: float = field(default=10.0, metadata=_help(
        "Logit scale of the prototype initialisation (W_c = scale * unit prototype of output c): the "
        "initial logits are scaled cosine similarities, (0, 1000]."))
    anchor_strength: float = field(default=0.01, metadata=_help(
        "Strength of the L2 pull toward the prototype initialisation during the fine-tune "
        "(loss += strength/2 * ||W - W_init||^2), [0, 100]; 0 = unregularised fine-tune."))

    def __post_init__(self) -> None:
        super().__post_init__()
        _float(self, "prototype_scale", 0.0, 1000.0, low_open=True)
        _float(self, "anchor_strength", 0.0, 100.0)

    @classmethod
    def keys(cls) -> dict[str, Any]:
        return {**_KEYS,
                "prototype_scale": ("float", (("prototypeScale",), ("prototype_scale",))),
                "anchor_strength": ("float", (("anchorStrength",), ("anchor_strength",)))}


