"""Latency from a training event being recorded to a WatchJob subscriber receiving it.

Baseline: the same subscriber reading the same number of stored events after the job ended
(replay), i.e. the cost of the stream itself without waiting for live events.
"""
from __future__ import annotations

import time

from _common import intent_examples, percentile, result, temp_stack, training_stub

from trainhouse.v1 import training_job_pb2, training_service_pb2


def main() -> None:
    with temp_stack() as stack, training_stub(stack) as training:
        job = training.StartJob(training_service_pb2.StartJobRequest(
            agent_id="bench", examples=intent_examples(30),
            config=training_job_pb2.TrainingConfig(epochs=150, early_stopping=False))).job
        live = []
        for event in training.WatchJob(training_service_pb2.WatchJobRequest(job_id=job.job_id)):
            live.append(time.time() - event.time.ToDatetime().timestamp())
        t0 = time.perf_counter()
        replayed = list(training.WatchJob(training_service_pb2.WatchJobRequest(job_id=job.job_id)))
        per_event = (time.perf_counter() - t0) / len(replayed)
    live_ms = [x * 1000 for x in live[1:]]
    print(f"{len(live)} live events")
    result("event -> subscriber p50", percentile(live_ms, 50), "ms", per_event * 1000, "replay per event")
    result("event -> subscriber p99", percentile(live_ms, 99), "ms", per_event * 1000, "replay per event")


if __name__ == "__main__":
    main()
