"""/v1/agents/{agent_id}/versions and .../aliases: model versions, aliases, tags, the ONNX artifact,
activation and Ollama import. A ``version_id`` may be an alias after '@' (``@champion``).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, StrictStr
from trainhouse.v1 import model_registry_pb2 as mr
from trainhouse.v1 import model_version_pb2

from trainhouse.gateway.canonical.common import After, AgentId, Limit, Page, VersionId, page, router
from trainhouse.gateway.canonical.protojson import enum_words, message_json, proto_model, response_model, to_proto
from trainhouse.gateway.deps import Services
from trainhouse.gateway.resources.agents import version_fields
from trainhouse.gateway.resources.deployments import deployment_fields

versions = router("/agents/{agent_id}", "versions")

VersionStateWord = Literal[tuple(enum_words(model_version_pb2.VersionState.DESCRIPTOR))]  # type: ignore[valid-type]
Alias = Annotated[str, Path(min_length=1, max_length=64, description="An alias name ('champion'); the registry's rule")]


class V1PromotionOut(BaseModel):
    outcome: str
    reason: str
    requested_by: str
    baseline_version_id: str | None = None
    candidate_accuracy: float
    baseline_accuracy: float
    accuracy_tolerance: float
    examples: int
    test: str
    p_value: float
    decided_at: str | None = None


class V1LineageOut(BaseModel):
    checkpoint_id: str
    step: int
    epoch: int
    kind: str


class V1VersionOut(BaseModel):
    """A model version (trainhouse.gateway.resources.agents.version_fields)."""

    version_id: str
    agent_id: str
    state: str
    serving: str | None = None
    serving_reason: str | None = None
    promotion: V1PromotionOut | None = None
    aliases: list[str]
    tags: dict[str, str]
    created_at: str | None = None
    metrics: dict[str, float | None]  # null: not computable (NaN), e.g. ECE on an empty split
    training_config: dict[str, Any]
    method: str | None = None
    job_id: str | None = None
    dataset_id: str | None = None
    parent_version_id: str | None = None
    size_bytes: int
    sha256: str
    labels: list[str]
    checkpoint: V1LineageOut | None = None


def version_out(v: model_version_pb2.ModelVersion) -> dict[str, Any]:
    return version_fields(v)


def actor_of(request: Request) -> str:
    """Who the registry's audit log names for a change: the token's name."""
    principal = (request.scope.get("state") or {}).get("principal")
    return principal.name if principal is not None else ""


@versions.get("/versions", operation_id="versions.list", response_model=Page[V1VersionOut],
              summary="An agent's versions (keyset pages)")
async def list_versions(agent_id: AgentId, services: Services, after: After = "", limit: Limit = 50,
                        state: VersionStateWord | None = None,
                        alias: Annotated[str, Query(max_length=64)] = "",
                        tag: Annotated[str, Query(max_length=300, description="key or key=value")] = "",
                        order_by: Annotated[str, Query(max_length=200)] = "") -> dict[str, Any]:
    req = mr.ListVersionsRequest(agent_id=agent_id, page_size=limit, page_token=after, alias=alias, tag=tag,
                                 order_by=order_by)
    if state:
        req.state = model_version_pb2.VersionState.Value("VERSION_STATE_" + state.upper())
    resp = await services.registry.ListVersions(req, timeout=services.timeout_s)
    return page([version_out(v) for v in resp.versions], resp.next_page_token)


@versions.get("/versions/{version_id}", operation_id="versions.get", response_model=V1VersionOut,
              summary="Get a version (or '@alias')")
async def get_version(agent_id: AgentId, version_id: VersionId, services: Services) -> dict[str, Any]:
    resp = await services.registry.GetVersion(_get_request(mr.GetVersionRequest, agent_id, version_id),
                                              timeout=services.timeout_s)
    return version_out(resp.version)


def _get_request(cls: Any, agent_id: str, version_id: str, **fields: Any) -> Any:
    """A request naming one version; the registry resolves '@alias' itself (registry/resolve.py)."""
    return cls(agent_id=agent_id, version_id=version_id, **fields)


@versions.get("/versions/{version_id}/artifact", operation_id="versions.download", response_class=Response,
              summary="Download the version's ONNX model",
              responses={200: {"content": {"application/octet-stream": {}},
                               "description": "The ONNX file; X-Checksum-Sha256 holds its digest"}})
async def download_artifact(agent_id: AgentId, version_id: VersionId, services: Services) -> Response:
    resp = await services.registry.GetVersionArtifact(
        _get_request(mr.GetVersionArtifactRequest, agent_id, version_id), timeout=services.timeout_s)
    v = resp.version
    return Response(resp.onnx_model, media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{v.agent_id}-{v.version_id}.onnx"',
                             "X-Checksum-Sha256": v.sha256, "X-Version-Id": v.version_id})


class V1TagsIn(BaseModel):
    set: dict[str, StrictStr] = Field(default_factory=dict, description="Tags to add or overwrite")
    remove: list[StrictStr] = Field(default_factory=list, description="Tag keys to remove")


@versions.patch("/versions/{version_id}/tags", operation_id="versions.update_tags", response_model=V1VersionOut,
                summary="Set and remove a version's tags")
async def update_tags(agent_id: AgentId, version_id: VersionId, body: V1TagsIn, request: Request,
                      services: Services) -> dict[str, Any]:
    req = _get_request(mr.UpdateVersionTagsRequest, agent_id, version_id, remove=body.remove,
                       actor=actor_of(request))
    req.set.update(body.set)
    return version_out((await services.registry.UpdateVersionTags(req, timeout=services.timeout_s)).version)


ActivateIn = proto_model(mr.ActivateVersionRequest.DESCRIPTOR, exclude={"agent_id", "version_id", "model_id", "actor"},
                         name="V1ActivateVersionIn")
ActivateOut = response_model(mr.ActivateVersionResponse.DESCRIPTOR)


@versions.post("/versions/{version_id}/activate", operation_id="versions.activate", response_model=ActivateOut,
               summary="Make a version the active one at once (seed 004's activate)")
async def activate(agent_id: AgentId, version_id: VersionId, request: Request, services: Services,
                   body: ActivateIn | None = None) -> dict[str, Any]:  # type: ignore[valid-type]
    req = _get_request(mr.ActivateVersionRequest, agent_id, version_id, actor=actor_of(request))
    if body is not None:
        req.MergeFrom(to_proto(body, mr.ActivateVersionRequest))
    resp = await services.registry.ActivateVersion(req, timeout=services.timeout_s)
    out = message_json(resp)
    out["version"] = version_out(resp.version)
    out["deployment"] = deployment_fields(resp.deployment) if resp.HasField("deployment") else None
    return out


OllamaIn = proto_model(mr.ImportToOllamaRequest.DESCRIPTOR, exclude={"agent_id", "version_id", "model_id", "actor"},
                       name="V1ImportToOllamaIn")
OllamaOut = response_model(mr.ImportToOllamaResponse.DESCRIPTOR)


@versions.post("/versions/{version_id}/ollama", operation_id="versions.import_ollama", response_model=OllamaOut,
               summary="Import the version into an Ollama server")
async def import_ollama(agent_id: AgentId, version_id: VersionId, request: Request, services: Services,
                        body: OllamaIn | None = None) -> dict[str, Any]:  # type: ignore[valid-type]
    req = _get_request(mr.ImportToOllamaRequest, agent_id, version_id, actor=actor_of(request))
    if body is not None:
        req.MergeFrom(to_proto(body, mr.ImportToOllamaRequest))
    return message_json(await services.registry.ImportToOllama(req, timeout=services.timeout_s))


class V1AliasOut(BaseModel):
    alias: str
    version_id: str
    updated_at: str | None = None


class V1AliasesOut(BaseModel):
    data: list[V1AliasOut]


class V1SetAliasIn(BaseModel):
    version_id: Annotated[StrictStr, Field(min_length=1, max_length=129)]


class V1AliasSetOut(BaseModel):
    version: V1VersionOut
    previous_version_id: str | None = None


class V1AliasDeletedOut(BaseModel):
    alias: str
    version_id: str | None = None


@versions.get("/aliases", operation_id="aliases.list", response_model=V1AliasesOut, summary="An agent's aliases")
async def list_aliases(agent_id: AgentId, services: Services) -> dict[str, Any]:
    resp = await services.registry.ListVersionAliases(mr.ListVersionAliasesRequest(agent_id=agent_id),
                                                      timeout=services.timeout_s)
    return {"data": [{"alias": a.alias, "version_id": a.version_id,
                      "updated_at": message_json(a)["update_time"]} for a in resp.aliases]}


@versions.put("/aliases/{alias}", operation_id="aliases.set", response_model=V1AliasSetOut,
              summary="Point an alias at a version (moves it if set)")
async def set_alias(agent_id: AgentId, alias: Alias, body: V1SetAliasIn, request: Request,
                    services: Services) -> dict[str, Any]:
    req = _get_request(mr.SetVersionAliasRequest, agent_id, body.version_id, alias=alias, actor=actor_of(request))
    resp = await services.registry.SetVersionAlias(req, timeout=services.timeout_s)
    return {"version": version_out(resp.version), "previous_version_id": resp.previous_version_id or None}


@versions.delete("/aliases/{alias}", operation_id="aliases.delete", response_model=V1AliasDeletedOut,
                 summary="Remove an alias")
async def delete_alias(agent_id: AgentId, alias: Alias, request: Request, services: Services) -> dict[str, Any]:
    resp = await services.registry.DeleteVersionAlias(
        mr.DeleteVersionAliasRequest(agent_id=agent_id, alias=alias, actor=actor_of(request)),
        timeout=services.timeout_s)
    return {"alias": alias, "version_id": resp.version_id or None}
