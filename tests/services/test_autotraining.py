"""Auto-training, TrainingService's, over the real services: its config, the window of new feedback
and trajectories it counts (ModelRegistry.CountFeedback, DataService.CountTrajectories), and real
transfer jobs from the agent's serving version that train on every signal counted and serve only
if the registry's promotion gate lets them.

The stack checks every agent every TRAINHOUSE_AUTOTRAIN_CHECK_S (tests/conftest.py: 2 s); a
window ends SETTLE_S before a check, so a record shows up in a status a few seconds after it was
written. Each test trains its own agent and sets that agent's override, so the global config
(which other tests change) never decides here.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from trainhouse.common.grpc_errors import failure_of
from tests.intents import make_examples
from tests.services.test_training_grpc import examples_pb, wait_terminal
from trainhouse.v1 import (auto_training_pb2, data_service_pb2, job_state_pb2, model_registry_pb2,
                           model_version_pb2, training_job_pb2, training_service_pb2, trajectory_pb2)

A = auto_training_pb2
R = model_registry_pb2
T = training_service_pb2
VS = model_version_pb2


def rpc_failure(call: Callable, request: Any):
    with pytest.raises(grpc.RpcError) as info:
        call(request)
    return failure_of(info.value)


def eventually(probe: Callable[[], Any], timeout: float = 45, what: str = "") -> Any:
    """probe() once it returns something truthy (the periodic check and the settle take seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got or time.monotonic() > deadline:
            assert got, f"timed out waiting for {what}"
            return got
        time.sleep(0.2)


def status_of(training, agent: str) -> A.AutoTrainingStatus:
    return training.CheckAutoTraining(T.CheckAutoTrainingRequest(agent_id=agent, dry_run=True)).statuses[0]


def runs_of(training, agent: str) -> list[A.AutoTrainingRun]:
    return list(training.ListAutoTrainingRuns(T.ListAutoTrainingRunsRequest(agent_id=agent)).runs)


def configure(training, agent: str, **values) -> A.AutoTrainingConfig:
    return training.UpdateAutoTrainingConfig(T.UpdateAutoTrainingConfigRequest(agent_id=agent, actor="tester",
                                                                               **values)).config


@pytest.fixture(scope="module")
def agents(training) -> dict[str, str]:
    """Three freshly trained agents (name -> serving version), auto-training off until a test turns
    it on for its agent."""
    names = {name: f"auto-{name}-{uuid.uuid4().hex[:6]}" for name in ("threshold", "trajectories", "skipped")}
    jobs = {}
    for i, (name, agent) in enumerate(names.items()):
        jobs[name] = training.StartJob(T.StartJobRequest(
            agent_id=agent, examples=examples_pb(make_examples(20, seed=30 + i)), account_id=f"auto-test-{i}",
            config=training_job_pb2.TrainingConfig(epochs=4, learning_rate=0.02, batch_size=16, seed=i))).job
        configure(training, agent, enabled=False)
    out = {}
    for name, job in jobs.items():
        done = wait_terminal(training, job.job_id)
        assert done.state == job_state_pb2.JOB_STATE_COMPLETED, done.error.message
        out[names[name]] = done.model_version_id
    return out


def agent_named(agents: dict[str, str], name: str) -> tuple[str, str]:
    return next((a, v) for a, v in agents.items() if a.startswith(f"auto-{name}-"))


def test_config_defaults_partial_updates_and_overrides(training, agents):
    agent, _ = agent_named(agents, "threshold")
    # The stack is shared (the gateway's fuzz tests PUT random valid configs): start from known values.
    config = training.UpdateAutoTrainingConfig(T.UpdateAutoTrainingConfigRequest(
        threshold=100, cooldown_hours=12, enabled=True, actor="tester")).config
    assert (config.threshold, config.cooldown_hours, config.enabled, config.updated_by) == (100, 12, True, "tester")
    updated = training.UpdateAutoTrainingConfig(T.UpdateAutoTrainingConfigRequest(cooldown_hours=24)).config
    assert (updated.threshold, updated.cooldown_hours, updated.enabled) == (100, 24, True)
    training.UpdateAutoTrainingConfig(T.UpdateAutoTrainingConfigRequest(cooldown_hours=12))
    cleared = training.UpdateAutoTrainingConfig(T.UpdateAutoTrainingConfigRequest(agent_id=agent,
                                                                                  clear_override=True)).config
    assert cleared.inherited and cleared.enabled and cleared.threshold == 100
    inherited = training.GetAutoTrainingConfig(T.GetAutoTrainingConfigRequest(agent_id=agent)).config
    assert inherited.inherited and inherited.threshold == 100
    own = configure(training, agent, enabled=False)
    assert not own.inherited and not own.enabled and own.threshold == 100 and own.updated_by == "tester"
    assert training.GetAutoTrainingConfig(T.GetAutoTrainingConfigRequest()).config.enabled  # the global one
    for request, field in ((T.UpdateAutoTrainingConfigRequest(threshold=0), "threshold"),
                           (T.UpdateAutoTrainingConfigRequest(cooldown_hours=-1), "cooldown_hours"),
                           (T.UpdateAutoTrainingConfigRequest(cooldown_hours=float("nan")), "cooldown_hours"),
                           (T.UpdateAutoTrainingConfigRequest(clear_override=True), "clear_override"),
                           (T.UpdateAutoTrainingConfigRequest(agent_id=agent, clear_override=True, threshold=3),
                            "clear_override"),
                           (T.UpdateAutoTrainingConfigRequest(actor="x" * 300), "actor")):
        assert rpc_failure(training.UpdateAutoTrainingConfig, request).field == field
    for call, request in ((training.GetAutoTrainingConfig, T.GetAutoTrainingConfigRequest(agent_id="nobody")),
                          (training.UpdateAutoTrainingConfig, T.UpdateAutoTrainingConfigRequest(
                              agent_id="nobody", threshold=3)),
                          (training.ListAutoTrainingRuns, T.ListAutoTrainingRunsRequest(agent_id="nobody")),
                          (training.CheckAutoTraining, T.CheckAutoTrainingRequest(agent_id="nobody"))):
        assert rpc_failure(call, request).code == grpc.StatusCode.NOT_FOUND
    assert rpc_failure(training.CheckAutoTraining, T.CheckAutoTrainingRequest(
        agent_id=agent, force=True, dry_run=True)).field == "force"
    assert rpc_failure(training.CheckAutoTraining, T.CheckAutoTrainingRequest(force=True)).field == "agent_id"


def test_reaching_the_threshold_starts_a_transfer_job_whose_rejected_version_does_not_serve(
        training, registry, agents):
    """The periodic check starts the run by itself; the job asks for promotion as "auto-training";
    its version, held out on too few examples to pass the gate, is registered and serves nothing."""
    agent, base = agent_named(agents, "threshold")
    configure(training, agent, threshold=5, cooldown_hours=0, enabled=True)
    status = status_of(training, agent)
    assert status.pending_feedback == 0 and not status.due and status.reason == "below threshold (0/5)"
    assert status.base_version_id == base and status.trajectories_counted

    texts = ["where is my parcel", "refund the order payment please", "the app crashes when I open it",
             "close my account permanently", "my invoice for plan is wrong"]
    served = []
    for i, text in enumerate(texts):
        p = registry.Predict(R.PredictRequest(agent_id=agent, inputs=[text], request_key=f"auto-{i}")).predictions[0]
        served.append((p.prediction_id, p.output))
    for i, (pid, output) in enumerate(served[:4]):  # four judged, one short of the threshold
        correct = i % 2 == 0
        registry.RecordFeedback(R.RecordFeedbackRequest(
            agent_id=agent, prediction_id=pid, correct=correct,
            expected_output="" if correct else ("billing" if output != "billing" else "technical")))
    status = eventually(lambda: (s := status_of(training, agent)).pending_feedback == 4 and s,
                        what="the four feedback records in the window")
    assert not status.due and status.reason == "below threshold (4/5)"
    time.sleep(4)  # two periodic checks: none starts a run below the threshold
    assert runs_of(training, agent) == []
    pid, output = served[4]
    registry.RecordFeedback(R.RecordFeedbackRequest(
        agent_id=agent, prediction_id=pid, correct=False,
        expected_output="account" if output != "account" else "shipping"))

    (run,) = eventually(lambda: runs_of(training, agent), what="the periodic check to start a run")
    assert run.state == A.AUTO_TRAINING_RUN_STATE_STARTED, run.error_message
    assert run.trigger == "threshold" and run.actor == "" and run.base_version_id == base
    assert (run.feedback_count, run.trajectory_count) == (5, 0)
    # AdaptAgent's rules: 2 correct -> 2 examples; 3 corrected -> the served output as incorrect and
    # the correction as correct, 2 each.
    assert run.feedback_example_count == 8 and run.trajectory_example_count == 0 and run.replay_example_count >= 50
    assert not run.HasField("window_start") and run.window_end.ToDatetime() <= run.create_time.ToDatetime()
    job = training.GetJob(T.GetJobRequest(job_id=run.job_id)).job
    assert job.agent_id == agent and job.base_version_id == base and job.account_id == "auto-test-0"  # the agent's account: its users see the job
    assert job.config.method == job_state_pb2.TRAINING_METHOD_TRANSFER
    examples = training.ListJobExamples(T.ListJobExamplesRequest(job_id=run.job_id)).examples
    sources = [e.metadata["source"] for e in examples]
    assert sources.count("feedback") == 8 and sources.count("replay") == run.replay_example_count
    status = status_of(training, agent)
    assert status.pending_feedback == 0 and status.window_start == run.window_end  # the window moved on

    done = wait_terminal(training, run.job_id)
    assert done.state == job_state_pb2.JOB_STATE_COMPLETED, done.error.message
    events = [e for e in training.WatchJob(T.WatchJobRequest(job_id=run.job_id)) if e.HasField("promotion")]
    assert [e.promotion.version_id for e in events] == [done.model_version_id]
    decision = events[0].promotion.decision
    assert decision.requested_by == "auto-training" and decision.baseline_version_id == base
    version = registry.GetVersion(R.GetVersionRequest(agent_id=agent, version_id=done.model_version_id)).version
    assert version.parent_version_id == base and version.method == "transfer" and version.job_id == run.job_id
    assert version.promotion.requested_by == "auto-training" and version.promotion.outcome == decision.outcome
    # ~12 held-out examples (a fifth of 58) are fewer than the gate's 20: rejected, and nothing changes
    # for traffic.
    assert decision.outcome == "rejected", decision.reason
    assert version.serving_status == VS.SERVING_STATUS_REGISTERED
    assert registry.GetAgent(R.GetAgentRequest(agent_id=agent)).agent.active_version_id == base


def runtime_trajectory(agent: str, i: int, calls: list[dict]) -> trajectory_pb2.Trajectory:
    """A runtime (seed 004) trajectory whose LLM calls chose a tool: prompt -> tool_name examples."""
    t = trajectory_pb2.Trajectory(trajectory_id=f"{agent}-t{i}", agent_id=agent, source="chat",
                                  status=trajectory_pb2.TRAJECTORY_STATUS_COMPLETED)
    for call in calls:
        t.llm_calls.add(model="small-llm", prompt=call["input"], tool_name=call["expected_output"],
                        response="(tool call)")
    return t


def test_a_window_of_only_trajectories_trains_on_what_the_dataset_builder_extracts(training, data, agents):
    agent, base = agent_named(agents, "trajectories")
    asked = make_examples(3, seed=77)  # 12 (input, intent) pairs over 6 trajectories of 2 calls
    trajectories = [runtime_trajectory(agent, i, asked[2 * i:2 * i + 2]) for i in range(6)]
    failed = runtime_trajectory(agent, 99, asked[:1])  # counted, but the builder skips failed ones
    failed.status = trajectory_pb2.TRAJECTORY_STATUS_FAILED
    data.IngestTrajectories(iter([data_service_pb2.IngestTrajectoriesRequest(trajectories=trajectories + [failed])]))
    configure(training, agent, threshold=7, cooldown_hours=0)  # still disabled: counted, nothing starts
    eventually(lambda: status_of(training, agent).pending_trajectories == 7, what="the trajectories in the window")
    configure(training, agent, enabled=True)
    checked = training.CheckAutoTraining(T.CheckAutoTrainingRequest(agent_id=agent, actor="tester"))
    (run,) = eventually(lambda: runs_of(training, agent), what="a run")  # this call's, or the periodic check's
    assert list(checked.started) in ([], [run])
    assert run.state == A.AUTO_TRAINING_RUN_STATE_STARTED, run.error_message
    assert (run.feedback_count, run.trajectory_count) == (0, 7)
    assert (run.feedback_example_count, run.trajectory_example_count) == (0, 12) and run.replay_example_count >= 50

    dataset = data.GetDataset(data_service_pb2.GetDatasetRequest(dataset_id=run.trajectory_dataset_id)).dataset
    assert dataset.source == "trajectories" and dataset.labels["agent_id"] == agent
    assert dataset.statistics.example_count == 12 and dataset.trajectory_count == 6
    try:
        examples = training.ListJobExamples(T.ListJobExamplesRequest(job_id=run.job_id)).examples
    finally:  # what it trains on is the point here; its training is the previous test's
        training.CancelJob(T.CancelJobRequest(job_id=run.job_id))
    from_trajectories = sorted((e.input, e.expected_output) for e in examples if "trajectory_id" in e.metadata)
    assert from_trajectories == sorted((e["input"], e["expected_output"]) for e in asked)
    assert {e.metadata["trajectory_id"] for e in examples if "trajectory_id" in e.metadata} == \
        {t.trajectory_id for t in trajectories}
    job = training.GetJob(T.GetJobRequest(job_id=run.job_id)).job
    assert job.base_version_id == base and job.config.method == job_state_pb2.TRAINING_METHOD_TRANSFER
    assert status_of(training, agent).pending_trajectories == 0


def test_a_window_with_nothing_to_learn_from_is_skipped_and_moves_on(training, registry, agents):
    """Feedback naming only a version has no input: counted, but no example. A forced run records a
    skipped run, starts no job, and the next window starts after it."""
    agent, base = agent_named(agents, "skipped")
    for _ in range(2):
        registry.RecordFeedback(R.RecordFeedbackRequest(agent_id=agent, version_id=base, correct=False))
    eventually(lambda: status_of(training, agent).pending_feedback == 2, what="the feedback in the window")
    assert status_of(training, agent).reason == "disabled"
    started = training.CheckAutoTraining(T.CheckAutoTrainingRequest(agent_id=agent, force=True, actor="tester"))
    (run,) = started.started
    assert run.state == A.AUTO_TRAINING_RUN_STATE_SKIPPED and not run.job_id and run.trigger == "manual"
    assert run.actor == "tester" and run.feedback_count == 2 and "nothing to learn from" in run.error_message
    (status,) = started.statuses
    assert status.pending_feedback == 0 and status.window_start == run.window_end
    assert training.ListJobs(T.ListJobsRequest(agent_id=agent, include_total_size=True)).total_size == 1
