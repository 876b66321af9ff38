"""AdaptAgent: judged answers -> a training job of the agent (DESIGN.md, "reinforcement").

Two sources of judged answers start the same thing:
- inline feedback (seed 000 ``POST /adapt-agent``): ``{input, expected, actual, rating}`` items;
- a feedback window (seeds 001/002 ``adaptAgentBehavior``): the feedback the ModelRegistry
  recorded for the agent (RecordFeedback) in the last N days.

Translation, and nothing more:
- an answer the agent gave (``actual`` / the served output) becomes a RatedExample with that
  output as the action, rated by the caller's ``rating`` (1..5 stars) or by the record's
  ``correct`` flag (``success``);
- a correction (``expected`` differing from ``actual``, or a record's ``expected_output``
  differing from the served output) also becomes a RatedExample of the expected output with
  ``success`` true: the answer the agent should have given;
- strategies other than reinforcement train on Examples instead: the served output with
  feedback "correct" / "incorrect" from the flag, and corrections as "correct" examples.
StartJob validates everything else (ratings in 1..5, texts non-empty, catalog size); its errors
name its own request's fields (``rated_examples[3].rating``), which :meth:`Adaptation.blame`
turns back into the AdaptAgent request's (``feedback[1].rating``).

Everything here is pure: the servicer reads the registry and starts the job.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from trainhouse.common.validation import resource_id
from trainhouse.core.errors import InvalidArgument
from trainhouse.core.promotion import Policy
from trainhouse.v1 import (example_pb2, feedback_pb2, job_state_pb2, model_version_pb2, training_job_pb2,
                           training_service_pb2)

DEFAULT_METHOD = job_state_pb2.TRAINING_METHOD_REINFORCEMENT
# Judged answers train these; GRPO needs training queries instead.
METHODS = {
    job_state_pb2.TRAINING_METHOD_REINFORCEMENT: "reinforcement",
    job_state_pb2.TRAINING_METHOD_SUPERVISED: "supervised",
    job_state_pb2.TRAINING_METHOD_FEW_SHOT: "few_shot",
    job_state_pb2.TRAINING_METHOD_TRANSFER: "transfer",
}
MAX_WINDOW = dt.timedelta(days=3650)
# Why nothing was adapted (AdaptAgentResponse.not_adapted_reason).
NO_FEEDBACK_IN_WINDOW = "no_feedback_in_window"
NO_USABLE_FEEDBACK = "no_usable_feedback"

INLINE, WINDOW = "feedback", "feedback_window"


@dataclass(frozen=True)
class Judged:
    """One judged answer: the input, the output given, how it was judged, and where it came from
    (the feedback item or record index and whether it is the answer given or the expected one),
    so an error about its training example can name the caller's field."""

    input: str
    output: str
    rating: float | None = None
    success: bool | None = None
    source: int = 0
    role: str = "actual"


@dataclass
class AdaptRequest:
    """A validated AdaptAgentRequest: the method and where the judged answers come from."""

    agent_id: str
    method: int
    account_id: str
    display_name: str
    window: dt.timedelta | None  # None: inline feedback
    # Set (validated): the adapted version serves only if it passes the promotion gate.
    promotion: model_version_pb2.PromotionPolicy | None = None


