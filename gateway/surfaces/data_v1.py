"""Seed 000 data generation: POST /api/v1/training/generate-synthetic-data and /validate-data.

Generated examples count against the caller's hourly generation budget (seed 000: 10,000
examples/hour): gateway/resources/datasets.py spends and refunds it for every surface.
"""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import Field, StrictBool, StrictStr
from trainhouse.v1 import data_service_pb2, data_validation_pb2

from trainhouse.gateway.convert import enum_word, finite
from trainhouse.gateway.deps import Services
from trainhouse.gateway.errors import INVALID, ApiError, encoding_request
from trainhouse.gateway.examples import ExampleIn, examples_to_proto
from trainhouse.gateway.models import CamelModel, Envelope, Id, Int, Number, envelope
from trainhouse.gateway.resources.datasets import (GenCount, GenDifficulty, GenDiversity, GenEdgeCaseRate, GenEdgeCases,
                                        GenLabelBy, GenLanguages, GenMaxLength, GenSeed, GenTopics, generate,
                                        generated_json, generation_request)
from trainhouse.gateway.routing import GatewayRoute
from trainhouse.gateway.surfaces.common import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1/training", tags=["data"], route_class=GatewayRoute, responses=ERROR_RESPONSES)

# ---- generation -----------------------------------------------------------------------------

class ConstraintsIn(CamelModel):
    max_length: GenMaxLength = None
    languages: GenLanguages = None
    topics: GenTopics = None


class GenerateIn(CamelModel):
    scenario_type: StrictStr = Field(description="customer-support, code-generation, data-analysis, "
                                                 "content-creation, task-automation or custom (with template)")
    count: GenCount = None
    difficulty: GenDifficulty = None
    edge_cases: GenEdgeCases = None
    edge_case_rate: GenEdgeCaseRate = None
    diversity: GenDiversity = None
    format: Literal["jsonl"] | None = Field(None, description="Download format; JSONL")
    constraints: ConstraintsIn | None = None
    template: dict[str, Any] | None = Field(None, description="ScenarioTemplate for scenarioType 'custom'")
    seed: GenSeed = None
    dataset_id: Id | None = None
    label_by: GenLabelBy = None


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
    download_url: str | None = Field(None, description="Signed JSONL link (data:export callers only)")
    expires_at: str | None = None
    statistics: GenerationStatisticsOut
    seed: int
    scenario: str
    generic_topics: list[str] = Field([], description="Requested topics outside the scenario's catalogue: each "
                                                      "got an output of its own from generic templates")


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
    label_issues: StrictBool | None = Field(None, description="Likely wrong labels (confident learning); "
                                                              "unset: the same as quality")


class ValidationOptionsIn(CamelModel):
    near_duplicate_threshold: Number | None = None
    min_length: Int | None = None
    max_length: Int | None = None
    bias_alpha: Number | None = None
    imbalance_ratio: Number | None = None
    max_label_noise: Number | None = Field(None, description="Estimated share of wrong labels that makes the "
                                                             "dataset invalid, (0, 1]; default 0.1")


class ValidateIn(CamelModel):
    dataset_id: Id | None = Field(None, description="A stored dataset ('latest' allowed)")
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
    label_issues: int
    label_issues_checked: int
    label_noise_rate: float


class LabelIssueOut(CamelModel):
    example_index: int
    input: str
    given_label: str
    likely_label: str
    likely_label_confidence: float
    given_label_confidence: float


class ValidatedOut(CamelModel):
    valid: bool
    issues: list[FindingOut]
    warnings: list[FindingOut]
    statistics: ValidationStatisticsOut
    dataset_id: str | None = None
    label_issues: list[LabelIssueOut]


def finding_json(f: data_validation_pb2.ValidationFinding) -> dict[str, Any]:
    return {"type": f.type, "message": f.message,
            "severity": enum_word(data_validation_pb2.Severity.Name(f.severity), "SEVERITY_"),
            "suggestion": f.suggestion or None, "count": f.count, "exampleIndexes": list(f.example_indexes),
            "details": dict(f.details)}


def label_issue_json(x: data_validation_pb2.LabelIssue) -> dict[str, Any]:
    return {"exampleIndex": x.example_index, "input": x.input, "givenLabel": x.given_label,
            "likelyLabel": x.likely_label, "likelyLabelConfidence": x.likely_label_confidence,
            "givenLabelConfidence": x.given_label_confidence}


def validated_json(resp: data_service_pb2.ValidateDatasetResponse) -> dict[str, Any]:
    s = resp.statistics
    return finite({"valid": resp.valid, "issues": [finding_json(f) for f in resp.issues],
                   "warnings": [finding_json(f) for f in resp.warnings],
                   "statistics": {"totalExamples": s.total_examples, "duplicates": s.duplicates,
                                  "nearDuplicates": s.near_duplicates, "averageQuality": s.average_quality,
                                  "classBalance": dict(s.class_balance), "conflictingInputs": s.conflicting_inputs,
                                  "labelIssues": s.label_issues, "labelIssuesChecked": s.label_issues_checked,
                                  "labelNoiseRate": s.label_noise_rate},
                   "datasetId": resp.dataset_id or None,
                   "labelIssues": [label_issue_json(x) for x in resp.label_issues]})


@router.post("/validate-data", response_model=Envelope[ValidatedOut], response_model_exclude_none=True,
             summary="Check a dataset's quality: duplicates, quality, likely wrong labels, balance, bias")
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
            req.checks.CopyFrom(data_validation_pb2.ValidationChecks(**body.checks.model_dump(exclude_none=True)))
        if body.options is not None:
            for name, value in body.options.model_dump(exclude_none=True).items():
                setattr(req.options, name, value)
    resp = await services.data.ValidateDataset(req, timeout=services.timeout_s)
    return envelope(validated_json(resp))
