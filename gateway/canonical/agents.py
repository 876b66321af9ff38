"""/v1/agents: agents, predictions and feedback, the audit log, adaptation and auto-training."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Query, Request
from pydantic import BaseModel
from starlette.responses import Response
from trainhouse.v1 import model_registry_pb2 as mr
from trainhouse.v1 import training_service_pb2 as ts

from trainhouse.gateway.canonical.common import After, AgentId, Limit, Page, page, router
from trainhouse.gateway.canonical.idempotency import idempotent
from trainhouse.gateway.canonical.jobs import V1JobOut, job_out
from trainhouse.gateway.canonical.protojson import message_json, proto_model, response_model, to_proto
from trainhouse.gateway.canonical.versions import actor_of
from trainhouse.gateway.deps import Services
from trainhouse.gateway.models import json_answer
from trainhouse.gateway.resources.agents import agent_fields

agents = router("/agents", "agents")


class V1AgentOut(BaseModel):
    """An agent (trainhouse.gateway.resources.agents.agent_fields)."""

    agent_id: str
    name: str
    description: str
    active_version_id: str | None = None
    staging_version_id: str | None = None
    serve_first_version: bool
    version_count: int
    created_at: str | None = None
    updated_at: str | None = None


V1CreateAgentIn = proto_model(mr.CreateAgentRequest.DESCRIPTOR, exclude={"account_id"}, name="V1CreateAgentIn")
V1UpdateAgentIn = proto_model(mr.UpdateAgentRequest.DESCRIPTOR, exclude={"agent_id", "actor"}, name="V1UpdateAgentIn")
V1PredictIn = proto_model(mr.PredictRequest.DESCRIPTOR, exclude={"agent_id"}, name="V1PredictIn")
PredictOut = response_model(mr.PredictResponse.DESCRIPTOR)
V1FeedbackIn = proto_model(mr.RecordFeedbackRequest.DESCRIPTOR, exclude={"agent_id"}, name="V1FeedbackIn")
FeedbackOut = response_model(mr.RecordFeedbackResponse.DESCRIPTOR)
FeedbackRecordOut = response_model(mr.ListFeedbackResponse.DESCRIPTOR.fields_by_name["feedback"].message_type)
AuditEventOut = response_model(mr.ListAuditEventsResponse.DESCRIPTOR.fields_by_name["events"].message_type)
V1AdaptIn = proto_model(ts.AdaptAgentRequest.DESCRIPTOR, exclude={"agent_id", "account_id"}, name="V1AdaptIn")
AutoConfigOut = response_model(ts.GetAutoTrainingConfigResponse.DESCRIPTOR)
AutoConfigIn = proto_model(ts.UpdateAutoTrainingConfigRequest.DESCRIPTOR, exclude={"agent_id", "actor"},
                           name="V1AutoTrainingConfigIn")
AutoRunOut = response_model(ts.ListAutoTrainingRunsResponse.DESCRIPTOR.fields_by_name["runs"].message_type)
V1AutoCheckIn = proto_model(ts.CheckAutoTrainingRequest.DESCRIPTOR, exclude={"agent_id", "actor"}, name="V1AutoCheckIn")
AutoCheckOut = response_model(ts.CheckAutoTrainingResponse.DESCRIPTOR)
StatsOut = response_model(mr.GetRegistryStatsResponse.DESCRIPTOR)


class V1AdaptOut(BaseModel):
    adapted: bool
    job: V1JobOut | None = None
    feedback_used: int
    feedback_skipped: int
    training_examples: int
    not_adapted_reason: str | None = None
    message: str
    performance: dict[str, Any] | None = None


class V1CountOut(BaseModel):
    count: int


@agents.post("", operation_id="agents.create", response_model=V1AgentOut, status_code=201,
             summary="Register an agent (409 conflict when the id is taken)")
async def create_agent(body: V1CreateAgentIn, request: Request, services: Services,  # type: ignore[valid-type]
                       idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None) -> Any:
    async def create() -> dict[str, Any]:
        resp = await services.registry.CreateAgent(to_proto(body, mr.CreateAgentRequest), timeout=services.timeout_s)
        return agent_fields(resp.agent)
    return await idempotent(request, idempotency_key, body.model_dump(exclude_none=True), create)


@agents.get("", operation_id="agents.list", response_model=Page[V1AgentOut], summary="List agents (keyset pages)")
async def list_agents(services: Services, after: After = "", limit: Limit = 50) -> dict[str, Any]:
    resp = await services.registry.ListAgents(mr.ListAgentsRequest(page_size=limit, page_token=after),
                                              timeout=services.timeout_s)
    return page([agent_fields(a) for a in resp.agents], resp.next_page_token)


@agents.get("/stats", operation_id="agents.stats", response_model=StatsOut,
            summary="Counts of agents, models, deployments, predictions and feedback")
async def registry_stats(services: Services) -> dict[str, Any]:
    return message_json(await services.registry.GetRegistryStats(mr.GetRegistryStatsRequest(),
                                                                 timeout=services.timeout_s))


@agents.get("/{agent_id}", operation_id="agents.get", response_model=V1AgentOut, summary="Get an agent")
async def get_agent(agent_id: AgentId, services: Services) -> dict[str, Any]:
    resp = await services.registry.GetAgent(mr.GetAgentRequest(agent_id=agent_id), timeout=services.timeout_s)
    return agent_fields(resp.agent)


@agents.patch("/{agent_id}", operation_id="agents.update", response_model=V1AgentOut,
              summary="Change an agent's name, description or serve_first_version")
async def update_agent(agent_id: AgentId, body: V1UpdateAgentIn, request: Request,  # type: ignore[valid-type]
                       services: Services) -> dict[str, Any]:
    req = to_proto(body, mr.UpdateAgentRequest, agent_id=agent_id, actor=actor_of(request))
    return agent_fields((await services.registry.UpdateAgent(req, timeout=services.timeout_s)).agent)


@agents.post("/{agent_id}/predict", operation_id="agents.predict", response_model=PredictOut,
             summary="Predict with the version the agent serves (or version_id / '@alias')")
async def predict(agent_id: AgentId, body: V1PredictIn, services: Services) -> Response:  # type: ignore[valid-type]
    req = predict_request(agent_id, body)
    return predict_answer(agent_id, req, await services.predict(req))


def predict_request(agent_id: str, body: BaseModel) -> mr.PredictRequest:
    """The registry's request for a body of this route (and of gateway/predict_fast_path.py).
    version_id may be an alias ('@champion'): the registry resolves it (model_registry.proto)."""
    return to_proto(body, mr.PredictRequest, agent_id=agent_id)


def predict_answer(agent_id: str, request: mr.PredictRequest, resp: mr.PredictResponse) -> Response:
    """The 200 of this route: message_json sent with orjson, without FastAPI's validate-then-encode
    pass through PredictOut (the serving hot path; tests/gateway/test_predict_encoding.py compares
    the two)."""
    return json_answer(message_json(resp))


@agents.post("/{agent_id}/feedback", operation_id="feedback.create", response_model=FeedbackOut, status_code=201,
             summary="Record whether a served answer was right")
async def record_feedback(agent_id: AgentId, body: V1FeedbackIn, services: Services) -> dict[str, Any]:  # type: ignore[valid-type]
    req = to_proto(body, mr.RecordFeedbackRequest, agent_id=agent_id)
    return message_json(await services.registry.RecordFeedback(req, timeout=services.timeout_s))


@agents.get("/{agent_id}/feedback", operation_id="feedback.list", response_model=Page[FeedbackRecordOut],  # type: ignore[valid-type]
            summary="Recorded feedback, newest first")
async def list_feedback(agent_id: AgentId, services: Services, after: After = "", limit: Limit = 50,
                        version_id: Annotated[str, Query(max_length=129)] = "",
                        deployment_id: Annotated[str, Query(max_length=128)] = "") -> dict[str, Any]:
    resp = await services.registry.ListFeedback(
        mr.ListFeedbackRequest(agent_id=agent_id, version_id=version_id, deployment_id=deployment_id,
                               page_size=limit, page_token=after), timeout=services.timeout_s)
    return page([message_json(f) for f in resp.feedback], resp.next_page_token)


@agents.get("/{agent_id}/feedback/count", operation_id="feedback.count", response_model=V1CountOut,
            summary="How much feedback the agent got in a window")
async def count_feedback(agent_id: AgentId, services: Services,
                         since: Annotated[str | None, Query(description="ISO-8601")] = None,
                         before: Annotated[str | None, Query(description="ISO-8601")] = None) -> dict[str, Any]:
    req = to_proto({"since": since, "before": before}, mr.CountFeedbackRequest, agent_id=agent_id)
    return {"count": (await services.registry.CountFeedback(req, timeout=services.timeout_s)).count}


@agents.get("/{agent_id}/audit", operation_id="audit.list", response_model=Page[AuditEventOut],  # type: ignore[valid-type]
            summary="The registry's audit log for the agent")
async def list_audit(agent_id: AgentId, services: Services, after: After = "", limit: Limit = 50,
                     version_id: Annotated[str, Query(max_length=129)] = "",
                     deployment_id: Annotated[str, Query(max_length=128)] = "",
                     kind: Annotated[str, Query(max_length=64)] = "") -> dict[str, Any]:
    resp = await services.registry.ListAuditEvents(
        mr.ListAuditEventsRequest(agent_id=agent_id, version_id=version_id, deployment_id=deployment_id, kind=kind,
                                  page_size=limit, page_token=after), timeout=services.timeout_s)
    return page([message_json(e) for e in resp.events], resp.next_page_token)


@agents.post("/{agent_id}/adapt", operation_id="agents.adapt", response_model=V1AdaptOut, status_code=201,
             summary="Adapt the agent from judged answers (starts a job, or says why not)")
async def adapt(agent_id: AgentId, body: V1AdaptIn, request: Request, services: Services,  # type: ignore[valid-type]
                idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None) -> Any:
    async def create() -> dict[str, Any]:
        resp = await services.training.AdaptAgent(to_proto(body, ts.AdaptAgentRequest, agent_id=agent_id),
                                                  timeout=services.timeout_s)
        out = message_json(resp)
        out["job"] = job_out(resp.job) if resp.HasField("job") else None
        out["not_adapted_reason"] = out.get("not_adapted_reason") or None
        return out
    return await idempotent(request, idempotency_key, body.model_dump(exclude_none=True), create)


@agents.get("/{agent_id}/auto_training", operation_id="auto_training.get", response_model=AutoConfigOut,
            summary="The agent's auto-training config")
async def get_auto(agent_id: AgentId, services: Services) -> dict[str, Any]:
    return message_json(await services.training.GetAutoTrainingConfig(
        ts.GetAutoTrainingConfigRequest(agent_id=agent_id), timeout=services.timeout_s))


@agents.patch("/{agent_id}/auto_training", operation_id="auto_training.update", response_model=AutoConfigOut,
              summary="Change the agent's auto-training config (only the fields sent)")
async def update_auto(agent_id: AgentId, body: AutoConfigIn, request: Request,  # type: ignore[valid-type]
                      services: Services) -> dict[str, Any]:
    req = to_proto(body, ts.UpdateAutoTrainingConfigRequest, agent_id=agent_id, actor=actor_of(request))
    return message_json(await services.training.UpdateAutoTrainingConfig(req, timeout=services.timeout_s))


@agents.get("/{agent_id}/auto_training/runs", operation_id="auto_training.runs", response_model=Page[AutoRunOut],  # type: ignore[valid-type]
            summary="The agent's auto-training runs")
async def auto_runs(agent_id: AgentId, services: Services, after: After = "",
                    limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
    resp = await services.training.ListAutoTrainingRuns(
        ts.ListAutoTrainingRunsRequest(agent_id=agent_id, page_size=limit, page_token=after),
        timeout=services.timeout_s)
    return page([message_json(r) for r in resp.runs], resp.next_page_token)


@agents.post("/{agent_id}/auto_training/check", operation_id="auto_training.check", response_model=AutoCheckOut,
             summary="Evaluate auto-training now (force, dry_run)")
async def auto_check(agent_id: AgentId, request: Request, services: Services,
                     body: V1AutoCheckIn | None = None) -> dict[str, Any]:  # type: ignore[valid-type]
    req = to_proto(body, ts.CheckAutoTrainingRequest, agent_id=agent_id, actor=actor_of(request))
    return message_json(await services.training.CheckAutoTraining(req, timeout=services.timeout_s))
