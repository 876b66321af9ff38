"""TrainingService while small jobs stream events as fast as they train.

Five jobs of 50 examples x 10,000 epochs (one account's whole running quota) each send an epoch
event, metric points and often a "best" checkpoint every few milliseconds. Measured on the real
processes:

* GetJob latency (p50 / p95 over 300 calls, 0.05 s apart: 15 s of streaming; a p95 of 30 calls
  was its second-worst call) while the jobs run, against the same call on the same stack before
  any job started (the baseline of this run);
* the same for a bare grpcio health server in a process of its own (bench/_bare_servers.py),
  called right after each GetJob: what any unary call on this machine suffers from the same load
  (its p95 loaded against idle), and GetJob's p95 against it;
* the checkpoint bytes the five jobs wrote per second while they streamed (the size_bytes of their
  own checkpoint events, read back after the cancels), against one checkpoint per job per second:
  each is the whole training state plus an fsync, and fast epochs once wrote one per improvement
  (~220 MB/s per job, the tail of every fsync on the machine: README "Benchmarks");
* the time the calling process and the TrainingService spent runnable but waiting for a core
  (the run-queue wait of all their threads, /proc/<pid>/task/*/schedstat) per round of calls (a
  GetJob and a bare Check), loaded against idle: what the two cores' scheduler adds to any call,
  whatever its handler does;
* how long cancelling all five takes (each cancel waits for its worker's checkpoint and for the
  events already sent to be stored), against the idle GetJob latency.
"""
from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import grpc
from _bare_servers import spawn
from _common import all_cpus_but_the_first, intent_examples, percentile, result, temp_stack, training_stub
from grpc_health.v1 import health_pb2, health_pb2_grpc

from trainhouse.v1 import training_job_pb2, training_service_pb2

JOBS = 5
T = TypeVar("T")
SAMPLES = 300


def run_queue_wait_s(pid: int) -> float:
    """Seconds the threads of ``pid`` have spent runnable but not running (Linux schedstat)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
        except (FileNotFoundError, ProcessLookupError):  # a thread that ended meanwhile
            continue
    return total / 1e9


def waited_ms(pids: list[int], run: Callable[[], T]) -> tuple[T, list[float]]:
    """What ``run()`` returns, and each pid's run-queue wait meanwhile (ms)."""
    before = [run_queue_wait_s(p) for p in pids]
    out = run()
    return out, [(run_queue_wait_s(p) - b) * 1000.0 for p, b in zip(pids, before)]


def latencies(calls, n: int, pause_s: float) -> list[list[float]]:
    """n rounds of each call in turn (so each sees the same moments of load), ms per call."""
    out: list[list[float]] = [[] for _ in calls]
    for _ in range(n):
        for times, call in zip(out, calls):
            t0 = time.perf_counter()
            call()
            times.append((time.perf_counter() - t0) * 1000.0)
        time.sleep(pause_s)
    return out


