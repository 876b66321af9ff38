"""Auto-training: retrain an agent on its own once enough new signals arrived.

Signals are the agent's new feedback records (ModelRegistry.CountFeedback) and its new
trajectories (DataService.CountTrajectories). An agent's window is [window_start, window_end):
it starts where the agent's last started or skipped run ended (else at the beginning) and ends
SETTLE_S before the check, so a record whose write is still in flight is left to the next
window instead of being skipped for good. A run is due when the config is enabled, the window
holds >= threshold signals, the cooldown since the agent's last run has passed (after a failed
run at least FAILED_RETRY_S), the agent has a version that production serves (the base), and
that version is a classifier (a GRPO policy learns from queries, not from these examples).
While the DataService cannot count trajectories nothing is due: the window is kept until every
signal in it can be counted and trained on.

A run trains on every signal it counted, by the rules that already exist for each:
  feedback     -> examples by AdaptAgent's rules (adaptation.judged_from_record / training_data,
                  the transfer method's labelled examples);
  trajectories -> DataService.BuildDatasetFromTrajectories over the agent and the window (the
                  dataset "autotrain-<run id>" is kept, so what the job learnt is inspectable);
plus replayed training examples of the base version's job (rehearsal against forgetting). It
starts a TRANSFER job from the base version in this process (Jobs.start, the path StartJob takes)
that asks for promotion (requested_by "auto-training"): the registry's promotion gate decides at
registration whether the new version replaces what serves; the decision is the job's "promotion"
event and is recorded on the version. A window none of whose signals gives an example is a
skipped run (the window moves on); a window that cannot be read, or a job that is refused, is a
failed run (the window stays).

TrainingService runs the check for every agent every TRAINHOUSE_AUTOTRAIN_CHECK_S; CheckAutoTraining
runs it on demand. Nothing here calls back into this service, and the ModelRegistry calls nobody.
"""
from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trainhouse.common.identity import DEFAULT_ACCOUNT
from trainhouse.common.example_codec import example_proto
from trainhouse.common.logs import log
from trainhouse.common.periodic import Periodic
from trainhouse.common.timeutil import now as wall_clock
from trainhouse.core.errors import InvalidArgument, TrainhouseError
from trainhouse.training import peers
from trainhouse.training.adaptation import judged_from_record, training_data
from trainhouse.training.jobs import Jobs
from trainhouse.training.store import WINDOW_CLOSING_RUNS, JobStore
from trainhouse.v1 import (job_state_pb2, model_version_pb2, training_job_pb2, training_service_pb2)
from trainhouse.core.ids import random_id

logger = logging.getLogger("trainhouse.training.autotrain")

DEFAULT_THRESHOLD = 100
DEFAULT_COOLDOWN_HOURS = 12.0
DEFAULT_ENABLED = True
FAILED_RETRY_S = 600.0
MAX_THRESHOLD = 10_000_000
MAX_COOLDOWN_HOURS = 24 * 365.0
MAX_FEEDBACK_EXAMPLES = 20_000
MAX_TRAJECTORIES = 20_000
MIN_REPLAY, MAX_REPLAY = 50, 2_000
SETTLE_S = 2.0
REQUESTED_BY = "auto-training"
TRANSFER = job_state_pb2.TRAINING_METHOD_TRANSFER


@dataclass
class Config:
    agent_id: str
    threshold: int
    cooldown_hours: float
    enabled: bool
    inherited: bool
    update_time: dt.datetime | None
    updated_by: str


@dataclass
class Status:
    agent_id: str
    config: Config
    pending_feedback: int
    pending_trajectories: int
    trajectories_counted: bool
    window_start: dt.datetime | None
    window_end: dt.datetime
    cooldown_remaining_s: float
    due: bool
    reason: str
    base_version_id: str
    base_job_id: str = ""


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc))


