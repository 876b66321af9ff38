"""Deployments over real gRPC: immediate, canary steps, stable traffic split, manual and automatic
rollback, blue-green, staging, activation, and the audit trail of every change."""
from __future__ import annotations

import time

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from tests.registry.conftest import predict, rpc_failure
from trainhouse.v1 import deployment_pb2, model_registry_pb2, model_version_pb2

D = deployment_pb2
R = model_registry_pb2
VS = model_version_pb2


def deploy(registry, agent_id, version_id, strategy=D.ROLLOUT_STRATEGY_IMMEDIATE, environment=0, **kw):
    rollback = kw.pop("rollback", None)
    request = R.DeployVersionRequest(agent_id=agent_id, version_id=version_id, environment=environment,
                                     rollout=D.RolloutSpec(strategy=strategy, **kw), actor="tester")
    if rollback is not None:
        request.rollback.CopyFrom(rollback)
    return registry.DeployVersion(request).deployment


def version_state(registry, agent_id, version_id):
    return registry.GetVersion(R.GetVersionRequest(agent_id=agent_id, version_id=version_id)).version


def served_by(registry, agent_id, keys, **kw):
    return {key: predict(registry, agent_id, key, **kw).version_id for key in keys}


def test_deploy_canary_advance_rollback_and_activate(registry, trained):
    old, new = trained.versions["reg-dep"]
    agent = "reg-dep"
    # The agent's first version serves from its registration; the newer one does not serve by
    # merely existing: it waits for a deployment.
    assert predict(registry, agent).version_id == old
    a = registry.GetAgent(R.GetAgentRequest(agent_id=agent)).agent
    assert a.active_version_id == old and a.serve_first_version
    first = version_state(registry, agent, old)
    assert first.state == VS.VERSION_STATE_DEPLOYED and first.active
    assert first.serving_status == VS.SERVING_STATUS_SERVING and "first version" in first.serving_reason
    waiting = version_state(registry, agent, new)
    assert waiting.state == VS.VERSION_STATE_REGISTERED and not waiting.active
    assert waiting.serving_status == VS.SERVING_STATUS_REGISTERED
    initial = registry.ListDeployments(R.ListDeploymentsRequest(agent_id=agent)).deployments
    assert [(d.version_id, d.source) for d in initial] == [(old, "first-version")]
    assert rpc_failure(deploy, registry, agent, old).code == grpc.StatusCode.FAILED_PRECONDITION

    # Seed 000's body: canary 10 % over 1 h, automatic rollback at 5 % errors.
    canary = deploy(registry, agent, new, D.ROLLOUT_STRATEGY_CANARY, percentage=10, duration_text="1h",
                    rollback=D.RollbackPolicy(automatic=True, error_rate=0.05))
    assert canary.state == D.DEPLOYMENT_STATE_ROLLING_OUT and canary.current_percentage == 10
    assert canary.deployment_id.startswith("deploy-") and canary.previous_version_id == old
    eta = canary.estimated_completion_time.seconds - canary.create_time.seconds
    assert 3599 <= eta <= 3601
    assert [s.percentage for s in canary.schedule] == [10, 20, 40, 80, 100]
    offsets = [s.due_time.seconds - canary.create_time.seconds for s in canary.schedule]
    assert [round(o / 60) for o in offsets] == [0, 15, 30, 45, 60]
    assert [s.reached for s in canary.schedule] == [True, False, False, False, False]
    on_trial = version_state(registry, agent, new)
    assert on_trial.serving_status == VS.SERVING_STATUS_CANARY and canary.deployment_id in on_trial.serving_reason
    assert version_state(registry, agent, old).serving_status == VS.SERVING_STATUS_SERVING
    assert canary.rollback.min_samples == 20 and canary.rollback.error_rate == 0.05

    keys = [f"user-{i}" for i in range(300)]
    split = served_by(registry, agent, keys)
    on_canary = {k for k, v in split.items() if v == new}
    assert 8 <= len(on_canary) <= 60  # ~10 % of 300 keys
    assert served_by(registry, agent, keys[:50]) == {k: split[k] for k in keys[:50]}  # a key stays put
    response = predict(registry, agent, sorted(on_canary)[0])
    assert response.arm == D.SERVING_ARM_CANDIDATE and response.deployment_id == canary.deployment_id
    assert response.predictions[0].prediction_id.startswith("pred-")

    assert rpc_failure(deploy, registry, agent, old).code == grpc.StatusCode.FAILED_PRECONDITION

    step = registry.AdvanceRollout(R.AdvanceRolloutRequest(deployment_id=canary.deployment_id, actor="tester"))
    assert step.deployment.current_percentage == 20
    half = registry.AdvanceRollout(R.AdvanceRolloutRequest(deployment_id=canary.deployment_id, percentage=50))
    assert half.deployment.current_percentage == 50
    now_split = served_by(registry, agent, keys)
    assert on_canary <= {k for k, v in now_split.items() if v == new}  # canary users never flip back
    assert rpc_failure(registry.AdvanceRollout, R.AdvanceRolloutRequest(
        deployment_id=canary.deployment_id, percentage=30)).field == "percentage"
    done = registry.AdvanceRollout(R.AdvanceRolloutRequest(deployment_id=canary.deployment_id, percentage=100))
    assert done.deployment.state == D.DEPLOYMENT_STATE_COMPLETED
    assert set(served_by(registry, agent, keys[:20]).values()) == {new}
    assert version_state(registry, agent, old).state == VS.VERSION_STATE_ARCHIVED

    # Seed 000 rollback: naming the serving version goes back to the one before it.
    back = registry.RollbackVersion(R.RollbackVersionRequest(agent_id=agent, version_id=new, reason="bad answers"))
    assert (back.previous_version_id, back.current_version_id) == (new, old)
    assert back.message == f"Rolled back to version {old}" and back.rollback_time.seconds > 0
    assert predict(registry, agent).version_id == old
    rolled = version_state(registry, agent, new)
    assert rolled.state == VS.VERSION_STATE_ROLLED_BACK and "bad answers" in rolled.status_reason
    # Naming an older, non-serving version rolls back *to* it.
    forward = registry.RollbackVersion(R.RollbackVersionRequest(model_id=f"{agent}@{new}"))
    assert (forward.previous_version_id, forward.current_version_id) == (old, new)
    assert forward.deployment.source == "rollback"

    # Staging is its own environment.
    staged = deploy(registry, agent, old, environment=D.ENVIRONMENT_STAGING)
    assert staged.environment == D.ENVIRONMENT_STAGING and staged.state == D.DEPLOYMENT_STATE_COMPLETED
    assert predict(registry, agent, environment=D.ENVIRONMENT_STAGING).version_id == old
    assert predict(registry, agent).version_id == new
    assert registry.GetAgent(R.GetAgentRequest(agent_id=agent)).agent.staging_version_id == old
    assert version_state(registry, agent, old).state == VS.VERSION_STATE_STAGING

    # Blue-green with a watch window: all traffic switches at once; the window ends on AdvanceRollout.
    green = deploy(registry, agent, old, D.ROLLOUT_STRATEGY_BLUE_GREEN, duration_text="1h",
                   rollback=D.RollbackPolicy(automatic=True, error_rate=0.1, min_samples=5))
    assert green.state == D.DEPLOYMENT_STATE_ROLLING_OUT and green.current_percentage == 100
    assert set(served_by(registry, agent, keys[:20]).values()) == {old}
    assert predict(registry, agent, "k").arm == D.SERVING_ARM_CANDIDATE
    finished = registry.AdvanceRollout(R.AdvanceRolloutRequest(deployment_id=green.deployment_id)).deployment
    assert finished.state == D.DEPLOYMENT_STATE_COMPLETED and "watch window ended early" in finished.status_reason
    assert predict(registry, agent, "k").arm == D.SERVING_ARM_STABLE

    # Seed 004 activate, with a provider model name.
    activated = registry.ActivateVersion(R.ActivateVersionRequest(model_id=f"{agent}@{new}",
                                                                  provider_model="reg-dep-v1"))
    assert activated.active_model == "reg-dep-v1" and activated.version.active
    assert activated.deployment.source == "activate"
    a = registry.GetAgent(R.GetAgentRequest(agent_id=agent)).agent
    assert (a.active_version_id, a.active_provider_model) == (new, "reg-dep-v1")
    assert predict(registry, agent).version_id == new
    plain = registry.ActivateVersion(R.ActivateVersionRequest(agent_id=agent, version_id=new))
    assert plain.active_model == f"{agent}@{new}"

    events = registry.ListAuditEvents(R.ListAuditEventsRequest(agent_id=agent, page_size=1000)).events
    kinds = [e.kind for e in events]
    for kind in ("deployment.started", "deployment.step", "deployment.completed", "deployment.rolled_back",
                 "version.status_changed", "agent.activated"):
        assert kind in kinds, kind
    steps = [e for e in events if e.kind == "deployment.step" and e.deployment_id == canary.deployment_id]
    assert [e.details["to"] for e in reversed(steps)] == [20, 50]
    assert {e.actor for e in steps} == {"tester", ""}
    listed = registry.ListDeployments(R.ListDeploymentsRequest(agent_id=agent, environment=D.ENVIRONMENT_PRODUCTION,
                                                               include_total_size=True))
    # first, canary, rollback-to (a new deployment), blue-green, activate; the plain re-activation
    # of the serving version and the rollback of the canary itself add none.
    assert listed.total_size == 5 and listed.deployments[0].source == "activate"


