"""TrainingService, ModelRegistry, DataService and EvaluationService over real gRPC."""
from __future__ import annotations

import time

import grpc
import pytest

from trainhouse.common.grpc_errors import failure_of
from tests.intents import make_examples
from trainhouse.v1 import (data_service_pb2, data_service_pb2_grpc, evaluation_service_pb2,
                           evaluation_service_pb2_grpc, example_pb2, job_state_pb2, model_registry_pb2,
                           model_registry_pb2_grpc, training_job_pb2, training_service_pb2,
                           training_service_pb2_grpc)

TERMINAL = {job_state_pb2.JOB_STATE_COMPLETED, job_state_pb2.JOB_STATE_FAILED, job_state_pb2.JOB_STATE_CANCELLED}


def examples_pb(items: list[dict]) -> list[example_pb2.Example]:
    return [example_pb2.Example(input=e["input"], expected_output=e["expected_output"]) for e in items]


def wait_terminal(training, job_id: str, timeout: float = 180) -> training_job_pb2.TrainingJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = training.GetJob(training_service_pb2.GetJobRequest(job_id=job_id)).job
        if job.state in TERMINAL:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def wait_state(training, job_id: str, state: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if training.GetJob(training_service_pb2.GetJobRequest(job_id=job_id)).job.state == state:
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached state {state}")


@pytest.fixture(scope="module")
def completed_job(training):
    data = make_examples(60, seed=1)
    held_out = make_examples(25, seed=99)
    config = training_job_pb2.TrainingConfig(epochs=12, learning_rate=0.01, batch_size=16, seed=7,
                                             checkpoint_interval=4)
    # A queued job's ETA comes from completed jobs of its method (estimates.py): one runs first, so
    # this module does not depend on which tests ran before it on the session's stack.
    warm = training.StartJob(training_service_pb2.StartJobRequest(
        agent_id="grpc-router-warmup", examples=examples_pb(make_examples(20, seed=2)),
        config=training_job_pb2.TrainingConfig(epochs=2, batch_size=16, seed=7))).job
    assert wait_terminal(training, warm.job_id).state == job_state_pb2.JOB_STATE_COMPLETED
    job = training.StartJob(training_service_pb2.StartJobRequest(
        agent_id="grpc-router", examples=examples_pb(data), config=config)).job
    assert job.state == job_state_pb2.JOB_STATE_QUEUED
    assert job.job_id.startswith("job-")
    eta = job.progress.estimated_time_remaining
    assert eta.seconds + eta.nanos / 1e9 > 0 and job.HasField("estimated_completion_time")
    final = wait_terminal(training, job.job_id)
    assert final.state == job_state_pb2.JOB_STATE_COMPLETED, final.error.message
    return final, held_out


def test_job_completes_and_registers_a_version(completed_job, registry):
    job, _ = completed_job
    assert job.model_version_id
    assert job.progress.percent_complete == 100
    assert job.progress.current_epoch == job.progress.total_epochs == 12
    for name in ("loss", "accuracy", "validation_loss", "validation_accuracy"):
        assert name in job.metrics, name
    assert job.metrics["onnx_parity_max_abs_diff"] <= 1e-5
    versions = registry.ListVersions(model_registry_pb2.ListVersionsRequest(agent_id="grpc-router")).versions
    assert [v.version_id for v in versions] == [job.model_version_id]
    version = registry.GetVersion(model_registry_pb2.GetVersionRequest(
        agent_id="grpc-router", version_id=job.model_version_id)).version
    assert version.job_id == job.job_id
    assert sorted(version.labels) == ["account", "billing", "shipping", "technical"]
    assert len(version.sha256) == 64 and version.size_bytes > 0
    assert version.metrics["validation_accuracy"] == pytest.approx(job.metrics["validation_accuracy"])


def test_model_beats_majority_baseline_on_held_out(completed_job, registry, stack):
    job, held_out = completed_job
    resp = registry.Predict(model_registry_pb2.PredictRequest(
        agent_id="grpc-router", inputs=[e["input"] for e in held_out]))
    assert resp.version_id == job.model_version_id
    accuracy = sum(p.output == e["expected_output"] for p, e in zip(resp.predictions, held_out)) / len(held_out)
    majority = max(sum(e["expected_output"] == k for e in held_out) for k in {"billing", "technical",
                                                                            "shipping", "account"}) / len(held_out)
    assert accuracy >= majority + 0.5, (accuracy, majority)
    for p in resp.predictions:
        assert 0 < p.probability <= 1 and p.top[0].output == p.output
    with stack.channel("evaluation") as ch:
        ev = evaluation_service_pb2_grpc.EvaluationServiceStub(ch).EvaluateVersion(
            evaluation_service_pb2.EvaluateVersionRequest(agent_id="grpc-router", examples=examples_pb(held_out)))
    assert ev.evaluation.metrics["accuracy"] == pytest.approx(accuracy)
    assert ev.evaluation.metrics["latency_p95_ms"] > 0


def test_watch_is_ordered_and_resumable(completed_job, training):
    job, _ = completed_job
    events = list(training.WatchJob(training_service_pb2.WatchJobRequest(job_id=job.job_id)))
    seqs = [e.sequence for e in events]
    assert seqs == list(range(1, len(events) + 1))
    assert events[-1].WhichOneof("payload") == "status" and events[-1].status.terminal
    states = [e.status.state for e in events if e.WhichOneof("payload") == "status"]
    assert states == [job_state_pb2.JOB_STATE_QUEUED, job_state_pb2.JOB_STATE_INITIALIZING,
                      job_state_pb2.JOB_STATE_RUNNING, job_state_pb2.JOB_STATE_VALIDATING,
                      job_state_pb2.JOB_STATE_COMPLETED]
    epochs = [e.epoch.epoch for e in events if e.WhichOneof("payload") == "epoch"]
    assert epochs == list(range(1, 13))
    assert any(e.WhichOneof("payload") == "checkpoint" for e in events)
    tail = list(training.WatchJob(training_service_pb2.WatchJobRequest(job_id=job.job_id, after_sequence=5)))
    assert [e.sequence for e in tail] == seqs[5:]
    assert list(training.WatchJob(training_service_pb2.WatchJobRequest(
        job_id=job.job_id, after_sequence=seqs[-1]))) == []


def test_metrics_history_and_checkpoints(completed_job, training):
    job, _ = completed_job
    points = training.ListMetrics(training_service_pb2.ListMetricsRequest(job_id=job.job_id, names=["loss"])).points
    assert [p.epoch for p in points] == list(range(1, 13))
    assert points[-1].value < points[0].value
    ckpts = training.ListCheckpoints(training_service_pb2.ListCheckpointsRequest(job_id=job.job_id)).checkpoints
    assert {c.epoch for c in ckpts if c.kind == "interval"} >= {4, 8}
    assert all(c.size_bytes > 0 for c in ckpts)


def test_live_watch_then_cancel_saves_checkpoint(training):
    data = make_examples(400, seed=3)
    job = training.StartJob(training_service_pb2.StartJobRequest(
        agent_id="grpc-cancel", examples=examples_pb(data),
        config=training_job_pb2.TrainingConfig(epochs=5000, early_stopping=False, checkpoint_interval=1000))).job
    stream = training.WatchJob(training_service_pb2.WatchJobRequest(job_id=job.job_id))
    seen = []
    for event in stream:
        seen.append(event)
        if event.WhichOneof("payload") == "epoch" and event.epoch.epoch >= 2:
            break
    stream.cancel()
    resp = training.CancelJob(training_service_pb2.CancelJobRequest(job_id=job.job_id, reason="test"))
    assert resp.job.state == job_state_pb2.JOB_STATE_CANCELLED
    assert resp.checkpoint_saved and resp.checkpoint_id
    ckpts = training.ListCheckpoints(training_service_pb2.ListCheckpointsRequest(job_id=job.job_id)).checkpoints
    assert resp.checkpoint_id in {c.checkpoint_id for c in ckpts}
    rest = list(training.WatchJob(training_service_pb2.WatchJobRequest(
        job_id=job.job_id, after_sequence=seen[-1].sequence)))
    assert rest[0].sequence == seen[-1].sequence + 1
    assert rest[-1].status.state == job_state_pb2.JOB_STATE_CANCELLED and rest[-1].status.terminal
    with pytest.raises(grpc.RpcError) as err:
        training.CancelJob(training_service_pb2.CancelJobRequest(job_id=job.job_id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_concurrency_limit_queues_the_sixth_job(training):
    data = make_examples(50, seed=4)
    cfg = training_job_pb2.TrainingConfig(epochs=10000, early_stopping=False, checkpoint_interval=10000)
    ids = [training.StartJob(training_service_pb2.StartJobRequest(
        agent_id="grpc-limit", examples=examples_pb(data), config=cfg, account_id="acct-limit")).job.job_id
        for _ in range(6)]
    try:
        for job_id in ids[:5]:  # five worker processes starting at once: generous on a loaded machine
            wait_state(training, job_id, job_state_pb2.JOB_STATE_RUNNING, timeout=300)
        time.sleep(1.0)
        assert training.GetJob(training_service_pb2.GetJobRequest(job_id=ids[5])).job.state == \
            job_state_pb2.JOB_STATE_QUEUED
        # another account is not held back by this one's limit
        other = training.StartJob(training_service_pb2.StartJobRequest(
            agent_id="grpc-limit-other", examples=examples_pb(data), config=cfg, account_id="acct-other")).job.job_id
        ids.append(other)
        wait_state(training, other, job_state_pb2.JOB_STATE_RUNNING, timeout=300)
        training.CancelJob(training_service_pb2.CancelJobRequest(job_id=ids[0]))
        wait_state(training, ids[5], job_state_pb2.JOB_STATE_RUNNING, timeout=300)
        listed = training.ListJobs(training_service_pb2.ListJobsRequest(
            account_id="acct-limit", state=job_state_pb2.JOB_STATE_RUNNING, page_size=2, include_total_size=True))
        assert len(listed.jobs) == 2 and listed.next_page_token and listed.total_size == 5
    finally:
        for job_id in ids:
            try:
                training.CancelJob(training_service_pb2.CancelJobRequest(job_id=job_id))
            except grpc.RpcError:
                pass


@pytest.mark.parametrize("mutate, field", [
    (lambda r: r.ClearField("examples"), "examples"),
    (lambda r: setattr(r.config, "epochs", -1), "config.epochs"),
    (lambda r: setattr(r.config, "learning_rate", 0.0), "config.learning_rate"),
    (lambda r: setattr(r.config, "learning_rate", 1.5), "config.learning_rate"),
    (lambda r: setattr(r.config, "optimizer", "nope"), "config.optimizer"),
    (lambda r: setattr(r, "agent_id", ""), "agent_id"),
    (lambda r: setattr(r.examples[0], "input", ""), "examples[0].input"),
])
def test_bad_start_requests_name_the_field(training, mutate, field):
    request = training_service_pb2.StartJobRequest(agent_id="bad-input", examples=examples_pb(make_examples(3)))
    mutate(request)
    with pytest.raises(grpc.RpcError) as err:
        training.StartJob(request)
    failure = failure_of(err.value)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.field == field, failure


def test_unknown_ids_are_not_found(training, registry):
    for call in (lambda: training.GetJob(training_service_pb2.GetJobRequest(job_id="job-missing")),
                 lambda: training.CancelJob(training_service_pb2.CancelJobRequest(job_id="job-missing")),
                 lambda: list(training.WatchJob(training_service_pb2.WatchJobRequest(job_id="job-missing"))),
                 lambda: registry.GetAgent(model_registry_pb2.GetAgentRequest(agent_id="nobody")),
                 lambda: registry.Predict(model_registry_pb2.PredictRequest(agent_id="nobody", inputs=["x"]))):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        training.ListJobs(training_service_pb2.ListJobsRequest(page_token="not-a-token"))
    assert failure_of(err.value).field == "page_token"


def test_training_from_a_dataset(stack, training):
    with stack.channel("data") as ch:
        data = data_service_pb2_grpc.DataServiceStub(ch)
        ds = data.CreateDataset(data_service_pb2.CreateDatasetRequest(
            dataset_id="grpc-intents-v1", examples=examples_pb(make_examples(30, seed=5)))).dataset
        assert ds.statistics.example_count == 120
        assert ds.statistics.output_shares["billing"] == pytest.approx(0.25)
        with pytest.raises(grpc.RpcError) as err:
            data.CreateDataset(data_service_pb2.CreateDatasetRequest(
                dataset_id="grpc-intents-v1", examples=examples_pb(make_examples(1))))
        assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    job = training.StartJob(training_service_pb2.StartJobRequest(
        agent_id="grpc-dataset", dataset_id="grpc-intents-v1",
        config=training_job_pb2.TrainingConfig(epochs=3))).job
    assert job.dataset_id == "grpc-intents-v1"
    final = wait_terminal(training, job.job_id)
    assert final.state == job_state_pb2.JOB_STATE_COMPLETED, final.error.message
    assert final.train_examples + final.validation_examples == 120
    with pytest.raises(grpc.RpcError) as err:
        training.StartJob(training_service_pb2.StartJobRequest(agent_id="grpc-dataset", dataset_id="nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_job_examples_report_the_split_used(completed_job, training):
    job, _ = completed_job
    def fetch(split):
        return training.ListJobExamples(training_service_pb2.ListJobExamplesRequest(
            job_id=job.job_id, split=split, page_size=10000))
    train, validation, everything = fetch("train"), fetch("validation"), fetch("all")
    assert train.total_size == job.train_examples and validation.total_size == job.validation_examples
    assert everything.total_size == 240 == train.total_size + validation.total_size
    assert {e.expected_output for e in validation.examples} == {"billing", "technical", "shipping", "account"}
    page = training.ListJobExamples(training_service_pb2.ListJobExamplesRequest(job_id=job.job_id, page_size=100))
    assert len(page.examples) == 100 and page.next_page_token
    with pytest.raises(grpc.RpcError) as err:
        fetch("test")
    assert failure_of(err.value).field == "split"


def test_cancelled_job_resumes_and_finishes(training):
    cfg = training_job_pb2.TrainingConfig(epochs=25, early_stopping=False, checkpoint_interval=100, seed=2)
    job_id = training.StartJob(training_service_pb2.StartJobRequest(
        agent_id="grpc-resume", examples=examples_pb(make_examples(100, seed=6)), config=cfg)).job.job_id
    with pytest.raises(grpc.RpcError) as err:
        training.ResumeJob(training_service_pb2.ResumeJobRequest(job_id=job_id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    for event in training.WatchJob(training_service_pb2.WatchJobRequest(job_id=job_id)):
        if event.WhichOneof("payload") == "epoch" and event.epoch.epoch >= 3:
            break
    cancelled = training.CancelJob(training_service_pb2.CancelJobRequest(job_id=job_id))
    assert cancelled.checkpoint_saved
    resumed = training.ResumeJob(training_service_pb2.ResumeJobRequest(job_id=job_id))
    assert resumed.checkpoint_id == cancelled.checkpoint_id
    final = wait_terminal(training, job_id)
    assert final.state == job_state_pb2.JOB_STATE_COMPLETED, final.error.message
    events = list(training.WatchJob(training_service_pb2.WatchJobRequest(job_id=job_id)))
    epochs = [e.epoch.epoch for e in events if e.WhichOneof("payload") == "epoch"]
    assert epochs == list(range(1, 26))


def test_watch_all_events_follows_every_job_in_cursor_order(completed_job, training):
    job, _ = completed_job
    stream = training.WatchAllEvents(training_service_pb2.WatchAllEventsRequest(after_cursor=0))
    seen = []
    for event in stream:
        seen.append(event)
        if event.job_id == job.job_id and event.WhichOneof("payload") == "status" and event.status.terminal:
            break
    stream.cancel()
    cursors = [e.cursor for e in seen]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
    mine = [e for e in seen if e.job_id == job.job_id]
    assert [e.sequence for e in mine] == list(range(1, len(mine) + 1))
    assert all(e.agent_id == "grpc-router" and e.account_id == "default" for e in mine)
    resumed = training.WatchAllEvents(training_service_pb2.WatchAllEventsRequest(after_cursor=cursors[-2]))
    assert next(iter(resumed)).cursor == cursors[-1]
    resumed.cancel()
    # kinds: exactly the unfiltered feed's events of those kinds, same cursors, same order
    stream = training.WatchAllEvents(training_service_pb2.WatchAllEventsRequest(
        after_cursor=0, kinds=["status", "checkpoint"]))
    filtered = []
    for event in stream:
        filtered.append(event)
        if event.cursor == cursors[-1]:
            break
    stream.cancel()
    expected = [e for e in seen if e.WhichOneof("payload") in ("status", "checkpoint")]
    assert [(e.cursor, e.WhichOneof("payload")) for e in filtered] == [
        (e.cursor, e.WhichOneof("payload")) for e in expected]
    assert {e.WhichOneof("payload") for e in expected} == {"status", "checkpoint"}


def test_watch_all_events_rejects_an_unknown_kind(training):
    stream = training.WatchAllEvents(training_service_pb2.WatchAllEventsRequest(after_cursor=-1, kinds=["metrics"]))
    with pytest.raises(grpc.RpcError) as err:
        next(iter(stream))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "metrics" in err.value.details()