class AutoTrainer:
    def __init__(self, store: JobStore, jobs: Jobs, interval_s: float,
                 clock: Callable[[], dt.datetime] = wall_clock):
        self.store = store
        self.jobs = jobs
        self.interval_s = interval_s
        self.clock = clock
        self._run_lock = threading.Lock()
        self._periodic = Periodic("autotrain", interval_s, self._tick)

    # ---- config ------------------------------------------------------------------------------
    def config(self, agent_id: str) -> Config:
        """The values that apply to an agent (its override, else the global ones); "" for the
        global config. NOT_FOUND for an agent the registry does not know."""
        if agent_id:
            peers.get_agent(agent_id)
        return self._config(agent_id)

    def _config(self, agent_id: str) -> Config:
        row = self.store.autotrain_config(agent_id) if agent_id else None
        inherited = row is None and bool(agent_id)
        if row is None:
            row = self.store.autotrain_config("")
        if row is None:
            return Config(agent_id, DEFAULT_THRESHOLD, DEFAULT_COOLDOWN_HOURS, DEFAULT_ENABLED, inherited, None, "")
        return Config(agent_id, row["threshold"], row["cooldown_hours"], row["enabled"], inherited,
                      _aware(row["update_time"]), row["updated_by"] or "")

    def update(self, agent_id: str, threshold: int | None, cooldown_hours: float | None, enabled: bool | None,
               clear_override: bool, actor: str) -> Config:
        if clear_override:
            if not agent_id:
                raise InvalidArgument("clear_override", "only an agent's override can be cleared")
            if threshold is not None or cooldown_hours is not None or enabled is not None:
                raise InvalidArgument("clear_override", "cannot be combined with new values")
            peers.get_agent(agent_id)
            self.store.delete_autotrain_config(agent_id)
            log(logger, "auto-training override removed", agent_id=agent_id, actor=actor)
            return self._config(agent_id)
        if threshold is not None and not 1 <= threshold <= MAX_THRESHOLD:
            raise InvalidArgument("threshold", f"must be between 1 and {MAX_THRESHOLD}")
        if cooldown_hours is not None and not (0 <= cooldown_hours <= MAX_COOLDOWN_HOURS):
            raise InvalidArgument("cooldown_hours", f"must be between 0 and {MAX_COOLDOWN_HOURS:g}")
        current = self.config(agent_id)
        row = {"agent_id": agent_id,
               "threshold": current.threshold if threshold is None else threshold,
               "cooldown_hours": current.cooldown_hours if cooldown_hours is None else float(cooldown_hours),
               "enabled": current.enabled if enabled is None else enabled,
               "updated_by": actor}
        self.store.put_autotrain_config(row)
        log(logger, "auto-training config updated", agent_id=agent_id, actor=actor,
            threshold=row["threshold"], cooldown_hours=row["cooldown_hours"], enabled=row["enabled"])
        return self._config(agent_id)

    # ---- status ------------------------------------------------------------------------------
    def status(self, agent: model_version_pb2.Agent, force: bool = False, lazy: bool = False) -> Status:
        """Where an agent stands. `lazy` (the periodic check) counts nothing for an agent that
        cannot be due whatever it counted (no base version, disabled, cooling down)."""
        agent_id, base = agent.agent_id, agent.active_version_id
        config = self._config(agent_id)
        clock = self.clock()
        closing = self.store.last_autotrain_run(agent_id, WINDOW_CLOSING_RUNS)
        window_start = _aware(closing["window_end"]) if closing else None
        window_end = clock - dt.timedelta(seconds=SETTLE_S)
        if window_start is not None and window_end < window_start:  # the clock went back: an empty window
            window_end = window_start
        remaining = 0.0
        last = self.store.last_autotrain_run(agent_id)
        if last is not None:
            wait = config.cooldown_hours * 3600.0
            if last["state"] == "failed":
                wait = max(wait, FAILED_RETRY_S)
            remaining = max(0.0, wait - (clock - _aware(last["create_time"])).total_seconds())
        status = Status(agent_id, config, 0, 0, False, window_start, window_end, remaining, False, "", base)
        if lazy and not force and (not base or not config.enabled or remaining > 0):
            status.reason = "not counted: cannot be due"
            return status
        status.pending_feedback = peers.count_feedback(agent_id, window_start, window_end)
        trajectories = peers.count_trajectories(agent_id, window_start, window_end)
        status.trajectories_counted = trajectories is not None
        status.pending_trajectories = trajectories or 0
        pending = status.pending_feedback + status.pending_trajectories
        if not base:
            status.reason = "no version to transfer from"
        elif not status.trajectories_counted:
            status.reason = "waiting for the DataService to count trajectories"
        elif force:
            status.due, status.reason = True, "forced"
        elif not config.enabled:
            status.reason = "disabled"
        elif pending < config.threshold:
            status.reason = f"below threshold ({pending}/{config.threshold})"
        elif remaining > 0:
            status.reason = f"cooling down ({remaining / 3600:.2f} h left)"
        else:
            status.due, status.reason = True, "due"
        if status.due:
            version = peers.get_version(agent_id, base)
            if version.method == "grpo":
                status.due = False
                status.reason = (f"the serving version {base} is a GRPO policy; auto-training retrains "
                                 "classifiers")
            status.base_job_id = version.job_id
        return status

    # ---- runs --------------------------------------------------------------------------------
    def check(self, agent_id: str, force: bool, dry_run: bool, actor: str,
              lazy: bool = False) -> tuple[list[Status], list[dict[str, Any]]]:
        """Evaluate one agent (or every agent) and start the runs that are due (not with
        dry_run); the statuses after the runs, and the runs recorded."""
        agents = [peers.get_agent(agent_id)] if agent_id else peers.list_agents()
        statuses, runs = [], []
        for agent in agents:
            try:
                with self._run_lock:  # one evaluation at a time: a run moves the window of the next
                    status = self.status(agent, force, lazy)
                    if status.due and not dry_run:
                        runs.append(self._run(status, "manual" if force else "threshold", actor,
                                              agent.account_id or DEFAULT_ACCOUNT))
                        if not lazy:
                            status = self.status(agent)
            except TrainhouseError as err:
                if not lazy:
                    raise
                log(logger, "auto-training check failed", logging.WARNING, agent_id=agent.agent_id,
                    error=err.message)
                continue
            statuses.append(status)
        return statuses, runs

    def _run(self, status: Status, trigger: str, actor: str, agent_account: str) -> dict[str, Any]:
        agent_id, base = status.agent_id, status.base_version_id
        run_id = random_id("auto", 12)
        run: dict[str, Any] = {
            "run_id": run_id, "agent_id": agent_id, "state": "failed", "job_id": "", "base_version_id": base,
            "feedback_count": status.pending_feedback, "trajectory_count": status.pending_trajectories,
            "feedback_example_count": 0, "trajectory_example_count": 0, "replay_example_count": 0,
            "trajectory_dataset_id": "", "error_message": "", "error_field": "", "trigger": trigger,
            "window_start": status.window_start, "window_end": status.window_end, "create_time": self.clock(),
            "actor": actor}
        try:
            feedback = self._feedback_examples(status) if status.pending_feedback else []
            dataset_id, trajectory = "", []
            if status.pending_trajectories:
                dataset_id, built = peers.trajectory_examples(agent_id, status.window_start, status.window_end,
                                                              f"autotrain-{run_id}", MAX_TRAJECTORIES)
                trajectory = [example_proto(e) for e in built]
            run.update(feedback_example_count=len(feedback), trajectory_example_count=len(trajectory),
                       trajectory_dataset_id=dataset_id)
            if not feedback and not trajectory:
                run["state"] = "skipped"
                run["error_message"] = (f"nothing to learn from: none of the {status.pending_feedback} feedback "
                                        f"records has an input and an output, and none of the "
                                        f"{status.pending_trajectories} trajectories gives an example")
                return self._record(run)
            replay = self._replay(status.base_job_id, base, len(feedback) + len(trajectory))
            run["replay_example_count"] = len(replay)
            request = training_service_pb2.StartJobRequest(
                agent_id=agent_id, examples=feedback + trajectory + replay,
                config=training_job_pb2.TrainingConfig(method=TRANSFER), base_version_id=base,
                # The agent's account owns the job: its users see what retrained their agent.
                display_name=f"auto-training {run_id}", account_id=agent_account,
                promotion=model_version_pb2.PromotionPolicy(requested_by=REQUESTED_BY))
            run["job_id"] = self.jobs.start(request)
            run["state"] = "started"
        except TrainhouseError as err:
            run["error_message"], run["error_field"] = err.message, err.field or ""
        return self._record(run)

    def _feedback_examples(self, status: Status) -> list[Any]:
        """The window's feedback records as the transfer method's labelled examples, by AdaptAgent's
        rules, each tagged with the record it came from."""
        records = peers.recorded_feedback(status.agent_id, status.window_start, status.window_end)
        judged = [j for i, record in enumerate(records) for j in judged_from_record(i, record)]
        examples = training_data(judged, TRANSFER).examples  # one per judged answer, in order
        for answer, example in zip(judged, examples):
            example.metadata.update({"source": "feedback", "feedback_id": records[answer.source].feedback_id})
        return examples[:MAX_FEEDBACK_EXAMPLES]

    def _replay(self, base_job_id: str, base_version_id: str, new_examples: int) -> list[Any]:
        """A deterministic sample of the examples the base version's job trained on."""
        if not base_job_id:
            return []
        want = min(MAX_REPLAY, max(MIN_REPLAY, 2 * new_examples))
        try:
            pool = self.jobs.examples(base_job_id, "train")
        except (TrainhouseError, OSError) as err:
            log(logger, "replay examples unavailable", logging.WARNING, job_id=base_job_id, error=str(err))
            return []
        random.Random(base_version_id).shuffle(pool)
        return [example_proto({**e, "metadata": {**(e.get("metadata") or {}), "source": "replay"}})
                for e in pool[:want]]

    def _record(self, run: dict[str, Any]) -> dict[str, Any]:
        row = self.store.add_autotrain_run(run)
        log(logger, "auto-training run", run_id=run["run_id"], agent_id=run["agent_id"], state=run["state"],
            job_id=run["job_id"], feedback_examples=run["feedback_example_count"],
            trajectory_examples=run["trajectory_example_count"], replay_examples=run["replay_example_count"],
            error=run["error_message"])
        return row

    # ---- the periodic check ------------------------------------------------------------------------
    def start(self) -> None:
        self._periodic.start()

    def stop(self) -> None:
        self._periodic.stop()

    def _tick(self) -> None:
        try:
            self.check("", force=False, dry_run=False, actor="", lazy=True)
        except Exception as exc:  # a check failing (the registry down) must not end the loop
            log(logger, "auto-training check failed", logging.WARNING, error=str(exc))