def test_canary_rolls_back_on_its_own_when_feedback_crosses_the_threshold(registry, trained):
    old, new = trained.versions["reg-canary"]
    agent = "reg-canary"
    canary = deploy(registry, agent, new, D.ROLLOUT_STRATEGY_CANARY, percentage=50, duration_text="1h",
                    rollback=D.RollbackPolicy(automatic=True, error_rate=0.2, min_samples=8))
    judged = stable_answers = 0
    rolled_back = None
    for i in range(400):
        response = predict(registry, agent, f"user-{i}")
        if response.version_id == old:  # the stable side answers well
            stable_answers += 1
            if i % 3 == 0:
                registry.RecordFeedback(R.RecordFeedbackRequest(
                    agent_id=agent, prediction_id=response.predictions[0].prediction_id, correct=True))
            continue
        assert response.deployment_id == canary.deployment_id
        fb = registry.RecordFeedback(R.RecordFeedbackRequest(
            agent_id=agent, prediction_id=response.predictions[0].prediction_id, correct=False,
            expected_output="shipping", latency_ms=12.5))
        judged += 1
        assert fb.feedback.arm == D.SERVING_ARM_CANDIDATE and fb.feedback.version_id == new
        if judged < 8:  # below the minimum sample size nothing happens
            assert not fb.HasField("rolled_back")
            current = registry.GetDeployment(R.GetDeploymentRequest(deployment_id=canary.deployment_id))
            assert current.deployment.state == D.DEPLOYMENT_STATE_ROLLING_OUT
        else:
            rolled_back = fb.rolled_back
            break
    assert rolled_back is not None and rolled_back.state == D.DEPLOYMENT_STATE_ROLLED_BACK
    assert rolled_back.status_reason == ("automatic rollback: error rate 1.000 > 0.2 over 8 observations (0 serving "
                                         "failures, 8 feedback records of which 8 incorrect)")
    assert rolled_back.candidate.feedback == 8 and rolled_back.candidate.incorrect == 8
    assert rolled_back.candidate.latency_p95_ms == 12.5 and rolled_back.baseline.error_rate == 0
    assert rolled_back.candidate.predictions == 8 and rolled_back.baseline.predictions == stable_answers
    assert set(served_by(registry, agent, [f"user-{i}" for i in range(40)]).values()) == {old}
    v = version_state(registry, agent, new)
    assert v.state == VS.VERSION_STATE_ROLLED_BACK and v.status_reason.startswith("automatic rollback")
    event = registry.ListAuditEvents(R.ListAuditEventsRequest(
        deployment_id=canary.deployment_id, kind="deployment.rolled_back")).events[0]
    assert event.details["automatic"] is True and event.actor == "" and event.details["incorrect"] == 8

    # One feedback per prediction; the request is validated at the edge.
    response = predict(registry, agent, "someone")
    pid = response.predictions[0].prediction_id
    registry.RecordFeedback(R.RecordFeedbackRequest(agent_id=agent, prediction_id=pid, correct=True))
    assert rpc_failure(registry.RecordFeedback, R.RecordFeedbackRequest(
        agent_id=agent, prediction_id=pid, correct=True)).code == grpc.StatusCode.ALREADY_EXISTS
    assert rpc_failure(registry.RecordFeedback, R.RecordFeedbackRequest(
        agent_id=agent, prediction_id=pid)).field == "correct"
    assert rpc_failure(registry.RecordFeedback, R.RecordFeedbackRequest(
        agent_id=agent, prediction_id="pred-nope", correct=True)).code == grpc.StatusCode.NOT_FOUND
    assert rpc_failure(registry.RecordFeedback, R.RecordFeedbackRequest(
        agent_id=agent, correct=True)).field == "prediction_id"
    listed = registry.ListFeedback(R.ListFeedbackRequest(agent_id=agent, deployment_id=canary.deployment_id,
                                                         include_total_size=True))
    assert listed.total_size >= 8
    everything = registry.CountFeedback(R.CountFeedbackRequest(agent_id=agent)).count
    assert everything == registry.ListFeedback(R.ListFeedbackRequest(agent_id=agent, include_total_size=True)).total_size
    # [since, before) around the last record: it alone; before it: everything else
    last = registry.ListFeedback(R.ListFeedbackRequest(agent_id=agent, page_size=1)).feedback[0].create_time
    after = Timestamp(seconds=last.seconds, nanos=last.nanos + 1000) if last.nanos < 999_999_000 else \
        Timestamp(seconds=last.seconds + 1)
    assert registry.CountFeedback(R.CountFeedbackRequest(agent_id=agent, since=last, before=after)).count == 1
    assert registry.CountFeedback(R.CountFeedbackRequest(agent_id=agent, before=last)).count == everything - 1
    assert rpc_failure(registry.CountFeedback, R.CountFeedbackRequest()).field == "agent_id"
    assert rpc_failure(registry.CountFeedback, R.CountFeedbackRequest(
        agent_id="nobody")).code == grpc.StatusCode.NOT_FOUND


