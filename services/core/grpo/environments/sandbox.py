"""Run a Python implementation against test cases in a separate, resource-limited interpreter.

What it does: the implementation's source and the cases go as JSON into a fresh temporary
directory; ``python -I -S runner.py`` runs there (isolated mode: no user site-packages, no
``PYTHON*`` variables, the script's directory not on ``sys.path``; ``-S``: no site module), with
an empty environment (the worker's variables, secrets included, are not inherited), its own
session (a timeout kills the whole process group), and ``resource.setrlimit`` limits that the
runner sets on itself before it compiles the candidate's code: CPU seconds (RLIMIT_CPU), address
space (RLIMIT_AS), file size (RLIMIT_FSIZE, 1 MiB), open files (RLIMIT_NOFILE, 64) and no core
dumps (the candidate could raise a soft limit up to its hard limit, which is set equal, never
above); the parent enforces a wall-time timeout, kills the child's whole session afterwards
(processes it left behind included), and parses at most 256 KiB of what the child printed (all of
it is read into memory: a child printing without end is stopped by the wall-time limit, not by a
size limit). The child times each call with ``time.perf_counter`` and reports ``execution_time_ms`` (the sum over the cases, interpreter start-up excluded), pass/fail per case
and the first failures.

What it does NOT do: this is not a security boundary. The code runs as the worker's user, can read
every file that user can read, can open network connections, can start processes (RLIMIT_NPROC
is per user and therefore not set), and can use any syscall. It is meant for the reference
environment's own library of implementations, i.e. code the operator chose; running untrusted
code needs a real sandbox (a container or VM with no network, seccomp, a read-only file system).
See docs/grpo_environments.md.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Sequence

MAX_OUTPUT_BYTES = 256 * 1024

RUNNER = r'''
import json, resource, sys, time
payload = json.load(open("payload.json", encoding="utf-8"))
# The limits are set here, before the candidate's code is even compiled (not in a preexec_fn:
# that is unsafe when the worker runs tool calls on several threads).
limits = payload["limits"]
resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_s"], limits["cpu_s"] + 1))
resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"], limits["memory_bytes"]))
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
namespace = {"__name__": "candidate"}
try:
    exec(compile(payload["source"], "candidate.py", "exec"), namespace)
    fn = namespace[payload["function"]]
except BaseException as exc:
    print(json.dumps({"loaded": False, "error": f"{type(exc).__name__}: {exc}"[:500]}))
    sys.exit(0)

def norm(v):
    if isinstance(v, tuple):
        v = list(v)
    if isinstance(v, list):
        return [norm(x) for x in v]
    return v

results, total = [], 0.0
for i, case in enumerate(payload["cases"]):
    args = case["args"]
    t0 = time.perf_counter()
    try:
        got = fn(*args)
        err = None
    except BaseException as exc:
        got, err = None, f"{type(exc).__name__}: {exc}"[:300]
    total += time.perf_counter() - t0
    ok = err is None and norm(got) == case["expected"]
    results.append({"case": i, "passed": ok, "error": err,
                    "got": None if ok or err else repr(got)[:200]})
print(json.dumps({"loaded": True, "results": results, "execution_time_ms": total * 1000.0}))
'''


@dataclass(frozen=True)
class SandboxLimits:
    wall_s: float = 5.0
    cpu_s: int = 2
    memory_mb: int = 512


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the run's whole session (the candidate may have started processes), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def run_cases(source: str, function: str, cases: Sequence[dict[str, Any]], limits: SandboxLimits) -> dict[str, Any]:
    """Run ``function`` of ``source`` on ``cases`` ([{args, expected}]) in a limited subprocess.

    Returns {completed, test_passed, tests_passed, tests_total, execution_time_ms, wall_ms,
    failures, error}. ``completed`` is False when the run did not report (timeout, crash, limit hit,
    source that does not load); then ``error`` says why and ``test_passed`` is False.
    """
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="trainhouse-run-") as tmp:
        with open(os.path.join(tmp, "payload.json"), "w", encoding="utf-8") as f:
            json.dump({"source": source, "function": function, "cases": list(cases),
                       "limits": {"cpu_s": limits.cpu_s, "memory_bytes": limits.memory_mb * 1024 * 1024}}, f)
        with open(os.path.join(tmp, "runner.py"), "w", encoding="utf-8") as f:
            f.write(RUNNER)
        out: dict[str, Any] = {"completed": False, "test_passed": False, "tests_passed": 0,
                               "tests_total": len(cases), "failures": []}
        proc = subprocess.Popen([sys.executable, "-I", "-S", "runner.py"], cwd=tmp, env={"LANG": "C.UTF-8"},
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            stdout_bytes, stderr_bytes = proc.communicate(timeout=limits.wall_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out.update(error=f"timed out after {limits.wall_s:g} s (wall time)",
                       wall_ms=(time.perf_counter() - t0) * 1000.0)
            return out
        finally:
            if proc.poll() is None:
                _kill_group(proc)
        try:  # processes the candidate started and left behind
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        out["wall_ms"] = (time.perf_counter() - t0) * 1000.0
        stdout = stdout_bytes[:MAX_OUTPUT_BYTES].decode("utf-8", "replace").strip().splitlines()
        report = None
        if stdout:
            try:
                report = json.loads(stdout[-1])
            except ValueError:
                report = None
        if proc.returncode != 0 or not isinstance(report, dict):
            signal_note = f" (signal {-proc.returncode})" if proc.returncode < 0 else ""
            stderr = stderr_bytes[-400:].decode("utf-8", "replace").strip()
            out["error"] = (f"the run exited with status {proc.returncode}{signal_note}"
                            + (f": {stderr}" if stderr else "") + " (CPU or memory limit, or a crash)")
            return out
        if not report.get("loaded"):
            out["error"] = f"the implementation does not load: {report.get('error')}"
            return out
        results = report["results"]
        passed = sum(1 for r in results if r["passed"])
        out.update(completed=True, tests_passed=passed, test_passed=passed == len(cases),
                   execution_time_ms=float(report["execution_time_ms"]),
                   failures=[r for r in results if not r["passed"]][:3], error=None)
        return out
