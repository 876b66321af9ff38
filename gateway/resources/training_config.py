"""The training config as JSON request bodies carry it, and its TrainingConfig proto mapping.

The fields, ranges, enums, defaults, help text and seed spellings come from the config models in
``services/core/configs`` (the ones TrainingService validates with), so every surface that takes a
training config (seed 000 ``config``, seed 001/002 ``config``) publishes the same schema in
``/openapi.json``. Seed 000's nested ``validation``/``curriculum`` forms are the request-only shape.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, StrictBool, create_model
from trainhouse.v1 import job_state_pb2, training_job_pb2

from trainhouse.gateway.convert import struct_to_dict
from trainhouse.gateway.models import CamelModel, Id
from trainhouse.gateway.resources.jobs import method_word
from trainhouse.core.configs import CLASSIFIER_CONFIGS, CurriculumStage, SupervisedConfig, optional_type, request_fields

METHODS: dict[str, int] = {
    "supervised": job_state_pb2.TRAINING_METHOD_SUPERVISED,
    "few_shot": job_state_pb2.TRAINING_METHOD_FEW_SHOT,
    "few-shot": job_state_pb2.TRAINING_METHOD_FEW_SHOT,
    "transfer": job_state_pb2.TRAINING_METHOD_TRANSFER,
    "reinforcement": job_state_pb2.TRAINING_METHOD_REINFORCEMENT,
    "grpo": job_state_pb2.TRAINING_METHOD_GRPO,
}
MethodName = Literal["supervised", "few_shot", "few-shot", "transfer", "reinforcement", "grpo"]

# Optional scalar config fields: (request attribute, proto field, response key).
SCALARS = [
    ("epochs", "epochs", "epochs"),
    ("batch_size", "batch_size", "batchSize"),
    ("learning_rate", "learning_rate", "learningRate"),
    ("early_stopping", "early_stopping", "earlyStopping"),
    ("patience", "patience", "patience"),
    ("checkpoint_interval", "checkpoint_interval", "checkpointInterval"),
    ("warmup_steps", "warmup_steps", "warmupSteps"),
    ("weight_decay", "weight_decay", "weightDecay"),
    ("momentum", "momentum", "momentum"),
    ("dropout", "dropout", "dropout"),
    ("seed", "seed", "seed"),
]
STRINGS = [("optimizer", "optimizer", "optimizer"), ("scheduler_type", "scheduler_type", "schedulerType")]


class ValidationIn(CamelModel):
    split: optional_type(SupervisedConfig, "validation_split") = None
    frequency: optional_type(SupervisedConfig, "validation_frequency") = None


class CurriculumIn(CamelModel):
    enabled: StrictBool = False
    stages: list[CurriculumStage] = Field(default_factory=list)


# The config fields of every classifier paradigm, with the models' types, ranges, enums, help text
# and spellings (services/core/configs); the curriculum arrives in seed 000's nested form.
CONFIG_FIELDS = request_fields(*CLASSIFIER_CONFIGS.values(), exclude=("curriculum_enabled", "curriculum_stages"))
TrainingConfigIn = create_model(
    "TrainingConfigIn", __base__=CamelModel,
    __doc__="Seed 000 `config`. Unset fields take the TrainingService defaults of the method (echoed back "
            "resolved); ranges and enums are the config models' (services/core/configs).",
    method=(MethodName | None, None),
    dataset=(Id | None, Field(None, description="A DataService dataset id to train on")),
    validation=(ValidationIn | None, None),
    curriculum=(CurriculumIn | None, None),
    options=(dict[str, Any] | None, Field(None, description="Paradigm-specific options (e.g. GRPO)")),
    **CONFIG_FIELDS)


# TrainingConfig fields holding one config value; the other config fields travel in `options`.
PROTO_SCALARS = {f.name for f in training_job_pb2.TrainingConfig.DESCRIPTOR.fields
                 if f.message_type is None and not f.is_repeated} - {"method"}


def config_to_proto(cfg: TrainingConfigIn) -> training_job_pb2.TrainingConfig:
    out = training_job_pb2.TrainingConfig()
    if cfg.method is not None:
        out.method = METHODS[cfg.method]
    options: dict[str, Any] = {}
    for name, value in cfg.model_dump(mode="json", include=set(CONFIG_FIELDS), exclude_unset=True).items():
        if name not in PROTO_SCALARS and name != "hidden_sizes":
            options[name] = value  # null included: it means "unset" there, or "none" for max_grad_norm
        elif name == "hidden_sizes" and value == []:  # "no hidden layer", which the repeated field cannot say
            options[name] = value
        elif name == "hidden_sizes" and value is not None:
            out.hidden_sizes.extend(value)
        elif value is not None:
            setattr(out, name, value)
    if cfg.validation is not None:  # seed 000's nested form wins over the flat fields
        if cfg.validation.split is not None:
            out.validation_split = cfg.validation.split
        if cfg.validation.frequency:
            out.validation_frequency = cfg.validation.frequency
    if cfg.curriculum is not None:
        out.curriculum.enabled = cfg.curriculum.enabled
        for stage in cfg.curriculum.stages:
            out.curriculum.stages.add(level=stage.level, duration=stage.duration)
    options.update(cfg.options or {})
    if options:
        out.options.update(options)
    return out


def config_json(cfg: training_job_pb2.TrainingConfig, dataset_id: str = "") -> dict[str, Any]:
    """The resolved config in the request's own camelCase shape."""
    out: dict[str, Any] = {"method": method_word(cfg.method)}
    if dataset_id:
        out["dataset"] = dataset_id
    for _, field, key in SCALARS:
        if cfg.HasField(field):
            out[key] = getattr(cfg, field)
    for _, field, key in STRINGS:
        if getattr(cfg, field):
            out[key] = getattr(cfg, field)
    if cfg.HasField("validation_split") or cfg.validation_frequency:
        validation: dict[str, Any] = {"frequency": cfg.validation_frequency or "epoch"}
        if cfg.HasField("validation_split"):
            validation["split"] = cfg.validation_split
            out["validationSplit"] = cfg.validation_split
        out["validation"] = validation
    if cfg.hidden_sizes:
        out["hiddenSizes"] = list(cfg.hidden_sizes)
    if cfg.curriculum.enabled or cfg.curriculum.stages:
        out["curriculum"] = {"enabled": cfg.curriculum.enabled,
                             "stages": [{"level": s.level, "duration": s.duration} for s in cfg.curriculum.stages]}
    if cfg.HasField("options") and cfg.options.fields:
        out["options"] = struct_to_dict(cfg.options)
    return out
