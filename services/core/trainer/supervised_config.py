"""Configuration of supervised training: one dataclass, every field documented and validated.

Validation raises ``InvalidArgument`` naming the field as the user wrote it (camelCase, or the
nested path such as ``validation.split``), so the API can point at the exact offending input.
``SupervisedConfig.from_dict`` accepts camelCase and snake_case keys and ignores keys that belong
to the caller (``method``, ``trainingType``, ``dataset``, ...).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Mapping

from services.core.errors import InvalidArgument
from services.core.featurizer import FeaturizerConfig
from services.core.trainer.optimizers import OPTIMIZERS
from services.core.trainer.schedulers import SCHEDULERS

_MAX_EPOCHS = 10000


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# User-facing names of fields whose name is not simply the camelCase of the attribute.
_USER_NAMES = {"curriculum_enabled": "curriculum.enabled", "curriculum_stages": "curriculum.stages"}


def user_name(attr: str) -> str:
    return _USER_NAMES.get(attr, _camel(attr))


@dataclass(frozen=True)
class CurriculumStage:
    """Train ``duration`` epochs on the examples whose level is <= ``level``."""

    level: int
    duration: int

    def to_dict(self) -> dict[str, int]:
        return {"level": self.level, "duration": self.duration}


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class SupervisedConfig:
    epochs: int = field(default=10, metadata=_help(
        "Passes over the training set, 1..10000. Ignored when a curriculum is enabled "
        "(the stages' durations add up to the epoch count)."))
    batch_size: int = field(default=32, metadata=_help("Examples per gradient step, 1..65536."))
    learning_rate: float = field(default=0.001, metadata=_help("Peak learning rate, 0 < lr <= 1."))
    validation_split: float = field(default=0.2, metadata=_help(
        "Fraction of examples held out (stratified by output) when no validation set is given, [0, 1)."))
    validation_frequency: str = field(default="epoch", metadata=_help(
        "'epoch': validate after every epoch; 'step': also every validation_steps steps."))
    validation_steps: int | None = field(default=None, metadata=_help(
        "Steps between validations when validation_frequency is 'step'; unset = a quarter epoch "
        "(ceil(steps_per_epoch / 4))."))
    early_stopping: bool = field(default=True, metadata=_help(
        "Stop when validation loss has not improved for `patience` epochs; the best weights are restored. "
        "Under a curriculum only epochs of the final stage count."))
    patience: int = field(default=3, metadata=_help(
        "Epochs without a new best validation loss (from any validation in the epoch) before early stopping, >= 1."))
    min_delta: float = field(default=0.0, metadata=_help(
        "Smallest decrease of validation loss that counts as an improvement, >= 0."))
    checkpoint_interval: int = field(default=5, metadata=_help("Epochs between interval checkpoints, >= 1."))
    optimizer: str = field(default="adam", metadata=_help("'adam', 'adamw' (decoupled weight decay) or 'sgd'."))
    momentum: float = field(default=0.9, metadata=_help("SGD momentum, 0 <= m < 1 (ignored by Adam)."))
    nesterov: bool = field(default=False, metadata=_help("Use Nesterov momentum with SGD."))
    weight_decay: float = field(default=0.0, metadata=_help(
        "Weight decay on weight matrices, 0..1: L2 in the gradient for adam/sgd, decoupled for adamw."))
    scheduler_type: str = field(default="linear", metadata=_help(
        "'constant', 'linear' (to 0 at the last step), 'cosine' or 'step'."))
    warmup_steps: int = field(default=0, metadata=_help("Linear warm-up steps before the schedule, >= 0."))
    step_size: int = field(default=5, metadata=_help("'step' scheduler: epochs between decays, >= 1."))
    gamma: float = field(default=0.5, metadata=_help("'step' scheduler: decay factor, 0 < gamma <= 1."))
    hidden_sizes: tuple[int, ...] = field(default=(64,), metadata=_help(
        "Widths of the hidden ReLU layers, each 1..4096, at most 8 layers; empty = linear softmax model."))
    dropout: float = field(default=0.1, metadata=_help("Dropout on hidden activations during training, [0, 1)."))
    max_grad_norm: float | None = field(default=None, metadata=_help(
        "Clip the global gradient norm to this value (> 0); unset = no clipping."))
    seed: int = field(default=0, metadata=_help(
        "Seed of every random choice (split, init, order, dropout): same seed + data = same model."))
    curriculum_enabled: bool = field(default=False, metadata=_help("Train in curriculum stages."))
    curriculum_stages: tuple[CurriculumStage, ...] = field(default=(), metadata=_help(
        "Stages {level >= 1, duration >= 1 epochs}, trained in order on examples with level <= stage level."))
    featurizer: FeaturizerConfig = field(default_factory=FeaturizerConfig, metadata=_help(
        "Hashed n-gram featurizer settings (dim, wordNgrams, charNgrams, lowercase)."))
    sparse_updates: bool = field(default=False, metadata=_help(
        "Lazy optimizer updates of the hashed first layer: only the rows of features present in a batch "
        "are updated (lazy Adam/AdamW, lazy SGD momentum). Faster on wide layers, but a different algorithm "
        "from the default exact dense update; see optimizers.py."))
    max_budget_usd: float | None = field(default=None, metadata=_help(
        "Stop the job (checkpoint saved, reason budget_exceeded) when its cost exceeds this many USD, >= 0; "
        "warnings at 75% and 90%. Unset = no budget. Price model: services/core/trainer/cost.py."))

    # True for paradigms that start from an existing model (transfer): featurizer and hidden sizes
    # may then be None, meaning "the base model's".
    inherits_model: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _int(self, "epochs", 1, _MAX_EPOCHS)
        _int(self, "batch_size", 1, 65536)
        _float(self, "learning_rate", 0.0, 1.0, low_open=True)
        _float(self, "validation_split", 0.0, 1.0, high_open=True)
        _choice(self, "validation_frequency", ("epoch", "step"))
        if self.validation_steps is not None:
            _int(self, "validation_steps", 1, 10 ** 9)
        _bool(self, "early_stopping")
        _int(self, "patience", 1, 10000)
        _float(self, "min_delta", 0.0, math.inf)
        _int(self, "checkpoint_interval", 1, _MAX_EPOCHS)
        _choice(self, "optimizer", OPTIMIZERS)
        _float(self, "momentum", 0.0, 1.0, high_open=True)
        _bool(self, "nesterov")
        if self.nesterov and self.optimizer == "sgd" and self.momentum == 0:
            raise InvalidArgument("nesterov", "requires momentum > 0")
        _float(self, "weight_decay", 0.0, 1.0)
        _choice(self, "scheduler_type", SCHEDULERS)
        _int(self, "warmup_steps", 0, 10 ** 9)
        _int(self, "step_size", 1, _MAX_EPOCHS)
        _float(self, "gamma", 0.0, 1.0, low_open=True)
        if self.hidden_sizes is None and self.inherits_model:
            pass
        elif not isinstance(self.hidden_sizes, (list, tuple)) or len(self.hidden_sizes) > 8:
            raise InvalidArgument("hiddenSizes", "must be a list of at most 8 layer widths")
        else:
            for i, h in enumerate(self.hidden_sizes):
                if not _is_int(h) or not 1 <= h <= 4096:
                    raise InvalidArgument(f"hiddenSizes[{i}]", "must be an integer in [1, 4096]")
            object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        _float(self, "dropout", 0.0, 1.0, high_open=True)
        if self.max_grad_norm is not None:
            _float(self, "max_grad_norm", 0.0, math.inf, low_open=True)
        _int(self, "seed", 0, 2 ** 63 - 1)
        _bool(self, "curriculum_enabled")
        stages = []
        for i, st in enumerate(self.curriculum_stages):
            if isinstance(st, Mapping):
                st = CurriculumStage(st.get("level"), st.get("duration"))  # type: ignore[arg-type]
            if not isinstance(st, CurriculumStage):
                raise InvalidArgument(f"curriculum.stages[{i}]", "must be an object {level, duration}")
            if not _is_int(st.level) or st.level < 1:
                raise InvalidArgument(f"curriculum.stages[{i}].level", "must be an integer >= 1")
            if not _is_int(st.duration) or not 1 <= st.duration <= _MAX_EPOCHS:
                raise InvalidArgument(f"curriculum.stages[{i}].duration", "must be an integer in [1, 10000] (epochs)")
            stages.append(st)
        self.curriculum_stages = tuple(stages)
        if self.curriculum_enabled:
            if not stages:
                raise InvalidArgument("curriculum.stages", "at least one stage is required when the curriculum is enabled")
            if self.total_epochs > _MAX_EPOCHS:
                raise InvalidArgument("curriculum.stages", f"durations add up to more than {_MAX_EPOCHS} epochs")
        if not isinstance(self.featurizer, FeaturizerConfig) and not (self.featurizer is None and self.inherits_model):
            raise InvalidArgument("featurizer", "must be a featurizer configuration")
        _bool(self, "sparse_updates")
        if self.max_budget_usd is not None:
            _float(self, "max_budget_usd", 0.0, math.inf)

    @property
    def total_epochs(self) -> int:
        """Epochs actually run: the sum of stage durations under a curriculum, else ``epochs``."""
        if self.curriculum_enabled:
            return sum(st.duration for st in self.curriculum_stages)
        return self.epochs

    def stage_for_epoch(self, epoch: int) -> tuple[int, CurriculumStage] | None:
        """(stage index, stage) for 0-based ``epoch``, or None without a curriculum."""
        if not self.curriculum_enabled:
            return None
        end = 0
        for i, st in enumerate(self.curriculum_stages):
            end += st.duration
            if epoch < end:
                return i, st
        return len(self.curriculum_stages) - 1, self.curriculum_stages[-1]

    def to_dict(self) -> dict[str, Any]:
        """Resolved configuration, JSON-ready, snake_case; ``from_dict`` reads it back."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                pass
            elif f.name == "hidden_sizes":
                value = list(value)
            elif f.name == "curriculum_stages":
                value = [st.to_dict() for st in value]
            elif f.name == "featurizer":
                value = value.to_dict()
            out[f.name] = value
        return out

    @classmethod
    def help(cls) -> dict[str, str]:
        """User-facing field name -> help text (for API docs and CLI ``--help``)."""
        return {user_name(f.name): f.metadata["help"] for f in fields(cls)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "SupervisedConfig":
        """Build from user input; see the module docstring for the accepted keys."""
        return _from_dict(cls, d or {})

    @classmethod
    def keys(cls) -> dict[str, tuple[str, tuple[tuple[str, ...], ...]]]:
        """attr -> (kind, accepted key paths): paradigm configs extend this table."""
        return _KEYS


# --- validation helpers ---------------------------------------------------------------------
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int(cfg: Any, attr: str, lo: int, hi: int) -> None:
    v = getattr(cfg, attr)
    if not _is_int(v):
        raise InvalidArgument(user_name(attr), "must be an integer")
    if not lo <= v <= hi:
        raise InvalidArgument(user_name(attr), f"must be between {lo} and {hi}, got {v}")


def _float(cfg: Any, attr: str, lo: float, hi: float, *, low_open: bool = False, high_open: bool = False) -> None:
    v = getattr(cfg, attr)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise InvalidArgument(user_name(attr), "must be a finite number")
    too_low = v <= lo if low_open else v < lo
    too_high = v >= hi if high_open else v > hi
    if too_low or too_high:
        interval = f"{'(' if low_open else '['}{lo:g}, {hi:g}{')' if high_open else ']'}"
        raise InvalidArgument(user_name(attr), f"must be in {interval}, got {v:g}")
    object.__setattr__(cfg, attr, float(v))


def _bool(cfg: Any, attr: str) -> None:
    if not isinstance(getattr(cfg, attr), bool):
        raise InvalidArgument(user_name(attr), "must be a boolean")


def _choice(cfg: Any, attr: str, choices: tuple[str, ...]) -> None:
    v = getattr(cfg, attr)
    if not isinstance(v, str) or v not in choices:
        raise InvalidArgument(user_name(attr), f"must be one of {', '.join(choices)}, got {v!r}")


# --- from_dict ----------------------------------------------------------------------------------
# attr -> (kind, accepted key paths in priority order)
_KEYS: dict[str, tuple[str, tuple[tuple[str, ...], ...]]] = {
    "epochs": ("int", (("epochs",),)),
    "batch_size": ("int", (("batchSize",), ("batch_size",))),
    "learning_rate": ("float", (("learningRate",), ("learning_rate",))),
    "validation_split": ("float", (("validationSplit",), ("validation_split",), ("validation", "split"))),
    "validation_frequency": ("str", (("validationFrequency",), ("validation_frequency",), ("validation", "frequency"))),
    "validation_steps": ("int", (("validationSteps",), ("validation_steps",), ("validation", "steps"))),
    "early_stopping": ("bool", (("earlyStopping",), ("early_stopping",))),
    "patience": ("int", (("patience",),)),
    "min_delta": ("float", (("minDelta",), ("min_delta",))),
    "checkpoint_interval": ("int", (("checkpointInterval",), ("checkpoint_interval",))),
    "optimizer": ("str", (("optimizer",),)),
    "momentum": ("float", (("momentum",),)),
    "nesterov": ("bool", (("nesterov",),)),
    "weight_decay": ("float", (("weightDecay",), ("weight_decay",))),
    "scheduler_type": ("str", (("schedulerType",), ("scheduler_type",), ("scheduler",))),
    "warmup_steps": ("int", (("warmupSteps",), ("warmup_steps",))),
    "step_size": ("int", (("stepSize",), ("step_size",))),
    "gamma": ("float", (("gamma",),)),
    "hidden_sizes": ("int_list", (("hiddenSizes",), ("hidden_sizes",))),
    "dropout": ("float", (("dropout",),)),
    "max_grad_norm": ("float", (("maxGradNorm",), ("max_grad_norm",))),
    "seed": ("int", (("seed",),)),
    "curriculum_enabled": ("bool", (("curriculum", "enabled"), ("curriculumEnabled",), ("curriculum_enabled",))),
    "curriculum_stages": ("stages", (("curriculum", "stages"), ("curriculumStages",), ("curriculum_stages",))),
    "featurizer": ("featurizer", (("featurizer",),)),
    "sparse_updates": ("bool", (("sparseUpdates",), ("sparse_updates",))),
    "max_budget_usd": ("float", (("maxBudgetUsd",), ("max_budget_usd",))),
}

_MISSING = object()


def _lookup(d: Mapping[str, Any], path: tuple[str, ...], where: str) -> Any:
    cur: Any = d
    for i, key in enumerate(path):
        if not isinstance(cur, Mapping):
            raise InvalidArgument(".".join(path[:i]) or where, "must be an object")
        if key not in cur or cur[key] is None:
            return _MISSING
        cur = cur[key]
    return cur


def _coerce(kind: str, value: Any, name: str) -> Any:
    if kind == "int":
        if isinstance(value, float) and value.is_integer():
            return int(value)  # JSON / protobuf Struct numbers arrive as floats
        if not _is_int(value):
            raise InvalidArgument(name, "must be an integer")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidArgument(name, "must be a number")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise InvalidArgument(name, "must be a boolean")
        return value

    if kind == "str":
        if not isinstance(value, str):
            raise InvalidArgument(name, "must be a string")
        return value.strip().lower()
    if kind == "int_list":
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise InvalidArgument(name, "must be a list of integers")
        return tuple(_coerce("int", v, f"{name}[{i}]") for i, v in enumerate(value))
    if kind == "stages":
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise InvalidArgument(name, "must be a list of {level, duration} objects")
        stages = []
        for i, st in enumerate(value):
            at = f"{name}[{i}]"
            if isinstance(st, CurriculumStage):
                st = st.to_dict()
            if not isinstance(st, Mapping):
                raise InvalidArgument(at, "must be an object {level, duration}")
            if st.get("level") is None or st.get("duration") is None:
                raise InvalidArgument(at, "needs both 'level' and 'duration'")
            stages.append(CurriculumStage(_coerce("int", st["level"], f"{at}.level"),
                                          _coerce("int", st["duration"], f"{at}.duration")))
        return tuple(stages)
    if kind == "featurizer":
        return FeaturizerConfig.from_dict(value)
    raise AssertionError(kind)


def _from_dict(cls: type[SupervisedConfig], d: Mapping[str, Any]) -> SupervisedConfig:
    if not isinstance(d, Mapping):
        raise InvalidArgument("config", "must be an object")
    kwargs: dict[str, Any] = {}
    source: dict[str, str] = {}
    for attr, (kind, paths) in cls.keys().items():
        found: list[tuple[str, Any]] = []
        for path in paths:
            value = _lookup(d, path, user_name(attr))
            if value is not _MISSING:
                found.append((".".join(path), value))
        if not found:
            continue
        name, value = found[0]
        coerced = _coerce(kind, value, name)
        for other_name, other in found[1:]:
            if _coerce(kind, other, other_name) != coerced:
                raise InvalidArgument(other_name, f"conflicts with {name}")
        kwargs[attr] = coerced
        source[user_name(attr)] = name
    try:
        return cls(**kwargs)
    except InvalidArgument as exc:
        # Report the key the user actually wrote (e.g. "validation.split", "batch_size").
        head, sep, tail = (exc.field or "").partition("[")
        if head in source and source[head] != head:
            raise InvalidArgument(source[head] + sep + tail, exc.message) from exc
        raise
