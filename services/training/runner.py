"""Schedules queued jobs into worker processes and turns their messages into durable events.

A job waits QUEUED until its account has a free slot (TRAINHOUSE_MAX_RUNNING_JOBS_PER_ACCOUNT,
default 5) and the machine has one (TRAINHOUSE_MAX_RUNNING_JOBS). Each running job has a pump
thread that drains its queue; cancellation and shutdown are signalled through events the worker
polls between batches, so the worker always saves a checkpoint before it exits.
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainhouse.common import identity
from trainhouse.common.config import TrainingSettings
from trainhouse.common.logs import log
from trainhouse.common.timeutil import now
from trainhouse.training.events import EventHub
from trainhouse.training.executors import Executor, LocalExecutor, WorkerHandle
from trainhouse.training.store import ACTIVE_STATES, TERMINAL_STATES, JobStore, RecordedProgress

# The W3C traceparent of the call that started a job, in its folder: a worker started later (or after a
# restart) continues that trace (services/common/tracing.py).
TRACEPARENT_FILE = "traceparent"

logger = logging.getLogger("trainhouse.runner")

# Worker messages stored per durable append at most (a commit costs far more than a row), and
# events: a worker's message carries up to ~1,000 coalesced events (worker.BoundedQueue), and
# the events of a batch stay alive until it is stored. Half a million of them at once (500 full
# messages) outlived the collector's young generations and each full collection rescanned them
# (~0.5 s of a 4 s stream of 400k points, bench/metrics_ingestion.py).
MAX_BATCH = 500
MAX_BATCH_EVENTS = 4096
EPOCH_METRICS = ("loss", "accuracy", "validation_loss", "validation_accuracy", "learning_rate")


def _event_count(message: tuple) -> int:
    return len(message[1]) if message[0] == "events" else 1


@dataclass
class RunningJob:
    job_id: str
    account_id: str
    worker: WorkerHandle
    finished: threading.Event = field(default_factory=threading.Event)
    cancel_reason: str = ""
    pause: bool = False  # the stop was PauseJob: the job ends PAUSED, not CANCELLED
    last_checkpoint_id: str = ""
    # Set when the job resumes after earlier progress (crash, restart, ResumeJob).
    recorded: RecordedProgress | None = None


# Called with (job row, artifact path, metrics, the job's train/validation split or None) once a
# worker produced a model; returns the registered version id and the promotion gate's decision
# (None when the job asked for none). Injected so the runner knows nothing about gRPC.
Registrar = Callable[[dict[str, Any], str, dict[str, float], dict[str, Any] | None],
                     tuple[str, dict[str, Any] | None]]


class JobRunner:
    def __init__(self, store: JobStore, hub: EventHub, home: Path, settings: TrainingSettings,
                 register: Registrar, executor: Executor | None = None,
                 ingest: Callable[[dict[str, Any], list[dict[str, Any]]], None] | None = None):
        self.ingest = ingest or (lambda job, trajectories: None)
        self.executor = executor or LocalExecutor()
        self.store = store
        self.hub = hub
        self.home = home
        self.settings = settings
        self.register = register
        self.running: dict[str, RunningJob] = {}
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._schedule_loop, name="scheduler", daemon=True)

    def job_dir(self, job_id: str) -> Path:
        return self.home / "training" / "jobs" / job_id

    def start(self) -> None:
        self._recover()
        self._thread.start()

    def kick(self) -> None:
        self._wake.set()

    # --- recovery and scheduling ----------------------------------------------------------
    def _recover(self) -> None:
        """Jobs that were active when the process died go back to the queue (and resume)."""
        for job in self.store.jobs_in_states(ACTIVE_STATES):
            self.hub.status(job["job_id"], "queued", reason="interrupted",
                            message="service restarted; the job resumes from its last checkpoint")

    def _schedule_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self._start_eligible()
            except Exception:
                logger.exception("scheduler pass failed")

    def _start_eligible(self) -> None:
        with self._lock:
            per_account: dict[str, int] = {}
            for job in self.running.values():
                per_account[job.account_id] = per_account.get(job.account_id, 0) + 1
            for job in self.store.jobs_in_states(("queued",)):
                if len(self.running) >= self.settings.max_running_total:
                    return
                account = job["account_id"]
                if per_account.get(account, 0) >= self.settings.max_running_per_account:
                    continue
                if job["job_id"] in self.running:
                    continue
                self._launch(job)
                per_account[account] = per_account.get(account, 0) + 1

    def _launch(self, job: dict[str, Any]) -> None:
        job_id = job["job_id"]
        checkpoint = self.store.latest_checkpoint(job_id)
        resume_from = checkpoint["path"] if checkpoint and Path(checkpoint["path"] or "").exists() else None
        spec = {"job_id": job_id, "job_dir": str(self.job_dir(job_id)),
                "config": json.loads(job["config_json"])["resolved"], "method": job["method"],
                "resume_from": resume_from, "progress_events": self.settings.progress_events,
                "nice": self.settings.worker_nice,
                "cpus": sorted(self.settings.worker_cpus) if self.settings.worker_cpus else None}
        trace_file = self.job_dir(job_id) / TRACEPARENT_FILE
        if trace_file.exists():
            spec["traceparent"] = trace_file.read_text().strip()
        fields: dict[str, Any] = {}
        if job["start_time"] is None:
            fields["start_time"] = now().replace(tzinfo=None)
        self.hub.status(job_id, "initializing",
                        message="resuming from checkpoint" if resume_from else "preparing data and model", **fields)
        handle = self.executor.launch(job_id, spec)
        running = RunningJob(job_id, job["account_id"], handle,
                             recorded=self.store.recorded_progress(job_id) if job["last_sequence"] else None)
        self.running[job_id] = running
        log(logger, "job started", job_id=job_id, worker=handle.description, executor=self.executor.name,
            resume=bool(resume_from))
        threading.Thread(target=self._pump, args=(running,), name=f"pump-{job_id}", daemon=True).start()

    # --- worker messages ----------------------------------------------------------------------
    def _pump(self, job: RunningJob) -> None:
        # The job's own work (ingesting its trajectories, registering its version) acts for the job's
        # account: what it creates lands in that account, and it reads only that account's resources.
        with identity.acting_as(identity.for_account(job.account_id)):
            self._pump_messages(job)

    def _pump_messages(self, job: RunningJob) -> None:
        outcome: tuple | None = None
        try:
            while outcome is None:
                msg = job.worker.get_message(timeout=0.5)
                if msg is None:
                    if job.worker.is_alive():
                        continue
                    msg = job.worker.get_message(timeout=0.5)  # anything that raced with the exit
                    if msg is None:
                        break
                messages, events = [msg], _event_count(msg)
                while len(messages) < MAX_BATCH and events < MAX_BATCH_EVENTS:  # what waits goes in one write
                    more = job.worker.get_message(timeout=0)
                    if more is None:
                        break
                    messages.append(more)
                    events += _event_count(more)
                batch: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
                for message in messages:
                    if message[0] == "events":  # progress the worker coalesced (worker.BoundedQueue)
                        for kind, payload in message[1]:
                            batch.extend(self._translate(job, kind, payload))
                    elif message[0] == "event":
                        batch.extend(self._translate(job, message[1], message[2]))
                    else:
                        outcome = message  # the worker's last word
                        break
                self.hub.append_many(job.job_id, batch)
            job.worker.join(timeout=30)
            self._finish(job, outcome)
        except Exception:
            logger.exception("pump failed for %s", job.job_id)
            job.worker.kill()  # nobody drains its queue any more: it would wait on it forever
            self._fail(job.job_id, "internal_error", "the job's event pump failed")
        finally:
            with self._lock:
                self.running.pop(job.job_id, None)
            job.finished.set()
            self.kick()

    def _translate(self, job: RunningJob, kind: str, payload: dict[str, Any]) -> list[tuple[str, dict, dict]]:
        """A worker message as the events to store (kind, payload, job-row fields it updates)."""
        if job.recorded is not None and job.recorded.is_replay(kind, payload):
            return []  # training is deterministic: this point is already stored, identical
        if kind == "metric":  # first: nearly every message of a streaming job is one
            fields = {"cost_usd": payload["value"]} if payload.get("name") == "cost_usd" else {}
            return [("metric", payload, fields)]
        if kind == "sizes":
            self.store.update_job(job.job_id, **payload)
            return []
        if kind == "status":
            state = payload["state"]
            return [("status", {"state": state, "reason": payload.get("reason", ""),
                                "message": payload.get("message", ""), "terminal": False}, {"state": state})]
        if kind in ("epoch", "step"):
            metrics = {k: payload[k] for k in EPOCH_METRICS if payload.get(k) is not None}
            # GRPO iterations carry their rollout metrics (avg_reward, success_rate, kl, ...).
            metrics.update({k: v for k, v in (payload.get("metrics") or {}).items()
                            if isinstance(v, (int, float)) and not isinstance(v, bool)})
            event = {"epoch": payload.get("epoch", payload.get("iteration")),
                     "total_epochs": payload.get("total_epochs", payload.get("total_iterations")),
                     "step": payload.get("step"), "total_steps": payload.get("total_steps"), "metrics": metrics}
            fields = {"current_step": payload.get("step") or 0, "total_steps": payload.get("total_steps") or 0,
                      "metrics_json": json.dumps(metrics)}
            if kind == "epoch":
                fields.update(current_epoch=payload.get("epoch") or 0, total_epochs=payload.get("total_epochs") or 0)
            elif "iteration" in payload:  # a GRPO iteration is its unit of progress
                fields.update(current_epoch=payload["iteration"], total_epochs=payload.get("total_iterations") or 0)
            return [(kind, event, fields)]
        if kind == "budget":
            return [("budget", payload, {"cost_usd": payload.get("cost_usd") or 0.0})]
        if kind == "trajectories":
            self._ingest(job, payload.get("trajectories") or [])
            return []
        if kind == "checkpoint":
            path = payload.get("path")
            size = Path(path).stat().st_size if path and Path(path).exists() else 0
            fields = {"best_checkpoint_id": payload["checkpoint_id"]} if payload.get("best") else {}
            job.last_checkpoint_id = payload["checkpoint_id"]
            return [("checkpoint", {**payload, "size_bytes": size}, fields)]
        if kind == "log":
            return [("log", {"level": payload.get("level", "info"), "message": str(payload.get("message", ""))}, {})]
        return []

    def _ingest(self, job: RunningJob, trajectories: list[dict[str, Any]]) -> None:
        """Every GRPO trajectory goes to DataService (seed 003 export). A batch DataService cannot
        take now is kept in the job folder and sent before the next one: none is dropped."""
        pending = self.job_dir(job.job_id) / "trajectories-unsent.jsonl"
        batches = []
        if pending.exists():
            batches = [json.loads(line) for line in pending.read_text().splitlines() if line]
        batches.append(trajectories)
        row = self.store.get_job(job.job_id)
        for i, batch in enumerate(batches):
            try:
                self.ingest(row, batch)
            except Exception as err:  # DataService down: keep the rest for later
                log(logger, "trajectory ingest deferred", logging.WARNING, job_id=job.job_id, error=str(err))
                tmp = pending.with_suffix(".tmp")
                tmp.write_text("".join(json.dumps(b) + "\n" for b in batches[i:]))
                tmp.replace(pending)
                return
        pending.unlink(missing_ok=True)

    def _finish(self, job: RunningJob, outcome: tuple | None) -> None:
        end = now().replace(tzinfo=None)
        if outcome is None:
            code = job.worker.exit_code()
            self._fail(job.job_id, "worker_died", f"the worker process exited unexpectedly (exit code {code})")
        elif outcome[0] == "stopped":
            if job.worker.shutdown_requested() and not job.worker.cancel_requested():
                self.hub.status(job.job_id, "queued", reason="interrupted",
                                message="service stopping; checkpoint saved, the job resumes on restart")
            elif job.pause:  # not terminal: no end_time, ResumeJob continues from the checkpoint
                self.hub.status(job.job_id, "paused", reason="paused",
                                message="paused by request; checkpoint saved" if job.last_checkpoint_id
                                else "paused by request before any checkpoint", status_reason="paused")
            else:
                self.hub.status(job.job_id, "cancelled", reason=job.cancel_reason or "cancelled_by_user",
                                message="stopped by request; checkpoint saved", status_reason=job.cancel_reason
                                or "cancelled_by_user", end_time=end)
        elif outcome[0] == "error":
            data = outcome[1]
            message = data["message"] + (f" (field {data['field']})" if data.get("field") else "")
            self._fail(job.job_id, data.get("reason", "trainer_error"), message)
        elif outcome[0] == "result":
            data = outcome[1]
            job_row = self.store.get_job(job.job_id)
            try:
                split_file = self.job_dir(job.job_id) / "split.json"
                split = json.loads(split_file.read_text()) if split_file.exists() else None
                version_id, promotion = self.register(job_row, data["artifact_path"], data["metrics"], split)
            except Exception as err:  # registry down or refusing: the job fails, the service lives
                logger.exception("registration failed for %s", job.job_id)
                self._fail(job.job_id, "registration_failed", f"could not register the model: {err}")
                return
            metrics = {**json.loads(job_row["metrics_json"] or "{}"), **data["metrics"]}
            if promotion is not None:  # the gate's decision, before the final status closes the stream
                self.hub.append(job.job_id, "promotion", {"version_id": version_id, **promotion})
            self.hub.status(job.job_id, "completed", reason="completed", message=f"registered {version_id}",
                            model_version_id=version_id, metrics_json=json.dumps(metrics),
                            end_time=end, status_reason="completed")

    def _fail(self, job_id: str, reason: str, message: str) -> None:
        log(logger, "job failed", logging.WARNING, job_id=job_id, reason=reason, detail=message)
        self.hub.status(job_id, "failed", reason=reason, message=message, status_reason=reason,
                        error_message=message, end_time=now().replace(tzinfo=None))

    # --- requests from the servicer -----------------------------------------------------------
    def cancel(self, job_id: str, reason: str, wait_s: float = 60.0) -> tuple[bool, str]:
        """Stop a job; returns (checkpoint_saved, checkpoint_id). A running job checkpoints first."""
        return self._stop(job_id, reason or "cancelled_by_user", False, wait_s)

    def pause(self, job_id: str, wait_s: float = 60.0) -> tuple[bool, str]:
        """Stop a job as cancel does (a running one checkpoints its whole training state) but leave
        it PAUSED: not terminal, holding no slot, never started by the scheduler until ResumeJob."""
        return self._stop(job_id, "paused", True, wait_s)

    def _stop(self, job_id: str, reason: str, pause: bool, wait_s: float) -> tuple[bool, str]:
        with self._lock:
            running = self.running.get(job_id)
            if running is None:
                job = self.store.get_job(job_id)
                if job["state"] == "queued" and pause:
                    self.hub.status(job_id, "paused", reason="paused", message="paused before it started",
                                    status_reason="paused")
                elif not pause and job["state"] in ("queued", "paused"):  # a paused job keeps its checkpoints
                    self.hub.status(job_id, "cancelled", reason=reason,
                                    message="cancelled before it started" if job["state"] == "queued"
                                    else "cancelled while paused",
                                    status_reason=reason, end_time=now().replace(tzinfo=None))
                return False, ""
            running.cancel_reason = reason
            running.pause = pause
        running.worker.request_cancel()
        running.finished.wait(wait_s)
        return bool(running.last_checkpoint_id), running.last_checkpoint_id

    def shutdown(self, wait_s: float = 60.0) -> None:
        """Ask every worker to checkpoint and exit; their jobs go back to QUEUED for the restart."""
        self._stopping.set()
        self._wake.set()
        with self._lock:
            jobs = list(self.running.values())
        for job in jobs:
            job.worker.request_shutdown()
        for job in jobs:
            if not job.finished.wait(wait_s):
                job.worker.kill()
        self.hub.close()

    def is_terminal(self, state: str) -> bool:
        return state in TERMINAL_STATES
