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
* the pipeline's own capacity, which no classifier job here comes near: a job's worker process
  (spawned as the local executor spawns one, through the same queue wrapper, callbacks, runner
  pump, event hub, event log and DuckDB index writes) whose only work is emitting FIREHOSE_POINTS
  metric points, 8 per step; points/s from its first point until DuckDB holds every one, best of
  ROUNDS (the store is in this process, frozen as the TrainingService freezes its start-up heap);
* the job's samples/s (train examples x epochs / its ``training_seconds``) with event storage
  on, against the same job with it off. The two run alternately, five times each, and each
  keeps its best run: a single pair swung from 0.61 to 1.03 between invocations here. The job is
  polled (GetJob every 0.25 s, as the dashboard does), not watched: a subscriber streaming every
  event would share the two cores with the job, and that is the cost of watching, not of storing
  (the gateway's webhook follower runs in both cases; with no subscription wanting
  training.progress it streams status events only, as it would in production).

    .venv/bin/python bench/metrics_ingestion.py [--epochs N]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import intent_examples, result, temp_stack, training_stub

from trainhouse.v1 import job_state_pb2, training_job_pb2, training_service_pb2


ROUNDS = 5


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


# --- the pipeline's own capacity: a worker that emits as fast as it can ----------------------------
FIREHOSE_POINTS = 400_000
POINTS_PER_STEP = 8


def _firehose_worker(spec: dict, queue, cancel, shutdown) -> None:
    """A job's worker process (executors.LocalExecutor spawns it as it spawns run_job) whose "training" is
    emitting metric points through the worker's own queue wrapper and callbacks: a point per metric,
    POINTS_PER_STEP per step, and the trainer's stop check after each step (it sends what has
    lingered, worker.BoundedQueue)."""
    from trainhouse.training.worker import BoundedQueue, QueueCallbacks

    wrapped = BoundedQueue(queue, None)
    callbacks = QueueCallbacks(wrapped, cancel, shutdown, spec["job_dir"], watch_parent=False)
    wrapped.put(("event", "log", {"message": f"first point at {time.time()!r}"}))
    t0 = time.perf_counter()
    for step in range(FIREHOSE_POINTS // POINTS_PER_STEP):
        for k in range(POINTS_PER_STEP):
            callbacks.on_event("metric", {"name": f"m{k}", "value": 1.0 / (step + 1), "epoch": 0, "step": step})
        callbacks.should_stop()
    wrapped.put(("event", "log", {"message": f"emitted {time.perf_counter() - t0!r}"}))
    wrapped.put(("stopped", {"metrics": {}}))


def firehose_rate() -> tuple[float, float]:
    """(points/s stored, points/s the worker emitted) for FIREHOSE_POINTS through the real worker
    queue, runner pump, event hub and store: from the worker's first point until DuckDB has all."""
    import json

    from trainhouse.common.config import TrainingSettings
    from trainhouse.training.events import EventHub
    from trainhouse.training.runner import JobRunner
    from trainhouse.training.executors import LocalExecutor
    from trainhouse.training.store import JobStore

    with tempfile.TemporaryDirectory() as tmp:
        store = JobStore(Path(tmp) / "training.duckdb")
        hub = EventHub(store)
        settings = TrainingSettings(max_running_per_account=1, max_running_total=1, rpc_timeout_s=30.0)
        runner = JobRunner(store, hub, Path(tmp), settings, register=lambda *a: ("", None),
                           executor=LocalExecutor(_firehose_worker))
        store.create_job({"job_id": "firehose", "agent_id": "bench", "account_id": "bench",
                          "method": "supervised", "state": "queued",
                          "config_json": json.dumps({"resolved": {}})})
        from trainhouse.common.heap import freeze_startup_objects
        freeze_startup_objects()  # as the TrainingService does before it serves (common/server.py)
        runner.start()
        runner.kick()
        while "firehose" not in runner.running:
            time.sleep(0.01)
        runner.running["firehose"].finished.wait(600)
        store.flush()
        stored_at = time.time()
        logs = [json.loads(row[0])["message"] for row in store.db.query(
            "SELECT payload_json FROM job_events WHERE job_id = 'firehose' AND kind = 'log' ORDER BY sequence")]
        first = float(logs[0].split()[-1])
        emitted = float(logs[1].split()[-1])
        points = store.db.query("SELECT count(*) FROM metrics WHERE job_id = 'firehose'")[0][0]
        runner.shutdown(1)
        store.close()
        return points / (stored_at - first), points / emitted


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
    firehose = [firehose_rate() for _ in range(ROUNDS)]
    stored, emitted = max(firehose)
    print(f"events on: {on_points:,} metric points stored over {on_s:.2f} s of training, {on_rate:,.0f} samples/s")
    print(f"events off: {off_points:,} metric points stored, {off_s:.2f} s of training, {off_rate:,.0f} samples/s")
    result("metric points stored per second of a training job (worker -> service -> DuckDB)", on_points / on_s,
           "points/s", batched, "store batched append (500 per log record, until in DuckDB)")
    print(f"firehose worker: emitted {emitted:,.0f} points/s; stored (first point until all in DuckDB) "
          + ", ".join(f"{rate:,.0f}" for rate, _ in firehose) + " points/s")
    result(f"metric points stored per second from a job's worker emitting {FIREHOSE_POINTS:,} points as fast as "
           "it can (worker queue -> pump -> event log -> DuckDB)", stored, "points/s", batched,
           "store batched append (500 per log record, until in DuckDB)")
    result("training job samples/s with event storage on", on_rate, "samples/s", off_rate,
           "same job, TRAINHOUSE_TRAINING_PROGRESS_EVENTS=false")


if __name__ == "__main__":
    main()
