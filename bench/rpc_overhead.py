"""Unary RPC throughput of a TrainingService read (interceptors, DuckDB) vs a bare grpcio server.

The bare server is grpcio's stock health service in a plain grpc.server: what any gRPC call
costs on this machine. Ours is GetJob on the real TrainingService process.
"""
from __future__ import annotations

import time
from concurrent import futures

from _common import intent_examples, result, temp_stack, training_stub

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from trainhouse.v1 import job_state_pb2, training_job_pb2, training_service_pb2

CALLS = 1000
ROUNDS = 3
TERMINAL = (job_state_pb2.JOB_STATE_COMPLETED, job_state_pb2.JOB_STATE_FAILED,
            job_state_pb2.JOB_STATE_CANCELLED)


def rate(call) -> float:
    for _ in range(50):
        call()
    t0 = time.perf_counter()
    for _ in range(CALLS):
        call()
    return CALLS / (time.perf_counter() - t0)


def main() -> None:
    bare = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), bare)
    port = bare.add_insecure_port("127.0.0.1:0")
    bare.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch, temp_stack() as stack, training_stub(stack) as training:
        stub = health_pb2_grpc.HealthStub(ch)
        job = training.StartJob(training_service_pb2.StartJobRequest(
            agent_id="bench", examples=intent_examples(10), config=training_job_pb2.TrainingConfig(epochs=1))).job
        # Both sides measured with the stack up and its job finished (a training worker on a 2-core
        # box would otherwise slow whichever side runs while it trains), alternating, best of rounds.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and training.GetJob(
                training_service_pb2.GetJobRequest(job_id=job.job_id)).job.state not in TERMINAL:
            time.sleep(0.2)
        get = training_service_pb2.GetJobRequest(job_id=job.job_id)
        bare_rates, ours_rates = [], []
        for _ in range(ROUNDS):
            bare_rates.append(rate(lambda: stub.Check(health_pb2.HealthCheckRequest())))
            ours_rates.append(rate(lambda: training.GetJob(get)))
    bare.stop(0)
    result("TrainingService.GetJob", max(ours_rates), "calls/s", max(bare_rates), "bare grpcio health Check")


if __name__ == "__main__":
    main()
