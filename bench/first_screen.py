"""The dashboard's first screen on a job with 1M metric points (issue #20): time and requests.

A fresh stack's training.duckdb is seeded BEFORE the stack starts (the TrainingService is the
file's only writer once it runs; tests/long_history.py) with two completed jobs of the stack
admin's account ("default"): one with 1,000,000 metric points (and their job_events rows, as a
real job's events would have written them) and the baseline, the same shape with 1,000 points. A real headless
Chromium (Playwright, as tests/gateway/test_ui.py) opens /ui#/job/<id> and waits until the first
screen is complete: the page sets body[data-state="ready"] after it drew the job card and both
charts, and both charts must hold their series. Figures: the time from navigation to that point
and the HTTP requests the page made (all of them, and those for the metric history), the median
of ROUNDS alternating loads of each job.

The 1M-point job's points: four charted names in turn (loss, accuracy, validation_loss,
validation_accuracy), 250 epochs of 1000 points of each name, steps i // 4.
"""
from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from _common import result

from tests.long_history import seed_metric_histories
from trainhouse.launcher import Stack

BIG, SMALL = 1_000_000, 1_000
ROUNDS = 3
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


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
        seed_metric_histories(home, {"job-1m": BIG, "job-1k": SMALL})
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

            # `trainhouse watch` on 1M-event jobs: bench/watch_first_screen.py (its own seeded stack).
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