def parse_adapt_request(request: training_service_pb2.AdaptAgentRequest) -> AdaptRequest:
    """Check what the caller sent before anything is read or started."""
    agent_id = resource_id(request.agent_id, "agent_id")
    method = request.method or DEFAULT_METHOD
    if method not in METHODS:
        raise InvalidArgument("method", f"adaptation trains with one of {', '.join(METHODS.values())}; "
                              "grpo learns from training queries, not judged answers")
    inline, windowed = bool(request.feedback), request.HasField("feedback_window")
    if inline == windowed:
        raise InvalidArgument(WINDOW if windowed else INLINE,
                              "give either inline feedback or a feedback_window, not both" if windowed
                              else "inline feedback or a feedback_window is required")
    window = None
    if windowed:
        window = request.feedback_window.ToTimedelta()
        if not dt.timedelta(0) < window <= MAX_WINDOW:
            raise InvalidArgument(WINDOW, f"must be more than 0 and at most {MAX_WINDOW.days} days")
    for i, item in enumerate(request.feedback):
        if not item.HasField("actual") and not item.HasField("expected"):
            raise InvalidArgument(f"feedback[{i}].actual", f"feedback[{i}] needs 'actual' (the answer given) "
                                  "or 'expected'")
        if item.HasField("actual") and not item.HasField("rating") and not item.HasField("expected"):
            raise InvalidArgument(f"feedback[{i}].rating", f"feedback[{i}] needs a 'rating' or the 'expected' "
                                  "answer to judge 'actual'")
        if item.HasField("rating") and method != job_state_pb2.TRAINING_METHOD_REINFORCEMENT:
            raise InvalidArgument(f"feedback[{i}].rating", "star ratings have no labelled-example meaning; "
                                  "only the reinforcement method learns from them")
    promotion = None
    if request.HasField("promotion"):
        Policy.of(request.promotion)
        promotion = request.promotion
    return AdaptRequest(agent_id, method, request.account_id, request.display_name, window, promotion)


def judged_from_inline(index: int, item: training_service_pb2.JudgedAnswer) -> list[Judged]:
    """An inline feedback item -> the answer given (rated) and, when it differs, the expected one."""
    actual = item.actual if item.HasField("actual") else None
    expected = item.expected if item.HasField("expected") else None
    rating = item.rating if item.HasField("rating") else None
    out: list[Judged] = []
    if actual is not None:
        success = None if rating is not None or expected is None else expected == actual
        out.append(Judged(item.input, actual, rating=rating, success=success, source=index, role="actual"))
    if expected is not None and expected != actual:
        out.append(Judged(item.input, expected, success=True, source=index, role="expected"))
    return out


def judged_from_record(index: int, record: feedback_pb2.FeedbackRecord) -> list[Judged]:
    """A registry feedback record -> judged answers; none when it lacks the input or any output."""
    if not record.input or not record.served_output:
        if record.input and record.expected_output:
            return [Judged(record.input, record.expected_output, success=True, source=index, role="expected")]
        return []
    out = [Judged(record.input, record.served_output, success=record.correct, source=index)]
    if record.expected_output and record.expected_output != record.served_output:
        out.append(Judged(record.input, record.expected_output, success=True, source=index, role="expected"))
    return out


@dataclass
class TrainingData:
    rated: list[example_pb2.RatedExample] = field(default_factory=list)
    examples: list[example_pb2.Example] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rated) + len(self.examples)


def training_data(judged: list[Judged], method: int) -> TrainingData:
    """Rated examples for reinforcement; labelled examples for the example-based paradigms.

    Star ratings reach here only with reinforcement (parse_adapt_request), and registry records
    always carry a success flag, so every judged answer has a meaning for the method.
    """
    data = TrainingData()
    for j in judged:
        if method == job_state_pb2.TRAINING_METHOD_REINFORCEMENT:
            rated = example_pb2.RatedExample(input=j.input, output=j.output)
            if j.rating is not None:
                rated.rating = j.rating
            if j.success is not None:
                rated.success = j.success
            data.rated.append(rated)
        else:
            data.examples.append(example_pb2.Example(input=j.input, expected_output=j.output,
                                                     feedback="correct" if j.success else "incorrect"))
    return data


# StartJob's field paths that point into the training data it was given.
_DATA_FIELD = re.compile(r"^(?:rated_examples|examples)(?:\[(\d+)\](?:\.(\w+))?)?(.*)$")
# A training example's field -> the feedback item's field it came from ("output" is the answer's role).
_ITEM_FIELD = {"input": "input", "rating": "rating"}


