"""gRPC channels to the other services, shared so every caller gets the same options.

Reads are idempotent, so the channel retries them by itself with exponential backoff when a
peer is briefly UNAVAILABLE (a restart); writes are never retried automatically.
"""
from __future__ import annotations

import json
import threading

import grpc

from trainhouse.common import config, tls
from trainhouse.common.authn import forwarding_interceptor
from trainhouse.common.request_context import RequestIdClientInterceptor
from trainhouse.common.server import GRPC_OPTIONS

# Idempotent RPCs per service, retried on UNAVAILABLE.
IDEMPOTENT = {
    "trainhouse.v1.TrainingService": ["GetJob", "ListJobs", "ListCheckpoints", "ListMetrics", "ListJobExamples",
                                      "GetAutoTrainingConfig", "ListAutoTrainingRuns"],
    "trainhouse.v1.DataService": ["GetDataset", "ListDatasets", "StreamExamples"],
    "trainhouse.v1.EvaluationService": ["GetEvaluation", "ListEvaluations"],
    "trainhouse.v1.ModelRegistry": ["GetAgent", "ListAgents", "ListVersions", "GetVersion", "Predict",
                                    "CountFeedback"],
}

SERVICE_CONFIG = json.dumps({
    "methodConfig": [{
        "name": [{"service": service, "method": method} for service, methods in IDEMPOTENT.items()
                 for method in methods],
        "retryPolicy": {
            "maxAttempts": 5,
            "initialBackoff": "0.1s",
            "maxBackoff": "2s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"],
        },
    }]
})
CHANNEL_OPTIONS = GRPC_OPTIONS + [("grpc.enable_retries", 1), ("grpc.service_config", SERVICE_CONFIG)]

_channels: dict[str, grpc.Channel] = {}
_lock = threading.Lock()


def channel(service: str, address: str | None = None) -> grpc.Channel:
    """One long-lived channel per target; gRPC reconnects it by itself after a restart."""
    target = address or config.service_address(service)
    with _lock:
        ch = _channels.get(target)
        if ch is None:
            ch = grpc.intercept_channel(tls.channel(target, options=CHANNEL_OPTIONS),
                                        RequestIdClientInterceptor(), forwarding_interceptor())
            _channels[target] = ch
        return ch
