"""`trainhouse watch JOB` on a job whose history holds 1,000,000 events: time to the first screen.

A fresh stack's training.duckdb is seeded BEFORE the stack starts (the TrainingService is the
file's only writer once it runs), with SQL like bench/metrics_store.py: per job a jobs row (account
"default", the bootstrap admin token's account, so the stack's admin token sees it as its own) whose
last_sequence matches its job_events rows: status queued, status running, then metric events with an
epoch event every tenth of the history, and a last status event. Two kinds of job:

- completed (10/10 epochs): the first screen is the summary, so the figure is the time until the
  command exits;
- paused at epoch 6/10 (not terminal: the scheduler leaves it alone, and `watch` would follow it
  until it is resumed): the figure is the time until the first line saying "paused" (the job's
  current state) is printed; the watcher is then stopped.

Each is timed as the installed `trainhouse` console script in its own process (as a user runs it,
interpreter start-up included) over gRPC and over the gateway (--url, --token), next to the same
command on a job of 1,000 events (the baseline, same stack, same run). Over the gateway the HTTP
requests the command made are counted from the gateway's access log (one "request" line per
request, written when the response ends, in the stack's log dir), per job id, with their routes;
the stack sends SSE keep-alives every 0.5 s so a stream a stopped watcher had open is logged too. A
paused job's watcher is stopped as soon as its first screen is printed, so its count is the
requests made up to the first screen (the stream it opens next may or may not be in it).

    .venv/bin/python bench/watch_first_screen.py [--events 1000000] [--transport grpc,gateway]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import result

from trainhouse.launcher import Stack
from trainhouse.training.store import JobStore

CLI = str(Path(sys.executable).with_name("trainhouse"))
ACCOUNT = "default"  # gateway/tokens.py ensure_bootstrap: the admin token's account
EPOCHS = 10
SERVICES = ("training", "data", "evaluation", "registry")


def _status(state: str, terminal: bool, reason: str = "") -> str:
    return json.dumps({"state": state, "reason": reason, "message": "", "terminal": terminal})


def seed(store: JobStore, job_id: str, events: int, state: str, cursor0: int) -> int:
    """One job with `events` events ending in `state`; returns the last cursor used."""
    done = EPOCHS if state == "completed" else 6
    per = (events - 3) // done  # an epoch event every `per` events
    store.create_job({"job_id": job_id, "agent_id": "bench-watch", "account_id": ACCOUNT, "method": "supervised",
                      "state": state, "config_json": "{}", "current_epoch": done, "total_epochs": EPOCHS,
                      "metrics_json": json.dumps({"loss": 0.125, "accuracy": 0.875}), "train_examples": 100,
                      "validation_examples": 20, "status_reason": state})
    final = _status("completed", True, "completed") if state == "completed" else _status("paused", False,
                                                                                        "paused_by_user")
    store.db.execute(
        "INSERT INTO job_events SELECT ?, i, TIMESTAMP '2026-01-01' + to_milliseconds(i), "
        "CASE WHEN i <= 2 OR i = ? THEN 'status' WHEN (i - 2) % ? = 0 AND (i - 2) // ? <= ? THEN 'epoch' "
        "ELSE 'metric' END, "
        "CASE WHEN i = 1 THEN ? WHEN i = 2 THEN ? WHEN i = ? THEN ? "
        "WHEN (i - 2) % ? = 0 AND (i - 2) // ? <= ? THEN '{\"epoch\": ' || ((i - 2) // ?) || "
        f"', \"total_epochs\": {EPOCHS}, \"metrics\": {{\"loss\": ' || round(1.0 / i, 6) || ', \"accuracy\": 0.5}}}}' "
        "ELSE '{\"name\": \"loss\", \"value\": ' || round(1.0 / i, 6) || ', \"epoch\": ' || ((i - 2) // ?) || "
        "', \"step\": ' || i || '}' END, ? + i FROM range(1, ? + 1) t(i)",
        [job_id, events, per, per, done, _status("queued", False), _status("running", False), events, final,
         per, per, done, per, per, cursor0, events])
    store.db.execute("UPDATE jobs SET last_sequence = ?, start_time = TIMESTAMP '2026-01-01', "
                     "end_time = CASE WHEN state = 'completed' THEN TIMESTAMP '2026-01-02' END "
                     "WHERE job_id = ?", [events, job_id])
    return cursor0 + events


def time_watch(env: dict[str, str], job_id: str, via: list[str], marker: str | None) -> tuple[float, str]:
    """Seconds from spawning `trainhouse watch JOB` to its first screen: the first line holding
    `marker`, or (marker None) the command's exit; and the output up to then."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([CLI, "watch", job_id, *via], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    out = []
    try:
        for line in proc.stdout:
            out.append(line)
            if marker is not None and marker in line:
                return time.perf_counter() - t0, "".join(out)
        proc.wait(timeout=900)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"watch {job_id} exited {proc.returncode}: {proc.stderr.read()}")
        if marker is not None:
            raise SystemExit(f"watch {job_id} ended without printing {marker!r}: {''.join(out)}")
        return elapsed, "".join(out)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()


