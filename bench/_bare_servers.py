"""Bare servers scoring with the SAME ONNX artifact in-process, the baselines of the serving
benches (serving.py: latency; serving_throughput.py: throughput): what a Predict costs with no
platform around it. Each runs in its own process:

    python bench/_bare_servers.py --bare-http|--bare-grpc|--bare-health MODEL PORTFILE

  --bare-http    a bare uvicorn + Starlette route (POST /predict {"input": ...})
  --bare-grpc    a bare grpcio server answering ModelRegistry.Predict
  --bare-health  a bare grpcio server with grpcio's stock health service (MODEL is ignored: "-"),
                 the floor of any unary call under the same load (bench/training_under_load.py)
"""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from concurrent import futures
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainhouse.v1 import model_registry_pb2, model_registry_pb2_grpc, model_version_pb2  # noqa: E402


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _bare_http(model_path: str, port_file: str) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from trainhouse.core.onnx_model import OnnxModel

    model = OnnxModel.from_path(model_path)

    async def predict(request: Request) -> JSONResponse:
        body = await request.json()
        probs = model.predict_proba([body["input"]])[0]
        best = int(probs.argmax())
        return JSONResponse({"output": model.labels[best], "probability": float(probs[best])})

    sock = _free_socket()
    Path(port_file).write_text(str(sock.getsockname()[1]))
    uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/predict", predict, methods=["POST"])]),
                                  log_level="warning")).run(sockets=[sock])


def _bare_grpc(model_path: str, port_file: str) -> None:
    from trainhouse.core.onnx_model import OnnxModel

    model = OnnxModel.from_path(model_path)

    class Bare(model_registry_pb2_grpc.ModelRegistryServicer):
        def Predict(self, request, context):  # noqa: N802 - gRPC API
            probs = model.predict_proba(list(request.inputs))
            out = []
            for p in probs:
                best = int(p.argmax())
                out.append(model_version_pb2.Prediction(output=model.labels[best], probability=float(p[best])))
            return model_registry_pb2.PredictResponse(predictions=out)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    model_registry_pb2_grpc.add_ModelRegistryServicer_to_server(Bare(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    Path(port_file).write_text(str(port))
    server.wait_for_termination()


def _bare_health(_model_path: str, port_file: str) -> None:
    from grpc_health.v1 import health, health_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    Path(port_file).write_text(str(port))
    server.wait_for_termination()


KINDS = {"--bare-http": _bare_http, "--bare-grpc": _bare_grpc, "--bare-health": _bare_health}


def spawn(kind: str, model_path: str, tmp: Path) -> tuple[subprocess.Popen, int]:
    port_file = tmp / f"{kind}.port"
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), kind, model_path, str(port_file)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if port_file.exists() and port_file.read_text().strip():
            time.sleep(0.3)  # the listener is up just after the port is written
            return proc, int(port_file.read_text())
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{kind} did not start")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in KINDS:
        raise SystemExit(__doc__)
    KINDS[sys.argv[1]](sys.argv[2], sys.argv[3])
