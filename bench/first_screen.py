"""The dashboard's first screen on a job with 1M metric points (issue #20): time and requests.

A fresh stack's training.duckdb is seeded BEFORE the stack starts (the TrainingService is the
file's only writer once it runs) with two completed jobs of the stack admin's account
("default"): one with 1,000,000 metric points (and their job_events rows, as a real job's events
would have written them) and the baseline, the same shape with 1,000 points. A real headless
Chromium (Playwright, as tests/gateway/test_ui.py) opens /ui#/job/<id> and waits until the first
screen is complete: the page sets body[data-state="ready"] after it drew the job card and both
charts, and both charts must hold their series. Figures: the time from navigation to that point
and the HTTP requests the page made (all of them, and those for the metric history), the median
of ROUNDS alternating loads of each job.

The 1M-point job's points: four charted names in turn (loss, accuracy, validation_loss,
validation_accuracy), 250 epochs of 1000 points of each name, steps i // 4.
"""
from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from _common import result

from trainhouse.launcher import Stack
from trainhouse.training.store import JobStore

BIG, SMALL = 1_000_000, 1_000
ROUNDS = 3
NAMES = ("loss", "accuracy", "validation_loss", "validation_accuracy")
ACCOUNT = "default"  # the account of the stack's admin token (gateway/tokens.py ensure_bootstrap)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def seed(home: Path, jobs: dict[str, int]) -> None:
    """Completed jobs with ``points`` metric points each (and a metric event per point), written
    with SQL in bulk as bench/metrics_store.py does, into the file the TrainingService will open."""
    home.mkdir(parents=True, exist_ok=True)
    store = JobStore(home / "training.duckdb")
    cursor = 0
    names = "[" + ", ".join(f"'{n}'" for n in NAMES) + "]"
    for job_id, points in jobs.items():
        per_epoch = max(len(NAMES), points // 250)  # 250 epochs (fewer for a short job)
        epochs = -(-points // per_epoch)
        last = {n: 0.0 for n in NAMES}
        store.create_job({"job_id": job_id, "agent_id": "bench-agent", "account_id": ACCOUNT, "method": "supervised",
                          "state": "completed", "config_json": json.dumps({"epochs": epochs}),
                          "current_epoch": epochs, "total_epochs": epochs, "current_step": points // 4,
                          "total_steps": points // 4, "metrics_json": json.dumps(last),
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
    store.db.execute("UPDATE jobs SET start_time = TIMESTAMP '2026-01-01', end_time = TIMESTAMP '2026-01-02'")
    store.close()


def first_screen(page, url: str) -> tuple[float, int, int]:  # noqa: ANN001
    """Seconds until the job page's first screen is complete, requests made, of which metric history."""
    requests: list[str] = []
    listener = lambda r: requests.append(r.url)  # noqa: E731
    page.on("request", listener)
    page.goto("about:blank")
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_selector('body[data-state="ready"] svg[data-chart="loss"] path.series', timeout=600_000)
    took = time.perf_counter() - t0
    page.remove_listener("request", listener)
    drawn = page.eval_on_selector_all("path.series", "ps => ps.map(p => +p.dataset.points)")
    assert len(drawn) == 4 and all(n > 0 for n in drawn), drawn
    return took, len(requests), sum("/metrics" in u for u in requests)


def main() -> None:
    if CHROMIUM is None:
        sys.exit("first_screen.py needs Chromium (apt-get install chromium) for Playwright")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        t0 = time.perf_counter()
        seed(home, {"job-1m": BIG, "job-1k": SMALL})
        print(f"seeded {BIG + SMALL:,} points in {time.perf_counter() - t0:.1f} s", flush=True)
        stack = Stack(home=home, log_dir=Path(tmp) / "logs").start()
        try:
            token = stack.admin_token_file.read_text().strip()
            figures: dict[str, list[tuple[float, int, int]]] = {"job-1m": [], "job-1k": []}
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                for _ in range(ROUNDS):  # alternating, a fresh page (no cache) each load
                    for job in figures:
                        context = browser.new_context()
                        page = context.new_page()
                        figures[job].append(first_screen(page, f"{stack.gateway_url}/ui#/job/{job}?token={quote(token)}"))
                        context.close()
                browser.close()
            for job, runs in figures.items():
                print(f"{job}: " + ", ".join(f"{s:.2f} s / {n} requests ({m} metrics)" for s, n, m in runs))
            big, small = figures["job-1m"], figures["job-1k"]
            result("/ui job page first screen (job card + charts), 1M-point job",
                   statistics.median(s for s, _, _ in big), "s", statistics.median(s for s, _, _ in small),
                   "same page, 1k-point job")
            result("/ui job page first screen: HTTP requests, 1M-point job", statistics.median(n for _, n, _ in big),
                   "requests", statistics.median(n for _, n, _ in small), "same page, 1k-point job")
            result("/ui job page first screen: metric-history requests, 1M-point job",
                   statistics.median(m for _, _, m in big), "requests", statistics.median(m for _, _, m in small),
                   "same page, 1k-point job")

            # ---- `trainhouse watch` on the same jobs (issue #20): NOT MEASURED HERE YET ----------------
            # To be added by the engineer who owns services/cli/: the time until `trainhouse watch job-1m`
            # (run against stack.gateway_url with `token`) shows its first screen and the requests it
            # made, next to the same for job-1k, printed as RESULT lines like the ones above. The
            # stack and the two seeded jobs are live at this point.
            # ---------------------------------------------------------------------------------------
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
