"""Configs of the classifier paradigms: supervised, and the three that share its training loop.

``SupervisedConfig`` is the shared base: few_shot, transfer and reinforcement inherit every field
(type, range, help text, spellings) and change only defaults or add their own fields. Callers may
spell a field in camelCase (seeds 000/001: ``learningRate``) or snake_case (seed 002:
``learning_rate``), and a few the seed-000 way (``validation.split``, ``curriculum.stages``,
``scheduler``); errors name the spelling used.
"""
from __future__ import annotations

from typing import Annotated, ClassVar, Optional

from pydantic import AliasPath, ConfigDict, Field, model_validator

from services.core.configs.base import ConfigModel, Flag, Int, Number, choice, custom_error, spellings
from services.core.configs.fields import MAX_EPOCHS, Featurizer, GradNorm, HiddenSizes, LearningRate, Seed
from services.core.featurizer import FeaturizerConfig

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("constant", "linear", "cosine", "step")
BASELINES = ("mean", "none")

# Field types whose defaults the paradigms change: the rule is declared here once.
Epochs = Annotated[Int, Field(ge=1, le=MAX_EPOCHS, description=(
    "Passes over the training set, 1..10000. Ignored when a curriculum is enabled (the stages' durations "
    "add up to the epoch count)."))]
BatchSize = Annotated[Int, Field(ge=1, le=65536, description="Examples per gradient step, 1..65536.")]
ValidationSplit = Annotated[Number, Field(ge=0, lt=1, description=(
    "Fraction of examples held out (stratified by output) when no validation set is given, [0, 1)."))]
EarlyStopping = Annotated[Flag, Field(description=(
    "Stop when validation loss has not improved for `patience` epochs; the best weights are restored. "
    "Under a curriculum only epochs of the final stage count."))]
Scheduler = Annotated[choice(*SCHEDULERS), Field(description=(
    "Learning-rate schedule: 'constant', 'linear' (to 0 at the last step), 'cosine' or 'step'."))]
Dropout = Annotated[Number, Field(ge=0, lt=1, description="Dropout on hidden activations during training, [0, 1).")]


class CurriculumStage(ConfigModel):
    """Train ``duration`` epochs on the examples whose level is <= ``level``."""

    model_config = ConfigDict(frozen=True)

    # An example's level has no upper bound; 2^31-1 is what the protobuf field carries.
    level: Int = Field(ge=1, le=2 ** 31 - 1, description="Highest example level trained in this stage, >= 1.")
    duration: Int = Field(ge=1, le=MAX_EPOCHS, description="Epochs of this stage, 1..10000.")


