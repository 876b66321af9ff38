"""Gateway requests/s (auth, rate limit, gRPC hop to the registry) vs two bare apps.

* a bare FastAPI route that makes the SAME gRPC call (ListAgents on a grpc.aio channel to the same
  registry, with the same token as metadata) and returns the agents as JSON: what any HTTP front of
  this service costs; the fair baseline of the gateway's own work (auth, scope, rate limit,
  request context, response model, the surface's envelope);
* a bare uvicorn JSON route without any gRPC call: the HTTP floor of this machine.

All served by uvicorn on loopback and called sequentially over one keep-alive connection, with the
stack up for every side, alternating, best of ROUNDS.
"""
from __future__ import annotations

import socket
import threading
import time
from contextlib import asynccontextmanager

from _common import result, temp_stack

import grpc
import httpx
import uvicorn
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from trainhouse.v1 import model_registry_pb2, model_registry_pb2_grpc

CALLS = 500
AGENTS = 20
ROUNDS = 3


def rate(client: httpx.Client, url: str, headers: dict[str, str]) -> float:
    for _ in range(50):
        client.get(url, headers=headers)
    t0 = time.perf_counter()
    for _ in range(CALLS):
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r.text
    return CALLS / (time.perf_counter() - t0)


def serve(app) -> tuple[uvicorn.Server, int]:  # noqa: ANN001
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, sock.getsockname()[1]


def bare_json_app() -> Starlette:
    return Starlette(routes=[Route("/agents", lambda request: JSONResponse({"agents": [], "success": True}))])


def bare_grpc_app(address: str, token: str) -> FastAPI:
    """ListAgents through one grpc.aio channel, the caller's token passed on as metadata."""
    holder: dict = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        channel = grpc.aio.insecure_channel(address)
        holder["stub"] = model_registry_pb2_grpc.ModelRegistryStub(channel)
        yield
        await channel.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/agents")
    async def agents(page_size: int = 20) -> dict:
        resp = await holder["stub"].ListAgents(
            model_registry_pb2.ListAgentsRequest(page_size=page_size, include_total_size=True),
            metadata=(("authorization", f"Bearer {token}"),), timeout=30)
        return {"agents": [{"agentId": a.agent_id, "name": a.name} for a in resp.agents],
                "total": resp.total_size}

    return app


def main() -> None:
    with temp_stack({"TRAINHOUSE_RATE_LIMIT_PER_HOUR": "10000000"}) as stack:
        token = stack.admin_token_file.read_text().strip()
        with stack.channel("registry") as ch:  # a page of 20 real agents to list
            registry = model_registry_pb2_grpc.ModelRegistryStub(ch)
            for i in range(AGENTS):
                registry.CreateAgent(model_registry_pb2.CreateAgentRequest(agent_id=f"bench-agent-{i:02d}",
                                                                           name=f"Agent {i}"))
        auth = {"Authorization": f"Bearer {token}"}
        json_server, json_port = serve(bare_json_app())
        grpc_server, grpc_port = serve(bare_grpc_app(stack.address("registry"), token))
        ours, bare_grpc, bare_json = [], [], []
        with httpx.Client() as client:
            for _ in range(ROUNDS):
                ours.append(rate(client, f"{stack.gateway_url}/api/v1/agents", auth))
                bare_grpc.append(rate(client, f"http://127.0.0.1:{grpc_port}/agents", auth))
                bare_json.append(rate(client, f"http://127.0.0.1:{json_port}/agents", {}))
        json_server.should_exit = grpc_server.should_exit = True
    result("gateway GET /api/v1/agents (auth + rate limit + gRPC ListAgents)", max(ours), "req/s",
           max(bare_grpc), "bare FastAPI route making the same gRPC call")
    result("gateway GET /api/v1/agents (auth + rate limit + gRPC ListAgents)", max(ours), "req/s",
           max(bare_json), "bare uvicorn JSON route")


if __name__ == "__main__":
    main()
