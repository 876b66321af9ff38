"""A process stops on SIGINT and SIGTERM arriving together (Ctrl-C on `trainhouse up` sends SIGINT
to the whole process group, then the launcher sends SIGTERM): the handler takes no lock, so a
second signal interrupting the first handler cannot deadlock the process (services/common/stop_signals.py)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

WAITER = textwrap.dedent("""
    import sys, threading
    from trainhouse.common.stop_signals import StopSignals
    if sys.argv[1] == "event":  # what the services did before: a handler that takes the Event's lock
        import signal
        stopping = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopping.set())
        print("ready", flush=True)
        while not stopping.wait(0.5):
            pass
    else:
        stop = StopSignals()
        print("ready", flush=True)
        stop.wait()
    print("stopped", flush=True)
    import os; os._exit(0)  # (the burst goes on arriving)
""")


def _burst(kind: str, signals: int = 3000) -> bool:
    """Whether a process waiting the ``kind`` way stops within 10 s of a burst of both signals."""
    proc = subprocess.Popen([sys.executable, "-c", WAITER, kind], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        for i in range(signals):
            try:
                os.kill(proc.pid, signal.SIGINT if i % 2 else signal.SIGTERM)
            except ProcessLookupError:
                break
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return proc.poll() is not None
    finally:
        proc.kill()
        proc.wait()


def test_both_signals_together_stop_the_process():
    for _ in range(5):
        assert _burst("stop_signals")
