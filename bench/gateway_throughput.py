"""Gateway requests/s (auth, rate limit, gRPC hop to the registry) vs a bare uvicorn app.

Both served by uvicorn on loopback and called sequentially over one keep-alive connection.
"""
from __future__ import annotations

import socket
import threading
import time

from _common import result, temp_stack

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


CALLS = 1000


def rate(client: httpx.Client, url: str, headers: dict[str, str]) -> float:
    for _ in range(50):
        client.get(url, headers=headers)
    t0 = time.perf_counter()
    for _ in range(CALLS):
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r.text
    return CALLS / (time.perf_counter() - t0)


def bare_server() -> tuple[uvicorn.Server, int]:
    app = Starlette(routes=[Route("/agents", lambda request: JSONResponse({"agents": [], "success": True}))])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, sock.getsockname()[1]


def main() -> None:
    server, port = bare_server()
    with httpx.Client() as client:
        bare = rate(client, f"http://127.0.0.1:{port}/agents", {})
    server.should_exit = True
    with temp_stack({"TRAINHOUSE_RATE_LIMIT_PER_HOUR": "10000000"}) as stack:
        token = stack.admin_token_file.read_text().strip()
        with httpx.Client() as client:
            ours = rate(client, f"{stack.gateway_url}/api/v1/agents", {"Authorization": f"Bearer {token}"})
    result("gateway GET /api/v1/agents (auth + rate limit + gRPC ListAgents)", ours, "req/s", bare,
           "bare uvicorn JSON route")


if __name__ == "__main__":
    main()
