"""Metric ingestion while a real job trains, and what event storage costs the job.

The same small supervised job (50 examples, many epochs: a validation pass, an epoch event and
~7 metric points every few milliseconds, the densest stream a classifier job produces) runs on a
fresh stack twice: with progress events on (the default) and with
``TRAINHOUSE_TRAINING_PROGRESS_EVENTS=false``, which stops epoch/step/metric events in the worker
(none queued, stored or streamed). Printed:

* metric points stored per second of the job's own training time (every point counted back
  through ListMetrics), and the same against the store's batched append rate measured in this
  run (``JobStore.append_events``, batches of 500, as the runner's pump writes them, timed until
  the store has written them to DuckDB);
* the job's samples/s (train examples x epochs / its ``training_seconds``) with event storage
  on, against the same job with it off. The two run alternately, three times each, and each
  keeps its best run: a single pair swung from 0.61 to 1.03 between invocations here. The job is
  polled (GetJob every 0.25 s, as the dashboard does), not watched: a subscriber streaming every
  event would share the two cores with the job, and that is the cost of watching, not of storing
  (the gateway's own follower of status and epoch events runs in both cases).

    .venv/bin/python bench/metrics_ingestion.py [--epochs N]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import intent_examples, result, temp_stack, training_stub

from trainhouse.v1 import job_state_pb2, training_job_pb2, training_service_pb2


ROUNDS = 3


def run_job(env: dict[str, str], epochs: int) -> tuple[float, int, float]:
    """(training seconds, metric points stored, samples/s) of one job on a fresh stack."""
    with temp_stack(env) as stack, training_stub(stack) as training:
        config = training_job_pb2.TrainingConfig(epochs=epochs, early_stopping=False, checkpoint_interval=10000)
        job = training.StartJob(training_service_pb2.StartJobRequest(
            agent_id="bench-ingest", examples=intent_examples(50, seed=4), config=config)).job
        while job.state < job_state_pb2.JOB_STATE_COMPLETED:  # polled: no subscriber shares the two cores
            time.sleep(0.25)
            job = training.GetJob(training_service_pb2.GetJobRequest(job_id=job.job_id)).job
        seconds = job.metrics["training_seconds"]
        points, token = 0, ""
        while True:
            page = training.ListMetrics(training_service_pb2.ListMetricsRequest(
                job_id=job.job_id, page_size=10000, page_token=token))
            points += len(page.points)
            token = page.next_page_token
            if not token:
                break
        return seconds, points, job.train_examples * epochs / seconds


def store_batched_rate() -> float:
    from trainhouse.training.store import JobStore
    with tempfile.TemporaryDirectory() as tmp:
        store = JobStore(Path(tmp) / "training.duckdb")
        store.create_job({"job_id": "j", "agent_id": "a", "account_id": "x", "method": "supervised",
                          "state": "running", "config_json": "{}"})
        batches = [[("metric", {"name": "loss", "value": 1.0 / (i + 1), "epoch": i, "step": i}, {})
                    for i in range(500)] for _ in range(20)]
        t0 = time.perf_counter()
        for batch in batches:
            store.append_events("j", batch)
        store.flush()  # timed until every point is in DuckDB, not only in the event log
        rate = 20 * 500 / (time.perf_counter() - t0)
        store.close()
        return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=500)
    args = parser.parse_args()
    on_runs, off_runs = [], []
    for _ in range(ROUNDS):  # alternate, so a slow moment of the machine does not hit one side only
        on_runs.append(run_job({}, args.epochs))
        off_runs.append(run_job({"TRAINHOUSE_TRAINING_PROGRESS_EVENTS": "false"}, args.epochs))
    on_s, on_points, on_rate = max(on_runs, key=lambda run: run[2])
    off_s, off_points, off_rate = max(off_runs, key=lambda run: run[2])
    batched = store_batched_rate()
    print(f"events on: {on_points:,} metric points stored over {on_s:.2f} s of training, {on_rate:,.0f} samples/s")
    print(f"events off: {off_points:,} metric points stored, {off_s:.2f} s of training, {off_rate:,.0f} samples/s")
    result("metric points stored per second of a training job (worker -> service -> DuckDB)", on_points / on_s,
           "points/s", batched, "store batched append (500 per log record, until in DuckDB)")
    result("training job samples/s with event storage on", on_rate, "samples/s", off_rate,
           "same job, TRAINHOUSE_TRAINING_PROGRESS_EVENTS=false")


if __name__ == "__main__":
    main()
