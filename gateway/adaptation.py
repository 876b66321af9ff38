"""Adaptation requests -> a TrainingService job on rated feedback (DESIGN.md, "reinforcement").

Three seed forms start the same thing, a training job of the agent on judged answers:
- seed 000 ``POST /adapt-agent``: feedback given inline, ``{input, expected, actual, rating}``;
- seed 001 ``adaptAgentBehavior {agent_id, feedback_window_days, auto_apply}`` and seed 002
  ``adaptAgentBehavior {agent_id, performance_metrics, adaptation_strategy}``: the feedback the
  ModelRegistry recorded for the agent (RecordFeedback) in the last N days.

Translation, and nothing more:
- an answer the agent gave (``actual`` / the served output) becomes a RatedExample with that
  output as the action, rated by the caller's ``rating`` (1..5 stars) or by the record's
  ``correct`` flag (``success``);
- a correction (``expected`` differing from ``actual``, or a record's ``expected_output``
  differing from the served output) also becomes a RatedExample of the expected output with
  ``success`` true: the answer the agent should have given;
- strategies other than reinforcement train on Examples instead: the served output with
  feedback "correct" / "incorrect" from the flag, and corrections as "correct" examples.
TrainingService validates everything else (ratings in 1..5, texts non-empty, catalog size).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from gateway.backends import Backends
from gateway.errors import encoding_request
from trainhouse.v1 import (
    example_pb2,
    feedback_pb2,
    job_state_pb2,
    model_registry_pb2,
    training_job_pb2,
    training_service_pb2,
)

REINFORCEMENT = "reinforcement"
# Strategy / method names -> TrainingMethod. GRPO needs training queries, not judged answers.
STRATEGIES: dict[str, int] = {
    "reinforcement": job_state_pb2.TRAINING_METHOD_REINFORCEMENT,
    "supervised": job_state_pb2.TRAINING_METHOD_SUPERVISED,
    "few_shot": job_state_pb2.TRAINING_METHOD_FEW_SHOT,
    "few-shot": job_state_pb2.TRAINING_METHOD_FEW_SHOT,
    "transfer": job_state_pb2.TRAINING_METHOD_TRANSFER,
}
DEFAULT_WINDOW_DAYS = 7
FEEDBACK_PAGE = 1000
MAX_FEEDBACK = 100_000


@dataclass
class Judged:
    """One judged answer: the input, the output given, and how it was judged."""

    input: str
    output: str
    rating: float | None = None
    success: bool | None = None


@dataclass
class TrainingData:
    rated: list[example_pb2.RatedExample] = field(default_factory=list)
    examples: list[example_pb2.Example] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rated) + len(self.examples)


def judged_from_inline(input_: str, actual: str | None, expected: str | None,
                       rating: float | None) -> list[Judged]:
    """Seed 000 feedback item -> the answer given (rated) and, when it differs, the expected one."""
    out: list[Judged] = []
    if actual is not None:
        success = None if rating is not None or expected is None else expected == actual
        out.append(Judged(input_, actual, rating=rating, success=success))
    if expected is not None and expected != actual:
        out.append(Judged(input_, expected, success=True))
    return out


def judged_from_record(record: feedback_pb2.FeedbackRecord) -> list[Judged]:
    """A registry feedback record -> judged answers; none when it lacks the input or the output."""
    if not record.input or not record.served_output:
        if record.input and record.expected_output:
            return [Judged(record.input, record.expected_output, success=True)]
        return []
    out = [Judged(record.input, record.served_output, success=record.correct)]
    if record.expected_output and record.expected_output != record.served_output:
        out.append(Judged(record.input, record.expected_output, success=True))
    return out


def training_data(judged: list[Judged], method: int) -> TrainingData:
    """Rated examples for reinforcement; labelled examples for the example-based paradigms."""
    data = TrainingData()
    with encoding_request():
        for j in judged:
            if method == job_state_pb2.TRAINING_METHOD_REINFORCEMENT:
                rated = example_pb2.RatedExample(input=j.input, output=j.output)
                if j.rating is not None:
                    rated.rating = j.rating
                if j.success is not None:
                    rated.success = j.success
                data.rated.append(rated)
            elif j.success is None:  # star ratings have no example-feedback meaning; only RL takes them
                raise ValueError("a rated answer without a success flag needs the reinforcement method")
            else:
                data.examples.append(example_pb2.Example(input=j.input, expected_output=j.output,
                                                         feedback="correct" if j.success else "incorrect"))
    return data


async def feedback_window(services: Backends, agent_id: str, days: float,
                          now: dt.datetime | None = None) -> list[feedback_pb2.FeedbackRecord]:
    """The agent's feedback records of the last `days` days (ListFeedback is newest first)."""
    cutoff = (now or dt.datetime.now(dt.timezone.utc)) - dt.timedelta(days=days)
    out: list[feedback_pb2.FeedbackRecord] = []
    token = ""
    while True:
        resp = await services.registry.ListFeedback(
            model_registry_pb2.ListFeedbackRequest(agent_id=agent_id, page_size=FEEDBACK_PAGE, page_token=token),
            timeout=services.timeout_s)
        for record in resp.feedback:
            if record.create_time.ToDatetime(tzinfo=dt.timezone.utc) < cutoff:
                return out
            out.append(record)
        token = resp.next_page_token
        if not token or len(out) >= MAX_FEEDBACK:
            return out


async def start_adaptation(services: Backends, account: str, agent_id: str, method: int, data: TrainingData,
                           display_name: str) -> training_job_pb2.TrainingJob:
    config = training_job_pb2.TrainingConfig(method=method)
    with encoding_request():
        request = training_service_pb2.StartJobRequest(
            agent_id=agent_id, config=config, account_id=account, display_name=display_name,
            rated_examples=data.rated, examples=data.examples)
    return (await services.training.StartJob(request, timeout=services.timeout_s)).job


def method_name(method: int) -> str:
    return next(name for name, value in STRATEGIES.items() if value == method)