@dataclass
class Adaptation:
    """The judged answers of one request, what the job trains on, and how many sources gave them."""

    request: AdaptRequest
    judged: list[Judged]
    data: TrainingData
    used: int      # feedback items / records that gave at least one judged answer
    read: int      # feedback items / records read

    @property
    def skipped(self) -> int:
        return self.read - self.used

    @property
    def promotion(self) -> model_version_pb2.PromotionPolicy | None:
        return self.request.promotion

    def window_words(self) -> str:
        days = self.request.window.total_seconds() / 86400 if self.request.window else 0
        return f"the last {days:g} days"

    def not_adapted(self) -> tuple[str, str]:
        """(reason, message) when no judged answer came out of the feedback."""
        agent = self.request.agent_id
        if not self.read:
            return NO_FEEDBACK_IN_WINDOW, f"agent '{agent}' has no feedback recorded in {self.window_words()}"
        return NO_USABLE_FEEDBACK, (f"none of the {self.read} feedback records of agent '{agent}' in "
                                    f"{self.window_words()} has an input and an output to learn from")

    def start_request(self) -> training_service_pb2.StartJobRequest:
        request = self.request
        if request.display_name:
            name = request.display_name
        elif request.window is None:
            name = f"adaptation ({self.used} feedback)"
        else:
            name = f"adaptation ({self.used} feedback, {self.window_words()})"
        start = training_service_pb2.StartJobRequest(
            agent_id=request.agent_id, config=training_job_pb2.TrainingConfig(method=request.method),
            account_id=request.account_id, display_name=name, rated_examples=self.data.rated,
            examples=self.data.examples)
        if self.promotion is not None:
            start.promotion.CopyFrom(self.promotion)
        return start

    def response(self, job: training_job_pb2.TrainingJob | None) -> training_service_pb2.AdaptAgentResponse:
        """The answer: the job started on the feedback, or (job None) why nothing was adapted."""
        if job is None:
            reason, message = self.not_adapted()
            return training_service_pb2.AdaptAgentResponse(
                adapted=False, feedback_skipped=self.skipped, not_adapted_reason=reason, message=message)
        source = f"{self.used} feedback items" if self.request.window is None else \
            f"{self.used} feedback records of {self.window_words()} ({self.skipped} without an input and an output)"
        message = (f"job {job.job_id} trains agent '{self.request.agent_id}' with {METHODS[self.request.method]} "
                   f"on {len(self.data)} examples from {source}; "
                   + (f"its version serves only if it passes the promotion gate ({self.promotion.requested_by})"
                      if self.promotion is not None else "its version is registered and changes nothing that serves"))
        return training_service_pb2.AdaptAgentResponse(
            adapted=True, job=job, feedback_used=self.used, feedback_skipped=self.skipped,
            training_examples=len(self.data), message=message)

    def blame(self, err: InvalidArgument) -> InvalidArgument:
        """StartJob's error about the training data it was given, on the AdaptAgent request's field:
        the inline feedback item the example came from, or the window whose records it came from."""
        match = _DATA_FIELD.match(err.field or "")
        if err.field == "config.method":
            return InvalidArgument("method", err.message, err.metadata)
        if not match:
            return err
        if self.request.window is not None:
            return InvalidArgument(WINDOW, f"the feedback recorded in {self.window_words()}: {err.message}",
                                   err.metadata)
        index, leaf, rest = match.groups()
        if index is None or int(index) >= len(self.judged):
            return InvalidArgument(INLINE + rest, err.message, err.metadata)
        judged = self.judged[int(index)]
        name = _ITEM_FIELD.get(leaf, judged.role) if leaf else ""
        return InvalidArgument(f"{INLINE}[{judged.source}]" + (f".{name}" if name else rest), err.message,
                               err.metadata)


def adaptation(request: AdaptRequest, inline: Sequence[training_service_pb2.JudgedAnswer],
               records: list[feedback_pb2.FeedbackRecord]) -> Adaptation:
    """Judge the inline items (or the window's records) and build what the job trains on."""
    per_source = ([judged_from_inline(i, item) for i, item in enumerate(inline)] if request.window is None
                  else [judged_from_record(i, record) for i, record in enumerate(records)])
    judged = [j for answers in per_source for j in answers]
    return Adaptation(request, judged, training_data(judged, request.method),
                      used=sum(1 for answers in per_source if answers), read=len(per_source))
