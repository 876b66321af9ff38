"""generateSyntheticTrainingData (DataService), through the one generation call of
gateway/resources/datasets.py and its generation budget."""
from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import Field, StrictStr
from trainhouse.v1 import data_service_pb2

from trainhouse.gateway.deps import Services
from trainhouse.gateway.errors import INVALID, ApiError, rpc_fields
from trainhouse.gateway.examples import example_to_json
from trainhouse.gateway.models import Int
from trainhouse.gateway.resources.datasets import (GenCount, GenDifficulty, GenDiversity, GenEdgeCaseRate, GenEdgeCases, GenLabelBy,
                                        GenLanguages, GenMaxLength, GenSeed, GenTopics, generate, generated_json,
                                        generation_request)
from trainhouse.gateway.surfaces.functions.surface import FUNCTIONS_SURFACE, Reply, SnakeModel, new_router, reply

router = new_router()


class GenerationParametersIn(SnakeModel):
    """Seed 002's `parameters`."""

    difficulty: GenDifficulty = None
    topics: GenTopics = None
    edge_cases: GenEdgeCases = None
    edge_case_rate: GenEdgeCaseRate = None
    diversity: GenDiversity = None
    max_length: GenMaxLength = None
    languages: GenLanguages = None
    seed: GenSeed = None
    label_by: GenLabelBy = None


class GenerateSyntheticIn(SnakeModel):
    """Seed 001 ({module_id, sample_count 1..50, difficulty}), seed 002 ({data_type, count, parameters})
    or seed 000's SDK ({scenarioType, count, ...}, answered in camelCase)."""

    module_id: StrictStr | None = None
    sample_count: Int | None = Field(None, description="Seed 001: examples of the module, 1..50")
    difficulty: GenDifficulty = None
    data_type: StrictStr | None = None
    count: GenCount = None
    parameters: GenerationParametersIn | None = None
    scenarioType: StrictStr | None = None  # noqa: N815 - seed 000's spelling
    edgeCases: GenEdgeCases = None  # noqa: N815
    diversity: GenDiversity = None
    template: dict[str, Any] | None = None
    seed: GenSeed = None


INLINE_EXAMPLES = 100  # generated sets up to this size come back inline too


@router.post("/generateSyntheticTrainingData", response_model=Reply[dict[str, Any]],
             response_model_exclude_none=True,
             summary="Generate synthetic examples (seed 001 module form, seed 002 data_type form, seed 000 SDK)")
async def generate_synthetic_training_data(body: GenerateSyntheticIn, request: Request,
                                           services: Services) -> dict[str, Any]:
    forms = [name for name in ("module_id", "data_type", "scenarioType") if getattr(body, name) is not None]
    if len(forms) != 1:
        raise ApiError(INVALID, "give exactly one of 'module_id' (seed 001), 'data_type' (seed 002) or "
                       "'scenarioType'", field="module_id", issue="exactly one generator is required")
    p = body.parameters or GenerationParametersIn()
    if body.module_id is not None:
        req = generation_request(module_id=body.module_id, count=body.sample_count, max_count=50,
                                 difficulty=body.difficulty)
    elif body.data_type is not None:
        if body.count is None:
            raise ApiError(INVALID, "count is required", field="count", issue="is required")
        req = generation_request(data_type=body.data_type, count=body.count, difficulty=p.difficulty,
                                 edge_cases=p.edge_cases, edge_case_rate=p.edge_case_rate, diversity=p.diversity,
                                 max_length=p.max_length, languages=p.languages, topics=p.topics, seed=p.seed,
                                 label_by=p.label_by)
    else:
        req = generation_request(scenario_type=body.scenarioType, count=body.count, difficulty=body.difficulty,
                                 edge_cases=body.edgeCases, diversity=body.diversity, template=body.template,
                                 seed=body.seed)
    # Seed 001 calls the count `sample_count` (DataService: `count`, with its limit in metadata).
    with rpc_fields(FUNCTIONS_SURFACE, {"count": "sample_count"} if body.module_id is not None else {}):
        resp = await generate(request, services, req)
    data = generated_json(request, resp)
    if body.scenarioType is not None:
        return reply(request, data)
    # Requested topics (seed 002 `parameters.topics`) outside the scenario's catalogue were generated
    # from generic templates: the answer says which, so they are not mistaken for catalogue data.
    out: dict[str, Any] = {
        "dataset_id": data["datasetId"], "generated": data["generated"], "status": data["status"],
        "download_url": data["downloadUrl"], "expires_at": data["expiresAt"], "seed": data["seed"],
        "scenario": data["scenario"], "generic_topics": list(resp.generic_topics),
        "statistics": {"generated": resp.statistics.generated, "average_length": resp.statistics.average_length,
                       "unique_scenarios": resp.statistics.unique_scenarios,
                       "edge_cases": resp.statistics.edge_cases, "diversity": resp.statistics.diversity,
                       "distinct_1": resp.statistics.distinct_1, "distinct_2": resp.statistics.distinct_2,
                       "level_counts": data["statistics"]["levelCounts"],
                       "topic_counts": data["statistics"]["topicCounts"]},
    }
    if resp.statistics.generated <= INLINE_EXAMPLES:
        stream = services.data.StreamExamples(
            data_service_pb2.StreamExamplesRequest(dataset_id=resp.dataset.dataset_id),
            timeout=services.timeout_s)
        out["examples"] = [example_to_json(ex) async for batch in stream for ex in batch.examples]
    return reply(request, out)
