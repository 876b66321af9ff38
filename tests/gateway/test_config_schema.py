"""The training config as every surface publishes and checks it (a lone gateway, no backends):
/openapi.json shows the config models' ranges and enums, and a bad value is refused naming the
field the way the caller spelled it, in each surface's own error shape."""
from __future__ import annotations

from typing import Any

import httpx
import pytest

from trainhouse.core.configs import OPTIMIZERS, SCHEDULERS, GRPOConfig, SupervisedConfig, field_bounds
from trainhouse.core.configs.generation import DIFFICULTIES, LABEL_BY, GenerationConfig
from tests.gateway.conftest import LONE_ADMIN, assert_error, bearer, make_token
from tests.gateway.surface_shapes import error_code, rpc

TRAIN = "/api/v1/training/train-agent"
RPC = "/api/v1/jsonrpc"


@pytest.fixture(scope="module")
def spec(lone: httpx.Client) -> dict[str, Any]:
    r = lone.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


@pytest.fixture(scope="module")
def caller(lone: httpx.Client) -> dict[str, str]:
    """A token exempt from rate limits (JSON-RPC allows 10 start_grpo calls a minute)."""
    return bearer(make_token(lone, LONE_ADMIN, ["admin"], rateLimitPerHour=0))


def _property(spec: dict[str, Any], schema: str, name: str) -> dict[str, Any]:
    """A property's schema, the optional wrapper (anyOf [..., null]) unwrapped."""
    prop = spec["components"]["schemas"][schema]["properties"][name]
    return next((s for s in prop.get("anyOf", []) if s.get("type") != "null"), prop)


def test_openapi_shows_the_training_config_ranges_and_enums(spec: dict[str, Any]) -> None:
    rate = _property(spec, "TrainingConfigIn", "learningRate")
    assert rate["type"] == "number" and rate["exclusiveMinimum"] == 0 and rate["maximum"] == 1
    assert (rate["exclusiveMinimum"], rate["maximum"]) == tuple(field_bounds(SupervisedConfig, "learning_rate")
                                                                .values())
    assert _property(spec, "TrainingConfigIn", "optimizer")["enum"] == list(OPTIMIZERS) == ["adam", "adamw", "sgd"]
    assert _property(spec, "TrainingConfigIn", "schedulerType")["enum"] == list(SCHEDULERS)
    epochs = _property(spec, "TrainingConfigIn", "epochs")
    assert (epochs["type"], epochs["minimum"], epochs["maximum"]) == ("integer", 1, 10000)
    hidden = _property(spec, "TrainingConfigIn", "hiddenSizes")
    assert hidden["maxItems"] == 8 and (hidden["items"]["minimum"], hidden["items"]["maximum"]) == (1, 4096)
    # Supervised jobs choose it from the data when unset; the help says so, and the other methods' defaults.
    described = spec["components"]["schemas"]["TrainingConfigIn"]["properties"]["learningRate"]["description"]
    assert "Default: auto (supervised)" in described and "0.001 (transfer)" in described
    stage = spec["components"]["schemas"]["CurriculumStage"]["properties"]["duration"]
    assert (stage["minimum"], stage["maximum"]) == (1, 10000)


def test_openapi_shows_the_grpo_config_of_seed_003(spec: dict[str, Any]) -> None:
    assert spec["components"]["schemas"]["StartGrpoParams"]["properties"]["config"]["$ref"].endswith("/GRPOConfig")
    iterations = _property(spec, "GRPOConfig", "n_iterations")
    assert (iterations["type"], iterations["minimum"], iterations["maximum"]) == ("integer", 1, 10000)
    assert (iterations["minimum"], iterations["maximum"]) == tuple(field_bounds(GRPOConfig, "n_iterations").values())
    assert _property(spec, "GRPOConfig", "batch_size")["maximum"] == 128
    gamma = _property(spec, "GRPOConfig", "gamma")
    assert (gamma["minimum"], gamma["maximum"]) == (0, 1)
    assert _property(spec, "GRPOConfig", "kl_estimator")["enum"] == ["k3", "exact"]


def test_openapi_runtime_job_fields_follow_the_same_rules(spec: dict[str, Any]) -> None:
    iterations = _property(spec, "StartJobIn", "iterations")
    assert (iterations["minimum"], iterations["maximum"]) == (1, 10000)
    assert _property(spec, "StartJobIn", "learningRate")["exclusiveMinimum"] == 0


