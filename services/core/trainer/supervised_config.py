"""The supervised config now lives in ``services.core.configs`` (one model per config, light enough
for the gateway to import); this module keeps the old import path working."""
from services.core.configs.training import CurriculumStage, SupervisedConfig

__all__ = ["CurriculumStage", "SupervisedConfig"]
