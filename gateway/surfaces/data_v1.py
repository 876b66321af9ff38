"""Seed 000 data generation: POST /api/v1/training/generate-synthetic-data and /validate-data.

Also the translation the functions surface reuses for generateSyntheticTrainingData. Generated
examples count against the caller's hourly generation budget (seed 000: 10,000 examples/hour),
spent by the requested count before the call and given back if the call is refused.
"""
from __future__ import annotations

from typing import Any, Literal

import grpc
from fastapi import APIRouter, Request
from google.protobuf import json_format
from pydantic import Field, StrictBool, StrictStr

from gateway.convert import enum_word, finite
from gateway.deps import Services
from gateway.errors import INVALID, ApiError, encoding_request
from gateway.examples import ExampleIn, examples_to_proto
from gateway.models import CamelModel, Envelope, Int, Int64, Number, envelope
from gateway.ratelimit import GENERATION
from gateway.routing import GatewayRoute, charge, rate_limited
from gateway.surfaces.common import ERROR_RESPONSES
from gateway.surfaces.datasets import dataset_json, with_download
from trainhouse.v1 import data_service_pb2, data_validation_pb2, synthetic_data_pb2

router = APIRouter(prefix="/api/v1/training", tags=["data"], route_class=GatewayRoute, responses=ERROR_RESPONSES)

DEFAULT_COUNT = 100  # DataService's default when count is unset


# ---- generation -----------------------------------------------------------------------------

class ConstraintsIn(CamelModel):
    max_length: Int | None = None
    languages: list[StrictStr] | None = None
    topics: list[StrictStr] | None = None


class GenerateIn(CamelModel):
    scenario_type: StrictStr = Field(description="customer-support, code-generation, data-analysis, "
                                                 "content-creation, task-automation or custom (with template)")
    count: Int | None = Field(None, description="Examples to generate (default 100)")
    difficulty: Literal["easy", "medium", "hard"] | None = None
    edge_cases: StrictBool | None = None
    edge_case_rate: Number | None = None
    diversity: Number | None = None
    format: Literal["jsonl"] | None = Field(None, description="Download format; JSONL")
    constraints: ConstraintsIn | None = None
    template: dict[str, Any] | None = Field(None, description="ScenarioTemplate for scenarioType 'custom'")
    seed: Int64 | None = None
    dataset_id: StrictStr | None = None
    label_by: Literal["output", "topic"] | None = None


class GenerationStatisticsOut(CamelModel):
    generated: int
    average_length: float
    unique_scenarios: int
    edge_cases: int
    diversity: float
    distinct1: float
    distinct2: float
    unique_templates: int
    level_counts: dict[str, int]
    topic_counts: dict[str, int]
    edge_case_counts: dict[str, int]


class GeneratedOut(CamelModel):
    dataset_id: str
    generated: int
    status: str
    download_url: str
    expires_at: str
    statistics: GenerationStatisticsOut
    seed: int
    scenario: str


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
            "statistics": statistics_json(resp.statistics), "seed": resp.seed, "scenario": resp.scenario}


@router.post("/generate-synthetic-data", response_model=Envelope[GeneratedOut], response_model_exclude_none=True,
             summary="Generate a synthetic dataset (counts against 10,000 examples/hour)")
async def generate_synthetic_data(body: GenerateIn, request: Request, services: Services) -> dict[str, Any]:
    c = body.constraints or ConstraintsIn()
    req = generation_request(scenario_type=body.scenario_type, count=body.count, difficulty=body.difficulty,
                             edge_cases=body.edge_cases, edge_case_rate=body.edge_case_rate,
                             diversity=body.diversity, max_length=c.max_length, languages=c.languages,
                             topics=c.topics, template=body.template, seed=body.seed, dataset_id=body.dataset_id,
                             label_by=body.label_by)
    return envelope(generated_json(request, await generate(request, services, req)))


# ---- validation -----------------------------------------------------------------------------

class ChecksIn(CamelModel):
    duplicates: StrictBool = False
    quality: StrictBool = False
    balance: StrictBool = False
    bias: StrictBool = False


class ValidationOptionsIn(CamelModel):
    near_duplicate_threshold: Number | None = None
    min_length: Int | None = None
    max_length: Int | None = None
    bias_alpha: Number | None = None
    imbalance_ratio: Number | None = None


class ValidateIn(CamelModel):
    dataset_id: StrictStr | None = Field(None, description="A stored dataset ('latest' allowed)")
    examples: list[ExampleIn] | None = Field(None, description="Or inline examples")
    checks: ChecksIn | None = Field(None, description="Unset: every check")
    options: ValidationOptionsIn | None = None


class FindingOut(CamelModel):
    type: str
    message: str
    severity: str
    suggestion: str | None = None
    count: int
    example_indexes: list[int]
    details: dict[str, str]


class ValidationStatisticsOut(CamelModel):
    total_examples: int
    duplicates: int
    near_duplicates: int
    average_quality: float
    class_balance: dict[str, float]
    conflicting_inputs: int


class ValidatedOut(CamelModel):
    valid: bool
    issues: list[FindingOut]
    warnings: list[FindingOut]
    statistics: ValidationStatisticsOut
    dataset_id: str | None = None


def finding_json(f: data_validation_pb2.ValidationFinding) -> dict[str, Any]:
    return {"type": f.type, "message": f.message,
            "severity": enum_word(data_validation_pb2.Severity.Name(f.severity), "SEVERITY_"),
            "suggestion": f.suggestion or None, "count": f.count, "exampleIndexes": list(f.example_indexes),
            "details": dict(f.details)}


def validated_json(resp: data_service_pb2.ValidateDatasetResponse) -> dict[str, Any]:
    s = resp.statistics
    return finite({"valid": resp.valid, "issues": [finding_json(f) for f in resp.issues],
                   "warnings": [finding_json(f) for f in resp.warnings],
                   "statistics": {"totalExamples": s.total_examples, "duplicates": s.duplicates,
                                  "nearDuplicates": s.near_duplicates, "averageQuality": s.average_quality,
                                  "classBalance": dict(s.class_balance), "conflictingInputs": s.conflicting_inputs},
                   "datasetId": resp.dataset_id or None})


@router.post("/validate-data", response_model=Envelope[ValidatedOut], response_model_exclude_none=True,
             summary="Check a dataset's quality: duplicates, quality, balance, bias")
async def validate_data(body: ValidateIn, services: Services) -> dict[str, Any]:
    if (body.dataset_id is None) == (body.examples is None):
        raise ApiError(INVALID, "give exactly one of 'datasetId' or 'examples'", field="datasetId",
                       issue="exactly one of datasetId or examples is required")
    with encoding_request():
        req = data_service_pb2.ValidateDatasetRequest()
        if body.dataset_id is not None:
            req.dataset_id = body.dataset_id
        else:
            req.examples.examples.extend(examples_to_proto(body.examples))
        if body.checks is not None:
            req.checks.CopyFrom(data_validation_pb2.ValidationChecks(**body.checks.model_dump()))
        if body.options is not None:
            for name, value in body.options.model_dump(exclude_none=True).items():
                setattr(req.options, name, value)
    resp = await services.data.ValidateDataset(req, timeout=services.timeout_s)
    return envelope(validated_json(resp))
