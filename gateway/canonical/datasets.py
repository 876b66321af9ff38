"""/v1/datasets, /v1/modules, /v1/scenarios: datasets (JSON or JSONL upload, list, get, delete,
content download, validation, synthetic generation, building from trajectories) and training modules.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from trainhouse.v1 import data_service_pb2 as ds

from trainhouse.gateway.canonical.common import After, Limit, Page, page, path_id, router
from trainhouse.gateway.canonical.idempotency import idempotent
from trainhouse.gateway.canonical.protojson import message_json, proto_model, response_model, to_proto
from trainhouse.gateway.deps import Services
from trainhouse.gateway.errors import INVALID, ApiError
from trainhouse.gateway.examples import example_to_json
from trainhouse.gateway.resources.datasets import dataset_fields, generate

datasets = router("/datasets", "datasets")
modules = router("/modules", "datasets")
scenarios = router("/scenarios", "datasets")

DatasetId = Annotated[str, path_id("A dataset id")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


class DatasetStatisticsOut(BaseModel):
    example_count: int
    output_counts: dict[str, int]
    output_shares: dict[str, float]
    average_length: float


class DatasetOut(BaseModel):
    """A dataset (trainhouse.gateway.resources.datasets.dataset_fields)."""

    dataset_id: str
    example_count: int
    statistics: DatasetStatisticsOut
    created_at: str | None = None
    source: str | None = None
    sha256: str | None = None
    labels: dict[str, str]


class UploadOut(DatasetOut):
    line_count: int


class GeneratedOut(BaseModel):
    dataset: DatasetOut
    statistics: dict[str, Any]
    seed: int
    scenario: str
    generic_topics: list[str]


class BuiltOut(BaseModel):
    dataset: DatasetOut
    trajectory_count: int
    example_count: int


CreateDatasetIn = proto_model(ds.CreateDatasetRequest.DESCRIPTOR, name="CreateDatasetIn")
GenerateIn = proto_model(ds.GenerateSyntheticDataRequest.DESCRIPTOR, name="GenerateDataIn")
ValidateIn = proto_model(ds.ValidateDatasetRequest.DESCRIPTOR, name="ValidateDatasetIn")
ValidateOut = response_model(ds.ValidateDatasetResponse.DESCRIPTOR)
BuildIn = proto_model(ds.BuildDatasetFromTrajectoriesRequest.DESCRIPTOR, name="BuildDatasetIn")
ModuleIn = proto_model(ds.CreateTrainingModuleRequest.DESCRIPTOR, name="CreateModuleIn")
ModuleOut = response_model(ds.GetTrainingModuleResponse.DESCRIPTOR.fields_by_name["module"].message_type)
ScenariosOut = response_model(ds.ListScenarioTypesResponse.DESCRIPTOR)


class DeletedOut(BaseModel):
    id: str
    deleted: bool


@datasets.post("", operation_id="datasets.create", response_model=DatasetOut, status_code=201,
               summary="Create a dataset from JSON examples (CreateDatasetRequest)")
async def create_dataset(body: CreateDatasetIn, request: Request, services: Services,  # type: ignore[valid-type]
                         idempotency_key: IdempotencyKey = None) -> Any:
    async def create() -> dict[str, Any]:
        resp = await services.data.CreateDataset(to_proto(body, ds.CreateDatasetRequest), timeout=services.timeout_s)
        return dataset_fields(resp.dataset)
    return await idempotent(request, idempotency_key, body.model_dump(exclude_none=True), create)


@datasets.post("/upload", operation_id="datasets.upload", response_model=UploadOut, status_code=201,
               summary="Upload a JSONL file (one example per line) as a dataset",
               openapi_extra={"requestBody": {"required": True, "content": {
                   "application/octet-stream": {"schema": {"type": "string", "format": "binary",
                                                           "description": "JSONL: one example object per line"}},
                   "application/jsonl": {"schema": {"type": "string", "format": "binary"}}}}})
async def upload_dataset(request: Request, services: Services,
                         dataset_id: Annotated[str, Query(max_length=128)] = "",
                         source: Annotated[str, Query(max_length=200)] = "",
                         idempotency_key: IdempotencyKey = None) -> Any:
    content = await request.body()
    if not content.strip():
        raise ApiError(INVALID, "the body must hold JSONL examples (one JSON object per line)", field="body")
    fingerprint = {"dataset_id": dataset_id, "source": source, "sha256": hashlib.sha256(content).hexdigest()}

    async def create() -> dict[str, Any]:
        resp = await services.data.CreateDatasetFromJsonl(
            ds.CreateDatasetFromJsonlRequest(dataset_id=dataset_id, content=content, source=source or "upload"),
            timeout=services.timeout_s)
        return {**dataset_fields(resp.dataset), "line_count": resp.line_count}
    return await idempotent(request, idempotency_key, fingerprint, create)


@datasets.get("", operation_id="datasets.list", response_model=Page[DatasetOut], summary="List datasets")
async def list_datasets(services: Services, after: After = "", limit: Limit = 50,
                        source: Annotated[str, Query(max_length=200)] = "") -> dict[str, Any]:
    resp = await services.data.ListDatasets(ds.ListDatasetsRequest(page_size=limit, page_token=after, source=source),
                                            timeout=services.timeout_s)
    return page([dataset_fields(d) for d in resp.datasets], resp.next_page_token)


@datasets.post("/validate", operation_id="datasets.validate", response_model=ValidateOut,
               summary="Validate a dataset or inline examples (duplicates, quality, balance, label issues)")
async def validate(body: ValidateIn, services: Services) -> dict[str, Any]:  # type: ignore[valid-type]
    return message_json(await services.data.ValidateDataset(to_proto(body, ds.ValidateDatasetRequest),
                                                            timeout=services.timeout_s))


@datasets.post("/generate", operation_id="datasets.generate", response_model=GeneratedOut, status_code=201,
               summary="Generate a synthetic dataset (counts against the generation budget)")
async def generate_dataset(body: GenerateIn, request: Request, services: Services,  # type: ignore[valid-type]
                           idempotency_key: IdempotencyKey = None) -> Any:
    data = body.model_dump(exclude_none=True)

    async def create() -> dict[str, Any]:
        resp = await generate(request, services, to_proto(data, ds.GenerateSyntheticDataRequest))
        out = message_json(resp)
        out["dataset"] = dataset_fields(resp.dataset)
        return out
    return await idempotent(request, idempotency_key, data, create)


@datasets.post("/from_trajectories", operation_id="datasets.from_trajectories", response_model=BuiltOut,
               status_code=201, summary="Build a dataset from stored trajectories")
async def build_from_trajectories(body: BuildIn, request: Request, services: Services,  # type: ignore[valid-type]
                                  idempotency_key: IdempotencyKey = None) -> Any:
    async def create() -> dict[str, Any]:
        resp = await services.data.BuildDatasetFromTrajectories(
            to_proto(body, ds.BuildDatasetFromTrajectoriesRequest), timeout=services.timeout_s)
        return {"dataset": dataset_fields(resp.dataset), "trajectory_count": resp.trajectory_count,
                "example_count": resp.example_count}
    return await idempotent(request, idempotency_key, body.model_dump(exclude_none=True), create)


@datasets.get("/{dataset_id}", operation_id="datasets.get", response_model=DatasetOut, summary="Get a dataset")
async def get_dataset(dataset_id: DatasetId, services: Services) -> dict[str, Any]:
    resp = await services.data.GetDataset(ds.GetDatasetRequest(dataset_id=dataset_id), timeout=services.timeout_s)
    return dataset_fields(resp.dataset)


@datasets.delete("/{dataset_id}", operation_id="datasets.delete", response_model=DeletedOut,
                 summary="Delete a dataset")
async def delete_dataset(dataset_id: DatasetId, services: Services) -> dict[str, Any]:
    await services.data.DeleteDataset(ds.DeleteDatasetRequest(dataset_id=dataset_id), timeout=services.timeout_s)
    return {"id": dataset_id, "deleted": True}


@datasets.get("/{dataset_id}/content", operation_id="datasets.content", response_class=StreamingResponse,
              response_model=None, summary="The dataset's examples as JSONL",
              responses={200: {"content": {"application/jsonl": {}}}})
async def dataset_content(dataset_id: DatasetId, services: Services) -> StreamingResponse:
    await services.data.GetDataset(ds.GetDatasetRequest(dataset_id=dataset_id), timeout=services.timeout_s)
    call = services.data.StreamExamples(ds.StreamExamplesRequest(dataset_id=dataset_id))
    return StreamingResponse(_jsonl(call), media_type="application/jsonl",
                             headers={"Content-Disposition": f'attachment; filename="{dataset_id}.jsonl"'})


async def _jsonl(call: Any) -> AsyncIterator[bytes]:
    try:
        async for batch in call:
            yield "".join(json.dumps(example_to_json(e)) + "\n" for e in batch.examples).encode()
    finally:
        call.cancel()


# ---- training modules and scenarios ------------------------------------------------------------

@modules.post("", operation_id="modules.create", response_model=ModuleOut, status_code=201,
              summary="Create a training module (a scenario template)")
async def create_module(body: ModuleIn, request: Request, services: Services,  # type: ignore[valid-type]
                        idempotency_key: IdempotencyKey = None) -> Any:
    data = body.model_dump(exclude_none=True)

    async def create() -> dict[str, Any]:
        resp = await services.data.CreateTrainingModule(to_proto(data, ds.CreateTrainingModuleRequest),
                                                        timeout=services.timeout_s)
        return message_json(resp.module)
    return await idempotent(request, idempotency_key, data, create)


@modules.get("", operation_id="modules.list", response_model=Page[ModuleOut], summary="List training modules")  # type: ignore[valid-type]
async def list_modules(services: Services, after: After = "", limit: Limit = 50) -> dict[str, Any]:
    resp = await services.data.ListTrainingModules(ds.ListTrainingModulesRequest(page_size=limit, page_token=after),
                                                   timeout=services.timeout_s)
    return page([message_json(m) for m in resp.modules], resp.next_page_token)


@modules.get("/{module_id}", operation_id="modules.get", response_model=ModuleOut, summary="Get a training module")
async def get_module(module_id: Annotated[str, path_id()], services: Services) -> dict[str, Any]:
    resp = await services.data.GetTrainingModule(ds.GetTrainingModuleRequest(module_id=module_id),
                                                 timeout=services.timeout_s)
    return message_json(resp.module)


@modules.delete("/{module_id}", operation_id="modules.delete", response_model=DeletedOut,
                summary="Delete a training module")
async def delete_module(module_id: Annotated[str, path_id()], services: Services) -> dict[str, Any]:
    await services.data.DeleteTrainingModule(ds.DeleteTrainingModuleRequest(module_id=module_id),
                                             timeout=services.timeout_s)
    return {"id": module_id, "deleted": True}


@scenarios.get("", operation_id="scenarios.list", response_model=ScenariosOut,
               summary="The scenario types synthetic generation knows")
async def list_scenarios(services: Services) -> dict[str, Any]:
    return message_json(await services.data.ListScenarioTypes(ds.ListScenarioTypesRequest(),
                                                              timeout=services.timeout_s))
