"""Configuration of transfer learning: supervised options, starting from a base model.

``featurizer`` and ``hiddenSizes`` default to the base model's (None here); giving different
values is refused by the trainer (the base weights only mean something for that featurizer and
those layer widths). ``freezeHidden`` keeps the hidden layers as they are in the base model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from services.core.featurizer import FeaturizerConfig
from services.core.trainer.supervised_config import _KEYS, SupervisedConfig, _bool, _help


@dataclass
class TransferConfig(SupervisedConfig):
    inherits_model: ClassVar[bool] = True

    hidden_sizes: tuple[int, ...] | None = field(default=None, metadata=_help(
        "Must equal the base model's hidden sizes (the default)."))
    featurizer: FeaturizerConfig | None = field(default=None, metadata=_help(
        "Must equal the base model's featurizer (the default)."))
    freeze_hidden: bool = field(default=False, metadata=_help(
        "Keep the base model's hidden layers fixed: only the output layer is trained (and no gradient is "
        "computed for the hidden layers)."))

    def __post_init__(self) -> None:
        super().__post_init__()
        _bool(self, "freeze_hidden")

    @classmethod
    def keys(cls) -> dict[str, Any]:
        return {**_KEYS, "freeze_hidden": ("bool", (("freezeHidden",), ("freeze_hidden",)))}
