"""Configuration of GRPO training (seed 003 ``GRPOConfig`` plus the algorithm's own knobs).

Every field carries its help text and is validated in ``__post_init__``; a bad value raises
``InvalidArgument`` naming the field (snake_case, as seed 003 spells it, or the key the user
actually wrote when built through ``from_dict``) and the allowed range.

Seed fields and ranges: ``n_iterations`` 1..10000 (1000), ``batch_size`` 1..128 (16),
``n_trajectories_per_query`` 1..16 (8), ``learning_rate`` (0, 1] (0.0001; the seed writes 0.0-1.0,
but a zero learning rate trains nothing, so 0 is refused), ``max_budget_usd`` >= 0 (100.00),
``checkpoint_interval`` >= 1 (10), ``max_steps_per_trajectory`` 1..100 (20), ``gamma`` [0, 1] (0.99).

Not in the seed: ``rollout_shards`` 1..64 (1) splits each iteration's rollouts into contiguous
shards of query groups, each sampled from its own generator seeded from the run's generator, so
the result depends on the shard count but not on where the shards run (in-process, or as Ray
tasks when the job runs on the Ray executor; ``rollout_pool.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from services.core.errors import InvalidArgument
from services.core.featurizer import FeaturizerConfig
from services.core.grpo.objective import SCALE_REWARDS
from services.core.grpo.rewards import get_reward
from services.core.grpo.tools import DEFAULT_TOOLS, ToolSpec, parse_catalog

KL_ESTIMATORS = ("k3", "exact")
MAX_BUDGET_USD = 1e9


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class GRPOConfig:
    n_iterations: int = field(default=1000, metadata=_help(
        "Policy updates to run, 1..10000. Each iteration samples `batch_size` queries, "
        "`n_trajectories_per_query` trajectories for each, and updates the policy on them."))
    batch_size: int = field(default=16, metadata=_help(
        "Queries per iteration, 1..128; each is one GRPO group. Queries are drawn without replacement "
        "from a shuffled pass over the training data (a new shuffle when a pass is used up)."))
    n_trajectories_per_query: int = field(default=8, metadata=_help(
        "Group size G, 1..16: trajectories sampled per query. Advantages are rewards standardised within "
        "the group, so G = 1 (or a group with equal rewards) gives zero advantage and teaches nothing."))
    learning_rate: float = field(default=0.0001, metadata=_help(
        "Adam learning rate, 0 < lr <= 1 (constant). The seed default 1e-4 suits large models; the small "
        "policy here typically wants 1e-3..3e-2."))
    max_budget_usd: float = field(default=100.0, metadata=_help(
        "Spending limit in USD, >= 0, from the price model (compute seconds + processed tokens). Warnings "
        "at 75% and 90%; when the cost exceeds it, the job stops at the end of that iteration with a "
        "checkpoint and reason budget_exceeded (0 stops after the first iteration)."))
    checkpoint_interval: int = field(default=10, metadata=_help(
        "Iterations between checkpoints and evaluations, 1..10000 (the best checkpoint is chosen on "
        "those evaluations)."))
    max_steps_per_trajectory: int = field(default=20, metadata=_help(
        "Actions per trajectory, 1..100, `finish` included; a trajectory that has not finished by then "
        "is scored on its state at the limit."))
    gamma: float = field(default=0.99, metadata=_help(
        "Discount in [0, 1] applied per step by discounted reward functions (`step_cost`: "
        "match * gamma^(steps-1) - step_penalty * steps); passed to custom reward functions."))
    clip_epsilon: float = field(default=0.2, metadata=_help(
        "PPO clip range, 0 < eps < 1: the probability ratio against the sampling policy is clipped to "
        "[1-eps, 1+eps]. Only matters when updates_per_batch > 1 (the first update has ratio 1)."))
    kl_coef: float = field(default=0.04, metadata=_help(
        "Weight beta of the KL penalty to the reference (initial) policy, 0..10; 0 disables it."))
    kl_estimator: str = field(default="k3", metadata=_help(
        "'k3': the per-sampled-action estimator of DeepSeekMath/TRL, pi_ref/pi - log(pi_ref/pi) - 1; "
        "'exact': the full KL(pi || pi_ref) over all actions (cheap here: the action set is small)."))
    scale_rewards: str = field(default="group", metadata=_help(
        "Advantage normalisation: 'group' (r - group mean) / group std, as GRPO; 'batch' divides by the "
        "batch's std; 'none' only subtracts the group mean (Dr. GRPO). Prefer 'none' with shaped rewards "
        "such as step_cost: dividing by a tiny std turns a 0.01 step-cost difference into a unit advantage "
        "and the policy learns to stop before it ever finds a multi-step solution."))
    updates_per_batch: int = field(default=1, metadata=_help(
        "Optimizer steps on each sampled batch (GRPO's mu, TRL num_iterations), 1..16."))
    reward_function: str = field(default="exact_match", metadata=_help(
        "Name of a registered reward function: exact_match, partial_match, step_cost or a custom one."))
    step_penalty: float = field(default=0.01, metadata=_help(
        "Per-step cost used by the `step_cost` reward, 0..1."))
    hidden_sizes: tuple[int, ...] = field(default=(64,), metadata=_help(
        "Hidden ReLU layer widths of the policy, each 1..4096, at most 8 layers; empty = linear policy."))
    max_grad_norm: float | None = field(default=1.0, metadata=_help(
        "Clip the global gradient norm to this value (> 0); null disables clipping."))
    seed: int = field(default=0, metadata=_help(
        "Seed of every random choice (initialisation, query order, action sampling): same seed + data "
        "= same policy."))
    tools: tuple[ToolSpec, ...] | None = field(default=None, metadata=_help(
        "Custom tool catalog (list of {name, description, requires, requires_any, sets, clears, effect}); "
        "null = the default catalog of grpo/tools.py. `finish` is always the last action."))
    featurizer: FeaturizerConfig = field(default_factory=lambda: FeaturizerConfig(dim=4096), metadata=_help(
        "Hashed n-gram featurizer for the query text (dim, wordNgrams, charNgrams, lowercase)."))
    rollout_shards: int = field(default=1, metadata=_help(
        "Shards K of each iteration's rollouts, 1..64. K > 1 splits the batch's query groups into K contiguous "
        "shards (at most one per query), each sampled with its own generator seeded from the run's generator; "
        "on the Ray executor each shard is a Ray task, elsewhere they run one after the other in the worker. "
        "Same seed and K = same trajectories wherever the shards run; a different K samples differently. "
        "1 samples the whole batch from the run's generator in the worker."))

    def __post_init__(self) -> None:
        _int(self, "n_iterations", 1, 10000)
        _int(self, "batch_size", 1, 128)
        _int(self, "n_trajectories_per_query", 1, 16)
        _float(self, "learning_rate", 0.0, 1.0, low_open=True)
        _float(self, "max_budget_usd", 0.0, MAX_BUDGET_USD)
        _int(self, "checkpoint_interval", 1, 10000)
        _int(self, "max_steps_per_trajectory", 1, 100)
        _float(self, "gamma", 0.0, 1.0)
        _float(self, "clip_epsilon", 0.0, 1.0, low_open=True, high_open=True)
        _float(self, "kl_coef", 0.0, 10.0)
        if not isinstance(self.kl_estimator, str) or self.kl_estimator not in KL_ESTIMATORS:
            raise InvalidArgument("kl_estimator", f"must be one of {', '.join(KL_ESTIMATORS)}, got {self.kl_estimator!r}")
        if not isinstance(self.scale_rewards, str) or self.scale_rewards not in SCALE_REWARDS:
            raise InvalidArgument("scale_rewards", f"must be one of {', '.join(SCALE_REWARDS)}, got {self.scale_rewards!r}")
        _int(self, "updates_per_batch", 1, 16)
        get_reward(self.reward_function)
        _float(self, "step_penalty", 0.0, 1.0)
        if isinstance(self.hidden_sizes, (str, bytes)) or not isinstance(self.hidden_sizes, (list, tuple)) \
                or len(self.hidden_sizes) > 8:
            raise InvalidArgument("hidden_sizes", "must be a list of at most 8 layer widths")
        for i, h in enumerate(self.hidden_sizes):
            if not _is_int(h) or not 1 <= h <= 4096:
                raise InvalidArgument(f"hidden_sizes[{i}]", f"must be an integer in [1, 4096], got {h!r}")
        self.hidden_sizes = tuple(self.hidden_sizes)
        if self.max_grad_norm is not None:
            _float(self, "max_grad_norm", 0.0, math.inf, low_open=True)
        _int(self, "seed", 0, 2 ** 63 - 1)
        if self.tools is not None:
            self.tools = parse_catalog(self.tools, "tools")
        if not isinstance(self.featurizer, FeaturizerConfig):
            raise InvalidArgument("featurizer", "must be a featurizer configuration")
        _int(self, "rollout_shards", 1, 64)

    @property
    def catalog(self) -> tuple[ToolSpec, ...]:
        """The action list: the custom tools or the default catalog, ``finish`` last."""
        return self.tools if self.tools is not None else DEFAULT_TOOLS

    def to_dict(self) -> dict[str, Any]:
        """Resolved configuration, JSON-ready, snake_case; ``from_dict`` reads it back."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "hidden_sizes":
                value = list(value)
            elif f.name == "tools":
                value = None if value is None else [t.to_dict() for t in value]
            elif f.name == "featurizer":
                value = value.to_dict()
            out[f.name] = value
        return out

    @classmethod
    def help(cls) -> dict[str, str]:
        """Field name -> help text (for API docs and CLI ``--help``)."""
        return {f.name: f.metadata["help"] for f in fields(cls)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, *, strict: bool = True) -> "GRPOConfig":
        """Build from user input: snake_case or camelCase keys (``nIterations``, ``maxBudgetUsd``, ...).

        Numbers may arrive as floats (JSON / protobuf Struct): integral floats are accepted for
        integer fields; an empty string for a name field (``reward_function``, ...) means unset. ``strict`` refuses unknown keys (a misspelt option would otherwise be
        silently ignored); pass ``strict=False`` when ``d`` also holds the caller's own keys.
        """
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise InvalidArgument("config", "must be an object")
        kwargs: dict[str, Any] = {}
        source: dict[str, str] = {}
        known: set[str] = set()
        for attr, (kind, names) in _KEYS.items():
            known.update(names)
            # proto3 strings default to "": an empty string means "not set" (the default).
            present = [n for n in names if n in d and d[n] is not None and not (kind == "str" and d[n] == "")]
            if attr in ("max_grad_norm", "tools"):  # null is meaningful: "disable" / "default catalog"
                nulls = [n for n in names if n in d and d[n] is None]
                if nulls and not present:
                    kwargs[attr] = None
                    source[attr] = nulls[0]
                    continue
            if not present:
                continue
            name = present[0]
            value = _coerce(kind, d[name], name)
            for other in present[1:]:
                if _coerce(kind, d[other], other) != value:
                    raise InvalidArgument(other, f"conflicts with {name}")
            kwargs[attr] = value
            source[attr] = name
        if strict:
            unknown = sorted(k for k in d if k not in known)
            if unknown:
                raise InvalidArgument(str(unknown[0]), "unknown GRPO option; valid options: "
                                                       + ", ".join(f.name for f in fields(cls)))
        try:
            return cls(**kwargs)
        except InvalidArgument as exc:
            # Report the key the user actually wrote (e.g. "nIterations", "hiddenSizes[1]").
            head, sep, tail = (exc.field or "").partition("[")
            head, dot, rest = head.partition(".")
            if head in source and source[head] != head:
                raise InvalidArgument(source[head] + dot + rest + sep + tail, exc.message) from exc
            raise


