"""Hyperparameter sweeps: validate a CreateSweep at the edge, then run its trials as ordinary jobs.

A background thread (started and stopped with the TrainingService, like auto-training's) advances
every queued or running sweep about once a second, acting as the sweep's account:

1. reads each unfinished trial's job and the objective metric's history (one value per epoch);
2. applies the early-stopping rule (sweep_space.should_stop) and cancels a poor trial with the
   reason "early-stopped by sweep <id>: <rule detail>", which becomes its job's cancel event;
3. starts trials while fewer than ``parallelism`` run, through ``Jobs.start`` (so a trial is a job
   of the sweep's account with the same validation, events, checkpoints, budget and executor, and
   counts against the per-account job cap), labelled ``sweep_id`` / ``sweep_trial``;
4. keeps the best trial and ends the sweep when every trial ended.

Everything is in the SweepStore, so a restarted service picks its sweeps up where they were; the
samplers are functions of (seed, number, finished trials), so the parameters do not change either.
"""
from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from google.protobuf.json_format import MessageToDict

from trainhouse.common import identity
from trainhouse.common.logs import log
from trainhouse.common.periodic import Periodic
from trainhouse.common.pagination import Page, PageRequest
from trainhouse.common.validation import resource_id
from trainhouse.core.configs import CLASSIFIER_CONFIGS
from trainhouse.core.errors import FailedPrecondition, InvalidArgument, TrainhouseError
from trainhouse.core.sweep_space import (Finished, Param, Stopping, apply_params, best_so_far, best_trial, grid_size,
                                       parse_space, should_stop, suggest)
from trainhouse.core.trainer.dispatch import parse_config
from trainhouse.training.convert import config_dict
from trainhouse.training.jobs import Jobs
from trainhouse.training.requests import CLASSIFIER_METHODS, check_references, method_of
from trainhouse.training.runner import JobRunner
from trainhouse.training.store import TERMINAL_STATES, JobStore
from trainhouse.training.sweep_store import SWEEP_TERMINAL, SweepStore, utc_now
from trainhouse.v1 import sweep_pb2, training_service_pb2

logger = logging.getLogger("trainhouse.training.sweeps")

DEFAULT_TRIALS, MAX_TRIALS = 12, 200
DEFAULT_PARALLELISM = 2
METRIC = re.compile(r"^validation_[a-z0-9_]{1,60}$")
SAMPLERS = {sweep_pb2.SWEEP_SAMPLER_UNSPECIFIED: "random", sweep_pb2.SWEEP_SAMPLER_RANDOM: "random",
            sweep_pb2.SWEEP_SAMPLER_GRID: "grid", sweep_pb2.SWEEP_SAMPLER_TPE: "tpe"}
RULES = {sweep_pb2.SWEEP_STOPPING_RULE_UNSPECIFIED: "none", sweep_pb2.SWEEP_STOPPING_RULE_NONE: "none",
         sweep_pb2.SWEEP_STOPPING_RULE_MEDIAN: "median", sweep_pb2.SWEEP_STOPPING_RULE_ASHA: "asha"}


@dataclass(frozen=True)
class SweepSpec:
    """A sweep's validated plan (everything but its data and base config, which the template holds)."""

    space: tuple[Param, ...]
    method: str
    metric: str
    direction: str
    sampler: str
    max_trials: int
    parallelism: int
    stopping: Stopping
    seed: int

    @property
    def trial_count(self) -> int:
        """Trials the sweep runs: max_trials, or fewer when a grid has fewer points."""
        return min(self.max_trials, grid_size(self.space)) if self.sampler == "grid" else self.max_trials

    def to_json(self) -> str:
        data = asdict(self)
        data["space"] = [p.to_dict() for p in self.space]
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> "SweepSpec":
        data = json.loads(text)
        return cls(**{**data, "space": tuple(Param.from_dict(p) for p in data["space"]),
                      "stopping": Stopping(**data["stopping"])})


def _param_dict(param: sweep_pb2.SweepParam) -> dict[str, Any]:
    out: dict[str, Any] = {"field": param.field}
    domain = param.WhichOneof("domain")
    if domain == "choices":
        out["choices"] = [MessageToDict(v) for v in param.choices.values]
    elif domain == "range":
        r = param.range
        out["range"] = {"low": r.low, "high": r.high, "log": r.log, "integer": r.integer, "steps": r.steps}
    return out


