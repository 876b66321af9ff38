"""TrainingService.AdaptAgent: judged answers -> a training job, over the real services.

The agent here is trained, serves predictions, and those predictions are judged through
ModelRegistry.RecordFeedback, as in production; AdaptAgent then reads that feedback back over
gRPC. The first tests check the pure translation (services/training/adaptation.py).
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf import duration_pb2

from trainhouse.common.grpc_errors import failure_of
from trainhouse.core.errors import InvalidArgument
from trainhouse.training.adaptation import (NO_FEEDBACK_IN_WINDOW, NO_USABLE_FEEDBACK, AdaptRequest, adaptation,
                                          judged_from_inline, judged_from_record, training_data)
from tests.intents import make_examples
from tests.services.test_training_grpc import examples_pb, wait_terminal
from trainhouse.v1 import (feedback_pb2, job_state_pb2, model_registry_pb2, training_job_pb2,
                           training_service_pb2)

M = job_state_pb2
JudgedAnswer = training_service_pb2.JudgedAnswer


def window(**kwargs: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromTimedelta(dt.timedelta(**kwargs))
    return out


def request_of(method: int, window_days: float | None = None) -> AdaptRequest:
    """A validated request: inline feedback, or a window of `window_days`."""
    return AdaptRequest("a", method, "", "", None if window_days is None else dt.timedelta(days=window_days))


# ---- the translation (pure) ------------------------------------------------------------------

def test_feedback_becomes_rated_examples_or_labelled_examples() -> None:
    judged = judged_from_inline(0, JudgedAnswer(input="weather?", actual="no idea", expected="use weather tool",
                                                rating=2))
    rated = training_data(judged, M.TRAINING_METHOD_REINFORCEMENT).rated
    assert [(r.output, r.rating if r.HasField("rating") else None, r.success if r.HasField("success") else None)
            for r in rated] == [("no idea", 2.0, None), ("use weather tool", None, True)]
    same = judged_from_inline(1, JudgedAnswer(input="hi", actual="greet", expected="greet"))
    assert [(j.output, j.success) for j in same] == [("greet", True)]
    wrong = judged_from_inline(2, JudgedAnswer(input="hi", actual="bye", expected="greet"))
    assert [(j.output, j.success, j.source, j.role) for j in wrong] == [("bye", False, 2, "actual"),
                                                                         ("greet", True, 2, "expected")]

    correct = feedback_pb2.FeedbackRecord(input="a", served_output="x", correct=True)
    corrected = feedback_pb2.FeedbackRecord(input="b", served_output="x", correct=False, expected_output="y")
    no_input = feedback_pb2.FeedbackRecord(served_output="x", correct=False)
    judged = [j for i, r in enumerate((correct, corrected, no_input)) for j in judged_from_record(i, r)]
    examples = training_data(judged, M.TRAINING_METHOD_SUPERVISED).examples
    assert [(e.input, e.expected_output, e.feedback) for e in examples] == [
        ("a", "x", "correct"), ("b", "x", "incorrect"), ("b", "y", "correct")]
    rated = training_data(judged, M.TRAINING_METHOD_REINFORCEMENT).rated
    assert [(r.output, r.success) for r in rated] == [("x", True), ("x", False), ("y", True)]


def test_start_job_errors_point_at_the_feedback_item_or_the_window() -> None:
    items = [JudgedAnswer(input="q", actual="a", expected="b"), JudgedAnswer(input="r", actual="c", rating=3)]
    plan = adaptation(request_of(M.TRAINING_METHOD_REINFORCEMENT), items, [])
    assert plan.used == 2 and len(plan.data) == 3
    blamed = [plan.blame(InvalidArgument(f, "bad")).field for f in (
        "rated_examples[1].output", "rated_examples[2].rating", "rated_examples[0].input", "rated_examples",
        "config.method", "agent_id")]
    assert blamed == ["feedback[0].expected", "feedback[1].rating", "feedback[0].input", "feedback", "method",
                      "agent_id"]
    records = [feedback_pb2.FeedbackRecord(input="a", served_output="x", correct=True)]
    windowed = adaptation(request_of(M.TRAINING_METHOD_SUPERVISED, 7), [], records)
    err = windowed.blame(InvalidArgument("examples", "examples must name at least 2 distinct outputs"))
    assert err.field == "feedback_window" and "last 7 days" in err.message


def test_nothing_to_adapt_says_why() -> None:
    empty = adaptation(request_of(M.TRAINING_METHOD_REINFORCEMENT, 2), [], []).response(None)
    assert not empty.adapted and empty.not_adapted_reason == NO_FEEDBACK_IN_WINDOW and "last 2 days" in empty.message
    unusable = [feedback_pb2.FeedbackRecord(served_output="x", correct=False), feedback_pb2.FeedbackRecord(input="y")]
    plan = adaptation(request_of(M.TRAINING_METHOD_REINFORCEMENT, 2), [], unusable)
    answer = plan.response(None)
    assert not answer.adapted and answer.not_adapted_reason == NO_USABLE_FEEDBACK and answer.feedback_skipped == 2
    assert not answer.HasField("job")


# ---- over gRPC, on recorded feedback ---------------------------------------------------------

@dataclass
class Judged:
    """An agent whose served answers were judged: what was recorded, and what training should see."""

    agent: str
    version: str
    records: list[tuple[str, str, bool, str]]  # (input, served output, correct, correction)
    skipped: int                               # records without an input

    @property
    def examples(self) -> int:
        return len(self.records) + sum(1 for _, served, _, fix in self.records if fix and fix != served)


@pytest.fixture(scope="module")
def judged_agent(training, registry) -> Judged:  # noqa: ANN001
    """Train an agent, let it answer, judge its answers against the true intents (RecordFeedback on
    the prediction ids, with the intent as correction when it was wrong), plus one record without
    an input (a version-level complaint) that gives nothing to learn from."""
    agent = f"adapt-{uuid.uuid4().hex[:8]}"
    job = training.StartJob(training_service_pb2.StartJobRequest(
        agent_id=agent, examples=examples_pb(make_examples(8, seed=4)),
        config=training_job_pb2.TrainingConfig(epochs=3, learning_rate=0.01, seed=1))).job
    done = wait_terminal(training, job.job_id)
    assert done.state == M.JOB_STATE_COMPLETED, done.error.message
    asked = make_examples(3, seed=41)
    served = registry.Predict(model_registry_pb2.PredictRequest(agent_id=agent, inputs=[e["input"] for e in asked]))
    records = []
    for example, prediction in zip(asked, served.predictions):
        right = prediction.output == example["expected_output"]
        fix = "" if right else example["expected_output"]
        registry.RecordFeedback(model_registry_pb2.RecordFeedbackRequest(
            agent_id=agent, prediction_id=prediction.prediction_id, correct=right, expected_output=fix))
        records.append((example["input"], prediction.output, right, fix))
    registry.RecordFeedback(model_registry_pb2.RecordFeedbackRequest(
        agent_id=agent, version_id=done.model_version_id, correct=False))
    return Judged(agent, done.model_version_id, records, skipped=1)


def adapt(training, **kwargs) -> training_service_pb2.AdaptAgentResponse:  # noqa: ANN001
    return training.AdaptAgent(training_service_pb2.AdaptAgentRequest(**kwargs), timeout=60)


def jobs_of(training, agent: str) -> int:  # noqa: ANN001
    return training.ListJobs(training_service_pb2.ListJobsRequest(agent_id=agent)).total_size


def test_reinforcement_trains_on_the_recorded_feedback(training, registry, judged_agent: Judged) -> None:
    resp = adapt(training, agent_id=judged_agent.agent, feedback_window=window(days=1))
    assert resp.adapted and not resp.not_adapted_reason
    assert resp.feedback_used == len(judged_agent.records) and resp.feedback_skipped == judged_agent.skipped
    assert resp.training_examples == judged_agent.examples
    job = resp.job
    assert job.config.method == M.TRAINING_METHOD_REINFORCEMENT and job.agent_id == judged_agent.agent
    # Reinforcement adapts the version that served the judged answers.
    assert job.base_version_id == judged_agent.version and job.job_id in resp.message
    done = wait_terminal(training, job.job_id)
    assert done.state == M.JOB_STATE_COMPLETED, done.error.message
    assert done.train_examples + done.validation_examples == judged_agent.examples
    version = registry.GetVersion(model_registry_pb2.GetVersionRequest(
        agent_id=judged_agent.agent, version_id=done.model_version_id)).version
    assert version.job_id == job.job_id and version.parent_version_id == judged_agent.version


def test_supervised_strategy_trains_on_exactly_the_judged_answers(training, judged_agent: Judged) -> None:
    resp = adapt(training, agent_id=judged_agent.agent, method=M.TRAINING_METHOD_SUPERVISED,
                 feedback_window=window(days=1), display_name="nightly adaptation")
    assert resp.adapted and resp.job.config.method == M.TRAINING_METHOD_SUPERVISED
    assert resp.job.display_name == "nightly adaptation"
    try:
        listed = training.ListJobExamples(training_service_pb2.ListJobExamplesRequest(job_id=resp.job.job_id))
        got = sorted((e.input, e.expected_output, e.feedback) for e in listed.examples)
    finally:
        training.CancelJob(training_service_pb2.CancelJobRequest(job_id=resp.job.job_id))
    expected = [(text, served, "correct" if right else "incorrect") for text, served, right, _ in
                judged_agent.records]
    expected += [(text, fix, "correct") for text, served, _, fix in judged_agent.records if fix and fix != served]
    assert got == sorted(expected) and len(got) == resp.training_examples


def test_an_empty_window_adapts_nothing_and_says_why(training, registry, judged_agent: Judged) -> None:
    before = jobs_of(training, judged_agent.agent)
    resp = adapt(training, agent_id=judged_agent.agent, feedback_window=window(milliseconds=1))
    assert not resp.adapted and not resp.HasField("job")
    assert resp.not_adapted_reason == NO_FEEDBACK_IN_WINDOW and judged_agent.agent in resp.message
    assert resp.feedback_used == resp.training_examples == 0
    # An agent that never had feedback: the same answer.
    fresh = f"adapt-fresh-{uuid.uuid4().hex[:8]}"
    registry.CreateAgent(model_registry_pb2.CreateAgentRequest(agent_id=fresh, name=fresh))
    resp = adapt(training, agent_id=fresh, feedback_window=window(days=30))
    assert not resp.adapted and resp.not_adapted_reason == NO_FEEDBACK_IN_WINDOW
    assert jobs_of(training, judged_agent.agent) == before and jobs_of(training, fresh) == 0


@pytest.mark.parametrize("kwargs, code, field", [
    (dict(method=M.TRAINING_METHOD_GRPO, feedback_window=window(days=1)), "INVALID_ARGUMENT", "method"),
    (dict(method=42, feedback_window=window(days=1)), "INVALID_ARGUMENT", "method"),
    (dict(feedback=[JudgedAnswer(input="q", actual="a", expected="b"), JudgedAnswer(input="r", actual="c", rating=7)]),
     "INVALID_ARGUMENT", "feedback[1].rating"),
    (dict(feedback=[JudgedAnswer(input="q", actual="", rating=3)]), "INVALID_ARGUMENT", "feedback[0].actual"),
    (dict(feedback=[JudgedAnswer(input="q")]), "INVALID_ARGUMENT", "feedback[0].actual"),
    (dict(feedback=[JudgedAnswer(input="q", actual="a")]), "INVALID_ARGUMENT", "feedback[0].rating"),
    (dict(method=M.TRAINING_METHOD_SUPERVISED, feedback=[JudgedAnswer(input="q", actual="a", rating=4)]),
     "INVALID_ARGUMENT", "feedback[0].rating"),
    (dict(), "INVALID_ARGUMENT", "feedback"),
    (dict(feedback=[JudgedAnswer(input="q", expected="b")], feedback_window=window(days=1)),
     "INVALID_ARGUMENT", "feedback_window"),
    (dict(feedback_window=window(days=-1)), "INVALID_ARGUMENT", "feedback_window"),
    (dict(agent_id="", feedback_window=window(days=1)), "INVALID_ARGUMENT", "agent_id"),
    (dict(agent_id="adapt-nobody", feedback_window=window(days=1)), "NOT_FOUND", None),
])
def test_bad_requests_name_the_field_and_start_nothing(training, judged_agent: Judged, kwargs: dict, code: str,
                                                       field: str | None) -> None:
    before = jobs_of(training, judged_agent.agent)
    with pytest.raises(grpc.RpcError) as err:
        adapt(training, **{"agent_id": judged_agent.agent, **kwargs})
    failure = failure_of(err.value)
    assert failure.code == getattr(grpc.StatusCode, code), failure
    if field is not None:
        assert failure.field == field, failure
    else:
        assert failure.metadata == {"resource": "agent", "id": kwargs["agent_id"]}
    assert jobs_of(training, judged_agent.agent) == before
