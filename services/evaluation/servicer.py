"""EvaluationService RPCs: run a version over a test set through the registry's serving path."""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

import grpc

from services.common.clients import channel
from services.common.errors import InvalidArgument, NotFound, Unavailable
from services.common.example_codec import example_dicts
from services.common.grpc_errors import failure_of
from services.common.pagination import decode_page_token, next_token, page_size
from services.common.timeutil import to_timestamp
from services.evaluation.metrics import classification_metrics, percentile_ms
from services.evaluation.store import EvaluationStore, created
from trainhouse.v1 import (data_service_pb2, data_service_pb2_grpc, evaluation_pb2, evaluation_service_pb2,
                           evaluation_service_pb2_grpc, model_registry_pb2, model_registry_pb2_grpc)

BATCH = 500
LATENCY_SAMPLES = 50
TIMEOUT_S = 60.0


def evaluation_proto(row: dict[str, Any]) -> evaluation_pb2.Evaluation:
    return evaluation_pb2.Evaluation(
        evaluation_id=row["evaluation_id"], agent_id=row["agent_id"], version_id=row["version_id"],
        dataset_id=row["dataset_id"] or "", example_count=row["example_count"] or 0,
        metrics=json.loads(row["metrics_json"] or "{}"), create_time=to_timestamp(created(row)))


def _peer_error(err: grpc.RpcError, resource: str, resource_id: str) -> Exception:
    failure = failure_of(err)
    if failure.code == grpc.StatusCode.NOT_FOUND:
        meta = failure.metadata
        return NotFound(meta.get("resource", resource), meta.get("id", resource_id))
    if failure.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
        return InvalidArgument(failure.field or resource, failure.message)
    return Unavailable(f"peer call failed: {failure.message}")


class EvaluationServicer(evaluation_service_pb2_grpc.EvaluationServiceServicer):
    def __init__(self, store: EvaluationStore):
        self.store = store

    def _examples(self, request) -> tuple[list[dict[str, Any]], str]:
        if request.examples:
            return example_dicts(request.examples), ""
        if not request.dataset_id:
            raise InvalidArgument("examples", "give inline examples or a dataset_id")
        stub = data_service_pb2_grpc.DataServiceStub(channel("data"))
        out: list[dict[str, Any]] = []
        try:
            for batch in stub.StreamExamples(data_service_pb2.StreamExamplesRequest(dataset_id=request.dataset_id),
                                             timeout=300):
                out.extend(example_dicts(batch.examples))
        except grpc.RpcError as err:
            raise _peer_error(err, "dataset", request.dataset_id) from None
        return out, request.dataset_id

    def EvaluateVersion(self, request, context):
        if not request.agent_id:
            raise InvalidArgument("agent_id", "is required")
        examples, dataset_id = self._examples(request)
        for i, ex in enumerate(examples):
            if not ex["input"]:
                raise InvalidArgument(f"examples[{i}].input", "must not be empty")
            if not ex["expected_output"]:
                raise InvalidArgument(f"examples[{i}].expected_output", "must not be empty")
        registry = model_registry_pb2_grpc.ModelRegistryStub(channel("registry"))
        predicted: list[str] = []
        version_id = request.version_id
        try:
            for start in range(0, len(examples), BATCH):
                chunk = [e["input"] for e in examples[start:start + BATCH]]
                resp = registry.Predict(model_registry_pb2.PredictRequest(
                    agent_id=request.agent_id, inputs=chunk, version_id=version_id, top_k=1), timeout=TIMEOUT_S)
                version_id = resp.version_id  # pin the version for every batch
                predicted.extend(p.output for p in resp.predictions)
            latencies = []
            for ex in examples[:LATENCY_SAMPLES]:
                t0 = time.perf_counter()
                registry.Predict(model_registry_pb2.PredictRequest(
                    agent_id=request.agent_id, inputs=[ex["input"]], version_id=version_id, top_k=1),
                    timeout=TIMEOUT_S)
                latencies.append(time.perf_counter() - t0)
        except grpc.RpcError as err:
            raise _peer_error(err, "agent", request.agent_id) from None
        metrics = classification_metrics([e["expected_output"] for e in examples], predicted)
        metrics["latency_p50_ms"] = percentile_ms(latencies, 50)
        metrics["latency_p95_ms"] = percentile_ms(latencies, 95)
        row = self.store.add({"evaluation_id": f"eval-{uuid.uuid4().hex[:12]}", "agent_id": request.agent_id,
                              "version_id": version_id, "dataset_id": dataset_id, "example_count": len(examples),
                              "metrics": metrics})
        return evaluation_service_pb2.EvaluateVersionResponse(evaluation=evaluation_proto(row))

    def GetEvaluation(self, request, context):
        if not request.evaluation_id:
            raise InvalidArgument("evaluation_id", "is required")
        return evaluation_service_pb2.GetEvaluationResponse(evaluation=evaluation_proto(
            self.store.get(request.evaluation_id)))

    def ListEvaluations(self, request, context):
        offset = decode_page_token(request.page_token)
        rows, total = self.store.list(request.agent_id, offset, page_size(request.page_size, 50, 1000))
        return evaluation_service_pb2.ListEvaluationsResponse(
            evaluations=[evaluation_proto(r) for r in rows], next_page_token=next_token(offset, len(rows), total),
            total_size=total)