def requests_of(log: Path, job_id: str) -> collections.Counter:
    """The gateway's access-log lines for this job's routes, counted per route (query left out)."""
    found: collections.Counter = collections.Counter()
    for line in log.read_text(errors="replace").splitlines():
        if job_id not in line or '"request"' not in line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        path = str(rec.get("path", ""))
        if job_id in path:
            found[f"{rec.get('method')} {path.replace(job_id, '{job}')}"] += 1
    return found


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--baseline-events", type=int, default=1_000)
    ap.add_argument("--transport", default="grpc,gateway")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home, logs = Path(tmp) / "home", Path(tmp) / "logs"
        home.mkdir()
        t0 = time.perf_counter()
        store = JobStore(home / "training.duckdb")
        cursor = 0
        jobs = {}
        for state in ("completed", "paused"):
            for size, events in (("big", args.events), ("small", args.baseline_events)):
                job_id = f"job-watch-{state}-{size}"
                cursor = seed(store, job_id, events, state, cursor)
                jobs[(state, size)] = job_id
        store.close()
        print(f"seeded {len(jobs)} jobs ({args.events:,} / {args.baseline_events:,} events) in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        # Keep-alives every 0.5 s: a stopped watcher's open stream is noticed (and logged) at the next one.
        stack = Stack(home=home, log_dir=logs, extra_env={"TRAINHOUSE_SSE_KEEPALIVE_S": "0.5"}).start()
        try:
            token = stack.admin_token_file.read_text().strip()
            env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINHOUSE_")}
            env["TRAINHOUSE_HOME"] = str(home)
            for name in SERVICES:
                env[f"TRAINHOUSE_{name.upper()}_ADDR"] = stack.address(name)
            env["TRAINHOUSE_TOKEN"] = token
            env["COLUMNS"] = "200"
            for transport in args.transport.split(","):
                via = ["--url", stack.gateway_url] if transport == "gateway" else []
                for state, marker, what in (("completed", None, "summary (exit)"),
                                            ("paused", ": paused", "first line with its state")):
                    figures = {}
                    for size in ("small", "big"):
                        job_id = jobs[(state, size)]
                        elapsed, out = time_watch(env, job_id, via, marker)
                        figures[size] = elapsed
                        first = out.strip().splitlines()[0] if out.strip() else ""
                        print(f"  {transport} {job_id}: {elapsed:.2f} s, {len(out.splitlines())} lines, "
                              f"first: {first[:120]!r}", flush=True)
                        if transport == "gateway":
                            time.sleep(1.5)  # a stopped watcher's stream is logged when the gateway sees it go
                            counted = requests_of(logs / "gateway.log", job_id)
                            figures[f"{size}-requests"] = sum(counted.values())
                            print(f"    HTTP requests: {sum(counted.values())} {dict(counted)}", flush=True)
                    result(f"watch over {transport}, {state} job of {args.events:,} events: {what}", figures["big"],
                           "s", figures["small"], f"{args.baseline_events:,}-event job")
                    if transport == "gateway":
                        result(f"watch over gateway, {state} job of {args.events:,} events: HTTP requests",
                               figures["big-requests"], "requests", figures["small-requests"],
                               f"{args.baseline_events:,}-event job")
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