class SupervisedConfig(ConfigModel):
    """Mini-batch training of the MLP (DESIGN.md "supervised")."""

    model_config = ConfigDict(alias_generator=spellings(
        camel_first=True,
        first={"curriculum_enabled": (AliasPath("curriculum", "enabled"),),
               "curriculum_stages": (AliasPath("curriculum", "stages"),)},
        extra={"validation_split": (AliasPath("validation", "split"),),
               "validation_frequency": (AliasPath("validation", "frequency"),),
               "validation_steps": (AliasPath("validation", "steps"),),
               "scheduler_type": ("scheduler",)}))

    kind: ClassVar[str] = "supervised"
    # True for paradigms that start from an existing model: featurizer and hidden sizes may then be
    # None, meaning "the base model's".
    inherits_model: ClassVar[bool] = False

    epochs: Epochs = 10
    batch_size: BatchSize = 32
    learning_rate: LearningRate = 0.001
    validation_split: ValidationSplit = 0.2
    validation_frequency: choice("epoch", "step") = Field("epoch", description=(
        "'epoch': validate after every epoch; 'step': also every validation_steps steps."))
    validation_steps: Optional[Int] = Field(None, ge=1, le=10 ** 9, description=(
        "Steps between validations when validation_frequency is 'step'; unset = a quarter epoch "
        "(ceil(steps_per_epoch / 4))."))
    early_stopping: EarlyStopping = True
    patience: Int = Field(3, ge=1, le=10000, description=(
        "Epochs without a new best validation loss (from any validation in the epoch) before early stopping, >= 1."))
    min_delta: Number = Field(0.0, ge=0, description=(
        "Smallest decrease of validation loss that counts as an improvement, >= 0."))
    checkpoint_interval: Int = Field(5, ge=1, le=MAX_EPOCHS, description="Epochs between interval checkpoints, >= 1.")
    optimizer: choice(*OPTIMIZERS) = Field("adam", description=(
        "'adam', 'adamw' (decoupled weight decay) or 'sgd'."))
    momentum: Number = Field(0.9, ge=0, lt=1, description="SGD momentum, 0 <= m < 1 (ignored by Adam).")
    nesterov: Flag = Field(False, description="Use Nesterov momentum with SGD (needs momentum > 0).")
    weight_decay: Number = Field(0.0, ge=0, le=1, description=(
        "Weight decay on weight matrices, 0..1: L2 in the gradient for adam/sgd, decoupled for adamw."))
    scheduler_type: Scheduler = "linear"
    warmup_steps: Int = Field(0, ge=0, le=10 ** 9, description="Linear warm-up steps before the schedule, >= 0.")
    step_size: Int = Field(5, ge=1, le=MAX_EPOCHS, description="'step' scheduler: epochs between decays, >= 1.")
    gamma: Number = Field(0.5, gt=0, le=1, description="'step' scheduler: decay factor, 0 < gamma <= 1.")
    hidden_sizes: HiddenSizes = (64,)
    dropout: Dropout = 0.1
    max_grad_norm: Optional[GradNorm] = Field(None, description=(
        "Clip the global gradient norm to this value (> 0); unset = no clipping."))
    seed: Seed = Field(0, description=(
        "Seed of every random choice (split, init, order, dropout): same seed + data = same model."))
    curriculum_enabled: Flag = Field(False, description="Train in curriculum stages.")
    curriculum_stages: tuple[CurriculumStage, ...] = Field((), description=(
        "Stages {level >= 1, duration >= 1 epochs}, trained in order on examples with level <= stage level."))
    featurizer: Featurizer = Field(default_factory=FeaturizerConfig)
    sparse_updates: Flag = Field(False, description=(
        "Lazy optimizer updates of the hashed first layer: only the rows of features present in a batch are "
        "updated (lazy Adam/AdamW, lazy SGD momentum). Faster on wide layers, but a different algorithm from "
        "the default exact dense update; see optimizers.py."))
    max_budget_usd: Optional[Number] = Field(None, ge=0, description=(
        "Stop the job (checkpoint saved, reason budget_exceeded) when its cost exceeds this many USD, >= 0; "
        "warnings at 75% and 90%. Unset = no budget. Price model: services/core/trainer/cost.py."))

    @model_validator(mode="after")
    def _consistent(self) -> "SupervisedConfig":
        """Rules between fields, checked where the config is built (the service), not per field."""
        if self.nesterov and self.optimizer == "sgd" and self.momentum == 0:
            raise custom_error("requires momentum > 0", "nesterov")
        if self.curriculum_enabled:
            if not self.curriculum_stages:
                raise custom_error("at least one stage is required when the curriculum is enabled",
                                   "curriculum.stages")
            if self.total_epochs > MAX_EPOCHS:
                raise custom_error(f"durations add up to more than {MAX_EPOCHS} epochs", "curriculum.stages")
        return self

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


