"""REST Predict sends its body pre-shaped (trainhouse.gateway.models.json_answer, no response-model pass), on
seed 000's route and on the canonical one: it must be exactly what the route's response model renders, for
every field that can be present or absent."""
from __future__ import annotations

import json
import math

import pytest

from trainhouse.gateway.canonical import agents as canonical_agents
from trainhouse.gateway.models import Envelope, envelope, json_answer
from trainhouse.gateway.surfaces.agents import PredictData, predict_answer, predict_data
from trainhouse.v1 import deployment_pb2, model_registry_pb2, model_version_pb2


def _response(prediction_id: str, deployment_id: str) -> model_registry_pb2.PredictResponse:
    return model_registry_pb2.PredictResponse(
        version_id="v1.2.0", deployment_id=deployment_id,
        predictions=[model_version_pb2.Prediction(
            output="refund", probability=0.8125, prediction_id=prediction_id, out_of_scope=False,
            out_of_scope_threshold=0.25,
            top=[model_version_pb2.ScoredOutput(output="refund", probability=0.8125),
                 model_version_pb2.ScoredOutput(output="cancel", probability=0.1875)]),
            model_version_pb2.Prediction(output="__out_of_scope__", probability=0.3, out_of_scope=True,
                                         prediction_id=prediction_id, out_of_scope_threshold=0.5)],
        arm=deployment_pb2.SERVING_ARM_STABLE)


CASES = [("pred-1", "dep-1"), ("", ""), ("pred-2", "")]


@pytest.mark.parametrize("prediction_id, deployment_id", CASES)
def test_predict_body_equals_the_response_models_rendering(prediction_id: str, deployment_id: str) -> None:
    resp = _response(prediction_id, deployment_id)
    request = model_registry_pb2.PredictRequest(agent_id="router", inputs=["héllo", "x"])
    fast = predict_answer("router", request, resp).body
    body = envelope(predict_data("router", ["héllo", "x"], resp))
    modelled = Envelope[PredictData].model_validate(body).model_dump(mode="json", by_alias=True, exclude_none=True)
    assert json.loads(fast) == modelled
    assert list(json.loads(fast)["data"]) == list(modelled["data"])  # same key order too


def test_a_non_finite_number_travels_as_null_on_the_unchecked_path() -> None:
    """predict_answer skips envelope's NaN/inf walk (orjson writes them as null): the body must still be
    JSON, with null where the walk would have put it."""
    resp = _response("pred-1", "dep-1")
    resp.predictions[0].out_of_scope_threshold = math.nan
    resp.predictions[0].top[1].probability = math.inf
    request = model_registry_pb2.PredictRequest(agent_id="router", inputs=["héllo", "x"])
    fast = json.loads(predict_answer("router", request, resp).body, parse_constant=_refuse)
    assert fast == json.loads(json_answer(envelope(predict_data("router", ["héllo", "x"], resp))).body)
    assert fast["data"]["predictions"][0]["outOfScopeThreshold"] is None
    assert fast["data"]["predictions"][0]["top"][1]["probability"] is None


def _refuse(name: str) -> None:
    raise AssertionError(f"{name} is not JSON")


@pytest.mark.parametrize("prediction_id, deployment_id", CASES)
def test_canonical_predict_body_equals_the_response_models_rendering(prediction_id: str, deployment_id: str) -> None:
    resp = _response(prediction_id, deployment_id)
    request = model_registry_pb2.PredictRequest(agent_id="router", inputs=["héllo", "x"])
    fast = json.loads(canonical_agents.predict_answer("router", request, resp).body)
    # What FastAPI renders for the route's response_model from the dict the route used to return.
    content = canonical_agents.message_json(resp)
    modelled = canonical_agents.PredictOut.model_validate(content).model_dump(mode="json", by_alias=True)
    assert fast == modelled
    assert list(fast) == list(modelled) and list(fast["predictions"][0]) == list(modelled["predictions"][0])
    assert fast["arm"] == "stable" and fast["predictions"][1]["out_of_scope"] is True
