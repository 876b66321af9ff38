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

from trainhouse.core.configs.base import ConfigModel, Flag, Int, Number, choice, custom_error, spellings
from trainhouse.core.configs.fields import MAX_EPOCHS, Featurizer, GradNorm, HiddenSizes, LearningRate, Seed
from trainhouse.core.featurizer import FeaturizerConfig

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

    # None = "auto": chosen from the data by ``resolved_for`` (see AUTO below) and stored resolved.
    epochs: Optional[Epochs] = Field(None, description=(
        "Passes over the training set, 1..10000; unset = chosen from the data (an upper bound for early "
        "stopping). Ignored when a curriculum is enabled (the stages' durations add up to the epoch count)."))
    batch_size: Optional[BatchSize] = Field(None, description=(
        "Examples per gradient step, 1..65536; unset = chosen from the data."))
    learning_rate: Optional[LearningRate] = Field(None, description=(
        "Peak learning rate, 0 < lr <= 1; unset = chosen from the data."))
    validation_split: ValidationSplit = 0.2
    refit: Optional[Flag] = Field(None, description=(
        "After early stopping picked the epoch count on the validation split, train again on all the examples "
        "(train + validation) for that many epochs and serve that model, as cross-validated estimators do. "
        "Temperature and out-of-scope threshold are fitted on the validation split before the refit; the job's "
        "validation split is then no longer held out (ListJobExamples returns it with 'train'). Unset = on for "
        "large data (see auto_settings), except when the job asks for promotion (the gate needs examples the "
        "candidate never trained on)."))
    out_of_scope_threshold: Optional[Number] = Field(None, ge=0, le=1, description=(
        "Fixed abstention threshold on the calibrated top probability, [0, 1]; unset = chosen on held-out data."))
    out_of_scope_precision: Optional[Number] = Field(None, gt=0, le=1, description=(
        "Choose the threshold as the highest that keeps this out-of-scope precision on held-out data (needs "
        "__out_of_scope__ examples), (0, 1]."))
    out_of_scope_recall: Optional[Number] = Field(None, gt=0, le=1, description=(
        "Choose the threshold as the lowest reaching this out-of-scope recall on held-out data (needs "
        "__out_of_scope__ examples), (0, 1]."))
    in_scope_loss: Number = Field(0.01, ge=0, le=1, description=(
        "Without __out_of_scope__ examples: the threshold is the highest that makes at most this fraction of "
        "the correctly answered held-out examples abstain, [0, 1]; 0 = never abstain."))
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
    hidden_sizes: Optional[HiddenSizes] = Field(None, description=(
        "Widths of the hidden ReLU layers (each 1..4096, at most 8; empty = a linear softmax model); unset = "
        "chosen from the data."))
    dropout: Dropout = 0.1
    max_grad_norm: Optional[GradNorm] = Field(None, description=(
        "Clip the global gradient norm to this value (> 0); unset = no clipping."))
    seed: Seed = Field(0, description=(
        "Seed of every random choice (split, init, order, dropout): same seed + data = same model."))
    curriculum_enabled: Flag = Field(False, description="Train in curriculum stages.")
    curriculum_stages: tuple[CurriculumStage, ...] = Field((), description=(
        "Stages {level >= 1, duration >= 1 epochs}, trained in order on examples with level <= stage level."))
    featurizer: Optional[Featurizer] = Field(None, description=(
        "Hashed n-gram featurizer settings (dim, wordNgrams, charNgrams, lowercase, normalize); unset = chosen "
        "from the data."))
    sparse_updates: Optional[Flag] = Field(None, description=(
        "Lazy optimizer updates of the hashed first layer: only the rows of features present in a batch are "
        "updated (lazy Adam/AdamW, lazy SGD momentum). Faster on wide layers, but a different algorithm from "
        "the exact dense update; see optimizers.py. Unset = chosen with the featurizer (on for wide ones)."))
    max_budget_usd: Optional[Number] = Field(None, ge=0, description=(
        "Stop the job (checkpoint saved, reason budget_exceeded) when its cost exceeds this many USD, >= 0; "
        "warnings at 75% and 90%. Unset = no budget. Price model: services/core/trainer/cost.py."))

    @model_validator(mode="after")
    def _consistent(self) -> "SupervisedConfig":
        """Rules between fields, checked where the config is built (the service), not per field."""
        if self.out_of_scope_precision is not None and self.out_of_scope_recall is not None:
            raise custom_error("give a target out-of-scope precision or recall, not both", "outOfScopePrecision")
        if self.out_of_scope_threshold is not None and (self.out_of_scope_precision is not None
                                                        or self.out_of_scope_recall is not None):
            raise custom_error("a fixed threshold leaves no target to choose it by", "outOfScopeThreshold")
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
        if self.epochs is None:
            raise ValueError("epochs is 'auto': resolve the config for its data first (resolved_for)")
        return self.epochs

    @property
    def is_resolved(self) -> bool:
        return not any(getattr(self, name) is None for name in self.auto_fields())

    @classmethod
    def auto_fields(cls) -> tuple[str, ...]:
        """The fields this paradigm chooses from the data when unset (model fields of a paradigm that
        starts from a base model mean "the base model's" instead)."""
        fields = ("epochs", "batch_size", "learning_rate", "sparse_updates")
        return fields if cls.inherits_model else fields + ("hidden_sizes", "featurizer")

    def resolved_for(self, n_examples: int, n_outputs: int, *, promotion: bool = False) -> "SupervisedConfig":
        """This config with every "auto" field chosen from the data (``auto_settings``); fields the
        caller set are kept. ``refit`` defaults on for large data unless the job asks for promotion."""
        chosen = auto_settings(n_examples, n_outputs)
        updates = {name: chosen[name] for name in self.auto_fields() if getattr(self, name) is None}
        if self.refit is None:
            updates["refit"] = bool(chosen["refit"]) and not promotion
        if updates.get("sparse_updates") is not None and self.featurizer is not None:
            updates["sparse_updates"] = self.featurizer.dim >= WIDE_FEATURIZER
        return self.model_copy(update=updates) if updates else self


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


