"""Run every bench script and write one report (bench/RESULTS.md) with their figures.

Each figure in it sits next to the baseline measured in the same run (see each script's
docstring). These are for people, not assertions: the machine may be shared and noisy.
"""
from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    ("trainer: NumPy vs PyTorch CPU", "trainer.py", []),
    ("serving: Predict via gRPC / REST vs bare ONNX Runtime", "serving.py", []),
    ("serving: Predict throughput at 1/4/16 clients vs bare uvicorn/grpcio + ORT", "serving_throughput.py", []),
    ("unary RPC vs bare grpcio", "rpc_overhead.py", []),
    ("event latency: trainer -> WatchJob subscriber", "event_latency.py", []),
    ("DuckDB metrics: append and 1M-point history", "metrics_store.py", []),
    ("metrics ingestion while a real job trains (event storage on vs off)", "metrics_ingestion.py", []),
    ("any unary call while CPU-bound processes outnumber the cores", "core_contention.py", []),
    ("TrainingService while small jobs stream events", "training_under_load.py", []),
    ("gateway requests/s", "gateway_throughput.py", []),
    ("/ui job page first screen on a 1M-point job (headless Chromium)", "first_screen.py", []),
    ("`trainhouse watch` first screen on a 1M-event job", "watch_first_screen.py", []),
    ("synthetic data generation", "data_generation.py", []),
    ("label check: flagged vs known flips (HWU64)", "label_issues.py", []),
    ("GRPO builtin environment: parallel tool calls of a rollout round", "grpo_tool_calls.py", []),
]


def main() -> int:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    lines = [f"# Benchmarks ({dt.date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} cores, "
             f"load {os.getloadavg()[0]:.1f} at start)", ""]
    summary = ["| bench | figure | baseline | ratio |", "|---|---|---|---|"]
    failed = 0
    for title, script, args in SCRIPTS:
        print(f"== {title} ({script})", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(HERE / script), *args], env=env, cwd=HERE.parent,
                              capture_output=True, text=True)
        took = time.perf_counter() - t0
        out = proc.stdout.strip()
        print(out, flush=True)
        if proc.returncode != 0:
            failed += 1
            print(proc.stderr[-2000:], file=sys.stderr)
        lines += [f"## {title}", "", f"`bench/{script}`, {took:.0f} s, exit {proc.returncode}", "", "```", out, "```", ""]
        for line in out.splitlines():
            if line.startswith("RESULT |"):
                _, name, value, baseline, ratio = [p.strip() for p in line.split("|")]
                summary.append(f"| {name} | {value} | {baseline} | {ratio.replace('ratio ', '')} |")
    report = "\n".join(lines[:2] + summary + [""] + lines[2:])
    (HERE / "RESULTS.md").write_text(report + "\n")
    print(f"\nwrote {HERE / 'RESULTS.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
