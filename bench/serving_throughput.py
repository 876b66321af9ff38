"""Predict throughput with 1, 4 and 16 concurrent clients: REST and gRPC through the platform
against bare servers that run the SAME ONNX session in-process.

  REST   POST /api/v1/agents/{agentId}/predict on the gateway (auth, rate limit, gRPC hop to the
         registry, routing, prediction log)
  gRPC   ModelRegistry.Predict on the registry process
  bare-HTTP   a bare uvicorn route (own process) scoring with OnnxModel on the same artifact
  bare-gRPC   a bare grpcio server (own process) answering ModelRegistry.Predict from the same session

Each side is a separate process; the load generator is one asyncio process (httpx.AsyncClient or
grpc.aio with N concurrent callers) used identically against both sides of each comparison, so
its own cost is in both. Run: `.venv/bin/python bench/serving_throughput.py [--requests 400]`.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
import time
from pathlib import Path

from _bare_servers import spawn
from _common import channel, result

import grpc
import httpx

from trainhouse.launcher import Stack
from serving import AGENT, train
from tests.intents import make_examples
from trainhouse.v1 import model_registry_pb2, model_registry_pb2_grpc

CONCURRENCY = (1, 4, 16)
ROUNDS = 2


# ---- the load generator ---------------------------------------------------------------------------

async def _drive(call, texts: list[str], concurrency: int, requests: int) -> float:  # noqa: ANN001
    """Requests/s of `requests` calls made by `concurrency` callers (after a short warm-up)."""
    await asyncio.gather(*(call(texts[i % len(texts)]) for i in range(min(20, requests))))
    left = iter(range(requests))

    async def caller() -> None:
        for i in left:
            await call(texts[i % len(texts)])

    t0 = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return requests / (time.perf_counter() - t0)


async def http_rate(url: str, body_of, headers: dict[str, str], texts: list[str], concurrency: int,  # noqa: ANN001
                    requests: int) -> float:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=60, trust_env=False) as client:
        async def call(text: str) -> None:
            r = await client.post(url, json=body_of(text))
            if r.status_code != 200:
                raise SystemExit(f"{url}: {r.status_code} {r.text[:200]}")
        return await _drive(call, texts, concurrency, requests)


async def grpc_rate(address: str, token: str | None, texts: list[str], concurrency: int, requests: int) -> float:
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    async with grpc.aio.insecure_channel(address) as ch:
        stub = model_registry_pb2_grpc.ModelRegistryStub(ch)

        async def call(text: str) -> None:
            await stub.Predict(model_registry_pb2.PredictRequest(agent_id=AGENT, inputs=[text]),
                               metadata=metadata, timeout=60)
        return await _drive(call, texts, concurrency, requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per path and concurrency")
    args = parser.parse_args()
    texts = [e["input"] for e in make_examples(50, seed=11)]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        os.environ.pop("TRAINHOUSE_BOOTSTRAP_TOKEN", None)
        stack = Stack(home=home, log_dir=Path(tmp) / "logs",
                      extra_env={"TRAINHOUSE_RATE_LIMIT_PER_HOUR": "100000000"}).start()
        procs: list[subprocess.Popen] = []
        try:
            version_id = train(stack)
            token = stack.admin_token_file.read_text().strip()
            with channel(stack, "registry") as ch:
                version = model_registry_pb2_grpc.ModelRegistryStub(ch).GetVersion(
                    model_registry_pb2.GetVersionRequest(agent_id=AGENT, version_id=version_id)).version
            model_path = str(home / "registry" / "artifacts" / AGENT / f"{version.sha256}.onnx")
            bare_http, http_port = spawn("--bare-http", model_path, Path(tmp))
            bare_grpc, grpc_port = spawn("--bare-grpc", model_path, Path(tmp))
            procs += [bare_http, bare_grpc]
            auth = {"Authorization": f"Bearer {token}"}
            rest_url = f"{stack.gateway_url}/api/v1/agents/{AGENT}/predict"
            for n in CONCURRENCY:
                best: dict[str, float] = {}
                for _ in range(ROUNDS):  # alternating: a busy moment of the machine hits every side
                    for name, rate in (
                            ("REST", lambda: http_rate(rest_url, lambda t: {"input": t}, auth, texts, n,
                                                       args.requests)),
                            ("bare-HTTP", lambda: http_rate(f"http://127.0.0.1:{http_port}/predict",
                                                            lambda t: {"input": t}, {}, texts, n, args.requests)),
                            ("gRPC", lambda: grpc_rate(stack.address("registry"), token, texts, n, args.requests)),
                            ("bare-gRPC", lambda: grpc_rate(f"127.0.0.1:{grpc_port}", None, texts, n,
                                                            args.requests))):
                        best[name] = max(best.get(name, 0.0), asyncio.run(rate()))
                result(f"Predict via REST, {n} concurrent clients", best["REST"], "req/s", best["bare-HTTP"],
                       "bare uvicorn + ORT route")
                result(f"Predict via gRPC, {n} concurrent clients", best["gRPC"], "req/s", best["bare-gRPC"],
                       "bare grpcio + ORT server")
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)
            stack.stop()


if __name__ == "__main__":
    main()
