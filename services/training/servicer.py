"""TrainingService RPCs: validate, call the store/runner, build the response."""
from __future__ import annotations

import datetime as dt
import json
import uuid

from services.core.errors import FailedPrecondition, InvalidArgument
from services.common.pagination import list_page, page_request
from services.common.timeutil import to_timestamp
from services.common.example_codec import example_proto, query_proto
from services.common.structs import to_struct
from services.training import peers
from services.training.performance_check import NO_ERRORS_TO_CORRECT, check_reported, performance_check
from services.training.adaptation import adaptation, parse_adapt_request
from services.training.convert import STATE_NAMES, checkpoint_proto, event_proto, job_proto
from services.training.events import EventHub
from services.training.policy_export import export_job_policy
from services.training.requests import module_source, parse_start_request
from services.training.runner import JobRunner
from services.training.store import TERMINAL_STATES, JobStore
from trainhouse.v1 import training_job_pb2, training_service_pb2, training_service_pb2_grpc


class TrainingServicer(training_service_pb2_grpc.TrainingServiceServicer):
    def __init__(self, store: JobStore, hub: EventHub, runner: JobRunner):
        self.store = store
        self.hub = hub
        self.runner = runner

    def StartJob(self, request, context):
        return training_service_pb2.StartJobResponse(job=self._start(request))

    def _start(self, request: training_service_pb2.StartJobRequest) -> training_job_pb2.TrainingJob:
        """Validate, record the job as queued and wake the runner; the job as StartJob answers it."""
        dataset_examples, dataset_id = None, request.dataset_id
        module = module_source(request)
        if module is not None:
            dataset_id, dataset_examples = peers.module_dataset(*module)
        elif not request.examples and request.dataset_id:
            dataset_id, dataset_examples = peers.fetch_dataset(request.dataset_id)
        spec = parse_start_request(request, dataset_examples)
        peers.ensure_agent(spec.agent_id)
        base = self._base_model(spec)
        job_id = f"job-{uuid.uuid4()}"
        job_dir = self.runner.job_dir(job_id)
        job_dir.mkdir(parents=True, exist_ok=True)
        (job_dir / "examples.json").write_text(json.dumps(spec.data))
        base_version_id = spec.base_version_id
        if base is not None:
            base_version_id, onnx_bytes = base
            (job_dir / "base_model.onnx").write_bytes(onnx_bytes)
        self.store.create_job({
            "job_id": job_id, "agent_id": spec.agent_id, "account_id": spec.account_id,
            "display_name": spec.display_name, "method": spec.method, "state": "queued",
            # Only the resolved config is kept: the worker, GetJob and the registry all read it;
            # beside it, the promotion the registration asks for (if any).
            "config_json": json.dumps({"resolved": spec.resolved_config(),
                                       **({"promotion": spec.promotion.to_dict()} if spec.promotion else {}),
                                       **({"labels": spec.labels} if spec.labels else {})}),
            "dataset_id": dataset_id, "base_version_id": base_version_id,
            "example_count": spec.example_count, "budget_usd": spec.budget_usd,
            "train_examples": 0, "validation_examples": 0, "total_epochs": spec.total_epochs,
            **spec.planned,
        })
        self.hub.status(job_id, "queued", message="waiting for a free slot")
        self.runner.kick()
        return self._job(job_id)

    def AdaptAgent(self, request, context):
        spec = parse_adapt_request(request)
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
            job = self._start(plan.start_request())
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

    @staticmethod
    def _base_model(spec) -> tuple[str, bytes] | None:
        """transfer starts from a version (named, else the one served); reinforcement adapts the
        served version when there is one, else learns from scratch."""
        if spec.method not in ("transfer", "reinforcement"):
            if spec.base_version_id:
                raise InvalidArgument("base_version_id", f"only transfer and reinforcement start from a version, "
                                      f"not {spec.method}")
            return None
        base = peers.fetch_base_model(spec.agent_id, spec.base_version_id)
        if base is None and spec.method == "transfer":
            raise FailedPrecondition(f"agent '{spec.agent_id}' has no trained version to transfer from; "
                                     "train it (supervised or few_shot) first or name base_version_id",
                                     metadata={"resource": "agent", "id": spec.agent_id})
        return base

    def _job(self, job_id: str):
        row = self.store.get_job(job_id)
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
        if not request.job_id:
            raise InvalidArgument("job_id", "is required")
        return training_service_pb2.GetJobResponse(job=self._job(request.job_id))

    def ListJobs(self, request, context):
        page = page_request(request, 50, 1000)
        order = (request.order_by or "create_time desc").strip().lower()
        if order not in ("create_time desc", "create_time asc", "create_time"):
            raise InvalidArgument("order_by", "must be 'create_time desc' or 'create_time asc'")
        state = STATE_NAMES.get(request.state, "") if request.state else ""
        jobs = self.store.list_jobs(page, agent_id=request.agent_id, state=state, account_id=request.account_id,
                                    descending=order.endswith("desc"))
        rates: dict = {}
        return training_service_pb2.ListJobsResponse(
            jobs=[self._listed(r, rates) for r in jobs.rows], next_page_token=jobs.next_page_token,
            total_size=jobs.total_size)

    def CancelJob(self, request, context):
        if not request.job_id:
            raise InvalidArgument("job_id", "is required")
        job = self.store.get_job(request.job_id)
        if job["state"] in TERMINAL_STATES:
            raise FailedPrecondition(f"job {request.job_id} already ended ({job['state']})",
                                     metadata={"state": job["state"]})
        saved, checkpoint_id = self.runner.cancel(request.job_id, request.reason)
        return training_service_pb2.CancelJobResponse(
            job=job_proto(self.store.get_job(request.job_id)), checkpoint_saved=saved, checkpoint_id=checkpoint_id)

    def WatchJob(self, request, context):
        if not request.job_id:
            raise InvalidArgument("job_id", "is required")
        if request.after_sequence < 0:
            raise InvalidArgument("after_sequence", "must be >= 0")
        for event in self.hub.watch(request.job_id, request.after_sequence, context.is_active):
            yield event_proto(request.job_id, event)

    def WatchAllEvents(self, request, context):
        if request.after_cursor < -1:
            raise InvalidArgument("after_cursor", "must be >= -1")
        for job_id, event in self.hub.watch_all(request.after_cursor, request.account_id, context.is_active):
            yield event_proto(job_id, event)

    def ExportPolicy(self, request, context):
        if not request.job_id:
            raise InvalidArgument("job_id", "is required")
        job = self.store.get_job(request.job_id)
        exported = export_job_policy(job, self.runner.job_dir(request.job_id), self.store, request.checkpoint_id)
        return training_service_pb2.ExportPolicyResponse(
            job_id=request.job_id, agent_id=job["agent_id"],
            checkpoint_id=exported.checkpoint_id, onnx_model=exported.onnx_model,
            grpo_config=to_struct(exported.config),
            default_queries=[query_proto(q) for q in exported.default_queries],
            default_queries_source=exported.default_queries_source)

    def ListCheckpoints(self, request, context):
        self.store.get_job(request.job_id)
        checkpoints = self.store.list_checkpoints(request.job_id, page_request(request, 100, 1000))
        return training_service_pb2.ListCheckpointsResponse(
            checkpoints=[checkpoint_proto(r) for r in checkpoints.rows], next_page_token=checkpoints.next_page_token)

    def ResumeJob(self, request, context):
        if not request.job_id:
            raise InvalidArgument("job_id", "is required")
        job = self.store.get_job(request.job_id)
        if job["state"] not in ("cancelled", "failed"):
            raise FailedPrecondition(f"only cancelled or failed jobs can be resumed (job is {job['state']})",
                                     metadata={"state": job["state"]})
        checkpoint = self.store.latest_checkpoint(request.job_id)
        if checkpoint is None:
            raise FailedPrecondition(f"job {request.job_id} has no checkpoint to resume from")
        self.hub.status(request.job_id, "queued", reason="resumed",
                        message=f"resuming from checkpoint {checkpoint['checkpoint_id']}",
                        end_time=None, status_reason="", error_message="")
        self.runner.kick()
        return training_service_pb2.ResumeJobResponse(job=self._job(request.job_id),
                                                      checkpoint_id=checkpoint["checkpoint_id"])

    def ListJobExamples(self, request, context):
        if not request.job_id:
            raise InvalidArgument("job_id", "is required")
        if self.store.get_job(request.job_id)["method"] in ("grpo", "reinforcement"):
            raise FailedPrecondition("grpo and reinforcement jobs learn from queries / rated feedback, "
                                     "not labelled examples")
        split = request.split or "all"
        if split not in ("all", "train", "validation"):
            raise InvalidArgument("split", "must be one of all, train, validation")
        job_dir = self.runner.job_dir(request.job_id)
        split_file = job_dir / "split.json"
        if split_file.exists():
            data = json.loads(split_file.read_text())
        else:  # not started yet: only the submitted examples are known
            raw = json.loads((job_dir / "examples.json").read_text())
            data = {"train": raw["examples"], "validation": raw["validation_examples"]}
            if split != "all" and not raw["validation_examples"]:
                raise FailedPrecondition("the job has not split its examples yet; ask for split 'all'")
        items = data["train"] + data["validation"] if split == "all" else data[split]
        page = list_page(items, page_request(request, 1000, 10000))
        return training_service_pb2.ListJobExamplesResponse(
            examples=[example_proto(e) for e in page.rows], next_page_token=page.next_page_token,
            total_size=page.total_size)

    def ListMetrics(self, request, context):
        self.store.get_job(request.job_id)
        page = self.store.metrics(request.job_id, list(request.names), page_request(request, 1000, 10000))
        points = [training_job_pb2.MetricPoint(name=r["name"], value=r["value"], epoch=r["epoch"] or 0,
                                               step=r["step"] or 0, time=to_timestamp(r["time"]))
                  for r in page.rows]
        return training_service_pb2.ListMetricsResponse(points=points, next_page_token=page.next_page_token)
