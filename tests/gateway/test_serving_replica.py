"""The gateway's serving replica (gateway/serving_replica.py, docs/serving.md), on the real stack:
routed Predict is answered in the gateway's process exactly as the registry answers it, every
answer is recorded in the registry (feedback can name it at once), a change of what serves is
never missed, and whatever the replica may not answer is the registry's."""
from __future__ import annotations

import re
import time
import uuid

import grpc
import httpx
import pytest

from trainhouse.common.clients import CHANNEL_OPTIONS
from trainhouse.common.serving_generation import GenerationReader, GenerationWriter, boot_id
from trainhouse.gateway.serving_replica import LINGER_S
from tests.gateway.conftest import assert_error, bearer, make_token, train_version
from trainhouse.v1 import deployment_pb2, model_registry_pb2, model_registry_pb2_grpc

TEXTS = ["where is my parcel", "cancel my order please", "i need a new password", "refund my card"]


@pytest.fixture(scope="module")
def pair(admin_api: httpx.Client) -> tuple[str, str, str]:
    agent = f"replica-{uuid.uuid4().hex[:8]}"
    return agent, train_version(admin_api, agent, 0), train_version(admin_api, agent, 1)


@pytest.fixture(scope="module")
def registry(stack) -> model_registry_pb2_grpc.ModelRegistryStub:
    """The registry over gRPC, not through the gateway (nothing on the gateway's channel runs first)."""
    return model_registry_pb2_grpc.ModelRegistryStub(stack.channel("registry", options=CHANNEL_OPTIONS))


@pytest.fixture(scope="module")
def admin(stack) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying the stack's admin token."""
    return (("authorization", f"Bearer {stack.admin_token}"),)


def _answered(api: httpx.Client) -> dict[str, float]:
    """trainhouse_gateway_predict_requests by answered_by, from /metrics."""
    text = api.get("/metrics").text
    return {m[0]: float(m[1]) for m in re.findall(r'trainhouse_gateway_predict_requests_total\{answered_by="(\w+)"\} '
                                                   r'([0-9.e+]+)', text)}


def _predict(api: httpx.Client, agent: str, **body: object) -> httpx.Response:
    return api.post(f"/api/v1/agents/{agent}/predict", json={"inputs": TEXTS, **body})


def _answered_here(api: httpx.Client, agent: str, timeout: float = 10.0, **body: object) -> dict:
    """A Predict answered by the replica (after a change the feed needs a moment to catch up)."""
    deadline = time.monotonic() + timeout
    while True:
        before = _answered(api).get("gateway", 0.0)
        r = _predict(api, agent, **body)
        assert r.status_code == 200, r.text
        if _answered(api).get("gateway", 0.0) > before:
            return r.json()["data"]
        assert time.monotonic() < deadline, "the replica never answered"
        time.sleep(0.05)


def test_the_replica_answers_as_the_registry_does_and_records_every_answer(admin_api, pair) -> None:
    agent, first, _ = pair
    local = _answered_here(admin_api, agent)
    # The same version pinned is the registry's to answer (pinned versions are never the replica's).
    before = _answered(admin_api)
    remote = _predict(admin_api, agent, versionId=first).json()["data"]
    assert _answered(admin_api).get("registry", 0) == before.get("registry", 0) + 1
    assert local["versionId"] == remote["versionId"] == first
    for mine, theirs in zip(local["predictions"], remote["predictions"]):
        assert {k: v for k, v in mine.items() if k != "predictionId"} == \
            {k: v for k, v in theirs.items() if k != "predictionId"}
    # Every answer is in the registry's prediction log: feedback names it at once, and the feedback
    # record carries what was served.
    p = local["predictions"][1]
    r = admin_api.post(f"/api/v1/agents/{agent}/feedback", json={"predictionId": p["predictionId"], "correct": False,
                                                                  "expectedOutput": "cancel_order"})
    assert r.status_code == 201, r.text
    listed = admin_api.get(f"/v1/agents/{agent}/feedback", params={"version_id": first}).json()["data"]
    record = next(f for f in listed if f["prediction_id"] == p["predictionId"])
    assert record["served_output"] == p["output"] and record["input"] == TEXTS[1], record


