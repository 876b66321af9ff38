"""Datasets (contract extension): upload as JSON or JSONL, list, get, download as JSONL.

The upload reads the raw body itself because one path accepts two media types; the JSON form is
still validated by the same pydantic model, and both are documented in /openapi.json.
"""
from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import Field, StrictStr, ValidationError
from trainhouse.v1 import data_service_pb2

from trainhouse.gateway import json_limits
from trainhouse.gateway.deps import Services
from trainhouse.gateway.errors import INVALID, ApiError, encoding_request
from trainhouse.gateway.examples import ExampleIn, example_to_json, examples_to_proto
from trainhouse.gateway.fields import field_path
from trainhouse.gateway.models import CamelModel, Envelope, envelope, Id, id_path, Pagination
from trainhouse.gateway.resources.datasets import dataset_json, with_download
from trainhouse.gateway.routing import GatewayRoute
from trainhouse.gateway.surfaces.common import ERROR_RESPONSES, pagination, skip_for

router = APIRouter(prefix="/api/v1/training/datasets", tags=["datasets"], route_class=GatewayRoute,
                   responses=ERROR_RESPONSES)

JSONL_TYPES = {"application/x-ndjson", "application/jsonl", "application/x-jsonlines", "application/json-lines"}


class CreateDatasetIn(CamelModel):
    dataset_id: Id | None = Field(None, description="Optional id; generated when absent")
    examples: list[ExampleIn]
    source: StrictStr | None = None


class StatisticsOut(CamelModel):
    example_count: int
    output_counts: dict[str, int]
    output_shares: dict[str, float]
    average_length: float


class DatasetOut(CamelModel):
    dataset_id: str
    example_count: int
    statistics: StatisticsOut
    created_at: str | None = None
    source: str | None = None
    sha256: str | None = None
    download_url: str | None = Field(None, description="Signed JSONL download link; needs no token until expiresAt")
    expires_at: str | None = None


class DatasetsData(CamelModel):
    datasets: list[DatasetOut]
    pagination: Pagination


def _first_error(err: ValidationError, prefix: list[Any]) -> tuple[str, str]:
    first = err.errors()[0]
    return field_path(prefix + list(first.get("loc", ()))) or "body", str(first.get("msg", "invalid value"))


