"""Job rows served from memory: GetJob and every watcher poll read a job's row without DuckDB.

A DuckDB point query costs ~1 ms of Python and engine work per call (profiled: 80% of GetJob's
server time), and a running job's row is read on every GetJob, by every WatchJob loop and by the
runner, while it changes only when the job's own events are stored. The TrainingService is the
only writer of its file, and every write of the `jobs` table goes through the JobStore methods
named in WRITERS (append_event reaches append_event_groups through append_events), so
the cache wraps exactly those on the store instance and drops a job's row after each of its writes
commits, except for event appends: they hand the exact column values they wrote to `apply`, which
updates the cached row, so a streaming job's GetJob stays a memory read (it was a DuckDB read on
nearly every call, since its row changed with every event batch).

Races: a reader notes the job's generation before it queries and keeps what it read only if no
write of that job finished meanwhile (the writer bumps the generation after its commit, under the
same lock), so a row read before a commit is never cached after it. Rows are kept unfiltered; the
caller's account is checked here exactly as the store's SQL does (another account's job is
NOT_FOUND). tests/services/test_hot_jobs.py checks that every JobStore method writing `jobs` is
wrapped, so a new write path cannot serve stale rows unnoticed.
"""
from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from trainhouse.core.errors import NotFound

# Methods of JobStore that write the jobs table, with how each names its job.
WRITERS: dict[str, Callable[..., list[str | None]]] = {
    "create_job": lambda row, *a, **k: [row.get("job_id")],
    "update_job": lambda job_id, *a, **k: [job_id],
    "append_events": lambda job_id, *a, **k: [job_id],
    # the event hub's group commit (events.py): every job of the group
    "append_event_groups": lambda groups, *a, **k: [job_id for job_id, _ in groups],
}
# Writers whose committed column values reach HotJobs.apply (JobStore.jobs_written): a cached row
# is updated in place rather than dropped, and dropped only when the write fails.
WRITTEN_THROUGH = {"append_event_groups"}
MAX_ROWS = 4096


class HotJobs:
    """A read-through cache of job rows installed on one JobStore instance."""

    def __init__(self, store: Any, max_rows: int = MAX_ROWS):
        self.store = store
        self.max_rows = max_rows
        self._rows: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._generation: dict[str, int] = {}
        self._epoch = 0
        self._lock = threading.Lock()
        self._read = store.get_job
        self.hits = 0
        self.misses = 0

    @classmethod
    def install(cls, store: Any, max_rows: int = MAX_ROWS) -> "HotJobs":
        """Route the store's get_job through the cache and its job writes through invalidation."""
        hot = cls(store, max_rows)
        for name, job_of in WRITERS.items():
            setattr(store, name, hot._invalidating(getattr(store, name), job_of, name in WRITTEN_THROUGH))
        store.get_job = hot.get_job
        store.jobs_written = hot.apply
        return hot

    def _invalidating(self, write: Callable[..., Any], jobs_of: Callable[..., list[str | None]],
                      written_through: bool = False) -> Callable[..., Any]:
        @functools.wraps(write)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            job_ids = jobs_of(*args, **kwargs)
            ok = False
            try:
                result = write(*args, **kwargs)
                ok = True
                return result
            finally:  # committed or not: the next read goes to the file (unless apply() had the values)
                if not (ok and written_through):
                    for job_id in job_ids:
                        self.forget(job_id)
        return wrapped

    def apply(self, written: dict[str, dict[str, Any]]) -> None:
        """A commit's exact column values: cached rows take them; reads in flight do not cache."""
        with self._lock:
            for job_id, columns in written.items():
                self._generation[job_id] = self._generation.get(job_id, 0) + 1
                row = self._rows.get(job_id)
                if row is not None:  # a new dict: a reader copying the old one sees it whole
                    self._rows[job_id] = {**row, **columns}

    def forget(self, job_id: str | None) -> None:
        with self._lock:
            if job_id is None:
                self._rows.clear()
                self._epoch += 1
                return
            self._rows.pop(job_id, None)
            self._generation[job_id] = self._generation.get(job_id, 0) + 1

    def get_job(self, job_id: str, visible: str | None = None) -> dict[str, Any]:
        """Same contract as JobStore.get_job: the row, NOT_FOUND for a missing or another account's job."""
        with self._lock:
            row = self._rows.get(job_id)
            if row is not None:
                self._rows.move_to_end(job_id)
                self.hits += 1
            generation = (self._epoch, self._generation.get(job_id, 0))
        if row is None:
            row = self._read(job_id)  # unfiltered: the account is checked below, for every caller
            with self._lock:
                self.misses += 1
                if (self._epoch, self._generation.get(job_id, 0)) == generation:
                    self._rows[job_id] = row
                    if len(self._rows) > self.max_rows:
                        self._rows.popitem(last=False)
                if len(self._generation) > 4 * self.max_rows:
                    # Generations only matter while a read is in flight: forget them all and start a
                    # new epoch, so reads in flight now do not cache what they read.
                    self._generation.clear()
                    self._epoch += 1
        if visible is not None and row.get("account_id") != visible:
            raise NotFound("job", job_id)
        return dict(row)


class FinishedAnswers:
    """GetJob's answer for a job that has ended, built once per row content.

    A finished job's message depends on its row only (no estimate from the clock, which a running
    or queued job's has), so the answer built for one exact row is the answer for that row until
    any of its columns changes: the key is the whole row. Profiled: building the message (the
    config's JSON, the Struct, the timestamps) was most of GetJob's remaining handler time. The
    cached messages are shared: callers send them and never change them."""

    def __init__(self, max_rows: int = 1024):
        self.max_rows = max_rows
        self._answers: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, row: dict[str, Any], build: Callable[[dict[str, Any]], Any]) -> Any:
        key = tuple(row.items())
        try:
            hash(key)
        except TypeError:  # a column of a type that cannot key a dict: answer without keeping it
            return build(row)
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
                return answer
        answer = build(row)
        with self._lock:
            self._answers[key] = answer
            if len(self._answers) > self.max_rows:
                self._answers.popitem(last=False)
        return answer
