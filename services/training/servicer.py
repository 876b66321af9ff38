"""TrainingService RPCs: validate, call the store/runner, build the response."""
from __future__ import annotations

import datetime as dt
import math

from trainhouse.common import identity
from trainhouse.core.errors import FailedPrecondition, InvalidArgument
from trainhouse.common.pagination import list_page, page_request, page_size
from trainhouse.common.example_codec import example_proto, query_proto
from trainhouse.common.structs import to_struct
from trainhouse.training import peers
from trainhouse.training.performance_check import NO_ERRORS_TO_CORRECT, check_reported, performance_check
from trainhouse.training.adaptation import adaptation, parse_adapt_request
from trainhouse.training.autotrain import AutoTrainer
from trainhouse.training.convert import (EVENT_KINDS, STATE_NAMES, add_metric_points, autotrain_config_proto, autotrain_run_proto,
                                       autotrain_status_proto, checkpoint_proto, event_proto, job_proto)
from trainhouse.training import checkpoint_versions
from trainhouse.training.events import EventHub
from trainhouse.training.hot_jobs import FinishedAnswers
from trainhouse.training.jobs import Jobs, job_account, visible_job
from trainhouse.training.policy_export import export_job_policy
from trainhouse.training.runner import JobRunner
from trainhouse.training.search import compile_filter, compile_order
from trainhouse.training.store import TERMINAL_STATES, JobStore
from trainhouse.training.sweep_convert import SWEEP_STATE_NAMES, sweep_proto
from trainhouse.training.sweeps import Sweeps
from trainhouse.v1 import training_job_pb2, training_service_pb2, training_service_pb2_grpc


MAX_ACTOR = 256


def _actor(value: str) -> str:
    if len(value) > MAX_ACTOR:
        raise InvalidArgument("actor", f"at most {MAX_ACTOR} characters")
    return value


MAX_SAMPLED_POINTS = 10000  # per metric name: ListMetricsRequest.max_points_per_metric


