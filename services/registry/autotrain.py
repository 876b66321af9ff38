"""Auto-training: retrain an agent on its own once enough new signals arrived.

Signals are the agent's new feedback records (this service) plus its new trajectories
(DataService.CountTrajectories; when the DataService cannot count, only feedback counts and
the status says so). The window of an agent starts at its last *started* run (else at the
beginning). A run is due when the config is enabled, the window holds >= threshold signals, the
cooldown since the agent's last run has passed (after a failed run at least FAILED_RETRY_S, so a
refusing TrainingService is not asked on every feedback), and the agent has a version to transfer
from (its active version, else its newest).

A run starts a real TrainingService job with method TRANSFER from that version, on examples built
from the window's feedback:
  correct                     -> (input, served output, "correct")
  incorrect + expected output -> (input, expected output, "correct") and (input, served output, "incorrect")
  incorrect, no expected      -> (input, served output, "incorrect")
plus replayed training examples of the base version's job (rehearsal against forgetting). The job
registers its version through the normal completion path; nothing is deployed.
"""
from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.core.errors import InvalidArgument
from services.common.logs import log
from services.common.timeutil import now as wall_clock
from services.registry import peers
from services.registry.store import EPOCH, RegistryStore, aware, naive, new_id

logger = logging.getLogger("trainhouse.registry.autotrain")

DEFAULT_THRESHOLD = 100
DEFAULT_COOLDOWN_HOURS = 12.0
DEFAULT_ENABLED = True
FAILED_RETRY_S = 600.0
MAX_THRESHOLD = 10_000_000
MAX_COOLDOWN_HOURS = 24 * 365.0
MAX_FEEDBACK_EXAMPLES = 20_000
MIN_REPLAY, MAX_REPLAY = 50, 2_000
AUTO_ACCOUNT = "auto-training"


@dataclass
class Config:
    agent_id: str
    threshold: int
    cooldown_hours: float
    enabled: bool
    inherited: bool
    update_time: dt.datetime | None


@dataclass
class Status:
    agent_id: str
    config: Config
    pending_feedback: int
    pending_trajectories: int
    trajectories_counted: bool
    window_start: dt.datetime | None
    cooldown_remaining_s: float
    due: bool
    reason: str
    base_version_id: str


