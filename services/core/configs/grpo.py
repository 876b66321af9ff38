"""Configuration of GRPO training (seed 003 ``GRPOConfig`` plus the algorithm's own knobs).

Seed fields and ranges: ``n_iterations`` 1..10000 (1000), ``batch_size`` 1..128 (16),
``n_trajectories_per_query`` 1..16 (8), ``learning_rate`` (0, 1] (0.0001; the seed writes 0.0-1.0,
but a zero learning rate trains nothing, so 0 is refused), ``max_budget_usd`` >= 0 (100.00),
``checkpoint_interval`` >= 1 (10), ``max_steps_per_trajectory`` 1..100 (20), ``gamma`` [0, 1] (0.99).
Seed 003 spells fields in snake_case; camelCase and a few short forms (``iterations``, ``reward``,
``maxBudgetUSD``) are accepted too.

Not in the seed: ``rollout_shards`` 1..64 (1) splits each iteration's rollouts into contiguous
shards of query groups, each sampled from its own generator seeded from the run's generator, so
the result depends on the shard count but not on where the shards run (in-process, or as Ray
tasks when the job runs on the Ray executor; ``rollout_pool.py``).

The reward function and the tool catalog are checked against the GRPO package (the reward
registry lives in the process that trains), imported when a config is built: this module stays
light enough for the gateway to publish the schema.
"""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Optional

from pydantic import ConfigDict, Field, PlainSerializer, WithJsonSchema, field_validator

from trainhouse.core.configs.base import ConfigModel, Int, Number, Text, choice, from_domain, spellings
from trainhouse.core.configs.fields import Featurizer, GradNorm, HiddenSizes, LearningRate, Seed
from trainhouse.core.errors import InvalidArgument
from trainhouse.core.featurizer import FeaturizerConfig

KL_ESTIMATORS = ("k3", "exact")
SCALE_REWARDS = ("group", "batch", "none")
MAX_BUDGET_USD = 1e9

# A custom tool catalog: a list of tool objects, parsed by grpo/tools.py into ToolSpecs.
ToolCatalog = Annotated[
    Any,
    PlainSerializer(lambda tools: None if tools is None else [t.to_dict() for t in tools]),
    WithJsonSchema({"type": ["array", "null"], "items": {"type": "object"}}),
]


