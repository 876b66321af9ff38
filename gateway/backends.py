"""gRPC stubs of the four services, on grpc.aio channels owned by the running app.

Why grpc.aio rather than trainhouse.common.clients (blocking channels): the gateway serves many
concurrent long-lived SSE streams; with blocking stubs each would pin a worker thread for the
life of a training job, while aio calls cost nothing while idle and can be cancelled when the
HTTP client goes away. Channels are created inside the event loop (at app start-up) because aio
channels belong to the loop that made them. Addresses and channel options come from the shared
modules, so the gateway dials exactly what the other processes do. Every channel carries the
interceptors of trainhouse.gateway.rpc_interceptors (request id metadata, call timings for /metrics).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from trainhouse.v1 import (
    data_service_pb2_grpc,
    evaluation_service_pb2_grpc,
    model_registry_pb2,
    model_registry_pb2_grpc,
    training_service_pb2_grpc,
)

from trainhouse.gateway.metrics import GatewayMetrics
from trainhouse.gateway.rpc_interceptors import RecordsFirst, interceptors
from trainhouse.gateway.serving_replica import ServingReplica
from trainhouse.common import config, tls, tracing
from trainhouse.common.server import GRPC_OPTIONS

SERVICE_NAMES = ("training", "data", "evaluation", "registry")


@dataclass
class Backends:
    """The services' stubs, built once per channel: a generated stub makes one callable per RPC
    when constructed (20-30 us for TrainingService and ModelRegistry), which a stub built per
    request spent on every call the gateway forwarded."""

    channels: dict[str, grpc.aio.Channel]
    timeout_s: float
    # Routed Predict answered in this process (serving_replica.py); disabled: every Predict is the registry's.
    serving: ServingReplica
    registry: model_registry_pb2_grpc.ModelRegistryStub
    training: training_service_pb2_grpc.TrainingServiceStub = field(init=False)
    data: data_service_pb2_grpc.DataServiceStub = field(init=False)
    evaluation: evaluation_service_pb2_grpc.EvaluationServiceStub = field(init=False)

    def __post_init__(self) -> None:
        self.training = training_service_pb2_grpc.TrainingServiceStub(self.channels["training"])
        self.data = data_service_pb2_grpc.DataServiceStub(self.channels["data"])
        self.evaluation = evaluation_service_pb2_grpc.EvaluationServiceStub(self.channels["evaluation"])

    @classmethod
    def connect(cls, timeout_s: float, metrics: GatewayMetrics | None = None,
                serving_replica: bool = True) -> "Backends":
        records_first = RecordsFirst()
        channels = {name: tls.aio_channel(config.service_address(name), options=GRPC_OPTIONS,
                                          interceptors=[*tracing.aio_client_interceptors(), *interceptors(metrics),
                                                        *([records_first] if name == "registry" else [])])
                    for name in SERVICE_NAMES}
        registry = model_registry_pb2_grpc.ModelRegistryStub(channels["registry"])
        records_first.replica = ServingReplica(registry, timeout_s, serving_replica, metrics)
        return cls(channels, timeout_s, records_first.replica, registry)

    async def predict(self, request: model_registry_pb2.PredictRequest) -> model_registry_pb2.PredictResponse:
        """Predict: answered by the serving replica when it may (serving_replica.py), else by the registry."""
        answer = await self.serving.predict(request)
        if answer is not None:
            return answer
        return await self.registry.Predict(request, timeout=self.timeout_s)

    async def health(self, timeout_s: float = 2.0) -> dict[str, str]:
        """Overall health ("" service) of each backend: SERVING, NOT_SERVING, ... or UNREACHABLE."""

        async def check(name: str) -> tuple[str, str]:
            stub = health_pb2_grpc.HealthStub(self.channels[name])
            try:
                resp = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
            except grpc.RpcError:
                return name, "UNREACHABLE"
            return name, health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

        return dict(await asyncio.gather(*(check(n) for n in SERVICE_NAMES)))

    async def close(self) -> None:
        await asyncio.gather(*(ch.close(grace=None) for ch in self.channels.values()), return_exceptions=True)
