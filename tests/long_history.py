"""Jobs with long metric histories, written into a TrainingService's DuckDB file before its stack
starts (the service is the file's only writer once it runs): a real job would need hours of
training for 1M points. Used by the sampled-history tests and bench/first_screen.py."""
from __future__ import annotations

import json
from pathlib import Path

from trainhouse.training.store import JobStore

# The names the dashboard charts, recorded in turn: point i is NAMES[i % 4], step i // 4.
NAMES = ("loss", "accuracy", "validation_loss", "validation_accuracy")
ACCOUNT = "default"  # the account of a stack's admin token (gateway/tokens.py ensure_bootstrap)
EPOCHS = 250


def seed_metric_histories(home: Path, jobs: dict[str, int]) -> None:
    """Completed jobs of ACCOUNT with ``points`` metric points each over (up to) EPOCHS epochs, and a
    metric event per point as a real job's events would have stored them, written with SQL in
    bulk (as bench/metrics_store.py does) into ``home``/training.duckdb."""
    home.mkdir(parents=True, exist_ok=True)
    store = JobStore(home / "training.duckdb")
    try:
        names = "[" + ", ".join(f"'{n}'" for n in NAMES) + "]"
        cursor = int(store.db.query("SELECT coalesce(max(cursor), 0) FROM job_events")[0][0])
        for job_id, points in jobs.items():
            per_epoch = max(len(NAMES), points // EPOCHS)
            epochs = -(-points // per_epoch)
            store.create_job({"job_id": job_id, "agent_id": "long-history-agent", "account_id": ACCOUNT,
                              "method": "supervised", "state": "completed",
                              "config_json": json.dumps({"epochs": epochs}), "current_epoch": epochs,
                              "total_epochs": epochs, "current_step": points // 4, "total_steps": points // 4,
                              "last_sequence": points, "example_count": 100, "train_examples": 80,
                              "validation_examples": 20})
            store.db.execute(
                "INSERT INTO metrics SELECT ?, i + 1, "
                f"{names}[(i % 4) + 1], 1.0 / (1 + i / 1000.0) + random() * 0.01, 1 + i // ?, i // 4, "
                "TIMESTAMP '2026-01-01' + INTERVAL (i) MILLISECOND FROM range(?) t(i)", [job_id, per_epoch, points])
            store.db.execute(
                "INSERT INTO job_events SELECT job_id, sequence, time, 'metric', "
                "json_object('name', name, 'value', value, 'epoch', epoch, 'step', step), ? + sequence "
                "FROM metrics WHERE job_id = ?", [cursor, job_id])
            cursor += points
            store.db.execute("UPDATE jobs SET start_time = TIMESTAMP '2026-01-01', "
                             "end_time = TIMESTAMP '2026-01-01' + INTERVAL (?) MILLISECOND WHERE job_id = ?",
                             [points, job_id])
    finally:
        store.close()