def parse_jsonl(body: bytes, max_depth: int) -> list[ExampleIn]:
    """One example object per non-blank line; errors name the line ("line 3") as the field."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(INVALID, "JSONL body is not UTF-8", field="body", issue=str(exc)) from None
    examples: list[ExampleIn] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json_limits.loads(line, max_depth)
            problem = json_limits.number_problem(value)
            if problem is not None:
                raise ApiError(INVALID, f"line {number}: {problem[0]}: {problem[1]}", field=f"line {number}",
                               issue=f"{problem[0]}: {problem[1]}")
            examples.append(ExampleIn.model_validate(value))
        except json.JSONDecodeError as exc:
            raise ApiError(INVALID, f"line {number} is not valid JSON", field=f"line {number}",
                           issue=f"{exc.msg} at column {exc.colno}") from None
        except json_limits.TooDeep as exc:
            raise ApiError(INVALID, f"line {number} is {exc}", field=f"line {number}", issue=str(exc)) from None
        except ValidationError as exc:
            where, issue = _first_error(exc, [])
            raise ApiError(INVALID, f"line {number}: {where}: {issue}", field=f"line {number}",
                           issue=f"{where}: {issue}") from None
        except ValueError as exc:  # NaN / Infinity literals
            raise ApiError(INVALID, f"line {number} is not valid JSON", field=f"line {number}",
                           issue=str(exc)) from None
    return examples


def parse_json(body: bytes, max_depth: int) -> CreateDatasetIn:
    obj = json_limits.parse_body(body, max_depth)
    try:
        return CreateDatasetIn.model_validate(obj)
    except ValidationError as exc:
        field, issue = _first_error(exc, ["body"])
        raise ApiError(INVALID, f"Invalid request: {field}: {issue}", field=field, issue=issue) from None


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "application/json").split(";")[0].strip().lower()


_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/CreateDatasetIn"}},
            "application/x-ndjson": {"schema": {"type": "string",
                                                "description": "One example object per line"}},
        },
    },
    "parameters": [{"name": "datasetId", "in": "query", "required": False, "schema": {"type": "string"},
                    "description": "Dataset id for a JSONL upload"}],
}


@router.post("", response_model=Envelope[DatasetOut], response_model_exclude_none=True, status_code=201,
             summary="Create a dataset from JSON {examples} or a JSONL body", openapi_extra=_UPLOAD_DOC)
async def create_dataset(request: Request, services: Services) -> dict[str, Any]:
    body = await request.body()
    media = _media_type(request)
    max_depth = json_limits.max_depth_of(request)
    if media in JSONL_TYPES:
        examples = parse_jsonl(body, max_depth)
        dataset_id = request.query_params.get("datasetId") or ""
        source = request.query_params.get("source") or "upload"
    else:
        parsed = parse_json(body, max_depth)
        examples = parsed.examples
        dataset_id = parsed.dataset_id or request.query_params.get("datasetId") or ""
        source = parsed.source or "upload"
    with encoding_request():
        grpc_request = data_service_pb2.CreateDatasetRequest(
            dataset_id=dataset_id, examples=examples_to_proto(examples), source=source)
    resp = await services.data.CreateDataset(grpc_request, timeout=services.timeout_s)
    return envelope(with_download(request, dataset_json(resp.dataset)))


@router.get("", response_model=Envelope[DatasetsData], response_model_exclude_none=True, summary="List datasets")
async def list_datasets(services: Services,
                        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
                        limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
    resp = await services.data.ListDatasets(
        data_service_pb2.ListDatasetsRequest(page_size=limit, skip=skip_for(page, limit), include_total_size=True),
        timeout=services.timeout_s)
    return envelope({"datasets": [dataset_json(d) for d in resp.datasets],
                     "pagination": pagination(resp.total_size, page, limit, resp.next_page_token)})


DatasetId = Annotated[str, id_path("datasetId")]


@router.get("/{datasetId}", response_model=Envelope[DatasetOut], response_model_exclude_none=True,
            summary="Get a dataset's statistics")
async def get_dataset(dataset_id: DatasetId, request: Request, services: Services) -> dict[str, Any]:
    resp = await services.data.GetDataset(data_service_pb2.GetDatasetRequest(dataset_id=dataset_id),
                                          timeout=services.timeout_s)
    return envelope(with_download(request, dataset_json(resp.dataset)))


@router.get("/{datasetId}/download", response_class=StreamingResponse, response_model=None,
            summary="Download a dataset as JSONL",
            responses={200: {"description": "One example per line",
                             "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}})
async def download_dataset(dataset_id: DatasetId, services: Services) -> StreamingResponse:
    # Resolve the id first so an unknown dataset is a 404, not a 200 with a broken stream.
    resolved = (await services.data.GetDataset(data_service_pb2.GetDatasetRequest(dataset_id=dataset_id),
                                               timeout=services.timeout_s)).dataset.dataset_id
    call = services.data.StreamExamples(data_service_pb2.StreamExamplesRequest(dataset_id=resolved))
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", resolved) or "dataset"
    return StreamingResponse(_jsonl(call), media_type="application/x-ndjson",
                             headers={"Content-Disposition": f'attachment; filename="{filename}.jsonl"'})


async def _jsonl(call: Any) -> AsyncIterator[bytes]:
    try:
        async for batch in call:
            if batch.examples:
                yield "".join(json.dumps(example_to_json(ex), ensure_ascii=False) + "\n"
                              for ex in batch.examples).encode()
    finally:
        call.cancel()
