"""Agents (contract: resources the seeds use but do not define): /api/v1/agents[/{agentId}[/predict|/feedback]]."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field, StrictBool, StrictStr
from starlette.responses import Response
from trainhouse.v1 import model_registry_pb2

from trainhouse.gateway.convert import ts_iso
from trainhouse.gateway.deps import Caller, Services
from trainhouse.gateway.errors import INVALID, ApiError, encoding_request
from trainhouse.gateway.models import CamelModel, Envelope, envelope, Id, id_path, Int, json_answer, Pagination, VersionRef
from trainhouse.gateway.resources.agents import agent_v1
from trainhouse.gateway.routing import GatewayRoute
from trainhouse.gateway.surfaces.common import ERROR_RESPONSES, pagination, skip_for

router = APIRouter(prefix="/api/v1/agents", tags=["agents"], route_class=GatewayRoute,
                   responses=ERROR_RESPONSES)


SERVE_FIRST_DOC = ("Whether the agent's first version serves as soon as it is registered (default true). "
                   "Later versions never serve by merely existing: only a deploy, an activation, a rollback or "
                   "a passed promotion gate changes what serves.")


class CreateAgentIn(CamelModel):
    agent_id: Id
    name: StrictStr | None = None
    description: StrictStr | None = None
    serve_first_version: StrictBool | None = Field(None, description=SERVE_FIRST_DOC)


class UpdateAgentIn(CamelModel):
    name: StrictStr | None = None
    description: StrictStr | None = None
    serve_first_version: StrictBool | None = Field(None, description=SERVE_FIRST_DOC)


class AgentOut(CamelModel):
    agent_id: str
    name: str
    description: str
    active_version_id: str | None = Field(None, description="The version production serves")
    staging_version_id: str | None = None
    serve_first_version: bool = True
    version_count: int
    created_at: str | None = None
    updated_at: str | None = None


class AgentsData(CamelModel):
    agents: list[AgentOut]
    pagination: Pagination


class PolicyStepIn(CamelModel):
    tool: StrictStr
    succeeded: StrictBool = True


class PredictIn(CamelModel):
    """Either `input` (one text) or `inputs` (1..1000 texts). GRPO tool policies also take
    `episodes`: per input, the tool calls made so far, to get the next action."""

    input: StrictStr | None = None
    inputs: list[StrictStr] | None = None
    version_id: VersionRef | None = Field(None, description="Pin a version: an id ('v1.2.0'), an alias ('@champion') "
                                                           "or 'latest'; default: what production serves")
    top_k: Int | None = Field(None, description="How many top outputs per input (default 3)")
    request_key: StrictStr | None = Field(None, description="Stable key (e.g. a user id) that keeps a caller on "
                                                            "one version during a canary")
    episodes: list[list[PolicyStepIn]] | None = Field(
        None, description="GRPO policies: per input, the episode's tool calls so far ({tool, succeeded}), oldest "
                          "first; the answer is the next action")


class ScoredOut(CamelModel):
    output: str
    probability: float


class PredictionOut(CamelModel):
    prediction_id: str | None = None
    input: str
    output: str = Field(description="The top output, or '__out_of_scope__' when the version abstains")
    probability: float = Field(description="The calibrated probability of the top output of the catalogue")
    out_of_scope: bool = Field(False, description="True when that probability is below the version's "
                                                  "out-of-scope threshold: fall back")
    out_of_scope_threshold: float = Field(0.0, description="The version's threshold (0: never abstains)")
    top: list[ScoredOut]


class PredictData(CamelModel):
    agent_id: str
    version_id: str
    deployment_id: str | None = None
    predictions: list[PredictionOut]


class FeedbackIn(CamelModel):
    """Whether a served answer was right: name the prediction (from predict), or the version
    plus the input and the output that was served."""

    prediction_id: Id | None = None
    version_id: VersionRef | None = None
    correct: StrictBool = Field(description="Required. Was the served output right?")
    expected_output: StrictStr | None = Field(None, description="The right output (a correction)")
    latency_ms: float | None = Field(None, ge=0)
    input: StrictStr | None = None
    served_output: StrictStr | None = None


class FeedbackOut(CamelModel):
    feedback_id: str
    agent_id: str
    prediction_id: str | None = None
    version_id: str
    correct: bool
    expected_output: str | None = None
    created_at: str | None = None
    rolled_back: bool


AgentId = Annotated[str, id_path("agentId")]


@router.post("", response_model=Envelope[AgentOut], response_model_exclude_none=True, status_code=201,
             summary="Register an agent (409 CONFLICT when the id is taken)")
async def create_agent(body: CreateAgentIn, services: Services) -> dict[str, Any]:
    with encoding_request():
        request = model_registry_pb2.CreateAgentRequest(agent_id=body.agent_id, name=body.name or "",
                                                        description=body.description or "")
        if body.serve_first_version is not None:
            request.serve_first_version = body.serve_first_version
    resp = await services.registry.CreateAgent(request, timeout=services.timeout_s)
    return envelope(agent_v1(resp.agent))


@router.get("", response_model=Envelope[AgentsData], response_model_exclude_none=True, summary="List agents")
async def list_agents(services: Services,
                      page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
                      limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
    resp = await services.registry.ListAgents(
        model_registry_pb2.ListAgentsRequest(page_size=limit, skip=skip_for(page, limit), include_total_size=True),
        timeout=services.timeout_s)
    return envelope({"agents": [agent_v1(a) for a in resp.agents],
                     "pagination": pagination(resp.total_size, page, limit, resp.next_page_token)})


@router.get("/{agentId}", response_model=Envelope[AgentOut], response_model_exclude_none=True,
            summary="Get an agent (404 AGENT_NOT_FOUND when unknown)")
async def get_agent(agent_id: AgentId, services: Services) -> dict[str, Any]:
    resp = await services.registry.GetAgent(model_registry_pb2.GetAgentRequest(agent_id=agent_id),
                                            timeout=services.timeout_s)
    return envelope(agent_v1(resp.agent))


@router.patch("/{agentId}", response_model=Envelope[AgentOut], response_model_exclude_none=True,
              summary="Change an agent's name, description or serve_first_version (audited)")
async def update_agent(agent_id: AgentId, body: UpdateAgentIn, caller: Caller, services: Services) -> dict[str, Any]:
    with encoding_request():
        request = model_registry_pb2.UpdateAgentRequest(agent_id=agent_id, actor=caller.name)
        for name in ("name", "description", "serve_first_version"):
            if getattr(body, name) is not None:
                setattr(request, name, getattr(body, name))
    resp = await services.registry.UpdateAgent(request, timeout=services.timeout_s)
    return envelope(agent_v1(resp.agent))


@router.post("/{agentId}/predict", response_model=Envelope[PredictData], response_model_exclude_none=True,
             summary="Score texts with the agent's active (or a pinned) model version")
async def predict(agent_id: AgentId, body: PredictIn, services: Services) -> Response:
    request = predict_request(agent_id, body)
    return predict_answer(agent_id, request, await services.predict(request))


def predict_request(agent_id: str, body: PredictIn) -> model_registry_pb2.PredictRequest:
    """The registry's request for a REST Predict body (this route and gateway/predict_fast_path.py)."""
    if (body.input is None) == (body.inputs is None):
        raise ApiError(INVALID, "give exactly one of 'input' or 'inputs'", field="input",
                       issue="exactly one of 'input' or 'inputs' is required")
    texts = [body.input] if body.input is not None else list(body.inputs or [])
    with encoding_request():
        return model_registry_pb2.PredictRequest(
            agent_id=agent_id, inputs=texts, version_id=body.version_id or "", top_k=body.top_k or 0,
            request_key=body.request_key or "",
            episodes=[model_registry_pb2.PolicyEpisode(steps=[model_registry_pb2.PolicyStep(
                tool=step.tool, succeeded=step.succeeded) for step in episode]) for episode in body.episodes or []])