def parse_create(request: training_service_pb2.CreateSweepRequest,
                 max_parallel: int) -> tuple[SweepSpec, training_service_pb2.StartJobRequest]:
    """The sweep's spec and its trial template, or INVALID_ARGUMENT naming the field."""
    sweep = request.sweep
    agent_id = resource_id(sweep.agent_id, "sweep.agent_id")
    method = method_of(training_service_pb2.StartJobRequest(config=sweep.base_config))
    if method not in CLASSIFIER_METHODS:
        raise InvalidArgument("sweep.base_config.method", f"sweeps tune the classifier methods "
                                                          f"({', '.join(CLASSIFIER_METHODS)}), not {method}")
    try:
        parse_config(method, config_dict(sweep.base_config))
    except InvalidArgument as err:
        raise InvalidArgument(f"sweep.base_config.{err.field}" if err.field else "sweep.base_config",
                              err.message) from None
    sampler = SAMPLERS.get(sweep.sampler)
    if sampler is None:
        raise InvalidArgument("sweep.sampler", "unknown sampler")
    space = parse_space(CLASSIFIER_CONFIGS[method], [_param_dict(p) for p in sweep.space], sampler)
    metric = sweep.objective.metric
    if not METRIC.match(metric):
        raise InvalidArgument("sweep.objective.metric", "is required: a metric of the validation split, "
                                                        "e.g. validation_loss or validation_accuracy")
    direction = {sweep_pb2.SWEEP_DIRECTION_MINIMIZE: "minimize", sweep_pb2.SWEEP_DIRECTION_MAXIMIZE: "maximize"}.get(
        sweep.objective.direction, "minimize" if metric.endswith("loss") else "maximize")
    max_trials = sweep.max_trials or DEFAULT_TRIALS
    if not 1 <= max_trials <= MAX_TRIALS:
        raise InvalidArgument("sweep.max_trials", f"must be 1..{MAX_TRIALS}")
    parallelism = sweep.parallelism or DEFAULT_PARALLELISM
    if not 1 <= parallelism <= max_parallel:
        raise InvalidArgument("sweep.parallelism", f"must be 1..{max_parallel} (the per-account job cap)")
    rule = RULES.get(sweep.early_stopping.rule)
    if rule is None:
        raise InvalidArgument("sweep.early_stopping.rule", "unknown rule")
    grace = sweep.early_stopping.grace_epochs or 2
    factor = sweep.early_stopping.reduction_factor or 3
    if not 1 <= grace <= 10000:
        raise InvalidArgument("sweep.early_stopping.grace_epochs", "must be 1..10000")
    if not 2 <= factor <= 10:
        raise InvalidArgument("sweep.early_stopping.reduction_factor", "must be 2..10")
    if sweep.seed < 0:
        raise InvalidArgument("sweep.seed", "must be >= 0")
    if not request.examples and not sweep.dataset_id:
        raise InvalidArgument("examples", "give the trials' examples inline or a sweep.dataset_id")
    template = training_service_pb2.StartJobRequest(
        agent_id=agent_id, examples=request.examples, validation_examples=request.validation_examples,
        dataset_id=sweep.dataset_id, config=sweep.base_config)
    check_references(template)
    spec = SweepSpec(tuple(space), method, metric, direction, sampler, max_trials, parallelism,
                     Stopping(rule, grace, factor), sweep.seed)
    return spec, template


def trial_request(template: training_service_pb2.StartJobRequest, spec: SweepSpec, params: dict[str, Any],
                  sweep_id: str, number: int, display: str) -> training_service_pb2.StartJobRequest:
    """The StartJobRequest of one trial: the template with the trial's parameters in its config."""
    request = training_service_pb2.StartJobRequest()
    request.CopyFrom(template)
    config = apply_params(config_dict(template.config), params, CLASSIFIER_CONFIGS[spec.method])
    request.config.Clear()
    request.config.method = template.config.method
    request.config.options.update(config)
    request.display_name = f"{display} trial {number}"
    request.labels.update({"sweep_id": sweep_id, "sweep_trial": str(number)})
    return request