class GRPOConfig(ConfigModel):
    """Every GRPO knob, with its range and help text; ``from_dict`` refuses unknown keys."""

    model_config = ConfigDict(alias_generator=spellings(camel_first=False, extra={
        "max_budget_usd": ("maxBudgetUSD",), "n_iterations": ("iterations",),
        "reward_function": ("reward", "rewardFn")}))

    kind: ClassVar[str] = "grpo"
    refuses_unknown_keys: ClassVar[bool] = True

    n_iterations: Int = Field(1000, ge=1, le=10000, description=(
        "Policy updates to run, 1..10000. Each iteration samples `batch_size` queries, `n_trajectories_per_query` "
        "trajectories for each, and updates the policy on them."))
    batch_size: Int = Field(16, ge=1, le=128, description=(
        "Queries per iteration, 1..128; each is one GRPO group. Queries are drawn without replacement from a "
        "shuffled pass over the training data (a new shuffle when a pass is used up)."))
    n_trajectories_per_query: Int = Field(8, ge=1, le=16, description=(
        "Group size G, 1..16: trajectories sampled per query. Advantages are rewards standardised within the "
        "group, so G = 1 (or a group with equal rewards) gives zero advantage and teaches nothing."))
    learning_rate: LearningRate = Field(0.0001, description=(
        "Adam learning rate, 0 < lr <= 1 (constant). The seed default 1e-4 suits large models; the small policy "
        "here typically wants 1e-3..3e-2."))
    max_budget_usd: Number = Field(100.0, ge=0, le=MAX_BUDGET_USD, description=(
        "Spending limit in USD, >= 0, from the price model (compute seconds + processed tokens). Warnings at 75% "
        "and 90%; when the cost exceeds it, the job stops at the end of that iteration with a checkpoint and "
        "reason budget_exceeded (0 stops after the first iteration)."))
    checkpoint_interval: Int = Field(10, ge=1, le=10000, description=(
        "Iterations between checkpoints and evaluations, 1..10000 (the best checkpoint is chosen on those "
        "evaluations)."))
    max_steps_per_trajectory: Int = Field(20, ge=1, le=100, description=(
        "Actions per trajectory, 1..100, `finish` included; a trajectory that has not finished by then is scored "
        "on its state at the limit."))
    gamma: Number = Field(0.99, ge=0, le=1, description=(
        "Discount in [0, 1] applied per step by discounted reward functions (`step_cost`: "
        "match * gamma^(steps-1) - step_penalty * steps); passed to custom reward functions."))
    clip_epsilon: Number = Field(0.2, gt=0, lt=1, description=(
        "PPO clip range, 0 < eps < 1: the probability ratio against the sampling policy is clipped to "
        "[1-eps, 1+eps]. Only matters when updates_per_batch > 1 (the first update has ratio 1)."))
    kl_coef: Number = Field(0.04, ge=0, le=10, description=(
        "Weight beta of the KL penalty to the reference (initial) policy, 0..10; 0 disables it."))
    kl_estimator: choice(*KL_ESTIMATORS) = Field("k3", description=(
        "'k3': the per-sampled-action estimator of DeepSeekMath/TRL, pi_ref/pi - log(pi_ref/pi) - 1; 'exact': "
        "the full KL(pi || pi_ref) over all actions (cheap here: the action set is small)."))
    scale_rewards: choice(*SCALE_REWARDS) = Field("group", description=(
        "Advantage normalisation: 'group' (r - group mean) / group std, as GRPO; 'batch' divides by the batch's "
        "std; 'none' only subtracts the group mean (Dr. GRPO). Prefer 'none' with shaped rewards such as "
        "step_cost: dividing by a tiny std turns a 0.01 step-cost difference into a unit advantage and the "
        "policy learns to stop before it ever finds a multi-step solution."))
    updates_per_batch: Int = Field(1, ge=1, le=16, description=(
        "Optimizer steps on each sampled batch (GRPO's mu, TRL num_iterations), 1..16."))
    reward_function: Text = Field("exact_match", description=(
        "Name of a registered reward function: exact_match, partial_match, step_cost or a custom one."))
    step_penalty: Number = Field(0.01, ge=0, le=1, description="Per-step cost used by the `step_cost` reward, 0..1.")
    hidden_sizes: HiddenSizes = Field((64,), description=(
        "Hidden ReLU layer widths of the policy, each 1..4096, at most 8 layers; empty = linear policy."))
    max_grad_norm: Optional[GradNorm] = Field(1.0, description=(
        "Clip the global gradient norm to this value (> 0); null disables clipping."))
    seed: Seed = Field(0, description=(
        "Seed of every random choice (initialisation, query order, action sampling): same seed + data = same "
        "policy."))
    tools: ToolCatalog = Field(None, description=(
        "Custom tool catalog (list of {name, description, requires, requires_any, sets, clears, effect}); null = "
        "the default catalog of grpo/tools.py. `finish` is always the last action."))
    featurizer: Featurizer = Field(default_factory=lambda: FeaturizerConfig(dim=4096), description=(
        "Hashed n-gram featurizer for the query text (dim, wordNgrams, charNgrams, lowercase)."))
    rollout_shards: Int = Field(1, ge=1, le=64, description=(
        "Shards K of each iteration's rollouts, 1..64. K > 1 splits the batch's query groups into K contiguous "
        "shards (at most one per query), each sampled with its own generator seeded from the run's generator; on "
        "the Ray executor each shard is a Ray task, elsewhere they run one after the other in the worker. Same "
        "seed and K = same trajectories wherever the shards run; a different K samples differently. 1 samples "
        "the whole batch from the run's generator in the worker."))

    @field_validator("reward_function")
    @classmethod
    def _registered(cls, name: str) -> str:
        from trainhouse.core.grpo.rewards import get_reward

        try:
            get_reward(name)
        except InvalidArgument as err:
            raise from_domain(err, "reward_function") from None
        return name

    @field_validator("tools")
    @classmethod
    def _catalog(cls, raw: Any) -> Any:
        from trainhouse.core.grpo.tools import parse_catalog

        if raw is None:
            return None
        try:
            return parse_catalog(raw, "tools")
        except InvalidArgument as err:
            raise from_domain(err, "tools") from None

    @property
    def catalog(self) -> tuple[Any, ...]:
        """The action list (``ToolSpec``s): the custom tools or the default catalog, ``finish`` last."""
        from trainhouse.core.grpo.tools import DEFAULT_TOOLS

        return self.tools if self.tools is not None else DEFAULT_TOOLS
