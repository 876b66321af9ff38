"""The GRPO config now lives in ``trainhouse.core.configs`` (one model per config, light enough for
the gateway to import); this module keeps the old import path working."""
from trainhouse.core.configs.grpo import KL_ESTIMATORS, MAX_BUDGET_USD, GRPOConfig

__all__ = ["GRPOConfig", "KL_ESTIMATORS", "MAX_BUDGET_USD"]