def measure(extra_env: dict[str, str]) -> dict:
    """Every figure of one run of the scenario on a stack started with ``extra_env``."""
    with tempfile.TemporaryDirectory() as tmp, temp_stack(extra_env) as stack, training_stub(stack) as training:
        bare_proc, bare_port = spawn("--bare-health", "-", Path(tmp))
        bare_channel = grpc.insecure_channel(f"127.0.0.1:{bare_port}")
        bare = health_pb2_grpc.HealthStub(bare_channel)
        examples = intent_examples(50, seed=4)
        config = training_job_pb2.TrainingConfig(epochs=10000, early_stopping=False, checkpoint_interval=10000)

        def start() -> str:
            return training.StartJob(training_service_pb2.StartJobRequest(
                agent_id="bench-load", examples=examples, config=config, account_id="bench")).job.job_id

        def epochs_done(ids: list[str]) -> int:
            return sum(training.GetJob(training_service_pb2.GetJobRequest(job_id=job_id)).job.progress.current_epoch
                       for job_id in ids)

        first = start()
        training.CancelJob(training_service_pb2.CancelJobRequest(job_id=first))
        # The idle baseline is idle: the first job's worker gone and the stack's start-up work done
        # (measured right after the cancel, its p95 was sometimes 5 ms against 1.4-2 ms).
        time.sleep(3.0)
        check = partial(bare.Check, health_pb2.HealthCheckRequest())
        pids = [os.getpid(), stack.children["training"].proc.pid]
        (idle, bare_idle), idle_wait = waited_ms(pids, lambda: latencies(
            [partial(training.GetJob, training_service_pb2.GetJobRequest(job_id=first)), check], SAMPLES, 0.05))
        ids = [start() for _ in range(JOBS)]
        time.sleep(5.0)  # the workers are up and streaming
        streaming_from = time.time()
        epochs_before, t_before = epochs_done(ids), time.perf_counter()
        (loaded, bare_loaded), loaded_wait = waited_ms(pids, lambda: latencies(
            [partial(training.GetJob, training_service_pb2.GetJobRequest(job_id=ids[0])), check], SAMPLES, 0.05))
        epochs_per_s = (epochs_done(ids) - epochs_before) / (time.perf_counter() - t_before)
        epochs = training.GetJob(training_service_pb2.GetJobRequest(job_id=ids[0])).job.progress.current_epoch
        t0 = time.perf_counter()
        for job_id in ids:
            training.CancelJob(training_service_pb2.CancelJobRequest(job_id=job_id), timeout=600)
        cancel_s = time.perf_counter() - t0
        streaming_to = time.time() - cancel_s
        written, sizes = 0, []
        for job_id in ids:
            for event in training.WatchJob(training_service_pb2.WatchJobRequest(job_id=job_id)):
                if event.HasField("checkpoint"):
                    sizes.append(event.checkpoint.size_bytes)
                    if streaming_from <= event.time.ToDatetime().timestamp() <= streaming_to:
                        written += event.checkpoint.size_bytes
        bare_channel.close()
        bare_proc.kill()
    return {"idle": idle, "bare_idle": bare_idle, "idle_wait": idle_wait, "loaded": loaded,
            "bare_loaded": bare_loaded, "loaded_wait": loaded_wait, "epochs": epochs, "epochs_per_s": epochs_per_s,
            "cancel_s": cancel_s, "checkpoint_mb_s": written / 1e6 / (streaming_to - streaming_from),
            "one_per_second": JOBS * max(sizes) / 1e6}


def main() -> None:
    run = measure({})
    print(f"{JOBS} jobs; job 1 reached epoch {run['epochs']} before the cancels")
    idle, loaded, bare_loaded = run["idle"], run["loaded"], run["bare_loaded"]
    result(f"GetJob p50 while {JOBS} small jobs stream events", percentile(loaded, 50), "ms",
           percentile(idle, 50), "GetJob p50 before any job ran")
    result(f"GetJob p95 while {JOBS} small jobs stream events", percentile(loaded, 95), "ms",
           percentile(idle, 95), "GetJob p95 before any job ran")
    result(f"bare grpcio health Check p95 while {JOBS} small jobs stream events", percentile(bare_loaded, 95), "ms",
           percentile(run["bare_idle"], 95), "the same before any job ran")
    result(f"GetJob p95 while {JOBS} small jobs stream events", percentile(loaded, 95), "ms",
           percentile(bare_loaded, 95), "bare grpcio health Check p95, same moments")
    for who, i in (("the calling process", 0), ("the TrainingService", 1)):
        result(f"run-queue wait of {who} per round (GetJob + bare Check) while {JOBS} small jobs stream events",
               run["loaded_wait"][i] / SAMPLES, "ms", run["idle_wait"][i] / SAMPLES, "the same before any job ran")
    result(f"checkpoint bytes written by {JOBS} streaming jobs", run["checkpoint_mb_s"], "MB/s",
           run["one_per_second"], "one checkpoint per job per second")
    result(f"cancel all {JOBS} running jobs (checkpoint + backlog stored)", run["cancel_s"] * 1000.0, "ms",
           percentile(idle, 50), "idle GetJob p50")
    # The same scenario with the workers kept off one core (the operator's choice, README): what
    # the control plane gains and what the five jobs pay for it.
    off_first = all_cpus_but_the_first()
    if off_first is None:
        return
    kept, ncpus = off_first
    pinned = measure({"TRAINHOUSE_TRAINING_WORKER_CPUS": kept})
    where = f"workers on CPUs {kept} of {ncpus} (TRAINHOUSE_TRAINING_WORKER_CPUS)"
    result(f"GetJob p95 while {JOBS} small jobs stream events, {where}", percentile(pinned["loaded"], 95), "ms",
           percentile(pinned["idle"], 95), "GetJob p95 before any job ran")
    result(f"bare grpcio health Check p95 while {JOBS} small jobs stream events, {where}",
           percentile(pinned["bare_loaded"], 95), "ms", percentile(pinned["bare_idle"], 95),
           "the same before any job ran")
    result(f"epochs/s of {JOBS} streaming jobs together, {where}", pinned["epochs_per_s"], "epochs/s",
           run["epochs_per_s"], "the same, workers on every CPU")


if __name__ == "__main__":
    main()
