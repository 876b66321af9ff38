"""OpenTelemetry traces: one trace from a gateway request through a service into the training worker
(its epochs) and into ONNX Runtime, exported over real OTLP/HTTP to a collector this test runs."""
from __future__ import annotations

import http.server
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2  # noqa: E402

from tests.conftest import STACK_JWT_SECRET, started_stack  # noqa: E402
from tests.gateway.conftest import bearer, make_token, three_intents, wait_terminal  # noqa: E402


class Collector(http.server.ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver: decodes each export request and keeps its spans."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[dict] = []
        self.lock = threading.Lock()

    def by_trace(self, trace_id: str) -> list[dict]:
        with self.lock:
            return [s for s in self.spans if s["trace_id"] == trace_id]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        with self.server.lock:
            for resource in request.resource_spans:
                attrs = {a.key: a.value.string_value for a in resource.resource.attributes}
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        self.server.spans.append({
                            "service": attrs.get("service.name"), "name": span.name,
                            "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex(),
                            "attributes": {a.key: a.value for a in span.attributes}})
        answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:  # noqa: ANN002
        pass


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    server = Collector()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def traced_stack(tmp_path_factory: pytest.TempPathFactory, collector: Collector):  # noqa: ANN201
    env = {"TRAINHOUSE_JWT_SECRET": STACK_JWT_SECRET, "TRAINHOUSE_TRACING": "otlp",
           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_address[1]}",
           "OTEL_BSP_SCHEDULE_DELAY": "100"}
    with started_stack(tmp_path_factory.mktemp("traced"), env) as stack:
        yield stack


def _traceparent() -> tuple[str, str]:
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


def _wait_for(collector: Collector, trace_id: str, want: set[tuple[str, str]], timeout: float = 30) -> list[dict]:
    """The trace's spans once every (service, span name) of `want` has arrived."""
    deadline = time.monotonic() + timeout
    while True:
        spans = collector.by_trace(trace_id)
        seen = {(s["service"], s["name"]) for s in spans}
        if want <= seen:
            return spans
        assert time.monotonic() < deadline, f"missing {want - seen}; got {sorted(seen)}"
        time.sleep(0.2)


def test_one_trace_from_the_gateway_into_the_worker_and_onnx_runtime(traced_stack, collector: Collector):
    with httpx.Client(base_url=traced_stack.gateway_url, timeout=60) as boot:
        token = make_token(boot, traced_stack.admin_token, ["admin"], rateLimitPerHour=0)
    api = httpx.Client(base_url=traced_stack.gateway_url, headers=bearer(token), timeout=60)
    agent = f"traced-{uuid.uuid4().hex[:8]}"
    start_trace, start_parent = _traceparent()
    r = api.post("/api/v1/training/train-agent", headers={"traceparent": start_parent}, json={
        "agentId": agent, "config": {"method": "supervised", "epochs": 3, "batchSize": 16, "learningRate": 0.01,
                                     "validation": {"split": 0.2}},
        "examples": three_intents(15)})
    assert r.status_code == 200, r.text
    job_id = r.json()["data"]["trainingJobId"]
    assert wait_terminal(api, [job_id])[job_id]["status"] == "completed"

    spans = _wait_for(collector, start_trace, {
        ("trainhouse-gateway", "POST /api/v1/training/train-agent"),
        ("trainhouse-training", "/trainhouse.v1.TrainingService/StartJob"),
        ("trainhouse-worker", "training job"), ("trainhouse-worker", "epoch")})
    by_id = {s["span_id"]: s for s in spans}
    # the service's span is a child of the gateway's client call, which is inside the request's span
    (start_rpc,) = [s for s in spans if s["name"] == "/trainhouse.v1.TrainingService/StartJob"
                    and s["service"] == "trainhouse-training"]
    assert by_id[start_rpc["parent"]]["service"] == "trainhouse-gateway"
    # the worker's job span continues that trace, and each epoch is a child of the job span
    (job_span,) = [s for s in spans if s["name"] == "training job"]
    assert job_span["attributes"]["trainhouse.job_id"].string_value == job_id
    epochs = [s for s in spans if s["name"] == "epoch"]
    assert len(epochs) >= 1 and all(s["parent"] == job_span["span_id"] for s in epochs)
    assert {s["attributes"]["trainhouse.epoch"].int_value for s in epochs} <= set(range(1, 4))

    # A pinned version is the registry's to answer; a routed request the gateway's serving replica's
    # (docs/serving.md; right after a change it may still be the registry's: repeated until it is not).
    version = api.get(f"/api/v1/agents/{agent}").json()["data"]["activeVersionId"]
    predict_trace, predict_parent = _traceparent()
    r = api.post(f"/api/v1/agents/{agent}/predict", headers={"traceparent": predict_parent},
                 json={"input": "where is my parcel", "versionId": version})
    assert r.status_code == 200, r.text
    spans = _wait_for(collector, predict_trace, {("trainhouse-registry", "onnxruntime.run"),
                                                 ("trainhouse-registry", "/trainhouse.v1.ModelRegistry/Predict")})
    by_id = {s["span_id"]: s for s in spans}
    (ort,) = [s for s in spans if s["name"] == "onnxruntime.run"]
    assert by_id[ort["parent"]]["name"] == "/trainhouse.v1.ModelRegistry/Predict"
    assert ort["attributes"]["trainhouse.batch_size"].int_value == 1
    deadline = time.monotonic() + 30
    while True:
        predict_trace, predict_parent = _traceparent()
        r = api.post(f"/api/v1/agents/{agent}/predict", headers={"traceparent": predict_parent},
                     json={"inputs": ["where is my parcel", "cancel it"]})
        assert r.status_code == 200, r.text
        spans = _wait_for(collector, predict_trace, {("trainhouse-gateway", "POST /api/v1/agents/{agentId}/predict")})
        time.sleep(0.5)  # (the registry's spans, if it answered, arrive from another process)
        spans = collector.by_trace(predict_trace)
        if ("trainhouse-gateway", "onnxruntime.run") in {(s["service"], s["name"]) for s in spans}:
            break
        assert time.monotonic() < deadline, "the gateway's serving replica never answered"
    by_id = {s["span_id"]: s for s in spans}
    (ort,) = [s for s in spans if s["name"] == "onnxruntime.run"]
    assert by_id[ort["parent"]]["name"] == "POST /api/v1/agents/{agentId}/predict"
    assert ort["attributes"]["trainhouse.batch_size"].int_value == 2
    assert not [s for s in spans if s["service"] == "trainhouse-registry"]
    api.close()


def test_tracing_is_off_unless_configured_and_a_bad_mode_stops_the_process(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRAINHOUSE_"))}
    env.update(TRAINHOUSE_HOME=str(tmp_path), TRAINHOUSE_INTERNAL_KEY=secrets.token_urlsafe(32),
               TRAINHOUSE_DATA_PORT="0", TRAINHOUSE_TRACING="jaeger")
    done = subprocess.run([sys.executable, "-m", "trainhouse.data"], capture_output=True, text=True, timeout=60,
                          env=env, cwd=tmp_path)
    assert done.returncode != 0
    assert "TRAINHOUSE_TRACING='jaeger' is not one of off, otlp" in done.stderr
