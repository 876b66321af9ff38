"""GRPO for tool-use agents (DESIGN.md "grpo", seed 003): environment, policy, rewards, trainer.

No transport code lives here; the TrainingService worker drives ``GRPOTrainer`` through callbacks
and gives it a rollout pool (``rollout_pool.py``): with ``rollout_shards`` K > 1 (config.py) each
iteration's rollouts are split into K shards, run in-process or, for jobs on the Ray executor, as
Ray tasks, with the same result either way.
"""
from trainhouse.core.configs.grpo import KL_ESTIMATORS, GRPOConfig
from trainhouse.core.grpo.environment import (Episode, ToolEnvironment, TrainingQuery, matched_fields,
                                                parse_queries, values_match)
from trainhouse.core.grpo.evaluation import baseline_comparison, compare_policies, evaluate_policy
from trainhouse.core.grpo.objective import group_advantages, grpo_objective, trajectory_step_weights
from trainhouse.core.grpo.onnx_export import (build_policy_onnx, export_policy_onnx, load_policy_onnx,
                                                policy_onnx_bytes)
from trainhouse.core.grpo.policy import ToolPolicy
from trainhouse.core.grpo.rewards import RewardInput, get_reward, register_reward, reward_names
from trainhouse.core.grpo.rollout_pool import (LocalRolloutPool, RayRolloutPool, RolloutPool, RolloutShard,
                                                 make_rollout_pool)
from trainhouse.core.grpo.tools import DEFAULT_TOOLS, EFFECTS, FINISH, ToolSpec, parse_catalog, relevant_tools
from trainhouse.core.grpo.trainer import (EVENT_KINDS, BudgetExceeded, GRPOResult, GRPOTrainer, TrainingDiverged,
                                            load_policy_checkpoint)
from trainhouse.core.grpo.trajectories import (RolloutBatch, Trajectory, merge_batches, rollout, score_batch,
                                                 summarize)
from trainhouse.core.trainer.cost import PriceModel

__all__ = [
    "BudgetExceeded", "DEFAULT_TOOLS", "EFFECTS", "EVENT_KINDS", "FINISH", "KL_ESTIMATORS", "Episode",
    "GRPOConfig", "GRPOResult", "GRPOTrainer", "LocalRolloutPool", "PriceModel", "RayRolloutPool",
    "RolloutBatch", "RolloutPool", "RolloutShard", "RewardInput", "ToolEnvironment", "ToolPolicy",
    "ToolSpec", "TrainingQuery", "Trajectory", "baseline_comparison", "build_policy_onnx", "compare_policies",
    "TrainingDiverged", "evaluate_policy", "export_policy_onnx", "get_reward", "group_advantages", "grpo_objective",
    "load_policy_checkpoint", "load_policy_onnx", "make_rollout_pool", "matched_fields", "merge_batches",
    "parse_catalog", "parse_queries", "policy_onnx_bytes", "register_reward", "relevant_tools", "reward_names", "rollout", "score_batch", "summarize",
    "trajectory_step_weights", "values_match",
]