def feedback_examples(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Training examples from feedback records (see module doc); records without an input or a
    served output teach nothing and are skipped."""
    out: list[dict[str, Any]] = []
    for r in records:
        text, served, expected = r.get("input") or "", r.get("served_output") or "", r.get("expected_output") or ""
        if not text.strip():
            continue
        meta = {"source": "feedback", "feedback_id": r["feedback_id"]}
        if r["correct"]:
            if served:
                out.append({"input": text, "expected_output": served, "feedback": "correct", "metadata": meta})
            continue
        if expected:
            out.append({"input": text, "expected_output": expected, "feedback": "correct", "metadata": meta})
        if served and served != expected:
            out.append({"input": text, "expected_output": served, "feedback": "incorrect", "metadata": meta})
    return out[:MAX_FEEDBACK_EXAMPLES]


class AutoTrainer:
    def __init__(self, store: RegistryStore, active_version: Callable[[str], str],
                 clock: Callable[[], dt.datetime] = wall_clock):
        self.store = store
        self.active_version = active_version
        self.clock = clock
        self._run_lock = threading.Lock()
        self._wake = threading.Condition()
        self._queued: set[str] = set()
        self._stopped = False
        self._thread: threading.Thread | None = None

    # ---- config ------------------------------------------------------------------------------
    def config(self, agent_id: str) -> Config:
        if agent_id:
            self.store.get_agent(agent_id)
            row = self.store.autotrain_config(agent_id)
            if row is not None:
                return Config(agent_id, row["threshold"], row["cooldown_hours"], row["enabled"], False,
                              aware(row["update_time"]))
        row = self.store.autotrain_config("")
        if row is None:
            return Config(agent_id, DEFAULT_THRESHOLD, DEFAULT_COOLDOWN_HOURS, DEFAULT_ENABLED, bool(agent_id), None)
        return Config(agent_id, row["threshold"], row["cooldown_hours"], row["enabled"], bool(agent_id),
                      aware(row["update_time"]))

    def update(self, agent_id: str, threshold: int | None, cooldown_hours: float | None, enabled: bool | None,
               clear_override: bool, actor: str) -> Config:
        if clear_override:
            if not agent_id:
                raise InvalidArgument("clear_override", "only an agent's override can be cleared")
            if threshold is not None or cooldown_hours is not None or enabled is not None:
                raise InvalidArgument("clear_override", "cannot be combined with new values")
            self.store.get_agent(agent_id)
            self.store.delete_autotrain_config(agent_id, actor)
            return self.config(agent_id)
        if threshold is not None and not 1 <= threshold <= MAX_THRESHOLD:
            raise InvalidArgument("threshold", f"must be between 1 and {MAX_THRESHOLD}")
        if cooldown_hours is not None and not (0 <= cooldown_hours <= MAX_COOLDOWN_HOURS):
            raise InvalidArgument("cooldown_hours", f"must be between 0 and {MAX_COOLDOWN_HOURS:g}")
        current = self.config(agent_id)
        row = {"agent_id": agent_id,
               "threshold": current.threshold if threshold is None else threshold,
               "cooldown_hours": current.cooldown_hours if cooldown_hours is None else float(cooldown_hours),
               "enabled": current.enabled if enabled is None else enabled}
        change = {k: v for k, v in (("threshold", threshold), ("cooldown_hours", cooldown_hours),
                                    ("enabled", enabled)) if v is not None}
        self.store.put_autotrain_config(row, actor, change)
        if agent_id:
            self.notify(agent_id)
        return self.config(agent_id)

    # ---- status ------------------------------------------------------------------------------
    def status(self, agent_id: str, force: bool = False) -> Status:
        config = self.config(agent_id)
        last = self.store.last_autotrain_run(agent_id)
        started = self._last_started(agent_id)
        window_start = aware(started["create_time"]) if started else None
        since = window_start or EPOCH.replace(tzinfo=dt.timezone.utc)
        feedback = self.store.count_feedback_since(agent_id, since)
        trajectories = peers.count_trajectories(agent_id, window_start)
        pending = feedback + (trajectories or 0)
        remaining = 0.0
        if last is not None:
            wait = config.cooldown_hours * 3600.0
            if last["state"] == "failed":
                wait = max(wait, FAILED_RETRY_S)
            remaining = max(0.0, wait - (self.clock() - aware(last["create_time"])).total_seconds())
        base = self.active_version(agent_id)
        if not base:
            due, reason = False, "no version to transfer from"
        elif force:
            due, reason = True, "forced"
        elif not config.enabled:
            due, reason = False, "disabled"
        elif pending < config.threshold:
            due, reason = False, f"below threshold ({pending}/{config.threshold})"
        elif remaining > 0:
            due, reason = False, f"cooling down ({remaining / 3600:.2f} h left)"
        else:
            due, reason = True, "due"
        return Status(agent_id, config, feedback, trajectories or 0, trajectories is not None, window_start,
                      remaining, due, reason, base)

    def _last_started(self, agent_id: str) -> dict[str, Any] | None:
        rows = self.store.db.query_dicts("SELECT * FROM autotrain_runs WHERE agent_id = ? AND state = 'started' "
                                         "ORDER BY create_time DESC LIMIT 1", [agent_id])
        return rows[0] if rows else None

    # ---- runs --------------------------------------------------------------------------------
    def check(self, agent_id: str, force: bool, dry_run: bool, actor: str) -> tuple[list[Status], list[dict]]:
        agent_ids = [agent_id] if agent_id else self.store.agent_ids()
        if agent_id:
            self.store.get_agent(agent_id)
        statuses, started = [], []
        for aid in agent_ids:
            with self._run_lock:  # one evaluation at a time: a run moves the window of the next
                status = self.status(aid, force)
                if status.due and not dry_run:
                    started.append(self._run(status, "manual" if force else "threshold", actor))
                    status = self.status(aid)
            statuses.append(status)
        return statuses, started

    def _run(self, status: Status, trigger: str, actor: str) -> dict[str, Any]:
        agent_id, base = status.agent_id, status.base_version_id
        since = status.window_start or EPOCH.replace(tzinfo=dt.timezone.utc)
        examples = feedback_examples(self.store.feedback_since(agent_id, since))
        run = {"run_id": new_id("auto"), "agent_id": agent_id, "state": "failed", "job_id": "",
               "base_version_id": base, "feedback_count": status.pending_feedback,
               "trajectory_count": status.pending_trajectories, "feedback_example_count": len(examples),
               "replay_example_count": 0, "error_message": "", "error_field": "", "trigger": trigger,
               "window_start": naive(status.window_start) if status.window_start else None,
               "create_time": naive(self.clock()), "actor": actor}
        if not examples:
            run["error_message"] = (f"none of the {status.pending_feedback} new feedback records has an input "
                                    "and a served output to learn from")
            return self._record(run)
        replay = self._replay(agent_id, base, len(examples))
        run["replay_example_count"] = len(replay)
        try:
            run["job_id"] = peers.start_transfer_job(agent_id, base, examples + replay,
                                                     f"auto-training {run['run_id']}", AUTO_ACCOUNT)
            run["state"] = "started"
        except peers.PeerFailure as failure:
            run["error_message"], run["error_field"] = failure.message, failure.field
        return self._record(run)

    def _replay(self, agent_id: str, base_version_id: str, feedback_examples_count: int) -> list[dict[str, Any]]:
        """A deterministic sample of the base version's training examples."""
        version = self.store.find_version(agent_id, base_version_id)
        if version is None or not version["job_id"]:
            return []
        want = min(MAX_REPLAY, max(MIN_REPLAY, 2 * feedback_examples_count))
        try:
            pool = peers.job_examples(version["job_id"], "train", 10 * want)
        except peers.PeerFailure as failure:
            log(logger, "replay examples unavailable", logging.WARNING, agent_id=agent_id, error=failure.message)
            return []
        random.Random(base_version_id).shuffle(pool)
        return [{**e, "metadata": {**(e.get("metadata") or {}), "source": "replay"}} for e in pool[:want]]

    def _record(self, run: dict[str, Any]) -> dict[str, Any]:
        row = self.store.add_autotrain_run(run)
        log(logger, "auto-training run", agent_id=run["agent_id"], state=run["state"], job_id=run["job_id"],
            error=run["error_message"])
        return row

    # ---- background evaluation -------------------------------------------------------------------
    def notify(self, agent_id: str) -> None:
        """Evaluate an agent soon, off the caller's thread (feedback must stay fast)."""
        with self._wake:
            self._queued.add(agent_id)
            self._wake.notify()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="autotrain", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._queued and not self._stopped:
                    self._wake.wait()
                if self._stopped:
                    return
                agent_id = self._queued.pop()
            try:
                self.check(agent_id, force=False, dry_run=False, actor="")
            except Exception as exc:  # an evaluation failing must not end the loop
                log(logger, "auto-training check failed", logging.ERROR, agent_id=agent_id, error=str(exc))
