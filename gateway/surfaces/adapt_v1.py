"""Seed 000 POST /api/v1/training/adapt-agent: inline feedback -> TrainingService.AdaptAgent.

The service turns the feedback items into rated examples and starts a reinforcement job; this
route translates the seed's request and answer. The adaptation is the job, so `adaptationId` is
the job id and its progress is GET /train-agent/{adaptationId}. `immediate: true` asks that the
adapted version replace what serves as soon as it passes the registry's promotion gate (held-out
accuracy not lower than the serving version's beyond 0.01); without it the version is only
registered and nothing that serves changes.
"""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import Field, StrictBool, StrictStr
from trainhouse.v1 import job_state_pb2, training_service_pb2

from trainhouse.gateway.convert import ts_iso
from trainhouse.gateway.deps import Caller, Services
from trainhouse.gateway.errors import encoding_request, rpc_fields
from trainhouse.gateway.models import CamelModel, Envelope, envelope, Id, Number
from trainhouse.gateway.resources.jobs import estimated_duration, seed_state_word
from trainhouse.gateway.routing import GatewayRoute
from trainhouse.gateway.surfaces.common import ERROR_RESPONSES
from trainhouse.gateway.surfaces.v1 import V1_SURFACE

router = APIRouter(prefix="/api/v1/training", tags=["training"], route_class=GatewayRoute,
                   responses=ERROR_RESPONSES)


class FeedbackItemIn(CamelModel):
    input: StrictStr
    expected: StrictStr | None = Field(None, description="The answer the agent should have given")
    actual: StrictStr | None = Field(None, description="The answer it gave")
    rating: Number | None = Field(None, description="1..5 stars for the actual answer")
    timestamp: StrictStr | None = None


class AdaptAgentIn(CamelModel):
    agent_id: Id
    feedback: list[FeedbackItemIn] = Field(min_length=1)
    method: Literal["reinforcement"] = "reinforcement"
    immediate: StrictBool = Field(False, description="Promote the adapted version once it passes the promotion "
                                                     "gate; false: register it only")


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
    promotion: str = Field(description="'gated': the version serves if it passes the promotion gate (a "
                                       "model.promoted / model.promotion_rejected event says which); 'none': "
                                       "it is registered and serves nothing until deployed")
    estimated_duration: str


@router.post("/adapt-agent", response_model=Envelope[AdaptationOut], response_model_exclude_none=True,
             summary="Adapt an agent from rated feedback (a reinforcement training job)")
async def adapt_agent(body: AdaptAgentIn, caller: Caller, services: Services) -> dict[str, Any]:
    with encoding_request():
        request = training_service_pb2.AdaptAgentRequest(
            agent_id=body.agent_id, method=job_state_pb2.TRAINING_METHOD_REINFORCEMENT,
            display_name=f"adapt-agent ({len(body.feedback)} feedback)",
            feedback=[training_service_pb2.JudgedAnswer(input=item.input, expected=item.expected, actual=item.actual,
                                                        rating=item.rating) for item in body.feedback])
        if body.immediate:
            request.promotion.requested_by = "immediate"
    with rpc_fields(V1_SURFACE, {}):
        resp = await services.training.AdaptAgent(request, timeout=services.timeout_s)
    job = resp.job
    return envelope({
        "adaptationId": job.job_id, "agentId": job.agent_id, "feedbackProcessed": resp.feedback_used,
        "status": seed_state_word(job.state), "estimatedCompletion": ts_iso(job.estimated_completion_time),
        "jobId": job.job_id, "method": body.method, "ratedExamples": resp.training_examples,
        "immediate": body.immediate, "promotion": "gated" if body.immediate else "none",
        "estimatedDuration": estimated_duration(job),
    })