class FewShotConfig(SupervisedConfig):
    """Few-shot training (1-5 examples per output): supervised options with few-shot defaults, plus
    the prototype scale and the pull toward the prototype initialisation.

    Defaults differ from supervised on purpose: a linear head (``hiddenSizes: []``, see
    few_shot_trainer.py), no validation split and no early stopping (with 3 examples per output
    every example is needed for training), a higher learning rate over few epochs, small batches.
    """

    kind: ClassVar[str] = "few_shot"

    epochs: Epochs = Field(10, description="Fine-tuning passes over the few examples, 1..10000.")
    batch_size: BatchSize = 8
    learning_rate: LearningRate = Field(0.01, description="Peak learning rate of the fine-tune, 0 < lr <= 1.")
    validation_split: ValidationSplit = Field(0.0, description=(
        "Fraction held out for validation when no validation set is given, [0, 1); default 0: few-shot data "
        "is too small to split."))
    early_stopping: EarlyStopping = Field(False, description=(
        "Stop when validation loss stops improving (needs a validation set)."))
    scheduler_type: Scheduler = "constant"
    hidden_sizes: HiddenSizes = Field((), description=(
        "Hidden ReLU layers; default none: the prototypes are the output layer of a linear model. With hidden "
        "layers the prototypes are projected through the (He-initialised) hidden layers."))
    dropout: Dropout = 0.0
    prototype_scale: Number = Field(10.0, gt=0, le=1000, description=(
        "Logit scale of the prototype initialisation (W_c = scale * unit prototype of output c): the initial "
        "logits are scaled cosine similarities, (0, 1000]."))
    anchor_strength: Number = Field(0.01, ge=0, le=100, description=(
        "Strength of the L2 pull toward the prototype initialisation during the fine-tune "
        "(loss += strength/2 * ||W - W_init||^2), [0, 100]; 0 = unregularised fine-tune."))


class TransferConfig(SupervisedConfig):
    """Transfer learning: supervised options, starting from a base model.

    ``featurizer`` and ``hiddenSizes`` default to the base model's (None here); giving different
    values is refused by the trainer (the base weights only mean something for that featurizer
    and those layer widths). ``freezeHidden`` keeps the hidden layers as they are in the base model.
    """

    kind: ClassVar[str] = "transfer"
    inherits_model: ClassVar[bool] = True

    hidden_sizes: Optional[HiddenSizes] = Field(None, description="Must equal the base model's hidden sizes "
                                                                  "(the default).")
    featurizer: Optional[Featurizer] = Field(None, description="Must equal the base model's featurizer (the default).")
    freeze_hidden: Flag = Field(False, description=(
        "Keep the base model's hidden layers fixed: only the output layer is trained (and no gradient is "
        "computed for the hidden layers)."))


class ReinforcementConfig(SupervisedConfig):
    """Reinforcement (contextual-bandit) training from rated feedback: the supervised loop's options
    plus the policy-gradient ones. See reinforcement_trainer.py."""

    kind: ClassVar[str] = "reinforcement"
    inherits_model: ClassVar[bool] = True

    hidden_sizes: Optional[HiddenSizes] = Field(None, description=(
        "Hidden ReLU layer widths; unset = the base model's when one is given, else [64]."))
    featurizer: Optional[Featurizer] = Field(None, description=(
        "Featurizer settings; unset = the base model's when one is given, else the default featurizer."))
    learning_rate: LearningRate = 0.01
    early_stopping: EarlyStopping = Field(False, description=(
        "Stop when the validation estimate of the greedy policy's reward stops improving."))
    scheduler_type: Scheduler = "constant"
    baseline: choice(*BASELINES) = Field("mean", description=(
        "'mean': subtract the running mean reward (variance reduction, no bias); 'none': raw rewards."))
    importance_weight_clip: Number = Field(10.0, ge=1, le=1000, description=(
        "Upper clip of the importance weight pi(a|x) / propensity, [1, 1000]: bounds the variance that rarely "
        "logged actions would add (at the price of a small bias)."))
    entropy_coef: Number = Field(0.0, ge=0, le=1, description=(
        "Entropy bonus coefficient, [0, 1]: > 0 keeps the policy from collapsing on one output early."))


# Every classifier paradigm's config, by method name.
CLASSIFIER_CONFIGS: dict[str, type[SupervisedConfig]] = {
    cls.kind: cls for cls in (SupervisedConfig, FewShotConfig, TransferConfig, ReinforcementConfig)}
