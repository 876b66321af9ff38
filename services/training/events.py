"""Append job events and let any number of watchers follow them live.

Appends go through the store (durable first: in its event log, event_log.py), then wake the
watchers; a watcher reads from the store, so a late or reconnecting subscriber sees the same
ordered history as a live one.

Live delivery does not read the store back: after each commit the hub keeps the committed rows in
a short in-memory tail per job (the most recent TAIL_EVENTS events of the TAIL_JOBS most recently
written jobs), and a watcher that is caught up takes its next events from there when they follow
its last sequence without a gap; otherwise (a late subscriber, an evicted tail, two appends
published out of order) it reads the store as before. A wake-up caused by another job's append
costs a dictionary lookup instead of two DuckDB queries. The same holds for WatchAllEvents (the
gateway's subscription to every job): the hub keeps the last RECENT_EVENTS committed rows of all jobs
in cursor order, complete above a known cursor, and a subscriber past that cursor is answered from
memory.

Group commit: appends from several threads (one event pump per running job, plus status changes)
queue up; the append at the head of the queue commits everything queued behind it as ONE
log record (JobStore.append_event_groups: one fsync) and then publishes the rows, while the others
wait for it, as a database's group commit does. While N jobs stream, a commit's cost is paid once
per group instead of once per job. Because one group commits and
publishes at a time, rows reach the in-memory tails in cursor order.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from typing import Any

from trainhouse.training.store import TERMINAL_STATES, JobStore

TAIL_EVENTS = 2000
TAIL_JOBS = 64
RECENT_EVENTS = 4000  # all jobs' latest committed rows, for WatchAllEvents
GROUP_EVENTS = 5000  # at most this many events per group commit (a batch is never split)
PAGE = 500  # rows a catching-up reader takes from DuckDB at a time


class _Append:
    """One caller's batch waiting in the group-commit queue."""

    __slots__ = ("job_id", "events", "rows", "error", "done")

    def __init__(self, job_id: str, events: list[tuple[str, dict[str, Any], dict[str, Any]]]):
        self.job_id, self.events = job_id, events
        self.rows: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self.done = False


def _event(row: dict[str, Any]) -> dict[str, Any]:
    return {"sequence": row["sequence"], "time": row["time"], "kind": row["kind"],
            "payload": json.loads(row["payload_json"]), "cursor": row["cursor"],
            "agent_id": row["agent_id"], "account_id": row["account_id"]}


