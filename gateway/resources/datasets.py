"""Datasets and synthetic generation: the dataset mapping, signed download links, and the one
GenerateSyntheticData call every surface makes (with its generation budget).

Generated examples count against the caller's hourly generation budget (seed 000: 10,000
examples/hour), spent by the requested count before the call and given back if the call is refused.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import grpc
from fastapi import Request
from google.protobuf import json_format
from trainhouse.v1 import data_service_pb2, dataset_pb2, synthetic_data_pb2

from trainhouse.gateway.convert import ts_iso
from trainhouse.gateway.deps import Services
from trainhouse.gateway.errors import INVALID, ApiError, encoding_request
from trainhouse.gateway.ratelimit import GENERATION
from trainhouse.gateway.routing import charge, rate_limited
from trainhouse.common.timeutil import iso
from trainhouse.core.configs.base import optional_type
from trainhouse.core.configs.generation import GenerationConfig, GenerationConstraints

DEFAULT_COUNT = 100  # DataService's default when count is unset


def dataset_fields(d: dataset_pb2.Dataset) -> dict[str, Any]:
    """The canonical fields of a dataset (snake_case; the /v1 API's shape)."""
    s = d.statistics
    return {
        "dataset_id": d.dataset_id,
        "example_count": s.example_count,
        "statistics": {"example_count": s.example_count, "output_counts": dict(s.output_counts),
                       "output_shares": dict(s.output_shares), "average_length": s.average_length},
        "created_at": ts_iso(d.create_time),
        "source": d.source or None,
        "sha256": d.sha256 or None,
        "labels": dict(sorted(d.labels.items())),
    }


def dataset_json(d: dataset_pb2.Dataset) -> dict[str, Any]:
    """Seed 000's dataset document: the canonical fields in camelCase (label maps keep their keys)."""
    f = dataset_fields(d)
    st = f["statistics"]
    return {
        "datasetId": f["dataset_id"],
        "exampleCount": f["example_count"],
        "statistics": {"exampleCount": st["example_count"], "outputCounts": st["output_counts"],
                       "outputShares": st["output_shares"], "averageLength": st["average_length"]},
        "createdAt": f["created_at"],
        "source": f["source"],
        "sha256": f["sha256"],
    }


def with_download(request: Request, data: dict[str, Any]) -> dict[str, Any]:
    """Add seed 000's `downloadUrl` (signed, expiring, usable without a token) and `expiresAt`.

    The link is issued under the caller's account and the `data:export` scope, so only a caller who
    could download the dataset gets one (null otherwise), and the link reads only that account's data."""
    principal = (request.scope.get("state") or {}).get("principal")
    if principal is None or not principal.allows(EXPORT_SCOPE):
        return {**data, "downloadUrl": None, "expiresAt": None}
    signer = request.app.state.gate.signer
    path = request.app.url_path_for("download_dataset", datasetId=data["datasetId"])
    url, expires = signer.sign(str(request.base_url), path, principal.account, EXPORT_SCOPE)
    return {**data, "downloadUrl": url,
            "expiresAt": iso(dt.datetime.fromtimestamp(expires, dt.timezone.utc))}


EXPORT_SCOPE = "data:export"


def _wrap_map(values: Any) -> Any:
    if not isinstance(values, dict):
        return values
    return {k: {"values": v} if isinstance(v, list) else v for k, v in values.items()}


def wrap_slot_lists(template: dict[str, Any]) -> dict[str, Any]:
    """Accept slot values written as plain lists (``{"slots": {"product": ["a", "b"]}}``), the
    natural JSON, as well as the proto's ``{"values": [...]}``: wrap lists in every slot map
    (scenario, output and topic slots, synonyms) before ParseDict."""
    out = dict(template)
    for key in ("slots", "synonyms"):
        if key in out:
            out[key] = _wrap_map(out[key])
    for key in ("outputs", "topics"):
        if isinstance(out.get(key), list):
            out[key] = [{**item, "slots": _wrap_map(item["slots"])} if isinstance(item, dict) and "slots" in item
                        else item for item in out[key]]
    return out


# Request fields of a generation run, typed by the one config (services/core/configs/generation.py):
# each surface's body uses these, so /openapi.json shows the same ranges and enums the service applies.
GenCount = optional_type(GenerationConfig, "count")
GenDifficulty = optional_type(GenerationConfig, "difficulty")
GenEdgeCases = optional_type(GenerationConfig, "edge_cases")
GenEdgeCaseRate = optional_type(GenerationConfig, "edge_case_rate")
GenDiversity = optional_type(GenerationConfig, "diversity")
GenSeed = optional_type(GenerationConfig, "seed")
GenLabelBy = optional_type(GenerationConfig, "label_by")
GenMaxLength = optional_type(GenerationConstraints, "max_length")
GenTopics = optional_type(GenerationConstraints, "topics")
GenLanguages = optional_type(GenerationConstraints, "languages")


def generation_request(*, scenario_type: str | None = None, data_type: str | None = None,
                       module_id: str | None = None, count: int | None = None, max_count: int = 0,
                       difficulty: str | None = None, edge_cases: bool | None = None,
                       edge_case_rate: float | None = None, diversity: float | None = None,
                       max_length: int | None = None, languages: list[str] | None = None,
                       topics: list[str] | None = None, template: dict[str, Any] | None = None,
                       seed: int | None = None, dataset_id: str | None = None,
                       label_by: str | None = None) -> data_service_pb2.GenerateSyntheticDataRequest:
    with encoding_request():
        req = data_service_pb2.GenerateSyntheticDataRequest(max_count=max_count, difficulty=difficulty or "",
                                                            edge_cases=bool(edge_cases),
                                                            dataset_id=dataset_id or "", label_by=label_by or "")
        if scenario_type is not None:
            req.scenario_type = scenario_type
        elif data_type is not None:
            req.data_type = data_type
        elif module_id is not None:
            req.module_id = module_id
        for name, value in (("count", count), ("edge_case_rate", edge_case_rate), ("diversity", diversity),
                            ("seed", seed)):
            if value is not None:
                setattr(req, name, value)
        if max_length is not None:
            req.constraints.max_length = max_length
        req.constraints.languages.extend(languages or [])
        req.constraints.topics.extend(topics or [])
        if template is not None:
            try:
                json_format.ParseDict(wrap_slot_lists(template), req.template)
            except json_format.ParseError as exc:
                raise ApiError(INVALID, f"template: {exc}", field="template", issue=str(exc)) from None
    return req


async def generate(request: Request, services: Services,
                   req: data_service_pb2.GenerateSyntheticDataRequest) -> data_service_pb2.GenerateSyntheticDataResponse:
    """Spend the generation budget, generate, and refund when the service refuses the request."""
    cost = req.count if req.HasField("count") else DEFAULT_COUNT
    decision = charge(request, GENERATION, max(1, cost))
    if decision is not None and not decision.allowed:
        raise rate_limited(decision)
    try:
        return await services.data.GenerateSyntheticData(req, timeout=services.timeout_s)
    except grpc.RpcError:
        if decision is not None:
            gate = request.app.state.gate
            principal = request.scope["state"]["principal"]
            limit = gate.limiter.limit_of(GENERATION, principal.rate_limit_per_hour)
            if limit is not None:
                gate.limiter.refund(principal.token_id, limit, max(1, cost), GENERATION)
        raise


def statistics_json(s: synthetic_data_pb2.GenerationStatistics) -> dict[str, Any]:
    return {"generated": s.generated, "averageLength": s.average_length, "uniqueScenarios": s.unique_scenarios,
            "edgeCases": s.edge_cases, "diversity": s.diversity, "distinct1": s.distinct_1,
            "distinct2": s.distinct_2, "uniqueTemplates": s.unique_templates,
            "levelCounts": {str(k): v for k, v in s.level_counts.items()}, "topicCounts": dict(s.topic_counts),
            "edgeCaseCounts": dict(s.edge_case_counts)}


def generated_json(request: Request, resp: data_service_pb2.GenerateSyntheticDataResponse) -> dict[str, Any]:
    linked = with_download(request, dataset_json(resp.dataset))
    return {"datasetId": resp.dataset.dataset_id, "generated": resp.statistics.generated, "status": "completed",
            "downloadUrl": linked["downloadUrl"], "expiresAt": linked["expiresAt"],
            "statistics": statistics_json(resp.statistics), "seed": resp.seed, "scenario": resp.scenario,
            "genericTopics": list(resp.generic_topics)}
