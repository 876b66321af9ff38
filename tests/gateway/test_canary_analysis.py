"""Canary analysis on real signals, through the gateway (issue 13): a candidate that really fails
at serving time is rolled back with no feedback at all; a candidate nobody sends traffic to
pauses as inconclusive instead of being promoted on schedule, until an operator decides."""
from __future__ import annotations

import json
import time
import uuid

import httpx
import numpy as np
import onnx
from onnx import numpy_helper

from trainhouse.common.clients import CHANNEL_OPTIONS
from trainhouse.core.featurizer import FeaturizerConfig, HashingFeaturizer
from tests.gateway.conftest import three_intents, wait_terminal
from tests.intents import make_examples
from trainhouse.v1 import model_registry_pb2, model_registry_pb2_grpc

POISON = "zqxjkvw"


def _train(api: httpx.Client, agent: str) -> str:
    r = api.post("/api/v1/training/train-agent", json={
        "agentId": agent, "config": {"method": "supervised", "epochs": 3, "batchSize": 16},
        "examples": three_intents(10)})
    assert r.status_code == 200, r.text
    job = r.json()["data"]["trainingJobId"]
    return wait_terminal(api, [job])[job]["modelVersion"]


def _poisoned(onnx_bytes: bytes) -> bytes:
    """The same model, except that features only the word POISON produces have weights near the
    float32 maximum: an input with that word overflows to non-finite probabilities (an invalid
    output); every other input (the deployment's smoke check included) multiplies them by 0 and is
    answered as before."""
    model = onnx.load_from_string(onnx_bytes)
    meta = {p.key: p.value for p in model.metadata_props}
    featurizer = HashingFeaturizer(FeaturizerConfig.from_dict(json.loads(meta["featurizer"])))
    ordinary = {int(i) for i in featurizer.transform_sparse(
        [e["input"] for e in make_examples(40, seed=1)] + ["deployment smoke check", "hello"]).indices}
    only_poison = sorted({int(i) for i in featurizer.transform_sparse([POISON]).indices} - ordinary)
    assert only_poison, "the poison word shares every feature with ordinary texts"
    for i, init in enumerate(model.graph.initializer):
        if init.name == "W0":
            weights = numpy_helper.to_array(init).copy()
            weights[only_poison, :] = np.float32(3e38)
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(weights, "W0"))
    return model.SerializeToString()


def _registry(stack) -> model_registry_pb2_grpc.ModelRegistryStub:  # noqa: ANN001
    return model_registry_pb2_grpc.ModelRegistryStub(stack.channel("registry", options=CHANNEL_OPTIONS))


def _deployment(api: httpx.Client, agent: str, deployment_id: str) -> dict:
    listed = api.get(f"/api/v1/training/models/{agent}/deployments", params={"limit": 100}).json()["data"]
    return next(d for d in listed["deployments"] if d["deploymentId"] == deployment_id)


def _canary(api: httpx.Client, agent: str, version: str, duration: str, min_samples: int) -> dict:
    r = api.post(f"/api/v1/training/models/{agent}/versions/{version}/deploy", json={
        "rollout": {"strategy": "canary", "percentage": 50, "duration": duration},
        "rollback": {"automatic": True, "threshold": {"errorRate": 0.2, "minSamples": min_samples}}})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_a_candidate_that_fails_at_serving_time_is_rolled_back_without_feedback(admin_api, stack) -> None:
    agent = f"canary-fail-{uuid.uuid4().hex[:8]}"
    stable = _train(admin_api, agent)
    registry = _registry(stack)
    onnx_bytes = registry.GetVersionArtifact(model_registry_pb2.GetVersionArtifactRequest(
        agent_id=agent, version_id=stable)).onnx_model
    bad = registry.RegisterVersion(model_registry_pb2.RegisterVersionRequest(
        agent_id=agent, onnx_model=_poisoned(onnx_bytes))).version.version_id
    dep = _canary(admin_api, agent, bad, "1h", min_samples=5)
    assert dep["status"] == "rolling-out" and dep["previousVersion"] == stable

    failures = served = 0
    for i in range(200):
        r = admin_api.post(f"/api/v1/agents/{agent}/predict",
                           json={"input": f"my {POISON} order {i}", "requestKey": f"user-{i}"})
        if r.status_code == 200:
            served += 1
            assert r.json()["data"]["versionId"] == stable  # the stable side answers the same text fine
        else:
            failures += 1
            assert r.status_code == 503 and bad in r.json()["error"]["message"], r.text
        if _deployment(admin_api, agent, dep["deploymentId"])["status"] == "rolled-back":
            break
    rolled = _deployment(admin_api, agent, dep["deploymentId"])
    assert rolled["status"] == "rolled-back", rolled
    # Decided at the minimum sample, and not before. (Which keys the 50% split sends to the canary
    # depends on the random agent id: the first five can all land there, so `served` may be 0; every
    # request the stable side did serve was checked above.)
    assert failures == 5
    assert "5 serving failures, 0 feedback records" in rolled["statusReason"]
    assert admin_api.post(f"/api/v1/agents/{agent}/predict",
                          json={"input": f"my {POISON} order", "requestKey": "user-1"}).json()["data"]["versionId"] \
        == stable
    version = admin_api.get(f"/api/v1/training/models/{agent}/versions/{bad}").json()["data"]
    assert version["status"] == "rolled-back" and version["serving"] == "retired"


def test_a_silent_canary_pauses_as_inconclusive_until_an_operator_decides(admin_api, stack) -> None:
    agent = f"canary-silent-{uuid.uuid4().hex[:8]}"
    stable = _train(admin_api, agent)
    candidate = _train(admin_api, agent)
    dep = _canary(admin_api, agent, candidate, "2s", min_samples=5)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        current = _deployment(admin_api, agent, dep["deploymentId"])
        if current["status"] != "rolling-out":
            break
        time.sleep(0.3)
    assert current["status"] == "inconclusive", current
    assert current["currentPercentage"] < 100 and "0 observations" in current["statusReason"]
    versions = {v["versionId"]: v for v in admin_api.get(f"/api/v1/training/models/{agent}/versions")
                .json()["data"]["versions"]}
    assert versions[candidate]["serving"] == "canary" and versions[stable]["serving"] == "serving"
    time.sleep(1.5)  # the schedule is long over: still held, not promoted
    assert _deployment(admin_api, agent, dep["deploymentId"])["status"] == "inconclusive"

    # The operator decides: the rollback goes back to the stable version.
    r = admin_api.post(f"/api/v1/training/models/{agent}/versions/{candidate}/rollback", json={"reason": "no data"})
    assert r.status_code == 200 and r.json()["data"]["currentVersion"] == stable, r.text
    assert _deployment(admin_api, agent, dep["deploymentId"])["status"] == "rolled-back"