def predict_answer(agent_id: str, request: model_registry_pb2.PredictRequest,
                   resp: model_registry_pb2.PredictResponse) -> Response:
    """The 200 of this route (and of gateway/predict_fast_path.py)."""
    return json_answer(envelope(predict_data(agent_id, list(request.inputs), resp), checked=False))


def predict_data(agent_id: str, texts: list[str], resp: model_registry_pb2.PredictResponse) -> dict[str, Any]:
    """PredictData exactly as its model renders it (field order, camelCase, empty ids left out)."""
    predictions = []
    for text, p in zip(texts, resp.predictions):
        one: dict[str, Any] = {"predictionId": p.prediction_id} if p.prediction_id else {}
        one.update({"input": text, "output": p.output, "probability": p.probability, "outOfScope": p.out_of_scope,
                    "outOfScopeThreshold": p.out_of_scope_threshold,
                    "top": [{"output": t.output, "probability": t.probability} for t in p.top]})
        predictions.append(one)
    data: dict[str, Any] = {"agentId": agent_id, "versionId": resp.version_id}
    if resp.deployment_id:
        data["deploymentId"] = resp.deployment_id
    data["predictions"] = predictions
    return data


@router.post("/{agentId}/feedback", response_model=Envelope[FeedbackOut], response_model_exclude_none=True,
             status_code=201, summary="Record whether a served answer was right (feeds canary rollback and "
                                      "auto-training)")
async def record_feedback(agent_id: AgentId, body: FeedbackIn, services: Services) -> dict[str, Any]:
    with encoding_request():
        request = model_registry_pb2.RecordFeedbackRequest(
            agent_id=agent_id, prediction_id=body.prediction_id or "", version_id=body.version_id or "",
            correct=body.correct, expected_output=body.expected_output or "", input=body.input or "",
            served_output=body.served_output or "")
        if body.latency_ms is not None:
            request.latency_ms = body.latency_ms
    resp = await services.registry.RecordFeedback(request, timeout=services.timeout_s)
    fb = resp.feedback
    return envelope({"feedbackId": fb.feedback_id, "agentId": fb.agent_id, "predictionId": fb.prediction_id or None,
                     "versionId": fb.version_id, "correct": fb.correct, "expectedOutput": fb.expected_output or None,
                     "createdAt": ts_iso(fb.create_time), "rolledBack": resp.HasField("rolled_back")})