def test_feedback_sent_straight_to_the_registry_finds_a_replica_answer(admin_api, pair, registry, admin) -> None:
    """The replica answers with the prediction id at once and sends the record within ~50 ms; a client
    that sends feedback to the registry over gRPC right after the answer (not through the gateway,
    which would send the records first) must still find it, and an id that never comes is NOT_FOUND."""
    agent, first, _ = pair
    registry.GetAgent(model_registry_pb2.GetAgentRequest(agent_id=agent), metadata=admin)  # the channel is up
    _answered_here(admin_api, agent)  # the replica serves the agent now
    before = _answered(admin_api).get("gateway", 0.0)
    r = _predict(admin_api, agent)
    assert r.status_code == 200, r.text
    prediction_id = r.json()["data"]["predictions"][2]["predictionId"]
    feedback = registry.RecordFeedback(model_registry_pb2.RecordFeedbackRequest(  # at once, well within 50 ms
        agent_id=agent, prediction_id=prediction_id, correct=True), metadata=admin).feedback
    assert feedback.prediction_id == prediction_id and feedback.input == TEXTS[2] and feedback.version_id == first
    assert _answered(admin_api).get("gateway", 0.0) == before + 1  # that answer was the replica's
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as err:
        registry.RecordFeedback(model_registry_pb2.RecordFeedbackRequest(
            agent_id=agent, prediction_id="pred-0000000000000000", correct=True), metadata=admin)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert time.monotonic() - started < 5.0  # it waited a moment for the record, not for ever


def _record_calls(api: httpx.Client) -> float:
    """RecordPredictions calls this gateway made (its gRPC client histogram on /metrics)."""
    return sum(float(n) for n in re.findall(
        r'trainhouse_gateway_grpc_client_duration_seconds_count\{[^}]*RecordPredictions[^}]*\} ([0-9.e+]+)',
        api.get("/metrics").text))


def test_a_stream_of_answers_is_recorded_in_batches_and_every_record_arrives(admin_api, pair, registry,
                                                                             admin) -> None:
    """Back-to-back predictions are recorded in at most one RecordPredictions call per LINGER_S (not
    one call per answer or two, as when records that came during a call were sent right after it),
    and the last records reach the registry without another request to push them."""
    agent, _, _ = pair
    _answered_here(admin_api, agent)
    time.sleep(4 * LINGER_S)  # what earlier tests answered is sent
    calls, answered = _record_calls(admin_api), _answered(admin_api).get("gateway", 0.0)
    ids = []
    started = time.monotonic()
    for i in range(120):
        r = admin_api.post(f"/api/v1/agents/{agent}/predict", json={"input": TEXTS[i % len(TEXTS)]})
        assert r.status_code == 200, r.text
        ids.append(r.json()["data"]["predictions"][0]["predictionId"])
    elapsed = time.monotonic() - started
    assert _answered(admin_api).get("gateway", 0.0) == answered + 120  # every one was the replica's answer
    # Straight to the registry, so nothing on this gateway's channel flushes the records first.
    for prediction_id in (ids[0], ids[-1]):
        feedback = registry.RecordFeedback(model_registry_pb2.RecordFeedbackRequest(
            agent_id=agent, prediction_id=prediction_id, correct=True), metadata=admin).feedback
        assert feedback.prediction_id == prediction_id
    assert 1 <= _record_calls(admin_api) - calls <= elapsed / LINGER_S + 3


def test_a_change_of_what_serves_is_never_missed(admin_api, pair) -> None:
    """Each decision is followed at once by a Predict that must see it (the replica, behind by one
    update, leaves those to the registry), and the replica answers again once it caught up."""
    agent, first, second = pair
    base = f"/api/v1/training/models/{agent}/versions"
    for round_ in range(3):
        for version in (second, first):
            r = admin_api.post(f"{base}/{version}/deploy", json={"rollout": {"strategy": "immediate"}})
            assert r.status_code == 200, r.text
            for _ in range(5):
                assert _predict(admin_api, agent).json()["data"]["versionId"] == version, (round_, version)
            assert _answered_here(admin_api, agent)["versionId"] == version


