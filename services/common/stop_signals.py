"""Waiting for SIGTERM / SIGINT without taking a lock inside the signal handler.

Why: Ctrl-C on `trainhouse up` sends SIGINT to every process of the group, and the launcher then
sends SIGTERM; the two often arrive together. Python runs a handler in the main thread between
bytecodes, so the second handler can interrupt the first. A handler that calls
``threading.Event.set()`` takes the Event's (non-reentrant) lock; if it is interrupted while
holding it, the second handler waits for that lock forever. That was a real hang: a service's
py-spy dump showed ``_on_signal -> Event.set -> notify_all -> _on_signal -> Event.set ->
Condition.__enter__``, and the launcher killed it after 30 s. The handler here only appends to a
list; the main thread polls.
"""
from __future__ import annotations

import signal
import time

POLL_S = 0.05


class StopSignals:
    """Installs handlers for ``signals``; ``received`` lists what arrived, in order."""

    def __init__(self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)):
        self.received: list[int] = []
        for sig in signals:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.received.append(signum)  # no lock, no I/O (module doc)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Until a signal arrived (True) or ``timeout_s`` passed (False)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self.received:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)
        return True

    def names(self) -> str:
        return ", ".join(signal.Signals(s).name for s in self.received)
