import math

import pytest

from trainhouse.core.errors import InvalidArgument
from trainhouse.core.featurizer import FeaturizerConfig
from trainhouse.core.grpo import DEFAULT_TOOLS, GRPOConfig, register_reward, reward_names

SEED_DEFAULTS = {"n_iterations": 1000, "batch_size": 16, "n_trajectories_per_query": 8, "learning_rate": 0.0001,
                 "max_budget_usd": 100.0, "checkpoint_interval": 10, "max_steps_per_trajectory": 20, "gamma": 0.99}

# field -> (accepted boundary values, refused values, text of the allowed range in the message)
RANGES = {
    "n_iterations": ([1, 10000], [0, 10001], "between 1 and 10000"),
    "batch_size": ([1, 128], [0, 129], "between 1 and 128"),
    "n_trajectories_per_query": ([1, 16], [0, 17], "between 1 and 16"),
    "learning_rate": ([1e-9, 1.0], [0.0, -0.1, 1.01], "(0, 1]"),
    "max_budget_usd": ([0.0, 5000.0], [-0.01], "[0, "),
    "checkpoint_interval": ([1, 10000], [0, -3], "between 1 and 10000"),
    "max_steps_per_trajectory": ([1, 100], [0, 101], "between 1 and 100"),
    "gamma": ([0.0, 1.0], [-0.01, 1.01], "[0, 1]"),
    "clip_epsilon": ([0.01, 0.99], [0.0, 1.0], "(0, 1)"),
    "kl_coef": ([0.0, 10.0], [-1.0, 10.5], "[0, 10]"),
    "updates_per_batch": ([1, 16], [0, 17], "between 1 and 16"),
    "step_penalty": ([0.0, 1.0], [-0.1, 2.0], "[0, 1]"),
}


def test_defaults_are_the_seeds():
    cfg = GRPOConfig()
    for name, value in SEED_DEFAULTS.items():
        assert getattr(cfg, name) == value, name
    assert (cfg.clip_epsilon, cfg.kl_coef, cfg.reward_function) == (0.2, 0.04, "exact_match")
    assert cfg.catalog == DEFAULT_TOOLS and cfg.catalog[-1].name == "finish"
    assert all(text.strip() for text in GRPOConfig.help().values())
    assert set(GRPOConfig.help()) >= set(SEED_DEFAULTS)


@pytest.mark.parametrize("name", sorted(RANGES))
def test_ranges(name):
    ok, bad, interval = RANGES[name]
    for value in ok:
        assert getattr(GRPOConfig(**{name: value}), name) == value
    for value in bad:
        with pytest.raises(InvalidArgument) as err:
            GRPOConfig(**{name: value})
        assert err.value.field == name
        assert interval in err.value.message, err.value.message


@pytest.mark.parametrize("name,value", [("n_iterations", 2.5), ("batch_size", "16"), ("gamma", True),
                                        ("learning_rate", math.nan), ("max_budget_usd", math.inf)])
def test_wrong_types_are_refused_with_the_field(name, value):
    with pytest.raises(InvalidArgument) as err:
        GRPOConfig(**{name: value})
    assert err.value.field == name


def test_from_dict_snake_and_camel():
    snake = GRPOConfig.from_dict({"n_iterations": 500, "batch_size": 16, "n_trajectories_per_query": 8,
                                  "learning_rate": 0.0001, "max_budget_usd": 50.00, "checkpoint_interval": 10})
    camel = GRPOConfig.from_dict({"nIterations": 500.0, "batchSize": 16, "nTrajectoriesPerQuery": 8,
                                  "learningRate": 0.0001, "maxBudgetUsd": 50, "checkpointInterval": 10})
    assert snake == camel
    assert snake.n_iterations == 500 and snake.max_budget_usd == 50.0
    assert GRPOConfig.from_dict(snake.to_dict()) == snake
    cfg = GRPOConfig.from_dict({"hiddenSizes": [8, 4], "maxGradNorm": None, "featurizer": {"dim": 512},
                                "klEstimator": "exact", "scaleRewards": "none"})
    assert cfg.hidden_sizes == (8, 4) and cfg.max_grad_norm is None
    assert cfg.featurizer == FeaturizerConfig(dim=512) and cfg.kl_estimator == "exact" and cfg.scale_rewards == "none"


