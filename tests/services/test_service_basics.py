"""Every service process: health (overall and per service), reflection, clean stop."""
from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from trainhouse.common.config import SERVICES


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_health_and_reflection(stack, name):
    full_name = SERVICES[name][2]
    with stack.channel(name) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for service in ("", full_name):
            status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
            assert status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as err:
            health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for r in responses for s in r.list_services_response.service}
        assert full_name in names and "grpc.health.v1.Health" in names


def test_request_id_follows_the_call_into_the_logs(stack):
    from trainhouse.v1 import training_service_pb2, training_service_pb2_grpc
    with stack.channel("training") as ch:
        stub = training_service_pb2_grpc.TrainingServiceStub(ch)
        stub.ListJobs(training_service_pb2.ListJobsRequest(), metadata=[("x-request-id", "req-trace-4242")])
    import json, time
    log_file = stack.home / "logs" / "training.log"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in log_file.read_text().splitlines() if "req-trace-4242" in line]
        if lines:
            break
        time.sleep(0.1)
    assert any(l["msg"] == "rpc" and l["request_id"] == "req-trace-4242"
               and l["method"].endswith("/ListJobs") and l["outcome"] == "ok" for l in lines)
