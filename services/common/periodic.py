"""Background work that runs every few seconds inside a service (auto-training checks, sweeps).

One daemon thread per loop, stopped with the service: `stop` wakes the wait at once, so a service
shuts down without waiting out an interval. The tick itself decides what a failure means; a tick
that raises anyway is logged and the loop goes on, since one bad round must not end the work.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from trainhouse.common.logs import log

logger = logging.getLogger("trainhouse.periodic")


class Periodic:
    def __init__(self, name: str, interval_s: float, tick: Callable[[], None]):
        self.name = name
        self.interval_s = interval_s
        self._tick = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._tick()
            except Exception as exc:
                log(logger, "background step failed", logging.WARNING, loop=self.name, error=str(exc))
