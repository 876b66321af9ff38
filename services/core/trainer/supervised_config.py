"""The supervised config now lives in ``trainhouse.core.configs`` (one model per config, light enough
for the gateway to import); this module keeps the old import path working."""
from trainhouse.core.configs.training import CurriculumStage, SupervisedConfig

__all__ = ["CurriculumStage", "SupervisedConfig"]