class Sweeps:
    def __init__(self, store: SweepStore, jobs: Jobs, job_store: JobStore, runner: JobRunner,
                 poll_s: float = 1.0):
        self.store = store
        self.jobs = jobs
        self.job_store = job_store
        self.runner = runner
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._periodic = Periodic("sweeps", poll_s, self._tick)

    # ---- RPCs --------------------------------------------------------------------------------
    def create(self, request: training_service_pb2.CreateSweepRequest) -> str:
        spec, template = parse_create(request, self.runner.settings.max_running_per_account)
        caller = identity.current()
        sweep_id = f"sweep-{uuid.uuid4()}"
        self.store.create({"sweep_id": sweep_id, "account_id": caller.account, "agent_id": template.agent_id,
                           "display_name": request.sweep.display_name, "state": "queued",
                           "spec_json": spec.to_json(), "template": template.SerializeToString()})
        self.store.add_event(sweep_id, "state", f"queued: {spec.trial_count} trials, {spec.sampler} sampler, "
                                                f"early stopping {spec.stopping.rule}")
        return sweep_id

    def visible(self, sweep_id: str) -> dict[str, Any]:
        if not sweep_id:
            raise InvalidArgument("sweep_id", "is required")
        return self.store.get(sweep_id, identity.current().account_filter)

    def list(self, page: PageRequest, agent_id: str, state: str) -> Page:
        return self.store.list(page, agent_id=agent_id, state=state, visible=identity.current().account_filter)

    def cancel(self, sweep_id: str, reason: str) -> None:
        with self._lock:
            row = self.visible(sweep_id)
            if row["state"] in SWEEP_TERMINAL:
                raise FailedPrecondition(f"sweep {sweep_id} already ended ({row['state']})",
                                         metadata={"state": row["state"]})
            message = reason or "cancelled by request"
            self.store.update(sweep_id, state="cancelled", message=message, end_time=utc_now())
            self.store.add_event(sweep_id, "state", f"cancelled: {message}")
        for trial in self.store.trials(sweep_id):
            if trial["state"] not in TERMINAL_STATES:
                self._cancel_job(trial["job_id"], f"sweep {sweep_id} cancelled")

    # ---- the loop ------------------------------------------------------------------------------
    def start(self) -> None:
        self._periodic.start()

    def stop(self) -> None:
        self._periodic.stop()

    def _tick(self) -> None:
        for row in self.store.in_states(("queued", "running")):
            try:
                with self._lock, identity.acting_as(identity.for_account(row["account_id"])):
                    self.advance(row["sweep_id"])
            except Exception as exc:  # one sweep failing to advance must not stop the others
                log(logger, "sweep step failed", logging.WARNING, sweep_id=row["sweep_id"], error=str(exc))

    def advance(self, sweep_id: str) -> None:
        """One step of a sweep (see the module docstring); the caller holds the lock."""
        row = self.store.get(sweep_id)
        if row["state"] in SWEEP_TERMINAL:
            return
        spec = SweepSpec.from_json(row["spec_json"])
        if row["state"] == "queued":
            self.store.update(sweep_id, state="running")
            self.store.add_event(sweep_id, "state", "running")
        trials = self._refresh(sweep_id, spec)
        self._stop_poor(sweep_id, spec, trials)
        if not self._launch(sweep_id, spec, row, trials):
            return
        self._keep_best(sweep_id, spec, row, trials)
        if len(trials) >= spec.trial_count and all(t["state"] in TERMINAL_STATES for t in trials):
            self._finish(sweep_id, spec, trials)

    def _refresh(self, sweep_id: str, spec: SweepSpec) -> list[dict[str, Any]]:
        trials = self.store.trials(sweep_id)
        for t in trials:
            if t["state"] in TERMINAL_STATES:
                continue
            job = self.job_store.get_job(t["job_id"])
            curve = best_so_far(self.job_store.metric_history(t["job_id"], spec.metric), spec.direction)
            t.update(state=job["state"], curve=curve, objective=curve[-1] if curve else None)
            self.store.update_trial(sweep_id, t["number"], state=job["state"], objective=t["objective"],
                                    curve_json=json.dumps(curve))
            if job["state"] in TERMINAL_STATES and t["stopped_early"] and job["state"] != "cancelled":
                # The job ended on its own before the cancel reached it: it was not stopped early.
                t.update(stopped_early=False, stop_reason="")
                self.store.update_trial(sweep_id, t["number"], stopped_early=False, stop_reason="")
            if job["state"] in TERMINAL_STATES:
                value = "none" if t["objective"] is None else f"{t['objective']:.4g}"
                self.store.add_event(sweep_id, "trial_ended", f"trial {t['number']} {job['state']}: "
                                                              f"{spec.metric} {value}", t["job_id"])
        return trials

    def _stop_poor(self, sweep_id: str, spec: SweepSpec, trials: list[dict[str, Any]]) -> None:
        for t in trials:
            if t["state"] in TERMINAL_STATES or t["stopped_early"] or not t["curve"]:
                continue
            others = [o["curve"] for o in trials if o["number"] != t["number"] and o["curve"]]
            why = should_stop(spec.stopping, t["curve"], others, spec.direction)
            if why is None:
                continue
            reason = f"early-stopped by sweep {sweep_id}: {why}"
            t.update(stopped_early=True, stop_reason=reason)
            self.store.update_trial(sweep_id, t["number"], stopped_early=True, stop_reason=reason)
            self.store.add_event(sweep_id, "trial_stopped", f"trial {t['number']}: {why}", t["job_id"])
            self._cancel_job(t["job_id"], reason)

    def _launch(self, sweep_id: str, spec: SweepSpec, row: dict[str, Any], trials: list[dict[str, Any]]) -> bool:
        """Start trials up to the parallelism; False when a trial was refused and the sweep failed."""
        template = training_service_pb2.StartJobRequest.FromString(row["template"])
        display = row["display_name"] or sweep_id
        while (sum(t["state"] not in TERMINAL_STATES for t in trials) < spec.parallelism
               and len(trials) < spec.trial_count):
            number = len(trials)
            history = [Finished(t["params"], t["objective"]) for t in trials if t["state"] in TERMINAL_STATES]
            params = suggest(spec.sampler, spec.space, spec.seed, number, history, spec.direction, spec.max_trials)
            try:
                job_id = self.jobs.start(trial_request(template, spec, params, sweep_id, number, display))
            except TrainhouseError as err:
                self._fail(sweep_id, trials, f"trial {number} was refused: {err}")
                return False
            self.store.add_trial(sweep_id, number, job_id, params)
            self.store.add_event(sweep_id, "trial_started", f"trial {number}: {json.dumps(params)}", job_id)
            trials.append({"number": number, "job_id": job_id, "params": params, "state": "queued",
                           "objective": None, "curve": [], "stopped_early": False, "stop_reason": ""})
        return True

    def _keep_best(self, sweep_id: str, spec: SweepSpec, row: dict[str, Any], trials: list[dict[str, Any]]) -> None:
        best = best_trial({t["number"]: t["objective"] for t in trials}, spec.direction)
        if best is not None and best != row["best_trial"]:
            self.store.update(sweep_id, best_trial=best)
            self.store.add_event(sweep_id, "best", f"trial {best}: {spec.metric} {trials[best]['objective']:.4g}",
                                 trials[best]["job_id"])

    def _finish(self, sweep_id: str, spec: SweepSpec, trials: list[dict[str, Any]]) -> None:
        if all(t["objective"] is None for t in trials):
            self._fail(sweep_id, trials, f"no trial recorded {spec.metric}")
            return
        stopped = sum(bool(t["stopped_early"]) for t in trials)
        message = f"{len(trials)} trials, {stopped} stopped early"
        self.store.update(sweep_id, state="completed", message=message, end_time=utc_now())
        self.store.add_event(sweep_id, "state", f"completed: {message}")

    def _fail(self, sweep_id: str, trials: list[dict[str, Any]], message: str) -> None:
        self.store.update(sweep_id, state="failed", message=message, end_time=utc_now())
        self.store.add_event(sweep_id, "state", f"failed: {message}")
        for t in trials:
            if t["state"] not in TERMINAL_STATES:
                self._cancel_job(t["job_id"], f"sweep {sweep_id} failed")

    def _cancel_job(self, job_id: str, reason: str) -> None:
        """Cancel a trial's job in the background: a running job checkpoints first, which must not
        hold up the other sweeps."""
        def cancel() -> None:
            try:
                self.runner.cancel(job_id, reason)
            except TrainhouseError as exc:  # it ended meanwhile
                log(logger, "trial cancel skipped", logging.DEBUG, job_id=job_id, error=str(exc))
        threading.Thread(target=cancel, name=f"sweep-cancel-{job_id}", daemon=True).start()