class EventHub:
    def __init__(self, store: JobStore):
        self.store = store
        self._changed = threading.Condition()
        self._closed = False
        self._version = 0  # bumped on every append, so a watcher never sleeps through one
        self._tails: OrderedDict[str, deque] = OrderedDict()  # job -> its latest committed rows
        # (job_id, row) of every job in cursor order; complete for cursors above _recent_floor.
        self._recent: deque[tuple[str, dict[str, Any]]] = deque()
        self._recent_floor = store.last_cursor()
        self._queue: deque[_Append] = deque()
        self._queued = threading.Condition()

    def append(self, job_id: str, kind: str, payload: dict[str, Any],
               job_fields: dict[str, Any] | None = None) -> int:
        return self.append_many(job_id, [(kind, payload, job_fields or {})])

    def append_many(self, job_id: str, events: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> int:
        """Store the events durably (in one group commit with whatever else is queued), publish
        them to watchers, and return the job's last sequence."""
        if not events:
            return 0
        item = _Append(job_id, events)
        with self._queued:
            self._queue.append(item)
            while not item.done and self._queue[0] is not item:
                self._queued.wait()
            if not item.done:  # at the head: commit the group queued so far (ours first)
                group, size = [], 0
                for queued in self._queue:
                    if group and size + len(queued.events) > GROUP_EVENTS:
                        break
                    group.append(queued)
                    size += len(queued.events)
        if not item.done:
            try:
                self._commit(group)
            finally:
                with self._queued:
                    for _ in group:
                        queued = self._queue.popleft()
                        if not queued.rows and queued.error is None:  # the committer was interrupted
                            queued.error = RuntimeError("the events were not stored")
                        queued.done = True
                    self._queued.notify_all()
        if item.error is not None:
            raise item.error
        return item.rows[-1]["sequence"]

    def _commit(self, group: list[_Append]) -> None:
        """One transaction for the group; if it fails, each batch alone, so a bad one fails alone.
        Then publish in commit order (only the queue's head commits, so publications never cross)."""
        try:
            for queued, rows in zip(group, self.store.append_event_groups([(a.job_id, a.events) for a in group])):
                queued.rows = rows
        except Exception as exc:
            if len(group) == 1:
                group[0].error = exc
            else:
                for queued in group:
                    try:
                        queued.rows = self.store.append_event_groups([(queued.job_id, queued.events)])[0]
                    except Exception as one:
                        queued.error = one
        with self._changed:
            recent = self._recent
            for queued in group:
                if not queued.rows:
                    continue
                tail = self._tails.pop(queued.job_id, None) or deque(maxlen=TAIL_EVENTS)
                tail.extend(queued.rows)
                self._tails[queued.job_id] = tail  # most recently written last
                job_id, rows = queued.job_id, queued.rows
                if len(rows) >= RECENT_EVENTS:  # these rows alone fill it: all before them is dropped
                    dropped = rows[-RECENT_EVENTS - 1] if len(rows) > RECENT_EVENTS else (
                        recent[-1][1] if recent else None)
                    if dropped is not None:
                        self._recent_floor = dropped["cursor"]
                    recent.clear()
                    rows = rows[-RECENT_EVENTS:]
                recent.extend([(job_id, row) for row in rows])
            while len(self._tails) > TAIL_JOBS:
                self._tails.popitem(last=False)
            while len(recent) > RECENT_EVENTS:
                self._recent_floor = recent.popleft()[1]["cursor"]
            self._version += 1
            self._changed.notify_all()

    def _from_tail(self, job_id: str, after: int) -> list[dict[str, Any]] | None:
        """The committed rows after sequence ``after`` from memory ([] when there are none yet), or
        None when the tail cannot answer for certain (not held, or not contiguous from after + 1)."""
        with self._changed:
            tail = self._tails.get(job_id)
            if not tail or tail[0]["sequence"] > after + 1:
                return None
            if tail[-1]["sequence"] <= after:
                last = tail[-1]
                terminal = last["kind"] == "status" and json.loads(last["payload_json"]).get("terminal")
                # Caught up, unless the last event ended the job (the store then says whether to stop).
                return [] if last["sequence"] == after and not terminal else None
            rows = [r for r in tail if r["sequence"] > after]
        for expected, row in enumerate(rows, start=after + 1):
            if row["sequence"] != expected:
                return None
        return rows

    def status(self, job_id: str, state: str, reason: str = "", message: str = "",
               **job_fields: Any) -> int:
        terminal = state in TERMINAL_STATES
        payload = {"state": state, "reason": reason, "message": message, "terminal": terminal}
        return self.append(job_id, "status", payload, {"state": state, **job_fields})

    def close(self) -> None:
        """Wake every watcher so streams end promptly on shutdown."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def stored(self, job_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` stored events with sequence > after, oldest first (a page: never waits)."""
        return [_event(row) for row in self.store.events_after(job_id, after, limit)]

    def watch(self, job_id: str, after: int, alive: Callable[[], bool]) -> Iterator[dict[str, Any]]:
        """Yield stored events with sequence > after, then live ones, until the terminal status."""
        self.store.get_job(job_id)  # NOT_FOUND before the stream starts
        last = after
        while alive():
            with self._changed:
                seen = self._version
            batch = self._from_tail(job_id, last)
            if batch == []:  # caught up with the committed events; the last one was not terminal
                with self._changed:
                    if self._closed:
                        return
                    if self._version == seen:
                        self._changed.wait(timeout=1.0)
                continue
            if batch is None:
                batch = self.store.events_after(job_id, last)
            for row in batch:
                event = _event(row)
                yield event
                last = row["sequence"]
                # A terminal status ends the stream unless the job was resumed after it.
                if (event["kind"] == "status" and event["payload"].get("terminal")
                        and self.store.get_job(job_id)["last_sequence"] <= last):
                    return
            if batch:
                continue
            job = self.store.get_job(job_id)
            if job["state"] in TERMINAL_STATES and job["last_sequence"] <= last:
                return
            with self._changed:
                if self._closed:
                    return
                if self._version == seen:
                    self._changed.wait(timeout=1.0)

    def _recent_after(self, cursor: int, account_id: str, visible: str | None, kinds: tuple[str, ...] = (),
                      limit: int = PAGE) -> tuple[list[dict[str, Any]], int] | None:
        """``store.all_events_after`` answered from memory, with the cursor up to which every row was
        looked at (a filtered reader moves on past rows it skipped); None when the recent rows do
        not hold every committed row after ``cursor`` (it is below the oldest one kept)."""
        with self._changed:
            if cursor < self._recent_floor:
                return None
            newest = self._recent[-1][1]["cursor"] if self._recent else cursor
            out = []
            for job_id, row in reversed(self._recent):
                if row["cursor"] <= cursor:
                    break
                if (account_id and row["account_id"] != account_id) or (
                        visible is not None and row["account_id"] != visible) or (kinds and row["kind"] not in kinds):
                    continue
                out.append({**row, "job_id": job_id})
        out.reverse()
        if len(out) > limit:
            return out[:limit], out[limit - 1]["cursor"]
        return out, max(cursor, newest)

    def watch_all(self, after_cursor: int, account_id: str, alive: Callable[[], bool],
                  visible: str | None = None, kinds: tuple[str, ...] = ()) -> Iterator[tuple[str, dict]]:
        """Yield (job_id, event) for every job's events after the cursor, then live ones, until closed;
        only the jobs of account `visible` when given (a non-admin caller's), only events of `kinds`
        when given.

        A filtered reader moves its position past the rows it skipped, not only the ones it yielded:
        it stayed at its last match, the recent rows moved past it, and every commit of any job then
        sent it to DuckDB (a flush and a query per epoch of a streaming job, for a webhook follower
        that wants only status events)."""
        last = self.store.last_cursor() if after_cursor < 0 else after_cursor
        while alive():
            with self._changed:
                seen = self._version
            recent = self._recent_after(last, account_id, visible, kinds)
            if recent is None:
                head = self.store.last_cursor()  # every row up to here is visible to the query below
                batch = self.store.all_events_after(last, account_id, visible=visible, kinds=kinds, limit=PAGE)
                scanned = head if len(batch) < PAGE else batch[-1]["cursor"]
            else:
                batch, scanned = recent
            for row in batch:
                yield row["job_id"], _event(row)
                last = row["cursor"]
            last = max(last, scanned)
            if batch:
                continue
            with self._changed:
                if self._closed:
                    return
                if self._version == seen:
                    self._changed.wait(timeout=1.0)

