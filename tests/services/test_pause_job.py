"""PauseJob over gRPC on a stack of its own with one training slot (TRAINHOUSE_MAX_RUNNING_JOBS=1).

A paused job checkpoints its whole training state, frees its slot (the queued job behind it
starts), reads PAUSED (not terminal, never started by the scheduler) and, resumed, ends with the
same metrics, to the last bit, as the same job run without a pause. A job paused while queued
resumes from the beginning; an ended or paused job cannot be paused (FAILED_PRECONDITION).
"""
from __future__ import annotations

import time
import uuid

import grpc
import pytest

from tests.conftest import started_stack
from tests.intents import make_examples
from tests.services.test_training_grpc import examples_pb, wait_terminal
from trainhouse.v1 import job_state_pb2 as js, training_job_pb2, training_service_pb2 as pb, training_service_pb2_grpc

BODY = dict(examples=examples_pb(make_examples(40, seed=21)),
            config=training_job_pb2.TrainingConfig(epochs=100, batch_size=16, learning_rate=0.01,
                                                   validation_split=0.2, early_stopping=False, seed=5))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    """One running job at a time, so whether a pause frees the slot is visible."""
    with started_stack(tmp_path_factory.mktemp("pause-home"), {"TRAINHOUSE_MAX_RUNNING_JOBS": "1",
                                                               "TRAINHOUSE_RATE_LIMIT_PER_HOUR": "100000"}) as running:
        yield running


@pytest.fixture(scope="module")
def training(stack):
    with stack.channel("training") as ch:
        yield training_service_pb2_grpc.TrainingServiceStub(ch)


def _state(training, job_id: str) -> int:
    return training.GetJob(pb.GetJobRequest(job_id=job_id)).job.state


def _wait(training, job_id: str, states: set[int], timeout: float = 120) -> training_job_pb2.TrainingJob:
    deadline = time.monotonic() + timeout
    while True:
        job = training.GetJob(pb.GetJobRequest(job_id=job_id)).job
        if job.state in states:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def _precondition(call) -> None:
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, err.value.details()


def _wall_clock(name: str) -> bool:
    return "seconds" in name or "cost" in name or "per_second" in name or "throughput" in name


def test_pause_frees_the_slot_and_resume_ends_bit_for_bit(training):
    agent = f"pause-{uuid.uuid4().hex[:6]}"
    paused = training.StartJob(pb.StartJobRequest(agent_id=agent, **BODY)).job.job_id
    for event in training.WatchJob(pb.WatchJobRequest(job_id=paused)):
        if event.WhichOneof("payload") == "epoch":
            break  # training is under way and holds the only slot
    # The same job queued behind it, paused before it starts: resumed, it runs from the beginning,
    # i.e. the uninterrupted run to compare with.
    straight = training.StartJob(pb.StartJobRequest(agent_id=agent, **BODY)).job.job_id
    other = training.StartJob(pb.StartJobRequest(
        agent_id=agent, examples=BODY["examples"], config=training_job_pb2.TrainingConfig(epochs=2))).job.job_id
    held = training.PauseJob(pb.PauseJobRequest(job_id=straight))
    assert held.job.state == js.JOB_STATE_PAUSED and not held.checkpoint_saved and not held.checkpoint_id
    assert _state(training, other) == js.JOB_STATE_QUEUED  # the slot is still taken

    answer = training.PauseJob(pb.PauseJobRequest(job_id=paused))
    if answer.job.state == js.JOB_STATE_COMPLETED:
        pytest.skip("the job finished before it could be paused")
    assert answer.job.state == js.JOB_STATE_PAUSED and answer.job.status_reason == "paused", answer.job
    assert answer.checkpoint_saved and answer.checkpoint_id
    assert not answer.job.HasField("end_time")  # not terminal
    # The freed slot goes to the queued job; the paused ones are never started by the scheduler.
    done = wait_terminal(training, other)
    assert done.state == js.JOB_STATE_COMPLETED, done
    time.sleep(1.5)  # a scheduler pass or more (it runs at least every second)
    assert _state(training, paused) == _state(training, straight) == js.JOB_STATE_PAUSED

    _precondition(lambda: training.PauseJob(pb.PauseJobRequest(job_id=paused)))  # already paused
    _precondition(lambda: training.PauseJob(pb.PauseJobRequest(job_id=other)))   # completed
    last = training.ListJobEvents(pb.ListJobEventsRequest(job_id=paused, page_size=1000)).events[-1]
    assert last.status.state == js.JOB_STATE_PAUSED and not last.status.terminal and last.status.reason == "paused"

    resumed = training.ResumeJob(pb.ResumeJobRequest(job_id=paused))
    assert resumed.checkpoint_id == answer.checkpoint_id and resumed.job.state == js.JOB_STATE_QUEUED
    again = training.ResumeJob(pb.ResumeJobRequest(job_id=straight))
    assert again.checkpoint_id == "" and again.job.state == js.JOB_STATE_QUEUED
    a, b = wait_terminal(training, straight, timeout=300), wait_terminal(training, paused, timeout=300)
    assert a.state == b.state == js.JOB_STATE_COMPLETED, (a, b)
    learned = {k for k in a.metrics if not _wall_clock(k)}
    assert {"loss", "validation_loss", "accuracy"} <= learned and set(b.metrics) == set(a.metrics)
    assert {k: b.metrics[k] for k in learned} == {k: a.metrics[k] for k in learned}
    assert (b.progress.current_step, b.progress.current_epoch) == (a.progress.current_step, a.progress.current_epoch)


def test_a_paused_job_can_be_cancelled_and_then_it_ends(training):
    job_id = training.StartJob(pb.StartJobRequest(agent_id=f"pause-{uuid.uuid4().hex[:6]}", **BODY)).job.job_id
    answer = training.PauseJob(pb.PauseJobRequest(job_id=job_id))
    if answer.job.state == js.JOB_STATE_COMPLETED:
        pytest.skip("the job finished before it could be paused")
    assert answer.job.state == js.JOB_STATE_PAUSED, answer.job
    cancelled = training.CancelJob(pb.CancelJobRequest(job_id=job_id, reason="no longer needed")).job
    assert cancelled.state == js.JOB_STATE_CANCELLED and cancelled.HasField("end_time"), cancelled
    statuses = [(e.status.state, e.status.terminal) for e in
                training.ListJobEvents(pb.ListJobEventsRequest(job_id=job_id, page_size=1000)).events
                if e.WhichOneof("payload") == "status"]
    assert statuses[-2:] == [(js.JOB_STATE_PAUSED, False), (js.JOB_STATE_CANCELLED, True)], statuses
    _precondition(lambda: training.PauseJob(pb.PauseJobRequest(job_id=job_id)))  # ended
