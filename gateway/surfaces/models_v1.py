"""Seed 000 model management: /api/v1/training/models/{agentId}/versions[/{versionId}]."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from gateway.convert import enum_word, human_size, struct_to_dict, ts_iso
from gateway.deps import Services
from gateway.models import CamelModel, Envelope, Pagination, envelope
from gateway.routing import GatewayRoute
from gateway.surfaces.common import ERROR_RESPONSES, page_token_for, pagination
from trainhouse.v1 import model_registry_pb2, model_version_pb2

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


class VersionsData(CamelModel):
    versions: list[VersionOut]
    pagination: Pagination


def version_json(v: model_version_pb2.ModelVersion) -> dict[str, Any]:
    return {
        "versionId": v.version_id,
        "agentId": v.agent_id,
        "trainedAt": ts_iso(v.create_time),
        "status": enum_word(model_version_pb2.VersionState.Name(v.state), "VERSION_STATE_"),
        "metrics": dict(v.metrics),
        "trainingConfig": struct_to_dict(v.training_config),
        "size": human_size(v.size_bytes),
        "sizeBytes": v.size_bytes,
        "sha256": v.sha256,
        "jobId": v.job_id or None,
        "datasetId": v.dataset_id or None,
        "parentVersionId": v.parent_version_id or None,
        "method": v.method or None,
        "labels": list(v.labels),
    }


AgentId = Annotated[str, Path(alias="agentId")]


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
        agent_id=agent_id, page_size=limit, page_token=page_token_for(page, limit),
        state=STATES[status] if status else model_version_pb2.VERSION_STATE_UNSPECIFIED,
        order_by=f"{SORT_FIELDS[sort_by]} {order}")
    resp = await services.registry.ListVersions(request, timeout=services.timeout_s)
    return envelope({"versions": [version_json(v) for v in resp.versions],
                     "pagination": pagination(resp.total_size, page, limit, resp.next_page_token)})


@router.get("/{agentId}/versions/{versionId}", response_model=Envelope[VersionOut],
            response_model_exclude_none=True, summary="Get one model version")
async def get_version(agent_id: AgentId, version_id: Annotated[str, Path(alias="versionId")],
                      services: Services) -> dict[str, Any]:
    resp = await services.registry.GetVersion(
        model_registry_pb2.GetVersionRequest(agent_id=agent_id, version_id=version_id),
        timeout=services.timeout_s)
    return envelope(version_json(resp.version))