def test_a_canary_splits_request_keys_as_the_registry_does(admin_api, pair, registry, admin) -> None:
    """The replica's split of request keys equals the registry's own Predict (called directly)."""
    agent, first, second = pair
    r = admin_api.post(f"/api/v1/training/models/{agent}/versions/{second}/deploy", json={
        "rollout": {"strategy": "canary", "percentage": 50, "duration": "1h"}})
    assert r.status_code == 200, r.text
    deployment = r.json()["data"]["deploymentId"]
    _answered_here(admin_api, agent, requestKey="warm-up")
    sides = set()
    before = _answered(admin_api).get("gateway", 0.0)
    for i in range(30):
        key = f"user-{i}"
        here = _predict(admin_api, agent, requestKey=key).json()["data"]
        there = registry.Predict(model_registry_pb2.PredictRequest(agent_id=agent, inputs=TEXTS[:1], request_key=key),
                                 metadata=admin)
        assert here["versionId"] == there.version_id and here["deploymentId"] == there.deployment_id == deployment
        sides.add(here["versionId"])
    assert sides == {first, second}
    assert _answered(admin_api).get("gateway", 0.0) >= before + 25  # (a background tick may interpose)
    r = admin_api.post(f"/api/v1/training/models/{agent}/versions/{second}/rollback", json={})
    assert r.status_code == 200, r.text
    assert _predict(admin_api, agent, requestKey="user-1").json()["data"]["versionId"] == first


def test_what_the_replica_may_not_answer_is_the_registrys(admin_api, pair, stack) -> None:
    agent, first, _ = pair
    _answered_here(admin_api, agent)
    # Another account does not see the agent: the registry's NOT_FOUND, in the surface's shape.
    token = make_token(admin_api, stack.admin_token, ["training:view"], account=f"acct-{uuid.uuid4().hex[:6]}")
    before = _answered(admin_api).get("registry", 0.0)
    r = httpx.post(f"{stack.gateway_url}/api/v1/agents/{agent}/predict", json={"input": "hello"},
                   headers=bearer(token))
    assert_error(r, 404, "AGENT_NOT_FOUND")
    # A request the registry refuses: its error, not the replica's.
    assert_error(_predict(admin_api, agent, topK=1000), 400, "INVALID_CONFIG", field="topK")
    # Staging serves nothing yet.
    r = admin_api.post(f"/v1/agents/{agent}/predict", json={"inputs": ["hello"], "environment": "staging"})
    assert r.status_code == 409 and "nothing is deployed to staging" in r.text, r.text
    assert _answered(admin_api).get("registry", 0.0) >= before + 3


def test_the_serving_rpcs_are_internal_and_validate_records(stack, admin_api, registry, admin) -> None:
    token = make_token(admin_api, stack.admin_token, ["training:view", "models:deploy"])
    with pytest.raises(grpc.RpcError) as err:
        next(iter(registry.WatchServing(model_registry_pb2.WatchServingRequest(),
                                        metadata=(("authorization", f"Bearer {token}"),))))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        registry.RecordPredictions(model_registry_pb2.RecordPredictionsRequest(predictions=[
            model_registry_pb2.PredictionRecord(prediction_id="nope", agent_id="a", version_id="v1",
                                                arm=deployment_pb2.SERVING_ARM_STABLE)]), metadata=admin)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    first = next(iter(registry.WatchServing(model_registry_pb2.WatchServingRequest(), metadata=admin)))
    assert first.snapshot and first.nonce and first.boot_id == boot_id()
    reader = GenerationReader(first.generation_file, first.nonce, first.boot_id)
    assert reader.current() >= first.generation
    reader.close()


def test_the_generation_file_is_read_only_by_the_same_host_and_file(tmp_path) -> None:
    writer = GenerationWriter(tmp_path / "gen")
    reader = GenerationReader(str(tmp_path / "gen"), writer.nonce, boot_id())
    start = reader.current()
    assert start == writer.generation
    assert writer.bump() == start + 1 and reader.current() == start + 1
    with pytest.raises(OSError, match="another host"):
        GenerationReader(str(tmp_path / "gen"), writer.nonce, "some-other-boot-id")
    with pytest.raises(OSError, match="not the one"):
        GenerationReader(str(tmp_path / "gen"), writer.nonce + 2, boot_id())
    # Whatever else is at the path is refused with OSError (the replica then leaves Predict to the
    # registry): no file, a directory, a file too short to hold a generation.
    (tmp_path / "short").write_bytes(b"12345678")
    for path in (tmp_path / "missing", tmp_path, tmp_path / "short"):
        with pytest.raises(OSError):
            GenerationReader(str(path), writer.nonce, boot_id())
    reader.close()
    writer.close()
