"""Seed 000 POST /api/v1/training/adapt-agent: inline feedback -> a reinforcement training job.

The translation of feedback items into rated examples is gateway.adaptation's; the adaptation is
the job, so `adaptationId` is the job id and its progress is GET /train-agent/{adaptationId}.
`immediate` is echoed: jobs start as soon as their account has a free slot either way.
"""
from __future__ import annotations

import re
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import Field, StrictBool, StrictStr

from gateway.adaptation import REINFORCEMENT, STRATEGIES, judged_from_inline, start_adaptation, training_data
from gateway.convert import ts_iso
from gateway.deps import Caller, Services
from gateway.errors import INVALID, ApiError, rpc_fields
from gateway.models import CamelModel, Envelope, Number, envelope
from gateway.routing import GatewayRoute
from gateway.surfaces.common import ERROR_RESPONSES
from gateway.resources.jobs import estimated_duration, state_word
from gateway.surfaces.v1 import V1_SURFACE

router = APIRouter(prefix="/api/v1/training", tags=["training"], route_class=GatewayRoute,
                   responses=ERROR_RESPONSES)


class FeedbackItemIn(CamelModel):
    input: StrictStr
    expected: StrictStr | None = Field(None, description="The answer the agent should have given")
    actual: StrictStr | None = Field(None, description="The answer it gave")
    rating: Number | None = Field(None, description="1..5 stars for the actual answer")
    timestamp: StrictStr | None = None


class AdaptAgentIn(CamelModel):
    agent_id: StrictStr
    feedback: list[FeedbackItemIn] = Field(min_length=1)
    method: Literal["reinforcement"] = REINFORCEMENT
    immediate: StrictBool = False


class AdaptationOut(CamelModel):
    adaptation_id: str
    agent_id: str
    feedback_processed: int
    status: str
    estimated_completion: str | None = None
    job_id: str
    method: str
    rated_examples: int
    immediate: bool
    estimated_duration: str


_RATED = re.compile(r"^ratedExamples(?:\[(\d+)\](?:\.(\w+))?)?(.*)$")


def feedback_field(field: str | None, origins: list[tuple[int, str]]) -> str | None:
    """A service's `rated_examples[k].output` -> the feedback item it came from: `feedback[i].actual`."""
    match = _RATED.match(field or "")
    if not match:
        return field
    index, leaf, rest = match.groups()
    if index is None or int(index) >= len(origins):
        return "feedback" + rest
    i, source = origins[int(index)]
    name = {"output": source, "input": "input", "rating": "rating", "success": source}.get(leaf or "", leaf)
    return f"feedback[{i}]" + (f".{name}" if name else "") + (rest if not leaf else "")


@router.post("/adapt-agent", response_model=Envelope[AdaptationOut], response_model_exclude_none=True,
             summary="Adapt an agent from rated feedback (a reinforcement training job)")
async def adapt_agent(body: AdaptAgentIn, caller: Caller, services: Services) -> dict[str, Any]:
    judged = []
    origins: list[tuple[int, str]] = []  # per rated example: (feedback index, "actual" | "expected")
    for i, item in enumerate(body.feedback):
        if item.actual is None and item.expected is None:
            raise ApiError(INVALID, f"feedback[{i}] needs 'actual' (the answer given) or 'expected'",
                           field=f"feedback[{i}].actual", issue="actual or expected is required")
        if item.actual is not None and item.rating is None and item.expected is None:
            raise ApiError(INVALID, f"feedback[{i}] needs a 'rating' or the 'expected' answer to judge 'actual'",
                           field=f"feedback[{i}].rating", issue="is required when expected is not given")
        answers = judged_from_inline(item.input, item.actual, item.expected, item.rating)
        judged.extend(answers)
        origins.extend((i, "actual" if k == 0 and item.actual is not None else "expected")
                       for k in range(len(answers)))
    method = STRATEGIES[body.method]
    data = training_data(judged, method)
    try:
        with rpc_fields(V1_SURFACE, {}):
            job = await start_adaptation(services, caller.account, body.agent_id, method, data,
                                         display_name=f"adapt-agent ({len(body.feedback)} feedback)")
    except ApiError as err:
        err.field = feedback_field(err.field, origins)
        raise
    return envelope({
        "adaptationId": job.job_id, "agentId": job.agent_id, "feedbackProcessed": len(body.feedback),
        "status": state_word(job.state), "estimatedCompletion": ts_iso(job.estimated_completion_time),
        "jobId": job.job_id, "method": body.method, "ratedExamples": len(data), "immediate": body.immediate,
        "estimatedDuration": estimated_duration(job),
    })
