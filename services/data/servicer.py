"""DataService RPCs: validate, call the store, build the response."""
from __future__ import annotations

import json
import uuid
from typing import Any

from services.common.errors import InvalidArgument
from services.common.examples import parse_examples
from services.common.pagination import decode_page_token, next_token, page_size
from services.common.timeutil import to_timestamp
from services.common.validation import resource_id
from services.data import statistics
from services.data.store import DataStore, created
from services.common.example_codec import example_dicts, example_proto
from trainhouse.v1 import data_service_pb2, data_service_pb2_grpc, dataset_pb2

MAX_EXAMPLES = 1_000_000


def dataset_proto(row: dict[str, Any]) -> dataset_pb2.Dataset:
    stats = json.loads(row["stats_json"] or "{}")
    return dataset_pb2.Dataset(
        dataset_id=row["dataset_id"], source=row["source"] or "", sha256=row["sha256"] or "",
        create_time=to_timestamp(created(row)),
        statistics=dataset_pb2.DatasetStatistics(
            example_count=stats.get("example_count", 0), output_counts=stats.get("output_counts", {}),
            output_shares=stats.get("output_shares", {}), average_length=stats.get("average_length", 0.0)))


class DataServicer(data_service_pb2_grpc.DataServiceServicer):
    def __init__(self, store: DataStore):
        self.store = store

    def CreateDataset(self, request, context):
        dataset_id = resource_id(request.dataset_id, "dataset_id") if request.dataset_id else f"dataset-{uuid.uuid4().hex[:12]}"
        if dataset_id == "latest":
            raise InvalidArgument("dataset_id", "'latest' is reserved")
        if not request.examples:
            raise InvalidArgument("examples", "a dataset needs at least one example")
        if len(request.examples) > MAX_EXAMPLES:
            raise InvalidArgument("examples", f"at most {MAX_EXAMPLES} examples")
        examples = example_dicts(request.examples)
        parsed = parse_examples(examples, "examples")
        normalised = [{"input": e.input, "expected_output": e.expected_output, "feedback": e.feedback,
                       "weight": e.weight, "level": e.level, "metadata": e.metadata} for e in parsed]
        row = self.store.create(dataset_id, request.source or "upload", normalised,
                                statistics.compute(normalised), statistics.content_hash(normalised))
        return data_service_pb2.CreateDatasetResponse(dataset=dataset_proto(row))

    def GetDataset(self, request, context):
        if not request.dataset_id:
            raise InvalidArgument("dataset_id", "is required")
        return data_service_pb2.GetDatasetResponse(dataset=dataset_proto(self.store.get(request.dataset_id)))

    def ListDatasets(self, request, context):
        offset = decode_page_token(request.page_token)
        rows, total = self.store.list(offset, page_size(request.page_size, 50, 1000))
        return data_service_pb2.ListDatasetsResponse(
            datasets=[dataset_proto(r) for r in rows], next_page_token=next_token(offset, len(rows), total),
            total_size=total)

    def DeleteDataset(self, request, context):
        if not request.dataset_id:
            raise InvalidArgument("dataset_id", "is required")
        self.store.delete(request.dataset_id)
        return data_service_pb2.DeleteDatasetResponse()

    def StreamExamples(self, request, context):
        if not request.dataset_id:
            raise InvalidArgument("dataset_id", "is required")
        if request.batch_size < 0:
            raise InvalidArgument("batch_size", "must be >= 0")
        dataset_id = self.store.get(request.dataset_id)["dataset_id"]
        batch = min(request.batch_size or 500, 5000)
        offset = 0
        while context.is_active():
            rows = self.store.examples(dataset_id, offset, batch)
            if not rows:
                return
            yield data_service_pb2.StreamExamplesResponse(examples=[
                example_proto({**r, "metadata": json.loads(r["metadata_json"] or "{}")}) for r in rows])
            offset += len(rows)