class TrainingServicer(training_service_pb2_grpc.TrainingServiceServicer):
    def __init__(self, store: JobStore, hub: EventHub, runner: JobRunner, jobs: Jobs, autotrainer: AutoTrainer,
                 sweeps: Sweeps):
        self.store = store
        self.sweeps = sweeps
        self.hub = hub
        self.runner = runner
        self.jobs = jobs
        self.autotrainer = autotrainer
        self._finished = FinishedAnswers()

    def StartJob(self, request, context):
        return training_service_pb2.StartJobResponse(job=self._job(self.jobs.start(request)))

    def AdaptAgent(self, request, context):
        spec = parse_adapt_request(request)
        job_account(request.account_id, "")  # PERMISSION_DENIED before anything is read
        if request.reported_metrics:
            if spec.window is None:
                raise InvalidArgument("reported_metrics", "is compared with the feedback recorded in a "
                                                          "feedback_window; give one")
            check_reported(request.reported_metrics)
        serving = peers.serving_version(spec.agent_id)  # NOT_FOUND: adapting needs an agent that exists
        records = [] if spec.window is None else peers.recorded_feedback(
            spec.agent_id, dt.datetime.now(dt.timezone.utc) - spec.window)
        plan = adaptation(spec, request.feedback, records)
        check = None
        if request.reported_metrics:
            check = performance_check(request.reported_metrics, serving, records)
        if not plan.judged:  # nothing to learn from: an answer that says why, not an error
            return self._with_check(plan.response(None), check)
        if check is not None and not check.adaptation_needed:
            return self._with_check(training_service_pb2.AdaptAgentResponse(
                adapted=False, not_adapted_reason=NO_ERRORS_TO_CORRECT, message=check.reason), check)
        try:
            job = self._job(self.jobs.start(plan.start_request()))
        except InvalidArgument as err:
            raise plan.blame(err) from None
        return self._with_check(plan.response(job), check)

    @staticmethod
    def _with_check(response: training_service_pb2.AdaptAgentResponse,
                    check: training_service_pb2.PerformanceCheck | None) -> training_service_pb2.AdaptAgentResponse:
        if check is not None:
            response.performance.CopyFrom(check)
            response.message += f" Performance check: {check.reason}."
        return response

    def _visible(self, job_id: str) -> dict:
        """The one check of a job's account for every RPC naming a job: NOT_FOUND for another account's."""
        return visible_job(self.store, job_id)

    def _job(self, job_id: str):
        return self._job_of(self._visible(job_id))

    def _job_of(self, row: dict):
        throughput = self.store.recent_throughput(row["method"]) if row["state"] in ("queued", "initializing") \
            else None
        return job_proto(row, throughput)

    def _listed(self, row: dict, rates: dict) -> training_job_pb2.TrainingJob:
        """A listed job, its estimate from its method's throughput (read once per method per page)."""
        if row["state"] not in ("queued", "initializing"):
            return job_proto(row)
        if row["method"] not in rates:
            rates[row["method"]] = self.store.recent_throughput(row["method"])
        return job_proto(row, rates[row["method"]])

    def GetJob(self, request, context):
        row = self._visible(request.job_id)
        if row["state"] in TERMINAL_STATES:  # the same row always gets the same answer (hot_jobs.py)
            return self._finished.get(row, lambda r: training_service_pb2.GetJobResponse(job=job_proto(r)))
        return training_service_pb2.GetJobResponse(job=self._job_of(row))

    def ListJobs(self, request, context):
        page = page_request(request, 50, 1000)
        condition, order = compile_filter(request.filter), compile_order(request.order_by)
        state = STATE_NAMES.get(request.state, "") if request.state else ""
        jobs = self.store.list_jobs(page, agent_id=request.agent_id, state=state, account_id=request.account_id,
                                    condition=condition, order=order, visible=identity.current().account_filter)
        rates: dict = {}
        return training_service_pb2.ListJobsResponse(
            jobs=[self._listed(r, rates) for r in jobs.rows], next_page_token=jobs.next_page_token,
            total_size=jobs.total_size)

    def CancelJob(self, request, context):
        job = self._visible(request.job_id)
        if job["state"] in TERMINAL_STATES:
            raise FailedPrecondition(f"job {request.job_id} already ended ({job['state']})",
                                     metadata={"state": job["state"]})
        saved, checkpoint_id = self.runner.cancel(request.job_id, request.reason)
        return training_service_pb2.CancelJobResponse(
            job=job_proto(self.store.get_job(request.job_id)), checkpoint_saved=saved, checkpoint_id=checkpoint_id)

    def PauseJob(self, request, context):
        job = self._visible(request.job_id)
        if job["state"] in TERMINAL_STATES or job["state"] == "paused":
            raise FailedPrecondition(f"only queued or running jobs can be paused (job is {job['state']})",
                                     metadata={"state": job["state"]})
        saved, checkpoint_id = self.runner.pause(request.job_id)
        return training_service_pb2.PauseJobResponse(
            job=self._job(request.job_id), checkpoint_saved=saved, checkpoint_id=checkpoint_id)

    def WatchJob(self, request, context):
        self._visible(request.job_id)
        if request.after_sequence < 0:
            raise InvalidArgument("after_sequence", "must be >= 0")
        for event in self.hub.watch(request.job_id, request.after_sequence, context.is_active):
            yield event_proto(request.job_id, event)

    def ListJobEvents(self, request, context):
        self._visible(request.job_id)
        if request.after_sequence < 0:
            raise InvalidArgument("after_sequence", "must be >= 0")
        size = page_size(request.page_size, 100, 1000)
        # One row more than the page says whether more events are stored after it.
        rows = self.hub.stored(request.job_id, request.after_sequence, size + 1)
        page = rows[:size]
        return training_service_pb2.ListJobEventsResponse(
            events=[event_proto(request.job_id, e) for e in page],
            next_after_sequence=page[-1]["sequence"] if len(rows) > size else 0)

    def WatchAllEvents(self, request, context):
        if request.after_cursor < -1:
            raise InvalidArgument("after_cursor", "must be >= -1")
        kinds = tuple(dict.fromkeys(request.kinds))
        unknown = [k for k in kinds if k not in EVENT_KINDS]
        if unknown:
            raise InvalidArgument("kinds", f"unknown event kind {unknown[0]!r}; one of {', '.join(EVENT_KINDS)}")
        for job_id, event in self.hub.watch_all(request.after_cursor, request.account_id, context.is_active,
                                              identity.current().account_filter, kinds):
            yield event_proto(job_id, event)

    def ExportPolicy(self, request, context):
        job = self._visible(request.job_id)
        exported = export_job_policy(job, self.runner.job_dir(request.job_id), self.store, request.checkpoint_id)
        return training_service_pb2.ExportPolicyResponse(
            job_id=request.job_id, agent_id=job["agent_id"],
            checkpoint_id=exported.checkpoint_id, onnx_model=exported.onnx_model,
            grpo_config=to_struct(exported.config),
            default_queries=[query_proto(q) for q in exported.default_queries],
            default_queries_source=exported.default_queries_source,
            training_queries=[query_proto(q) for q in exported.training_queries])

    def ListCheckpoints(self, request, context):
        self._visible(request.job_id)
        checkpoints = self.store.list_checkpoints(request.job_id, page_request(request, 100, 1000))
        return training_service_pb2.ListCheckpointsResponse(
            checkpoints=[checkpoint_proto(r) for r in checkpoints.rows], next_page_token=checkpoints.next_page_token)

    def ResumeJob(self, request, context):
        job = self._visible(request.job_id)
        if job["state"] not in ("paused", "cancelled", "failed"):
            raise FailedPrecondition(f"only paused, cancelled or failed jobs can be resumed (job is {job['state']})",
                                     metadata={"state": job["state"]})
        checkpoint = self.store.latest_checkpoint(request.job_id)
        if checkpoint is None and job["state"] != "paused":
            raise FailedPrecondition(f"job {request.job_id} has no checkpoint to resume from")
        # A job paused before its first checkpoint (queued, initializing) simply starts again.
        self.hub.status(request.job_id, "queued", reason="resumed",
                        message=f"resuming from checkpoint {checkpoint['checkpoint_id']}" if checkpoint
                        else "resuming from the beginning (paused before any checkpoint)",
                        end_time=None, status_reason="", error_message="")
        self.runner.kick()
        return training_service_pb2.ResumeJobResponse(job=self._job(request.job_id),
                                                      checkpoint_id=checkpoint["checkpoint_id"] if checkpoint else "")

    def ListJobExamples(self, request, context):
        self._visible(request.job_id)
        page = list_page(self.jobs.examples(request.job_id, request.split or "all"),
                         page_request(request, 1000, 10000))
        return training_service_pb2.ListJobExamplesResponse(
            examples=[example_proto(e) for e in page.rows], next_page_token=page.next_page_token,
            total_size=page.total_size)

    def ListMetrics(self, request, context):
        self._visible(request.job_id)
        if request.max_points_per_metric:
            n = request.max_points_per_metric
            if not 2 <= n <= MAX_SAMPLED_POINTS:
                raise InvalidArgument("max_points_per_metric", f"must be 0 (no sampling) or 2..{MAX_SAMPLED_POINTS} "
                                                               "(the first and the last point are always kept)")
            for field in ("page_token", "page_size"):
                if getattr(request, field):
                    raise InvalidArgument(field, "cannot be combined with max_points_per_metric: "
                                                 "a sampled history is one page")
            response = training_service_pb2.ListMetricsResponse()
            add_metric_points(response.points, self.store.sampled_metrics(request.job_id, list(request.names), n))
            return response
        page = self.store.metrics(request.job_id, list(request.names), page_request(request, 1000, 10000))
        response = training_service_pb2.ListMetricsResponse(next_page_token=page.next_page_token)
        add_metric_points(response.points, page.rows)
        return response

    # ---- auto-training -----------------------------------------------------------------------
    def GetAutoTrainingConfig(self, request, context):
        return training_service_pb2.GetAutoTrainingConfigResponse(
            config=autotrain_config_proto(self.autotrainer.config(request.agent_id)))

    def UpdateAutoTrainingConfig(self, request, context):
        if request.HasField("cooldown_hours") and not math.isfinite(request.cooldown_hours):
            raise InvalidArgument("cooldown_hours", "must be a finite number")
        config = self.autotrainer.update(
            request.agent_id, request.threshold if request.HasField("threshold") else None,
            request.cooldown_hours if request.HasField("cooldown_hours") else None,
            request.enabled if request.HasField("enabled") else None, request.clear_override, _actor(request.actor))
        return training_service_pb2.UpdateAutoTrainingConfigResponse(config=autotrain_config_proto(config))

    def ListAutoTrainingRuns(self, request, context):
        if request.agent_id:
            self.autotrainer.config(request.agent_id)  # NOT_FOUND for an unknown agent
        runs = self.store.list_autotrain_runs(request.agent_id, page_request(request, 20, 100))
        return training_service_pb2.ListAutoTrainingRunsResponse(
            runs=[autotrain_run_proto(r) for r in runs.rows], next_page_token=runs.next_page_token,
            total_size=runs.total_size)

    def CheckAutoTraining(self, request, context):
        if request.force and request.dry_run:
            raise InvalidArgument("force", "cannot be combined with dry_run")
        if request.force and not request.agent_id:
            raise InvalidArgument("agent_id", "is required with force")
        statuses, runs = self.autotrainer.check(request.agent_id, request.force, request.dry_run,
                                                _actor(request.actor))
        return training_service_pb2.CheckAutoTrainingResponse(
            statuses=[autotrain_status_proto(s) for s in statuses], started=[autotrain_run_proto(r) for r in runs])

    # ---- checkpoint versions -------------------------------------------------------------------
    def RegisterCheckpoint(self, request, context):
        job = self._visible(request.job_id)
        checkpoint_versions.selector(request)  # INVALID_ARGUMENT before any file is read
        # The version is the job's account's, as when the job registers its own model.
        with identity.acting_as(identity.for_account(job["account_id"])):
            version = checkpoint_versions.register(job, self.runner.job_dir(request.job_id), self.store, request)
        return training_service_pb2.RegisterCheckpointResponse(version=version)

    # ---- sweeps --------------------------------------------------------------------------------
    def _sweep(self, sweep_id: str, with_events: bool = False):
        row = self.sweeps.visible(sweep_id)
        events = self.sweeps.store.events(sweep_id) if with_events else None
        return sweep_proto(row, self.sweeps.store.trials(sweep_id), events)

    def CreateSweep(self, request, context):
        return training_service_pb2.CreateSweepResponse(sweep=self._sweep(self.sweeps.create(request), True))

    def GetSweep(self, request, context):
        return training_service_pb2.GetSweepResponse(sweep=self._sweep(request.sweep_id, True))

    def ListSweeps(self, request, context):
        page = self.sweeps.list(page_request(request, 20, 100), request.agent_id,
                                SWEEP_STATE_NAMES.get(request.state, ""))
        return training_service_pb2.ListSweepsResponse(
            sweeps=[sweep_proto(r, self.sweeps.store.trials(r["sweep_id"])) for r in page.rows],
            next_page_token=page.next_page_token)

    def CancelSweep(self, request, context):
        self.sweeps.cancel(request.sweep_id, request.reason)
        return training_service_pb2.CancelSweepResponse(sweep=self._sweep(request.sweep_id, True))
