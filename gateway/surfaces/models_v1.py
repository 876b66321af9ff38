"""Seed 000 model management: /api/v1/training/models/{agentId}/versions[/{versionId}]."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import Field, StrictBool, StrictStr
from trainhouse.v1 import deployment_pb2, model_registry_pb2, model_version_pb2

from trainhouse.gateway.convert import enum_word, ts_iso
from trainhouse.gateway.deps import Caller, Services
from trainhouse.gateway.errors import encoding_request
from trainhouse.gateway.models import CamelModel, Envelope, envelope, Id, id_path, Int, Number, Pagination, RESOURCE_ID_MAX, VERSION_REF_PATTERN, VersionRef
from trainhouse.gateway.resources.agents import version_v1
from trainhouse.gateway.resources.deployments import deployment_v1
from trainhouse.gateway.routing import GatewayRoute
from trainhouse.gateway.surfaces.common import ERROR_RESPONSES, pagination, skip_for

router = APIRouter(prefix="/api/v1/training/models", tags=["models"], route_class=GatewayRoute,
                   responses=ERROR_RESPONSES)

STATES = {
    "registered": model_version_pb2.VERSION_STATE_REGISTERED,
    "staging": model_version_pb2.VERSION_STATE_STAGING,
    "deployed": model_version_pb2.VERSION_STATE_DEPLOYED,
    "archived": model_version_pb2.VERSION_STATE_ARCHIVED,
    "rolled_back": model_version_pb2.VERSION_STATE_ROLLED_BACK,
    "rolled-back": model_version_pb2.VERSION_STATE_ROLLED_BACK,
}
SORT_FIELDS = {"createdAt": "create_time", "trainedAt": "create_time", "versionId": "version_id"}


class VersionOut(CamelModel):
    version_id: str
    agent_id: str
    trained_at: str | None = None
    status: str
    metrics: dict[str, float]
    training_config: dict[str, Any]
    size: str
    size_bytes: int
    sha256: str
    job_id: str | None = None
    dataset_id: str | None = None
    parent_version_id: str | None = None
    method: str | None = None
    labels: list[str]
    serving: str | None = Field(None, description="serving | canary | staging | registered | retired")
    serving_reason: str | None = Field(None, description="Why it serves (or does not)")
    promotion: dict[str, Any] | None = Field(None, description="The promotion gate's decision (outcome, reason, "
                                                               "accuracies, p-value), when one was asked for")
    checkpoint: dict[str, Any] | None = Field(None, description="The job checkpoint the version was made from "
                                                                 "(checkpointId, step, epoch, kind)")
    aliases: list[str] = []
    tags: dict[str, str] = {}


class VersionsData(CamelModel):
    versions: list[VersionOut]
    pagination: Pagination


AgentId = Annotated[str, id_path("agentId")]
VersionPath = Annotated[str, id_path("versionId", "A version id, or an alias after '@'", VERSION_REF_PATTERN,
                                              RESOURCE_ID_MAX + 1)]


@router.get("/{agentId}/versions", response_model=Envelope[VersionsData], response_model_exclude_none=True,
            summary="List an agent's model versions")
async def list_versions(
    agent_id: AgentId, services: Services,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    status: Annotated[Literal["registered", "staging", "deployed", "archived", "rolled_back", "rolled-back"] | None,
                      Query()] = None,
    sort_by: Annotated[Literal["createdAt", "trainedAt", "versionId"], Query(alias="sortBy")] = "createdAt",
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
) -> dict[str, Any]:
    request = model_registry_pb2.ListVersionsRequest(
        agent_id=agent_id, page_size=limit, skip=skip_for(page, limit), include_total_size=True,
        state=STATES[status] if status else model_version_pb2.VERSION_STATE_UNSPECIFIED,
        order_by=f"{SORT_FIELDS[sort_by]} {order}")
    resp = await services.registry.ListVersions(request, timeout=services.timeout_s)
    return envelope({"versions": [version_v1(v) for v in resp.versions],
                     "pagination": pagination(resp.total_size, page, limit, resp.next_page_token)})


@router.get("/{agentId}/versions/{versionId}", response_model=Envelope[VersionOut],
            response_model_exclude_none=True, summary="Get one model version")
async def get_version(agent_id: AgentId, version_id: VersionPath,
                      services: Services) -> dict[str, Any]:
    resp = await services.registry.GetVersion(
        model_registry_pb2.GetVersionRequest(agent_id=agent_id, version_id=version_id),
        timeout=services.timeout_s)
    return envelope(version_v1(resp.version))


# ---- deployments (seed 000) -----------------------------------------------------------------

ENVIRONMENTS = {"production": deployment_pb2.ENVIRONMENT_PRODUCTION, "staging": deployment_pb2.ENVIRONMENT_STAGING}
STRATEGIES = {"immediate": deployment_pb2.ROLLOUT_STRATEGY_IMMEDIATE, "canary": deployment_pb2.ROLLOUT_STRATEGY_CANARY,
              "blue-green": deployment_pb2.ROLLOUT_STRATEGY_BLUE_GREEN,
              "blue_green": deployment_pb2.ROLLOUT_STRATEGY_BLUE_GREEN}


class RolloutIn(CamelModel):
    strategy: Literal["immediate", "canary", "blue-green", "blue_green"] | None = None
    percentage: Number | None = None
    duration: StrictStr | None = Field(None, description='e.g. "1h", "30m", "1h30m", "2d"')
    steps: list[Number] | None = None


class ThresholdIn(CamelModel):
    error_rate: Number | None = None
    latency_ms: Number | None = None
    min_samples: Int | None = None


class RollbackPolicyIn(CamelModel):
    automatic: StrictBool = False
    threshold: ThresholdIn | None = None


class DeployIn(CamelModel):
    environment: Literal["production", "staging"] | None = None
    rollout: RolloutIn | None = None
    rollback: RollbackPolicyIn | None = None


class RollbackIn(CamelModel):
    environment: Literal["production", "staging"] | None = None
    target_version_id: VersionRef | None = None
    reason: StrictStr | None = None


class DeploymentOut(CamelModel):
    deployment_id: str
    agent_id: str
    version_id: str
    previous_version: str | None = None
    environment: str
    status: str
    strategy: str
    current_percentage: float
    estimated_completion: str | None = None
    schedule: list[dict[str, Any]]
    status_reason: str | None = None
    created_at: str | None = None


class RolledBackOut(CamelModel):
    previous_version: str
    current_version: str
    rollback_time: str | None = None
    deployment: DeploymentOut | None = None


VersionId = VersionPath

DEPLOYMENT_STATES = {enum_word(name, "DEPLOYMENT_STATE_").replace("_", "-"): value
                     for name, value in deployment_pb2.DeploymentState.items() if value}


class DeploymentsData(CamelModel):
    deployments: list[DeploymentOut]
    pagination: Pagination


@router.get("/{agentId}/deployments", response_model=Envelope[DeploymentsData], response_model_exclude_none=True,
            summary="An agent's deployments, newest first")
async def list_deployments(
    agent_id: AgentId, services: Services,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    environment: Annotated[Literal["production", "staging"] | None, Query()] = None,
    status: Annotated[Literal["rolling-out", "inconclusive", "completed", "rolled-back", "superseded"] | None, Query()] = None,
) -> dict[str, Any]:
    req = model_registry_pb2.ListDeploymentsRequest(agent_id=agent_id, page_size=limit,
                                                    skip=skip_for(page, limit), include_total_size=True)
    if environment:
        req.environment = ENVIRONMENTS[environment]
    if status:
        req.state = DEPLOYMENT_STATES[status]
    resp = await services.registry.ListDeployments(req, timeout=services.timeout_s)
    return envelope({"deployments": [deployment_v1(d) for d in resp.deployments],
                     "pagination": pagination(resp.total_size, page, limit, resp.next_page_token)})


@router.post("/{agentId}/versions/{versionId}/deploy", response_model=Envelope[DeploymentOut],
             response_model_exclude_none=True, summary="Deploy a version (immediate, canary or blue-green)")
async def deploy_version(agent_id: AgentId, version_id: VersionId, body: DeployIn, caller: Caller,
                         services: Services) -> dict[str, Any]:
    with encoding_request():
        req = model_registry_pb2.DeployVersionRequest(agent_id=agent_id, version_id=version_id, actor=caller.name)
        if body.environment:
            req.environment = ENVIRONMENTS[body.environment]
        if body.rollout is not None:
            r = body.rollout
            if r.strategy:
                req.rollout.strategy = STRATEGIES[r.strategy]
            if r.percentage is not None:
                req.rollout.percentage = r.percentage
            if r.duration:
                req.rollout.duration_text = r.duration
            req.rollout.steps.extend(r.steps or [])
        if body.rollback is not None:
            req.rollback.automatic = body.rollback.automatic
            t = body.rollback.threshold or ThresholdIn()
            for name in ("error_rate", "latency_ms", "min_samples"):
                if getattr(t, name) is not None:
                    setattr(req.rollback, name, getattr(t, name))
    resp = await services.registry.DeployVersion(req, timeout=services.timeout_s)
    return envelope(deployment_v1(resp.deployment))


@router.post("/{agentId}/versions/{versionId}/rollback", response_model=Envelope[RolledBackOut],
             response_model_exclude_none=True, summary="Roll back from a version to the one before it")
async def rollback_version(agent_id: AgentId, version_id: VersionId, caller: Caller, services: Services,
                           body: RollbackIn | None = None) -> dict[str, Any]:
    body = body or RollbackIn()
    with encoding_request():
        req = model_registry_pb2.RollbackVersionRequest(
            agent_id=agent_id, version_id=version_id, target_version_id=body.target_version_id or "",
            reason=body.reason or "", actor=caller.name)
        if body.environment:
            req.environment = ENVIRONMENTS[body.environment]
    resp = await services.registry.RollbackVersion(req, timeout=services.timeout_s)
    return envelope({"previousVersion": resp.previous_version_id, "currentVersion": resp.current_version_id,
                     "rollbackTime": ts_iso(resp.rollback_time),
                     "deployment": deployment_v1(resp.deployment) if resp.HasField("deployment") else None},
                    message=resp.message or f"Rolled back to version {resp.current_version_id}")


# ---- aliases and tags -----------------------------------------------------------------------

class AliasOut(CamelModel):
    alias: str
    version_id: str
    updated_at: str | None = None


class AliasesData(CamelModel):
    agent_id: str
    aliases: list[AliasOut]


class SetAliasIn(CamelModel):
    version_id: VersionRef = Field(description="The version the alias names from now on")


class AliasSetOut(CamelModel):
    alias: str
    version: VersionOut
    previous_version_id: str | None = Field(None, description="What the alias named before (absent if new)")


class AliasDeletedOut(CamelModel):
    alias: str
    version_id: str = Field(description="The version it named")
    deleted: bool


class TagsIn(CamelModel):
    set: dict[StrictStr, StrictStr] | None = Field(None, description="Tags to add or overwrite")
    remove: list[StrictStr] | None = Field(None, description="Tag keys to remove")


Alias = Annotated[str, Path(alias="alias", description="[a-z][a-z0-9_-]{0,63}, not 'latest'")]


@router.get("/{agentId}/aliases", response_model=Envelope[AliasesData], response_model_exclude_none=True,
            summary="An agent's aliases (e.g. champion, challenger) and the versions they name")
async def list_aliases(agent_id: AgentId, services: Services) -> dict[str, Any]:
    resp = await services.registry.ListVersionAliases(
        model_registry_pb2.ListVersionAliasesRequest(agent_id=agent_id), timeout=services.timeout_s)
    return envelope({"agentId": agent_id, "aliases": [
        {"alias": a.alias, "versionId": a.version_id, "updatedAt": ts_iso(a.update_time)} for a in resp.aliases]})


@router.put("/{agentId}/aliases/{alias}", response_model=Envelope[AliasSetOut], response_model_exclude_none=True,
            summary="Point an alias at a version (creates or moves it; audited). Predict takes '@alias'.")
async def set_alias(agent_id: AgentId, alias: Alias, body: SetAliasIn, caller: Caller,
                    services: Services) -> dict[str, Any]:
    with encoding_request():
        req = model_registry_pb2.SetVersionAliasRequest(agent_id=agent_id, version_id=body.version_id, alias=alias,
                                                        actor=caller.name)
    resp = await services.registry.SetVersionAlias(req, timeout=services.timeout_s)
    return envelope({"alias": alias, "version": version_v1(resp.version),
                     "previousVersionId": resp.previous_version_id or None},
                    message=f"{alias} -> {resp.version.version_id}")


@router.delete("/{agentId}/aliases/{alias}", response_model=Envelope[AliasDeletedOut],
               summary="Delete an alias (audited)")
async def delete_alias(agent_id: AgentId, alias: Alias, caller: Caller, services: Services) -> dict[str, Any]:
    with encoding_request():
        req = model_registry_pb2.DeleteVersionAliasRequest(agent_id=agent_id, alias=alias, actor=caller.name)
    resp = await services.registry.DeleteVersionAlias(req, timeout=services.timeout_s)
    return envelope({"alias": alias, "versionId": resp.version_id, "deleted": True}, message="Alias deleted")


@router.patch("/{agentId}/versions/{versionId}/tags", response_model=Envelope[VersionOut],
              response_model_exclude_none=True, summary="Add, overwrite or remove a version's tags (audited)")
async def update_tags(agent_id: AgentId, version_id: VersionId, body: TagsIn, caller: Caller,
                      services: Services) -> dict[str, Any]:
    with encoding_request():
        req = model_registry_pb2.UpdateVersionTagsRequest(agent_id=agent_id, version_id=version_id,
                                                          set=body.set or {}, remove=body.remove or [],
                                                          actor=caller.name)
    resp = await services.registry.UpdateVersionTags(req, timeout=services.timeout_s)
    return envelope(version_v1(resp.version))
