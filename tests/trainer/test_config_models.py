"""The config models (services/core/configs): one declaration gives validation, schema and the
resolved form; these tests read the rules from the models, so a changed range is seen here too."""
from __future__ import annotations

import math

import pytest
from pydantic import ValidationError, create_model

from trainhouse.core.configs import (CLASSIFIER_CONFIGS, OPTIMIZERS, FewShotConfig, GenerationConfig, GRPOConfig,
                                   ReinforcementConfig, SupervisedConfig, TransferConfig, field_bounds,
                                   request_fields, within)
from trainhouse.core.errors import InvalidArgument

ALL = [*CLASSIFIER_CONFIGS.values(), GRPOConfig, GenerationConfig]


@pytest.mark.parametrize("model", ALL, ids=lambda m: m.__name__)
def test_every_field_is_documented_and_round_trips(model):
    assert all(text.strip() for text in model.help().values()), model.help()
    resolved = model().to_dict()
    assert set(resolved) == set(model.model_fields)  # every field, canonical names
    assert model.from_dict(resolved) == model()


@pytest.mark.parametrize("spelling", ["learningRate", "learning_rate"])
def test_errors_name_the_spelling_the_caller_used(spelling):
    high = field_bounds(SupervisedConfig, "learning_rate")["le"]
    with pytest.raises(InvalidArgument) as err:
        SupervisedConfig.from_dict({spelling: high * 2})
    assert err.value.field == spelling and "(0, 1]" in err.value.message


def test_nested_and_indexed_fields_keep_their_path():
    with pytest.raises(InvalidArgument) as err:
        SupervisedConfig.from_dict({"validation": {"split": 1.0}})
    assert err.value.field == "validation.split"
    with pytest.raises(InvalidArgument) as err:
        GRPOConfig.from_dict({"hiddenSizes": [8, field_bounds(GRPOConfig, "hidden_sizes", item=True)["le"] + 1]})
    assert err.value.field == "hiddenSizes[1]"


def test_integral_floats_are_integers_only_on_the_transport_path():
    # A protobuf Struct carries 3 as 3.0; the Python API stays strict.
    assert SupervisedConfig.from_dict({"epochs": 3.0, "hiddenSizes": [16.0]}).epochs == 3
    with pytest.raises(InvalidArgument) as err:
        SupervisedConfig(epochs=3.0)
    assert err.value.field == "epochs"
    with pytest.raises(InvalidArgument):
        SupervisedConfig.from_dict({"epochs": 3.5})


def test_enums_are_names_and_null_means_unset():
    assert SupervisedConfig.from_dict({"optimizer": " SGD "}).optimizer == "sgd"
    assert SupervisedConfig.from_dict({"optimizer": None, "epochs": None}) == SupervisedConfig()
    with pytest.raises(InvalidArgument) as err:
        SupervisedConfig.from_dict({"optimizer": "rmsprop"})
    assert all(name in err.value.message for name in OPTIMIZERS)


@pytest.mark.parametrize("model", [FewShotConfig, TransferConfig, ReinforcementConfig], ids=lambda m: m.__name__)
def test_paradigms_share_the_supervised_rules(model):
    for name, field in SupervisedConfig.model_fields.items():
        assert name in model.model_fields, name
        assert field_bounds(model, name) == field_bounds(SupervisedConfig, name), name


def test_request_fields_keep_the_rules_and_leave_defaults_to_the_service():
    Request = create_model("Request", **request_fields(*CLASSIFIER_CONFIGS.values()))
    assert Request().model_dump(exclude_none=True) == {}
    with pytest.raises(ValidationError) as err:
        Request.model_validate({"learning_rate": 0})
    assert err.value.errors()[0]["loc"] == ("learning_rate",)
    with pytest.raises(ValidationError):
        Request.model_validate({"epochs": 1.0})  # JSON bodies stay strict
    props = Request.model_json_schema()["properties"]
    rate = props["learningRate"]["anyOf"][0]
    assert (rate["exclusiveMinimum"], rate["maximum"]) == (0, 1)
    text = props["learningRate"]["description"]
    assert SupervisedConfig().learning_rate is None and "auto (supervised)" in text  # chosen from the data
    assert str(FewShotConfig().learning_rate) in text
    assert "prototypeScale" in props  # paradigm-specific fields are published too


def test_within_keeps_derived_values_in_range():
    top = field_bounds(SupervisedConfig, "epochs")["le"]
    assert within(SupervisedConfig, "epochs", top * 2) == top
    assert within(SupervisedConfig, "epochs", 0) == field_bounds(SupervisedConfig, "epochs")["ge"]
    assert within(SupervisedConfig, "hidden_sizes", 10 ** 6, item=True) == field_bounds(
        SupervisedConfig, "hidden_sizes", item=True)["le"]


def test_cross_field_rules_name_the_field():
    with pytest.raises(InvalidArgument) as err:
        SupervisedConfig.from_dict({"optimizer": "sgd", "momentum": 0, "nesterov": True})
    assert err.value.field == "nesterov"
    with pytest.raises(InvalidArgument) as err:
        SupervisedConfig.from_dict({"curriculum": {"enabled": True}})
    assert err.value.field == "curriculum.stages"
    with pytest.raises(InvalidArgument) as err:
        GRPOConfig.from_dict({"max_budget_usd": math.inf})
    assert err.value.field == "max_budget_usd"
