"""Latency from a training event being recorded to a WatchJob subscriber receiving it.

Measured twice on one stack: with the watched job alone, and while four more jobs stream their
own events as fast as they train (five running jobs: one account's whole running quota, as the
issue's target says "while 5 jobs stream"). Latency per event = the subscriber's receive time
minus the event's recorded time (stamped by the TrainingService when it stores the event, so
the worker's queue is not counted; both clocks are this machine's).

Baseline: the same subscriber reading the same number of stored events after the job ended
(replay), i.e. the cost of the stream itself without waiting for live events. Last, the loaded
case again on a stack whose workers are kept off one core (TRAINHOUSE_TRAINING_WORKER_CPUS),
against the loaded case with the workers on every core.
"""
from __future__ import annotations

import time

from _common import all_cpus_but_the_first, intent_examples, percentile, result, temp_stack, training_stub

from trainhouse.v1 import training_job_pb2, training_service_pb2

OTHER_JOBS = 4


def watched_job(training) -> tuple[list[float], float]:  # noqa: ANN001
    """(live latencies in ms, replay cost per event in ms) of one job watched from its start."""
    job = training.StartJob(training_service_pb2.StartJobRequest(
        agent_id="bench", examples=intent_examples(30), account_id="bench",
        config=training_job_pb2.TrainingConfig(epochs=150, early_stopping=False))).job
    live = []
    for event in training.WatchJob(training_service_pb2.WatchJobRequest(job_id=job.job_id)):
        live.append((time.time() - event.time.ToDatetime().timestamp()) * 1000)
    t0 = time.perf_counter()
    replayed = list(training.WatchJob(training_service_pb2.WatchJobRequest(job_id=job.job_id)))
    return live[1:], (time.perf_counter() - t0) / len(replayed) * 1000


def under_load(training) -> list[float]:  # noqa: ANN001
    """Live latencies (ms) of one watched job while four more jobs stream as fast as they train."""
    config = training_job_pb2.TrainingConfig(epochs=10000, early_stopping=False, checkpoint_interval=10000)
    others = [training.StartJob(training_service_pb2.StartJobRequest(
        agent_id="bench-load", examples=intent_examples(50, seed=4), config=config,
        account_id="bench")).job.job_id for _ in range(OTHER_JOBS)]
    time.sleep(3.0)  # their workers are up and streaming
    loaded, _ = watched_job(training)
    for job_id in others:
        training.CancelJob(training_service_pb2.CancelJobRequest(job_id=job_id), timeout=600)
    return loaded


def main() -> None:
    with temp_stack() as stack, training_stub(stack) as training:
        alone, per_event = watched_job(training)
        loaded = under_load(training)
    print(f"{len(alone)} live events alone, {len(loaded)} while {OTHER_JOBS} more jobs streamed")
    result("event -> subscriber p50, one job", percentile(alone, 50), "ms", per_event, "replay per event")
    result("event -> subscriber p99, one job", percentile(alone, 99), "ms", per_event, "replay per event")
    result(f"event -> subscriber p50 while {OTHER_JOBS + 1} jobs stream", percentile(loaded, 50), "ms",
           per_event, "replay per event")
    result(f"event -> subscriber p99 while {OTHER_JOBS + 1} jobs stream", percentile(loaded, 99), "ms",
           per_event, "replay per event")
    off_first = all_cpus_but_the_first()
    if off_first is None:
        return
    kept, ncpus = off_first
    with temp_stack({"TRAINHOUSE_TRAINING_WORKER_CPUS": kept}) as stack, training_stub(stack) as training:
        pinned = under_load(training)
    result(f"event -> subscriber p99 while {OTHER_JOBS + 1} jobs stream, workers on CPUs {kept} of {ncpus} "
           "(TRAINHOUSE_TRAINING_WORKER_CPUS)", percentile(pinned, 99), "ms", percentile(loaded, 99),
           "the same, workers on every CPU")


if __name__ == "__main__":
    main()
