"""One model per config, declared once (pydantic), read by every surface.

* ``training``: SupervisedConfig and the paradigms built on it (few_shot, transfer, reinforcement)
* ``grpo``: GRPOConfig (seed 003)
* ``generation``: GenerationConfig (synthetic data)
* ``fields``: field types several configs share; ``base``: ConfigModel, spellings, errors

The TrainingService validates a request's config with these models at its edge; the gateway
derives its request bodies from them (``request_fields``), so /openapi.json shows the same ranges
and enums; EvaluationService reads field names and defaults from them. The package imports no
trainer, so the gateway can use it without loading NumPy training code.
"""
from trainhouse.core.configs.base import (ConfigModel, describe, error_path, field_bounds, flat_spellings,
                                        invalid_argument, optional_type, published_name, request_fields, within)
from trainhouse.core.configs.generation import GenerationConfig, GenerationConstraints
from trainhouse.core.configs.grpo import KL_ESTIMATORS, SCALE_REWARDS, GRPOConfig
from trainhouse.core.configs.training import (BASELINES, CLASSIFIER_CONFIGS, OPTIMIZERS, SCHEDULERS, CurriculumStage,
                                            FewShotConfig, ReinforcementConfig, SupervisedConfig, TransferConfig)

__all__ = [
    "BASELINES", "CLASSIFIER_CONFIGS", "ConfigModel", "CurriculumStage", "FewShotConfig", "GRPOConfig",
    "GenerationConfig", "GenerationConstraints", "KL_ESTIMATORS", "OPTIMIZERS", "ReinforcementConfig",
    "SCALE_REWARDS", "SCHEDULERS", "SupervisedConfig", "TransferConfig", "describe", "error_path",
    "field_bounds", "flat_spellings", "invalid_argument", "optional_type", "published_name", "request_fields",
    "within",
]