def test_canary_steps_follow_the_clock_to_completion(registry, trained):
    """A canary over 1.5 s: the background tick (and GetDeployment) move it through its steps."""
    old, new = trained.versions["reg-canary"]
    agent = "reg-canary"
    dep = deploy(registry, agent, new, D.ROLLOUT_STRATEGY_CANARY, steps=[25, 50, 100], duration_text="1500ms")
    assert [s.percentage for s in dep.schedule] == [25, 50, 100] and dep.current_percentage == 25
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        dep = registry.GetDeployment(R.GetDeploymentRequest(deployment_id=dep.deployment_id)).deployment
        if dep.state == D.DEPLOYMENT_STATE_COMPLETED:
            break
        time.sleep(0.2)
    assert dep.state == D.DEPLOYMENT_STATE_COMPLETED and dep.status_reason == "rollout plan finished"
    assert all(s.reached for s in dep.schedule) and dep.current_percentage == 100
    assert predict(registry, agent, "anyone").version_id == new
    assert registry.GetAgent(R.GetAgentRequest(agent_id=agent)).agent.active_version_id == new


def test_deploy_requests_are_validated(registry, trained):
    agent = "reg-canary"
    v = trained.versions[agent][0]
    cases = [
        (dict(strategy=D.ROLLOUT_STRATEGY_CANARY, percentage=150), "rollout.percentage"),
        (dict(strategy=D.ROLLOUT_STRATEGY_CANARY, duration_text="soon"), "rollout.duration"),
        (dict(strategy=D.ROLLOUT_STRATEGY_CANARY, steps=[50, 20, 100]), "rollout.steps[1]"),
        (dict(strategy=D.ROLLOUT_STRATEGY_CANARY, steps=[20, 50]), "rollout.steps"),
        (dict(strategy=D.ROLLOUT_STRATEGY_IMMEDIATE, percentage=10), "rollout.percentage"),
    ]
    for spec, field in cases:
        assert rpc_failure(deploy, registry, agent, v, **spec).field == field, spec
    bad_guard = rpc_failure(deploy, registry, agent, v, rollback=D.RollbackPolicy(automatic=True, error_rate=2))
    assert bad_guard.field == "rollback.threshold.error_rate"
    assert rpc_failure(deploy, registry, "nobody", v).code == grpc.StatusCode.NOT_FOUND
    assert rpc_failure(deploy, registry, agent, "v9.9.9").code == grpc.StatusCode.NOT_FOUND
