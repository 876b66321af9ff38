"""Keep what a process built at start-up out of the cyclic garbage collector's full scans.

A service imports grpc, protobuf, NumPy, DuckDB and its own modules (~120k tracked objects in
the TrainingService) and then runs for days; each full (generation 2) collection scanned all of
them again: 55 ms on an idle machine, 60-150 ms while jobs trained, during which every thread
of the process waited for the GIL (the GetJob and event-stream tails in README "Benchmarks").
Freezing moves everything alive at that point to a permanent generation the collector skips;
objects created later are collected as before. The same holds for a training worker's data
and model, built once before its loop; a worker gives them back to the collector when the job
ends (``frozen_during``), since a Ray worker process runs job after job and a finished job's
reference cycles must still be collectable there.
"""
from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


def freeze_startup_objects() -> int:
    """Collect the start-up garbage, then freeze what is left; the number of objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


@contextlib.contextmanager
def frozen_during() -> Iterator[int]:
    """Freeze what exists now for the duration of the block, then unfreeze it."""
    count = freeze_startup_objects()
    try:
        yield count
    finally:
        gc.unfreeze()