def test_openapi_generation_fields_follow_the_generation_config(spec: dict[str, Any]) -> None:
    """Seed 000's generate-synthetic-data and seed 002's parameters take their ranges and enums from
    services/core/configs/generation.py, as the DataService applies them."""
    for schema, count in (("GenerateIn", "count"), ("GenerateSyntheticIn", "count")):
        c = _property(spec, schema, count)
        assert (c["minimum"], c["maximum"]) == tuple(field_bounds(GenerationConfig, "count").values())
    for schema in ("GenerateIn", "GenerationParametersIn"):
        assert _property(spec, schema, "difficulty")["enum"] == list(DIFFICULTIES)
        assert _property(spec, schema, "diversity")["maximum"] == 1
        assert _property(spec, schema, "labelBy" if schema == "GenerateIn" else "label_by")["enum"] == list(LABEL_BY)
    length = _property(spec, "ConstraintsIn", "maxLength")
    assert (length["minimum"], length["maximum"]) == (10, 100_000)


@pytest.mark.parametrize("spelling", ["learningRate", "learning_rate"])
@pytest.mark.parametrize("value", [0, 5, -0.5])
def test_seed_000_names_the_config_field_as_sent(lone: httpx.Client, caller: dict[str, str], spelling: str,
                                                 value: float) -> None:
    r = lone.post(TRAIN, headers=caller, json={"agentId": "a", "config": {spelling: value}})
    err = assert_error(r, 400, "INVALID_CONFIG", field=spelling)
    assert err["details"]["issue"]


def test_seed_000_nested_and_enum_errors(lone: httpx.Client, caller: dict[str, str]) -> None:
    r = lone.post(TRAIN, headers=caller, json={"agentId": "a", "config": {"validation": {"split": 1.0}}})
    assert_error(r, 400, "INVALID_CONFIG", field="validation.split")
    r = lone.post(TRAIN, headers=caller, json={"agentId": "a", "config": {"optimizer": "rmsprop"}})
    assert_error(r, 400, "INVALID_CONFIG", field="optimizer")
    r = lone.post(TRAIN, headers=caller, json={"agentId": "a", "config": {"maxBudgetUsd": -1}})
    assert_error(r, 400, "INVALID_CONFIG", field="maxBudgetUsd")  # a field the body used to drop


@pytest.mark.parametrize("spelling", ["learningRate", "learning_rate"])
def test_functions_name_the_config_field_as_sent(lone: httpx.Client, caller: dict[str, str], spelling: str) -> None:
    r = lone.post("/api/v1/functions/trainAgent", headers=caller,
                  json={"agent_id": "a", "training_data": [], "config": {spelling: 2}})
    assert r.status_code == 422 and error_code(r) == "VALIDATION_ERROR", r.text
    assert r.json()["field"] == f"config.{spelling}"


def test_runtime_refuses_out_of_range_job_fields(lone: httpx.Client, caller: dict[str, str]) -> None:
    r = lone.post("/api/training/jobs", headers=caller, json={"learningRate": 2})
    assert r.status_code == 400 and error_code(r) == "INVALID_REQUEST" and r.json()["field"] == "learningRate"


@pytest.mark.parametrize("config, code", [
    ({"n_iterations": 0}, -32600),          # out of range: seed 003's invalid configuration
    ({"n_iterations": 10001}, -32600),
    ({"kl_estimator": "k2"}, -32600),       # not one of the enum
    ({"featurizer": {"dim": 3}}, -32600),   # refused by the featurizer's own rule
    ({"n_iterations": "many"}, -32602),     # wrong type: invalid params
])
def test_jsonrpc_grpo_config_errors(lone: httpx.Client, caller: dict[str, str], config: dict[str, Any],
                                    code: int) -> None:
    queries = [{"query": f"q{i}", "expected_outcome": {"tool": "search"}} for i in range(100)]
    r = lone.post(RPC, headers=caller, json=rpc("training.start_grpo", {"agent_id": "a", "config": config,
                                                                        "training_data": queries}, 1))
    assert r.status_code == 200, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["data"]["field"] == next(iter(config)), error
