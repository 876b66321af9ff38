"""Auto-training over real gRPC: config, counting feedback, and a real transfer job from the
agent's active version once a small threshold is reached."""
from __future__ import annotations

import time

import grpc
import pytest

from tests.registry.conftest import predict, rpc_failure, wait_jobs
from trainhouse.v1 import (auto_training_pb2, job_state_pb2, model_registry_pb2, model_version_pb2,
                           training_service_pb2)

R = model_registry_pb2
A = auto_training_pb2


def test_config_defaults_partial_updates_and_overrides(registry, trained):
    # The stack is shared (the gateway's fuzz tests PUT random valid configs): start from known values.
    config = registry.UpdateAutoTrainingConfig(R.UpdateAutoTrainingConfigRequest(
        threshold=100, cooldown_hours=12, enabled=True)).config
    assert (config.threshold, config.cooldown_hours, config.enabled) == (100, 12, True)
    updated = registry.UpdateAutoTrainingConfig(R.UpdateAutoTrainingConfigRequest(cooldown_hours=24)).config
    assert (updated.threshold, updated.cooldown_hours, updated.enabled) == (100, 24, True)
    registry.UpdateAutoTrainingConfig(R.UpdateAutoTrainingConfigRequest(cooldown_hours=12))
    inherited = registry.GetAutoTrainingConfig(R.GetAutoTrainingConfigRequest(agent_id="reg-ver")).config
    assert inherited.inherited and inherited.threshold == 100
    own = registry.UpdateAutoTrainingConfig(R.UpdateAutoTrainingConfigRequest(agent_id="reg-ver", enabled=False))
    assert not own.config.inherited and not own.config.enabled and own.config.threshold == 100
    cleared = registry.UpdateAutoTrainingConfig(R.UpdateAutoTrainingConfigRequest(agent_id="reg-ver",
                                                                                  clear_override=True))
    assert cleared.config.inherited and cleared.config.enabled
    assert rpc_failure(registry.UpdateAutoTrainingConfig, R.UpdateAutoTrainingConfigRequest(threshold=0)).field == \
        "threshold"
    assert rpc_failure(registry.UpdateAutoTrainingConfig, R.UpdateAutoTrainingConfigRequest(
        cooldown_hours=-1)).field == "cooldown_hours"
    assert rpc_failure(registry.UpdateAutoTrainingConfig, R.UpdateAutoTrainingConfigRequest(
        clear_override=True)).field == "clear_override"
    assert rpc_failure(registry.GetAutoTrainingConfig, R.GetAutoTrainingConfigRequest(
        agent_id="nobody")).code == grpc.StatusCode.NOT_FOUND


def test_reaching_the_threshold_starts_a_transfer_job(registry, trained, training_stub):
    agent = "reg-auto"
    base = trained.versions[agent][0]
    registry.UpdateAutoTrainingConfig(R.UpdateAutoTrainingConfigRequest(
        agent_id=agent, threshold=5, cooldown_hours=0, enabled=True, actor="tester"))
    status = registry.CheckAutoTraining(R.CheckAutoTrainingRequest(agent_id=agent, dry_run=True)).statuses[0]
    assert status.pending_feedback == 0 and not status.due and status.reason == "below threshold (0/5)"

    texts = ["where is my parcel", "refund the order payment please", "the app crashes when I open it",
             "close my account permanently", "my invoice for plan is wrong"]
    served = []
    for i, text in enumerate(texts):
        p = predict(registry, agent, f"auto-{i}", text).predictions[0]
        served.append((p.prediction_id, p.output))
    for i, (pid, output) in enumerate(served[:4]):  # four judged, one short of the threshold
        correct = i % 2 == 0
        registry.RecordFeedback(R.RecordFeedbackRequest(
            agent_id=agent, prediction_id=pid, correct=correct,
            expected_output="" if correct else ("billing" if output != "billing" else "technical")))
    status = registry.CheckAutoTraining(R.CheckAutoTrainingRequest(agent_id=agent, dry_run=True)).statuses[0]
    assert status.pending_feedback == 4 and not status.due
    assert registry.ListAutoTrainingRuns(R.ListAutoTrainingRunsRequest(agent_id=agent,
                                                                    include_total_size=True)).total_size == 0
    pid, output = served[4]
    registry.RecordFeedback(R.RecordFeedbackRequest(
        agent_id=agent, prediction_id=pid, correct=False,
        expected_output="account" if output != "account" else "shipping"))

    deadline = time.monotonic() + 30  # the service evaluates off the feedback call's thread
    runs = []
    while time.monotonic() < deadline and not runs:
        runs = list(registry.ListAutoTrainingRuns(R.ListAutoTrainingRunsRequest(agent_id=agent)).runs)
        time.sleep(0.1)
    assert len(runs) == 1, "no auto-training run recorded"
    run = runs[0]
    assert run.trigger == "threshold" and run.base_version_id == base and run.feedback_count == 5
    # 2 correct -> 2 positives; 3 corrected -> a positive and an unlikelihood example each.
    assert run.feedback_example_count == 8 and run.replay_example_count >= 50
    kind = "autotraining.run_started" if run.state == A.AUTO_TRAINING_RUN_STATE_STARTED else "autotraining.run_failed"
    assert registry.ListAuditEvents(R.ListAuditEventsRequest(agent_id=agent, kind=kind,
                                                          include_total_size=True)).total_size == 1
    if run.state == A.AUTO_TRAINING_RUN_STATE_FAILED and run.error_field == "config.method":
        pytest.skip(f"TrainingService does not accept transfer jobs yet: {run.error_message}")
    assert run.state == A.AUTO_TRAINING_RUN_STATE_STARTED, run.error_message
    job = training_stub.GetJob(training_service_pb2.GetJobRequest(job_id=run.job_id)).job
    assert job.agent_id == agent and job.base_version_id == base
    assert job.config.method == job_state_pb2.TRAINING_METHOD_TRANSFER
    status = registry.CheckAutoTraining(R.CheckAutoTrainingRequest(agent_id=agent, dry_run=True)).statuses[0]
    assert status.pending_feedback == 0  # the window moved to the run
    (done,) = wait_jobs(training_stub, [run.job_id])
    version = registry.GetVersion(R.GetVersionRequest(agent_id=agent, version_id=done.model_version_id)).version
    assert version.parent_version_id == base and version.method == "transfer"
    assert version.state == model_version_pb2.VERSION_STATE_REGISTERED  # registered, never deployed