@pytest.mark.parametrize("raw,field", [
    ({"batchSize": "16"}, "batchSize"),
    ({"n_iterations": 1.5}, "n_iterations"),
    ({"learningRate": "fast"}, "learningRate"),
    ({"hiddenSizes": [8, "x"]}, "hiddenSizes[1]"),
    ({"nIterations": 0}, "nIterations"),
    ({"gamma": 2}, "gamma"),
    ({"hidden_sizes": [0]}, "hidden_sizes[0]"),
    ({"featurizer": {"dim": 3}}, "featurizer.dim"),
    ({"n_iteration": 5}, "n_iteration"),
    ({"batch_size": 4, "batchSize": 8}, "batchSize"),
    ("not an object", "config"),
])
def test_from_dict_errors_name_the_key_written(raw, field):
    with pytest.raises(InvalidArgument) as err:
        GRPOConfig.from_dict(raw)
    assert err.value.field == field


def test_empty_strings_are_unset_like_proto3_defaults():
    assert GRPOConfig.from_dict({"reward_function": "", "kl_estimator": ""}) == GRPOConfig()


def test_from_dict_non_strict_ignores_caller_keys():
    cfg = GRPOConfig.from_dict({"agent_id": "a", "n_iterations": 3}, strict=False)
    assert cfg.n_iterations == 3


def test_unknown_reward_lists_the_valid_ones():
    with pytest.raises(InvalidArgument) as err:
        GRPOConfig(reward_function="accuracy")
    assert err.value.field == "reward_function"
    for name in ("exact_match", "partial_match", "step_cost"):
        assert name in err.value.message
    with pytest.raises(InvalidArgument) as err:
        GRPOConfig.from_dict({"rewardFunction": "nope"})
    assert err.value.field == "rewardFunction"


def test_registered_reward_becomes_valid():
    register_reward("cfg_test_reward", lambda inp: 0.5, replace=True)
    assert "cfg_test_reward" in reward_names()
    assert GRPOConfig(reward_function="cfg_test_reward").reward_function == "cfg_test_reward"


def test_enum_options():
    for field, bad in (("kl_estimator", "k2"), ("scale_rewards", "std")):
        with pytest.raises(InvalidArgument) as err:
            GRPOConfig(**{field: bad})
        assert err.value.field == field and "must be one of" in err.value.message


def test_custom_tool_catalog():
    cfg = GRPOConfig.from_dict({"tools": [
        {"name": "lookup", "description": "find it", "sets": {"found": True}},
        {"name": "answer", "requires": ["found"], "sets": {"answered": True}},
    ]})
    assert [t.name for t in cfg.catalog] == ["lookup", "answer", "finish"]
    assert GRPOConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("tools,field", [
    ([{"name": "Bad Name"}], "tools[0].name"),
    ([{"name": "a"}, {"name": "a"}], "tools[1].name"),
    ([{"name": "a", "sets": {"steps": 3}}], "tools[0].sets.steps"),
    ([{"name": "a", "effect": "teleport"}], "tools[0].effect"),
    ([{"name": "a", "requires": "x"}], "tools[0].requires"),
    ([{"name": "a", "colour": "red"}], "tools[0].colour"),
    ([{"name": "finish", "ends_episode": True}], "tools"),
    ({"name": "a"}, "tools"),
])
def test_bad_tool_catalogs(tools, field):
    with pytest.raises(InvalidArgument) as err:
        GRPOConfig.from_dict({"tools": tools})
    assert err.value.field == field
