"""What CPU-bound processes that outnumber the cores do to any unary call on this machine, by how
they are scheduled: the floor under bench/training_under_load.py's GetJob figures, with none of
trainhouse's code in the measured path.

A bare grpcio health server (bench/_bare_servers.py, a process of its own) is called 300 times,
0.02 s apart, from this process, first on an idle machine (the baseline), then while five
single-threaded NumPy loops (small matrix products, like a training job's worker) run:

* at nice 10 on every CPU: what local job workers do by default (TRAINHOUSE_TRAINING_WORKER_NICE);
* under SCHED_IDLE on every CPU: the lowest priority Linux has, which any woken normal thread
  should preempt at once;
* at nice 10, kept off CPU 0 (sched_setaffinity): what TRAINHOUSE_TRAINING_WORKER_CPUS does.

If priority alone kept a core free for the calls, the first two rows would sit near the idle
baseline; on the 2-core bench box they do not, and only the third does (README "Benchmarks").
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from _bare_servers import spawn
from _common import all_cpus_but_the_first, percentile, result
from grpc_health.v1 import health_pb2, health_pb2_grpc

LOOPS = 5
SAMPLES = 300
LOOP = """
import os, sys
import numpy as np
mode, cpus = sys.argv[1], sys.argv[2]
if cpus:
    os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
if mode == "idle":
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
else:
    os.nice(10)
a = np.random.default_rng(0).random((64, 64))
while True:
    a = a @ a
    a /= a.max()
"""


def p95_ms(stub: health_pb2_grpc.HealthStub) -> float:
    times = []
    for _ in range(SAMPLES):
        t0 = time.perf_counter()
        stub.Check(health_pb2.HealthCheckRequest())
        times.append((time.perf_counter() - t0) * 1000.0)
        time.sleep(0.02)
    return percentile(times, 95)


def while_loops_run(stub: health_pb2_grpc.HealthStub, mode: str, cpus: str) -> float:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}  # one thread each, as the service starts its workers
    loops = [subprocess.Popen([sys.executable, "-c", LOOP, mode, cpus], env=env) for _ in range(LOOPS)]
    try:
        time.sleep(2.0)  # all running
        return p95_ms(stub)
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
        time.sleep(1.0)


def main() -> None:
    ncpus = len(os.sched_getaffinity(0))
    off_first = all_cpus_but_the_first()
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = spawn("--bare-health", "-", Path(tmp))
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            for _ in range(20):  # connected and warm
                stub.Check(health_pb2.HealthCheckRequest())
            idle = p95_ms(stub)
            rows = [(f"{LOOPS} CPU-bound loops at nice 10 on all {ncpus} CPUs", while_loops_run(stub, "nice", "")),
                    (f"{LOOPS} CPU-bound loops under SCHED_IDLE on all {ncpus} CPUs",
                     while_loops_run(stub, "idle", ""))]
            if off_first is not None:
                kept, _ = off_first
                rows.append((f"{LOOPS} CPU-bound loops at nice 10 kept on CPUs {kept} of {ncpus}",
                             while_loops_run(stub, "nice", kept)))
        finally:
            channel.close()
            proc.kill()
    for what, p95 in rows:
        result(f"bare grpcio health Check p95 while {what}", p95, "ms", idle, "the same on an idle machine")


if __name__ == "__main__":
    main()