# --- validation helpers -------------------------------------------------------------------------
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int(cfg: Any, attr: str, lo: int, hi: int) -> None:
    v = getattr(cfg, attr)
    if not _is_int(v):
        raise InvalidArgument(attr, f"must be an integer between {lo} and {hi}, got {v!r}")
    if not lo <= v <= hi:
        raise InvalidArgument(attr, f"must be between {lo} and {hi}, got {v}")


def _float(cfg: Any, attr: str, lo: float, hi: float, *, low_open: bool = False, high_open: bool = False) -> None:
    v = getattr(cfg, attr)
    interval = f"{'(' if low_open else '['}{lo:g}, {hi:g}{')' if high_open else ']'}"
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise InvalidArgument(attr, f"must be a finite number in {interval}, got {v!r}")
    too_low = v <= lo if low_open else v < lo
    too_high = v >= hi if high_open else v > hi
    if too_low or too_high:
        raise InvalidArgument(attr, f"must be in {interval}, got {v:g}")
    setattr(cfg, attr, float(v))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


_KINDS = {
    "n_iterations": "int", "batch_size": "int", "n_trajectories_per_query": "int", "learning_rate": "float",
    "max_budget_usd": "float", "checkpoint_interval": "int", "max_steps_per_trajectory": "int", "gamma": "float",
    "clip_epsilon": "float", "kl_coef": "float", "kl_estimator": "str", "scale_rewards": "str",
    "updates_per_batch": "int",
    "reward_function": "str", "step_penalty": "float", "hidden_sizes": "int_list", "max_grad_norm": "float",
    "seed": "int", "tools": "tools", "featurizer": "featurizer", "rollout_shards": "int",
}
_ALIASES = {"max_budget_usd": ("maxBudgetUSD",), "n_iterations": ("iterations",),
            "reward_function": ("reward", "rewardFn")}
# attr -> (kind, accepted keys in priority order: snake, camel, aliases)
_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    attr: (kind, tuple(dict.fromkeys((attr, _camel(attr), *_ALIASES.get(attr, ())))))
    for attr, kind in _KINDS.items()
}


def _coerce(kind: str, value: Any, name: str) -> Any:
    if kind == "int":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not _is_int(value):
            raise InvalidArgument(name, f"must be an integer, got {type(value).__name__}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidArgument(name, f"must be a number, got {type(value).__name__}")
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise InvalidArgument(name, f"must be a string, got {type(value).__name__}")
        return value.strip()
    if kind == "int_list":
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise InvalidArgument(name, "must be a list of integers")
        return tuple(_coerce("int", v, f"{name}[{i}]") for i, v in enumerate(value))
    if kind == "tools":
        return parse_catalog(value, name)
    if kind == "featurizer":
        try:
            return FeaturizerConfig.from_dict(value)
        except InvalidArgument as exc:
            raise InvalidArgument(name + (exc.field or "")[len("featurizer"):], exc.message) from exc
    raise AssertionError(kind)
