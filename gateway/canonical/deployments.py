"""/v1/deployments: deploy a version (immediate, canary, rolling, blue-green), advance a canary,
roll back; and the agent-level rollback route."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Header, Query, Request
from pydantic import BaseModel
from trainhouse.v1 import deployment_pb2
from trainhouse.v1 import model_registry_pb2 as mr

from trainhouse.gateway.canonical.common import After, AgentId, Page, page, path_id, router
from trainhouse.gateway.canonical.idempotency import idempotent
from trainhouse.gateway.canonical.protojson import enum_words, message_json, proto_model, to_proto
from trainhouse.gateway.canonical.versions import actor_of
from trainhouse.gateway.deps import Services
from trainhouse.gateway.resources.deployments import deployment_fields

deployments = router("/deployments", "deployments")
rollbacks = router("/agents/{agent_id}", "deployments")

EnvironmentWord = Literal[tuple(enum_words(deployment_pb2.Environment.DESCRIPTOR))]  # type: ignore[valid-type]
DeploymentStateWord = Literal[tuple(enum_words(deployment_pb2.DeploymentState.DESCRIPTOR))]  # type: ignore[valid-type]
DeployIn = proto_model(mr.DeployVersionRequest.DESCRIPTOR, exclude={"actor", "model_id"}, name="DeployIn")
AdvanceIn = proto_model(mr.AdvanceRolloutRequest.DESCRIPTOR, exclude={"deployment_id", "actor"}, name="AdvanceIn")
RollbackIn = proto_model(mr.RollbackVersionRequest.DESCRIPTOR, exclude={"agent_id", "actor", "model_id"},
                         name="RollbackIn")


class ScheduleStepOut(BaseModel):
    percentage: float
    due_time: str | None = None
    reached: bool


class DeploymentOut(BaseModel):
    """A deployment (trainhouse.gateway.resources.deployments.deployment_fields)."""

    deployment_id: str
    agent_id: str
    version_id: str
    previous_version_id: str | None = None
    environment: str
    state: str
    strategy: str
    current_percentage: float
    estimated_completion: str | None = None
    schedule: list[ScheduleStepOut]
    status_reason: str | None = None
    created_at: str | None = None


class RollbackOut(BaseModel):
    previous_version_id: str | None = None
    current_version_id: str | None = None
    rollback_time: str | None = None
    message: str
    deployment: DeploymentOut | None = None


@deployments.post("", operation_id="deployments.create", response_model=DeploymentOut, status_code=201,
                  summary="Deploy a version (rollout: immediate, canary, rolling, blue_green)")
async def deploy(body: DeployIn, request: Request, services: Services,  # type: ignore[valid-type]
                 idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None) -> Any:
    async def create() -> dict[str, Any]:
        req = to_proto(body, mr.DeployVersionRequest, actor=actor_of(request))
        return deployment_fields((await services.registry.DeployVersion(req, timeout=services.timeout_s)).deployment)
    return await idempotent(request, idempotency_key, body.model_dump(exclude_none=True), create)


@deployments.get("", operation_id="deployments.list", response_model=Page[DeploymentOut],
                 summary="Deployments, newest first")
async def list_deployments(services: Services, after: After = "",
                           limit: Annotated[int, Query(ge=1, le=100)] = 20,
                           agent_id: Annotated[str, Query(max_length=128)] = "",
                           environment: EnvironmentWord | None = None,
                           state: DeploymentStateWord | None = None) -> dict[str, Any]:
    req = to_proto({"agent_id": agent_id or None, "environment": environment, "state": state,
                    "page_size": limit, "page_token": after or None}, mr.ListDeploymentsRequest)
    resp = await services.registry.ListDeployments(req, timeout=services.timeout_s)
    return page([deployment_fields(d) for d in resp.deployments], resp.next_page_token)


@deployments.get("/{deployment_id}", operation_id="deployments.get", response_model=DeploymentOut,
                 summary="Get a deployment")
async def get_deployment(deployment_id: Annotated[str, path_id()], services: Services) -> dict[str, Any]:
    resp = await services.registry.GetDeployment(mr.GetDeploymentRequest(deployment_id=deployment_id),
                                                 timeout=services.timeout_s)
    return deployment_fields(resp.deployment)


@deployments.post("/{deployment_id}/advance", operation_id="deployments.advance", response_model=DeploymentOut,
                  summary="Advance a canary/rolling deployment (to `percentage`, or its next step)")
async def advance(deployment_id: Annotated[str, path_id()], request: Request, services: Services,
                  body: AdvanceIn | None = None) -> dict[str, Any]:  # type: ignore[valid-type]
    req = to_proto(body, mr.AdvanceRolloutRequest, deployment_id=deployment_id, actor=actor_of(request))
    return deployment_fields((await services.registry.AdvanceRollout(req, timeout=services.timeout_s)).deployment)


@rollbacks.post("/rollback", operation_id="deployments.rollback", response_model=RollbackOut,
                summary="Roll the agent's serving version back (to target_version_id, or the previous one)")
async def rollback(agent_id: AgentId, request: Request, services: Services,
                   body: RollbackIn | None = None) -> dict[str, Any]:  # type: ignore[valid-type]
    req = to_proto(body, mr.RollbackVersionRequest, agent_id=agent_id, actor=actor_of(request))
    resp = await services.registry.RollbackVersion(req, timeout=services.timeout_s)
    out = message_json(resp)
    out["deployment"] = deployment_fields(resp.deployment) if resp.HasField("deployment") else None
    for key in ("previous_version_id", "current_version_id"):
        out[key] = out.get(key) or None
    return out
