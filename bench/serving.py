"""Serving latency: Predict through gRPC and through REST against a bare in-process ONNX Runtime
call on the same model, measured in one run on the same machine.

Starts its own stack (trainhouse.launcher.Stack) in a temporary TRAINHOUSE_HOME, trains one small
real model through TrainingService, then times single-input predictions:

  bare  OnnxModel.predict_proba([text]) in this process (featurize + ORT: the work Predict does)
  gRPC  ModelRegistry.Predict over one long-lived channel
  REST  POST /api/v1/agents/{agentId}/predict on the gateway, one keep-alive HTTP client (answered
        by the gateway's serving replica, docs/serving.md; the count per process is printed)
  REST /v1  the canonical POST /v1/agents/{agent_id}/predict the SDK and CLI call, the same way
  REST lean  the same REST call from Python's own http.client on one keep-alive connection: httpx's
        own work is ~0.3 ms of every REST call here beyond what http.client does (README, "Two
        clients"), so this splits what the server costs from what one client library costs
  health grpc.health.v1 Check on the same channel: the floor of a Python gRPC round trip, so the
        gRPC figure splits into transport and Predict's own work

and prints p50/p99 of each with the difference to bare. Targets: gRPC <= bare + 1 ms (p50),
REST <= bare + 3 ms (p50). Run: `.venv/bin/python bench/serving.py [--n 1000]`.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc  # noqa: E402
import httpx  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import channel, result  # noqa: E402
from _bare_servers import spawn  # noqa: E402 - the same bare servers as the throughput bench
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from trainhouse.core.onnx_model import OnnxModel  # noqa: E402
from trainhouse.launcher import Stack  # noqa: E402
from tests.intents import make_examples  # noqa: E402
from trainhouse.v1 import (example_pb2, job_state_pb2, model_registry_pb2, model_registry_pb2_grpc,  # noqa: E402
                           training_job_pb2, training_service_pb2, training_service_pb2_grpc)

AGENT = "bench-router"
TARGETS_MS = {"gRPC": 1.0, "REST": 1.0, "REST lean": 1.0}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def timed(fn, texts: list[str], n: int, warmup: int) -> list[float]:
    for i in range(warmup):
        fn(texts[i % len(texts)], i)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(texts[i % len(texts)], i)
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


class LeanClient:
    """POST JSON over one keep-alive http.client connection: the least a Python client does per call
    (send the request, read the status line, headers and the whole body)."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None):
        host, port = base_url.removeprefix("http://").rstrip("/").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self.headers = {"Content-Type": "application/json", **(headers or {})}

    def post(self, path: str, body: dict) -> tuple[int, bytes]:
        self.conn.request("POST", path, json.dumps(body).encode(), self.headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.conn.close()


def lean(client: LeanClient, path: str) -> Callable[[str, int], None]:
    def call(text: str, i: int) -> None:
        status, body = client.post(path, {"input": text})
        if status != 200:
            raise SystemExit(f"{path} failed: {status} {body[:200]!r}")
    return call


def train(stack: Stack) -> str:
    with channel(stack, "training") as ch:
        training = training_service_pb2_grpc.TrainingServiceStub(ch)
        examples = [example_pb2.Example(input=e["input"], expected_output=e["expected_output"])
                    for e in make_examples(60, seed=3)]
        job = training.StartJob(training_service_pb2.StartJobRequest(
            agent_id=AGENT, examples=examples,
            config=training_job_pb2.TrainingConfig(epochs=8, learning_rate=0.02, seed=3))).job
        while True:
            job = training.GetJob(training_service_pb2.GetJobRequest(job_id=job.job_id)).job
            if job.state in (job_state_pb2.JOB_STATE_COMPLETED, job_state_pb2.JOB_STATE_FAILED,
                             job_state_pb2.JOB_STATE_CANCELLED):
                break
            time.sleep(0.2)
        if job.state != job_state_pb2.JOB_STATE_COMPLETED:
            raise SystemExit(f"training failed: {job.error.message}")
        return job.model_version_id


def answered_by(http: httpx.Client) -> dict[str, float]:
    """The gateway's Predict count per answering process (trainhouse_gateway_predict_requests)."""
    found = re.findall(r'trainhouse_gateway_predict_requests_total\{answered_by="(\w+)"\} ([0-9.e+]+)',
                       http.get("/metrics").text)
    return {name: float(value) for name, value in found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="timed calls per path")
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()
    texts = [e["input"] for e in make_examples(50, seed=11)]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ.pop("TRAINHOUSE_BOOTSTRAP_TOKEN", None)
        stack = Stack(home=home, log_dir=home / "logs",
                      extra_env={"TRAINHOUSE_RATE_LIMIT_PER_HOUR": str(10 * (args.n + args.warmup) + 1000)})
        stack.start()
        try:
            version_id = train(stack)
            token = stack.admin_token_file.read_text().strip()
            with channel(stack, "registry") as ch:
                registry = model_registry_pb2_grpc.ModelRegistryStub(ch)
                version = registry.GetVersion(model_registry_pb2.GetVersionRequest(
                    agent_id=AGENT, version_id=version_id)).version
                bare_model = OnnxModel.from_path(
                    str(home / "registry" / "artifacts" / AGENT / f"{version.sha256}.onnx"))
                results = {"bare": timed(lambda text, i: bare_model.predict_proba([text]), texts, args.n,
                                         args.warmup)}
                results["gRPC"] = timed(lambda text, i: registry.Predict(model_registry_pb2.PredictRequest(
                    agent_id=AGENT, inputs=[text], request_key=f"user-{i % 97}")), texts, args.n, args.warmup)
                health = health_pb2_grpc.HealthStub(ch)
                results["health"] = timed(lambda text, i: health.Check(health_pb2.HealthCheckRequest()), texts,
                                          args.n, args.warmup)
            with httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"},
                              trust_env=False, timeout=30) as http:
                def rest(text: str, i: int) -> None:
                    r = http.post(f"/api/v1/agents/{AGENT}/predict", json={"input": text})
                    if r.status_code != 200:
                        raise SystemExit(f"REST predict failed: {r.status_code} {r.text[:200]}")
                def rest_v1(text: str, i: int) -> None:
                    r = http.post(f"/v1/agents/{AGENT}/predict", json={"inputs": [text]})
                    if r.status_code != 200:
                        raise SystemExit(f"REST /v1 predict failed: {r.status_code} {r.text[:200]}")
                answered_before = answered_by(http)
                results["REST"] = timed(rest, texts, args.n, args.warmup)
                results["REST /v1"] = timed(rest_v1, texts, args.n, args.warmup)
                client = LeanClient(stack.gateway_url, {"Authorization": f"Bearer {token}"})
                results["REST lean"] = timed(lean(client, f"/api/v1/agents/{AGENT}/predict"), texts,
                                             args.n, args.warmup)
                client.close()
                answered = {k: v - answered_before.get(k, 0) for k, v in answered_by(http).items()}
            artifact = str(home / "registry" / "artifacts" / AGENT / f"{version.sha256}.onnx")
            bare_http, http_port = spawn("--bare-http", artifact, home)
            bare_grpc, grpc_port = spawn("--bare-grpc", artifact, home)
            try:
                with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", trust_env=False, timeout=30) as http:
                    results["bare-HTTP"] = timed(lambda text, i: http.post("/predict", json={"input": text}),
                                                 texts, args.n, args.warmup)
                client = LeanClient(f"http://127.0.0.1:{http_port}")
                results["bare-HTTP lean"] = timed(lean(client, "/predict"), texts, args.n, args.warmup)
                client.close()
                with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as ch:
                    bare_stub = model_registry_pb2_grpc.ModelRegistryStub(ch)
                    results["bare-gRPC"] = timed(lambda text, i: bare_stub.Predict(model_registry_pb2.PredictRequest(
                        agent_id=AGENT, inputs=[text])), texts, args.n, args.warmup)
            finally:
                for proc in (bare_http, bare_grpc):
                    proc.kill()
                    proc.wait()
        finally:
            stack.stop()
    bare50, bare99 = percentile(results["bare"], 50), percentile(results["bare"], 99)
    print(f"serving latency, single input, model {AGENT} {version_id}, {args.n} calls each "
          f"(cpu count {os.cpu_count()})")
    print(f"{'path':<14} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'p50 - bare':>11} {'p50 / bare':>10}  target")
    for name, samples in results.items():
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        line = (f"{name:<14} {p50:8.3f} {p99:8.3f} {statistics.fmean(samples):8.3f} "
                f"{p50 - bare50:+11.3f} {p50 / bare50:10.2f}")
        if name in TARGETS_MS:
            ok = p50 <= bare50 + TARGETS_MS[name]
            line += f"  <= bare + {TARGETS_MS[name]:g} ms: {'met' if ok else 'MISSED'}"
        print(line)
    print(f"(bare p99 {bare99:.3f} ms)")
    print(f"REST predictions answered by the gateway's serving replica: {answered.get('gateway', 0):.0f}, "
          f"by the registry: {answered.get('registry', 0):.0f} (gateway /metrics, docs/serving.md)")
    for name in ("gRPC", "REST"):
        result(f"Predict p50 via {name}", percentile(results[name], 50), "ms", bare50, "bare in-process ORT p50")
    result("Predict p50 via REST, canonical /v1 (the SDK's)", percentile(results["REST /v1"], 50), "ms", bare50,
           "bare in-process ORT p50")
    result("Predict p50 via REST", percentile(results["REST"], 50), "ms", percentile(results["bare-HTTP"], 50),
           "bare uvicorn + ORT route p50 (no second hop)")
    result("Predict p50 via gRPC", percentile(results["gRPC"], 50), "ms", percentile(results["bare-gRPC"], 50),
           "bare grpcio + ORT server p50")
    result("Predict p50 via REST, http.client", percentile(results["REST lean"], 50), "ms", bare50,
           "bare in-process ORT p50")
    result("Predict p50 via REST, http.client", percentile(results["REST lean"], 50), "ms",
           percentile(results["bare-HTTP lean"], 50), "bare uvicorn + ORT route p50, http.client")


if __name__ == "__main__":
    main()
