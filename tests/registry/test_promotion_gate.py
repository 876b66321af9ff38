"""The registry's promotion gate over real gRPC, on real trained artifacts: the decision rule, its
numbers, the minimum sample, a rollout in progress, the audit trail and the policy's validation."""
from __future__ import annotations

import grpc

from tests.intents import make_examples
from tests.registry.conftest import examples_pb, predict, rpc_failure
from trainhouse.v1 import model_registry_pb2 as R
from trainhouse.v1 import model_version_pb2 as VS


def _artifact(registry, agent: str, version: str) -> bytes:
    return registry.GetVersionArtifact(R.GetVersionArtifactRequest(agent_id=agent, version_id=version)).onnx_model


def _register(registry, agent: str, onnx: bytes, holdout: list[dict], **policy) -> VS.ModelVersion:
    request = R.RegisterVersionRequest(agent_id=agent, onnx_model=onnx, holdout_examples=examples_pb(holdout))
    if policy:
        request.promotion.CopyFrom(VS.PromotionPolicy(**policy))
    return registry.RegisterVersion(request).version


def test_the_gate_promotes_an_equal_candidate_rejects_a_worse_one_and_keeps_its_numbers(registry, trained):
    strong = _artifact(registry, "reg-canary", trained.versions["reg-canary"][1])
    narrow = _artifact(registry, "reg-ver", "v2.0.0")  # three intents: it cannot answer the fourth
    holdout = make_examples(10, seed=41)
    registry.CreateAgent(R.CreateAgentRequest(agent_id="reg-gate"))
    first = _register(registry, "reg-gate", strong, holdout)
    assert first.serving_status == VS.SERVING_STATUS_SERVING and not first.HasField("promotion")

    # The same model again: equal accuracy on every example, no discordant pair: not worse.
    same = _register(registry, "reg-gate", strong, holdout, requested_by="tests")
    gate = same.promotion
    assert gate.outcome == "promoted" and gate.baseline_version_id == first.version_id
    assert gate.candidate_accuracy == gate.baseline_accuracy and gate.examples == len(holdout)
    assert gate.test == "none" and gate.p_value == 1.0 and gate.accuracy_tolerance == 0.01
    assert same.serving_status == VS.SERVING_STATUS_SERVING and predict(registry, "reg-gate").version_id == same.version_id

    # Too few examples to decide: kept registered, and the reason says so.
    few = _register(registry, "reg-gate", strong, holdout, requested_by="tests", min_examples=1000)
    assert few.promotion.outcome == "rejected" and "at least 1000" in few.promotion.reason
    assert few.serving_status == VS.SERVING_STATUS_REGISTERED

    # A model that lost an output: wrong on every example of it, worse by far more than the
    # tolerance, and what serves stays.
    other = _register(registry, "reg-gate", narrow, holdout, requested_by="tests")
    gate = other.promotion
    assert gate.outcome == "rejected" and "worse than what serves" in gate.reason
    # Wrong on every example of the lost output (a quarter of the held-out set); both versions are
    # scored on the answers they serve, abstentions included.
    assert gate.candidate_accuracy <= 0.75 and gate.baseline_accuracy - gate.candidate_accuracy > 0.1
    assert gate.test.startswith("mcnemar") and 0.0 <= gate.p_value <= 1.0
    assert other.serving_status == VS.SERVING_STATUS_REGISTERED
    assert predict(registry, "reg-gate").version_id == same.version_id
    kinds = [e.kind for e in registry.ListAuditEvents(R.ListAuditEventsRequest(agent_id="reg-gate",
                                                                               page_size=100)).events]
    assert kinds.count("model.promoted") == 1 and kinds.count("model.promotion_rejected") == 2


def test_promotion_policies_are_validated_at_both_edges(registry, training_stub, trained):
    onnx = _artifact(registry, "reg-canary", trained.versions["reg-canary"][0])
    for policy, field in ((dict(requested_by=""), "promotion.requested_by"),
                          (dict(requested_by="x", accuracy_tolerance=1.5), "promotion.accuracy_tolerance"),
                          (dict(requested_by="x", min_examples=0), "promotion.min_examples")):
        failure = rpc_failure(_register, registry, "reg-canary", onnx, [], **policy)
        assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.field == field
    from trainhouse.v1 import job_state_pb2, training_job_pb2, training_service_pb2

    bad = training_service_pb2.StartJobRequest(
        agent_id="reg-canary", examples=examples_pb(make_examples(5)),
        config=training_job_pb2.TrainingConfig(method=job_state_pb2.TRAINING_METHOD_SUPERVISED),
        promotion=VS.PromotionPolicy(requested_by="x", accuracy_tolerance=-0.1))
    failure = rpc_failure(training_stub.StartJob, bad)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.field == "promotion.accuracy_tolerance"


def test_of_two_racing_first_registrations_the_one_numbered_first_serves(registry, trained):
    """The first-version rule under concurrency: numbering and serving are one step."""
    from concurrent.futures import ThreadPoolExecutor

    onnx = _artifact(registry, "reg-canary", trained.versions["reg-canary"][1])
    for i in range(4):
        agent = f"reg-race-{i}"
        registry.CreateAgent(R.CreateAgentRequest(agent_id=agent))
        with ThreadPoolExecutor(2) as pool:
            versions = list(pool.map(lambda _: _register(registry, agent, onnx, []), range(2)))
        serving = registry.GetAgent(R.GetAgentRequest(agent_id=agent)).agent.active_version_id
        assert serving == "v1.0.0", (agent, serving, [v.version_id for v in versions])
        assert sorted(v.serving_status for v in versions) == sorted(
            [VS.SERVING_STATUS_SERVING, VS.SERVING_STATUS_REGISTERED])