# Data of at least this many examples, with at least LARGE_PER_OUTPUT per output, gets the "large"
# settings; below, the settings trainhouse always had (which fit a few hundred examples).
LARGE_EXAMPLES = 2000
LARGE_PER_OUTPUT = 10
WIDE_FEATURIZER = 2 ** 16
# The large featurizer is 2^17 buckets wide unless the output layer (dim x outputs float32) would
# pass this many bytes: the ONNX artifact travels in one gRPC message (64 MB limit, server.py).
MAX_OUTPUT_LAYER_BYTES = 32 * 1024 * 1024


def auto_settings(n_examples: int, n_outputs: int) -> dict[str, object]:
    """What unset fields become, from the number of (in-scope) training examples and of outputs.

    * small data (< 2,000 examples or < 10 per output): an MLP with one hidden layer of 64, the
      default featurizer (2^14 buckets, word 1-2 + char 3-5 n-grams), 10 epochs, learning rate 0.001,
      batch 32: the settings trainhouse always had, and no refit (the validation split stays held out);
    * large data: a linear softmax over a wider featurizer (2^17 buckets, halved while the output
      layer would pass MAX_OUTPUT_LAYER_BYTES; word 1-2 + char 2-5 n-grams,
      each family normalised on its own, lazy sparse updates), learning rate 0.01, batch 32 and up to
      12 epochs under the linear decay (early stopping may pick fewer; a refit trains that many on all
      data; on HWU64 10, 12, 15 and 40 epochs were within 0.3 pt, 40 twice as slow). On public
      intent sets of 10-15k examples and 64-150 outputs a linear model over n-grams is as accurate as
      any hidden layer we tried and several times faster (bench/learning.py).
    """
    large = n_examples >= LARGE_EXAMPLES and n_examples >= LARGE_PER_OUTPUT * max(1, n_outputs)
    if not large:
        return {"epochs": 10, "batch_size": 32, "learning_rate": 0.001, "hidden_sizes": (64,),
                "featurizer": FeaturizerConfig(), "sparse_updates": False, "refit": False}
    dim = 2 ** 17
    while dim > 2 ** 14 and dim * max(1, n_outputs) * 4 > MAX_OUTPUT_LAYER_BYTES:
        dim //= 2
    return {"epochs": 12, "batch_size": 32, "learning_rate": 0.01, "hidden_sizes": (),
            "featurizer": FeaturizerConfig(dim=dim, char_ngrams=(2, 5), normalize="per_family"),
            "sparse_updates": True, "refit": True}


class FewShotConfig(SupervisedConfig):
    """Few-shot training (1-5 examples per output): supervised options with few-shot defaults, plus
    the prototype scale and the pull toward the prototype initialisation.

    Defaults differ from supervised on purpose: a linear head (``hiddenSizes: []``, see
    few_shot_trainer.py), no validation split and no early stopping (with 3 examples per output
    every example is needed for training), a higher learning rate over few epochs, small batches.
    """

    kind: ClassVar[str] = "few_shot"
    sparse_updates: Flag = Field(False, description=(
        "Lazy optimizer updates of the hashed first layer (only rows of features present in a batch); see "
        "optimizers.py."))
    refit: Flag = Field(False, description="Few-shot data has no validation split to refit after.")
    featurizer: Featurizer = Field(default_factory=FeaturizerConfig)

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

    epochs: Epochs = 10
    batch_size: BatchSize = 32
    learning_rate: LearningRate = 0.001
    sparse_updates: Flag = Field(False, description=(
        "Lazy optimizer updates of the hashed first layer (only rows of features present in a batch); see "
        "optimizers.py."))

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

    epochs: Epochs = 10
    batch_size: BatchSize = 32
    sparse_updates: Flag = Field(False, description=(
        "Lazy optimizer updates of the hashed first layer (only rows of features present in a batch); see "
        "optimizers.py."))
    refit: Flag = Field(False, description="Not used by reinforcement (rated feedback has no held-out split).")

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
