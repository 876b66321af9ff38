"""The two ways the CLI reaches trainhouse: gRPC to the services, or the gateway's canonical API
(/v1) through the Python SDK (trainhouse.sdk).

Both classes offer the same methods and return the same records (trainhouse.cli.records, the
canonical API's mappings, or the same response message), so a command is written once, builds
one request message, and `--url` only changes who answers. Every failure leaves here as a
CliError (exit code, message, field); nothing transport-specific escapes to the commands.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from trainhouse.cli import records
from trainhouse.cli.errors import CliError, ExitCode, from_api_error, from_rpc_error, invalid
from trainhouse.cli.jsonl import ExampleFile, examples_proto
from trainhouse.common import config
from trainhouse.gateway.convert import ts_iso


@dataclass
class TrainSpec:
    """What `trainhouse train` asks for; `config` uses TrainingConfig field names (snake_case or
    camelCase), `method` is a word (supervised, few_shot, ...)."""

    agent_id: str
    file: ExampleFile | None = None
    dataset_id: str = ""
    method: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    display_name: str = ""


def start_request(spec: TrainSpec) -> Any:
    """`trainhouse train`'s StartJobRequest, built (and its --config checked) once for both transports."""
    from google.protobuf import json_format

    from trainhouse.v1 import job_state_pb2, training_job_pb2, training_service_pb2

    cfg = training_job_pb2.TrainingConfig()
    try:
        json_format.ParseDict(spec.config, cfg)
    except json_format.ParseError as exc:
        raise invalid("--config", f"--config: {exc}") from None
    if spec.method:
        cfg.method = getattr(job_state_pb2, f"TRAINING_METHOD_{spec.method.upper()}")
    return training_service_pb2.StartJobRequest(
        agent_id=spec.agent_id, dataset_id=spec.dataset_id, config=cfg, display_name=spec.display_name,
        examples=examples_proto(spec.file) if spec.file else [])


def default_timeout() -> float:
    return config.env_float("RPC_TIMEOUT_S", 30.0)


def gateway_url(url: str | None) -> str:
    """--url, else TRAINHOUSE_URL, else the local gateway's port."""
    return (url or os.environ.get("TRAINHOUSE_URL") or f"http://127.0.0.1:{config.gateway_port()}").rstrip("/")


def resolve_token(token: str | None) -> str:
    """--token, else TRAINHOUSE_TOKEN, else the admin token `trainhouse up` wrote."""
    if token:
        return token.strip()
    env = os.environ.get("TRAINHOUSE_TOKEN", "").strip()
    if env:
        return env
    path = Path(config.env_str("HOME", "./.trainhouse")).resolve() / "admin-token"
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    if text:
        return text
    raise CliError(ExitCode.AUTH, f"no API token: pass --token, set TRAINHOUSE_TOKEN, or run where "
                                  f"{path} exists", field="--token", status="UNAUTHENTICATED")


# ---- gRPC ----------------------------------------------------------------------------------

class GrpcBackend:
    """Talks to the four services directly (addresses from trainhouse.common.config)."""

    kind = "grpc"

    def __init__(self, timeout: float | None = None, token: str | None = None):
        self.timeout = timeout or default_timeout()
        self._token = token
        self._metadata: tuple[tuple[str, str], ...] | None = None

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The caller's token as gRPC `authorization` metadata: the services authenticate every call
        (--token, TRAINHOUSE_TOKEN, or the local stack's admin token)."""
        if self._metadata is None:
            self._metadata = (("authorization", f"Bearer {resolve_token(self._token)}"),)
        return self._metadata

    def call(self, service: str, method: str, request: Any) -> Any:
        """One unary RPC with the deadline; failures become CliError."""
        import grpc

        from trainhouse.common.clients import channel

        target = config.service_address(service)
        stub = _stub(service, channel(service, target))
        try:
            return getattr(stub, method)(request, timeout=self.timeout, metadata=self.metadata)
        except grpc.RpcError as err:
            raise from_rpc_error(err, f"{service} ({target})") from None

    # -- training --
    def start_job(self, spec: TrainSpec) -> str:
        return self.call("training", "StartJob", start_request(spec)).job.job_id

    def get_job(self, job_id: str) -> dict[str, Any]:
        from trainhouse.v1 import training_service_pb2

        resp = self.call("training", "GetJob", training_service_pb2.GetJobRequest(job_id=job_id))
        return records.job_from_proto(resp.job)

    def job_head(self, job_id: str) -> tuple[dict[str, Any], int]:
        """The job's record and the sequence of its newest event, from one GetJob: the two come from
        the same job row, so following the events after that sequence misses and repeats nothing."""
        from trainhouse.v1 import training_service_pb2

        resp = self.call("training", "GetJob", training_service_pb2.GetJobRequest(job_id=job_id))
        return records.job_from_proto(resp.job), resp.job.last_sequence

    def list_jobs(self, agent_id: str, state: str | None, limit: int, search: str = "",
                  order_by: str = "") -> list[dict[str, Any]]:
        from trainhouse.common.pagination import collect_pages
        from trainhouse.v1 import job_state_pb2, training_service_pb2

        state_enum = getattr(job_state_pb2, f"JOB_STATE_{state.upper()}") if state else 0
        request = training_service_pb2.ListJobsRequest(agent_id=agent_id, state=state_enum, filter=search,
                                                       order_by=order_by)
        jobs = collect_pages(lambda r: self.call("training", "ListJobs", r), request, "jobs", 1000, limit)
        return [records.job_from_proto(j) for j in jobs]

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        from trainhouse.v1 import training_service_pb2

        resp = self.call("training", "CancelJob",
                          training_service_pb2.CancelJobRequest(job_id=job_id, reason="cancelled from the CLI"))
        job = records.job_from_proto(resp.job)
        return {"job_id": job["job_id"], "state": job["state"], "checkpoint_saved": resp.checkpoint_saved,
                "checkpoint_id": resp.checkpoint_id or None}

    def watch(self, job_id: str, after_sequence: int) -> Iterator[dict[str, Any]]:
        """Events after `after_sequence`; ends when the service ends the stream. A broken stream
        raises CliError(UNAVAILABLE) so the caller can reconnect from the last sequence."""
        import grpc

        from trainhouse.common.clients import channel
        from trainhouse.v1 import training_service_pb2

        target = config.service_address("training")
        stub = _stub("training", channel("training", target))
        call = stub.WatchJob(training_service_pb2.WatchJobRequest(job_id=job_id, after_sequence=after_sequence),
                             metadata=self.metadata)
        try:
            for event in call:
                yield records.event_from_proto(event)
        except grpc.RpcError as err:
            if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                raise CliError(ExitCode.UNAVAILABLE, f"training ({target}): stream broken ({err.code().name})",
                               status=err.code().name) from None
            raise from_rpc_error(err, f"training ({target})") from None
        finally:
            call.cancel()

    # -- registry --
    def list_agents(self, limit: int) -> list[dict[str, Any]]:
        from trainhouse.common.pagination import collect_pages
        from trainhouse.v1 import model_registry_pb2

        agents = collect_pages(lambda r: self.call("registry", "ListAgents", r), model_registry_pb2.ListAgentsRequest(),
                               "agents", 1000, limit)
        return [records.agent_from_proto(a) for a in agents]

    def create_agent(self, agent_id: str, name: str, description: str) -> dict[str, Any]:
        from trainhouse.v1 import model_registry_pb2

        resp = self.call("registry", "CreateAgent", model_registry_pb2.CreateAgentRequest(
            agent_id=agent_id, name=name, description=description))
        return records.agent_from_proto(resp.agent)

    def list_versions(self, agent_id: str, limit: int) -> list[dict[str, Any]]:
        from trainhouse.common.pagination import collect_pages
        from trainhouse.v1 import model_registry_pb2

        versions = collect_pages(lambda r: self.call("registry", "ListVersions", r),
                                 model_registry_pb2.ListVersionsRequest(agent_id=agent_id), "versions", 100, limit)
        return [records.version_from_proto(v) for v in versions]

    def register_checkpoint(self, job_id: str, checkpoint: str, step: int | None, note: str) -> dict[str, Any]:
        """A job's checkpoint (an id, "best", "last"; or the one at `step`) as a version."""
        from trainhouse.v1 import training_service_pb2

        request = training_service_pb2.RegisterCheckpointRequest(job_id=job_id, note=note)
        if step is not None:
            request.step = step
        elif checkpoint in ("best", "last"):
            request.which = checkpoint
        else:
            request.checkpoint_id = checkpoint
        return records.version_from_proto(self.call("training", "RegisterCheckpoint", request).version)

    # -- aliases and tags --
    def list_aliases(self, agent_id: str) -> list[dict[str, Any]]:
        from trainhouse.v1 import model_registry_pb2

        resp = self.call("registry", "ListVersionAliases", model_registry_pb2.ListVersionAliasesRequest(
            agent_id=agent_id))
        return [{"alias": a.alias, "version_id": a.version_id, "updated_at": ts_iso(a.update_time)}
                for a in resp.aliases]

    def set_alias(self, agent_id: str, alias: str, version_id: str) -> dict[str, Any]:
        from trainhouse.v1 import model_registry_pb2

        resp = self.call("registry", "SetVersionAlias", model_registry_pb2.SetVersionAliasRequest(
            agent_id=agent_id, version_id=version_id, alias=alias, actor="cli"))
        return {"alias": alias, "version_id": resp.version.version_id,
                "previous_version_id": resp.previous_version_id or None}

    def delete_alias(self, agent_id: str, alias: str) -> dict[str, Any]:
        from trainhouse.v1 import model_registry_pb2

        resp = self.call("registry", "DeleteVersionAlias", model_registry_pb2.DeleteVersionAliasRequest(
            agent_id=agent_id, alias=alias, actor="cli"))
        return {"alias": alias, "version_id": resp.version_id, "deleted": True}

    def update_tags(self, agent_id: str, version_id: str, set_: dict[str, str], remove: list[str]) -> dict[str, Any]:
        from trainhouse.v1 import model_registry_pb2

        resp = self.call("registry", "UpdateVersionTags", model_registry_pb2.UpdateVersionTagsRequest(
            agent_id=agent_id, version_id=version_id, set=set_, remove=remove, actor="cli"))
        return records.version_from_proto(resp.version)

    def predict(self, agent_id: str, texts: list[str], version_id: str) -> dict[str, Any]:
        from trainhouse.v1 import model_registry_pb2

        try:
            request = model_registry_pb2.PredictRequest(agent_id=agent_id, inputs=texts, version_id=version_id)
        except ValueError as exc:
            raise invalid("TEXT", f"text cannot be sent: {exc}") from None
        resp = self.call("registry", "Predict", request)
        return {"agent_id": agent_id, "version_id": resp.version_id,
                "predictions": [{"input": text, "output": p.output, "probability": p.probability,
                                 "top": [{"output": t.output, "probability": t.probability} for t in p.top]}
                                for text, p in zip(texts, resp.predictions)]}

    # -- sweeps (the canonical API's sweep record on both transports) --
    def create_sweep(self, body: dict[str, Any]) -> dict[str, Any]:
        from trainhouse.cli.records import sweep_record

        return sweep_record(self.call("training", "CreateSweep", sweep_request(body)).sweep)

    def get_sweep(self, sweep_id: str) -> dict[str, Any]:
        from trainhouse.cli.records import sweep_record
        from trainhouse.v1 import training_service_pb2

        return sweep_record(self.call("training", "GetSweep", training_service_pb2.GetSweepRequest(sweep_id=sweep_id)).sweep)

    def list_sweeps(self, agent_id: str, state: str, limit: int) -> list[dict[str, Any]]:
        from trainhouse.gateway.resources.sweeps import STATES
        from trainhouse.cli.records import sweep_record
        from trainhouse.v1 import training_service_pb2

        resp = self.call("training", "ListSweeps", training_service_pb2.ListSweepsRequest(
            agent_id=agent_id, state=STATES.get(state, 0), page_size=limit))
        return [sweep_record(s) for s in resp.sweeps]

    def cancel_sweep(self, sweep_id: str, reason: str) -> dict[str, Any]:
        from trainhouse.cli.records import sweep_record
        from trainhouse.v1 import training_service_pb2

        return sweep_record(self.call("training", "CancelSweep", training_service_pb2.CancelSweepRequest(
            sweep_id=sweep_id, reason=reason)).sweep)

    # -- data --
    def upload_dataset(self, content: bytes, dataset_id: str) -> dict[str, Any]:
        from trainhouse.v1 import data_service_pb2

        resp = self.call("data", "CreateDatasetFromJsonl", data_service_pb2.CreateDatasetFromJsonlRequest(
            dataset_id=dataset_id, content=content, source="upload"))
        return records.dataset_from_proto(resp.dataset)

    def list_datasets(self, limit: int) -> list[dict[str, Any]]:
        from trainhouse.common.pagination import collect_pages
        from trainhouse.v1 import data_service_pb2

        datasets = collect_pages(lambda r: self.call("data", "ListDatasets", r), data_service_pb2.ListDatasetsRequest(),
                                 "datasets", 1000, limit)
        return [records.dataset_from_proto(d) for d in datasets]

    # -- model artifact --
    def download(self, agent_id: str, version: str) -> tuple[dict[str, Any], bytes]:
        """The version's record and its ONNX bytes ('@alias' and 'latest' resolve in the registry)."""
        from trainhouse.v1 import model_registry_pb2

        resp = self.call("registry", "GetVersionArtifact", model_registry_pb2.GetVersionArtifactRequest(
            agent_id=agent_id, version_id=version))
        return records.version_from_proto(resp.version), resp.onnx_model

    # -- evaluation (the records are the canonical API's: the same mapping on both transports) --
    def evaluate(self, request: Any) -> dict[str, Any]:
        from trainhouse.gateway.resources.evaluations import evaluation_fields

        return evaluation_fields(self.call("evaluation", "Evaluate", request).evaluation)

    def compare(self, request: Any) -> Any:
        """The Comparison message (the canonical API renders it field for field)."""
        return self.call("evaluation", "CompareRuns", request).comparison

    def report(self, request: Any) -> Any:
        return self.call("evaluation", "GenerateReport", request).report

    # -- serving --
    def deploy(self, request: Any) -> dict[str, Any]:
        from trainhouse.gateway.resources.deployments import deployment_fields

        return deployment_fields(self.call("registry", "DeployVersion", request).deployment)

    def serving_version(self, agent_id: str, staging: bool) -> str:
        """What a rollback takes traffic from: the candidate of a rollout in progress, else the
        version that serves the environment."""
        from trainhouse.v1 import deployment_pb2, model_registry_pb2

        environment = deployment_pb2.ENVIRONMENT_STAGING if staging else deployment_pb2.ENVIRONMENT_PRODUCTION
        for state in (deployment_pb2.DEPLOYMENT_STATE_ROLLING_OUT, deployment_pb2.DEPLOYMENT_STATE_INCONCLUSIVE):
            rolling = self.call("registry", "ListDeployments", model_registry_pb2.ListDeploymentsRequest(
                agent_id=agent_id, environment=environment, state=state, page_size=1))
            if rolling.deployments:
                return rolling.deployments[0].version_id
        agent = records.agent_from_proto(self.call("registry", "GetAgent", model_registry_pb2.GetAgentRequest(
            agent_id=agent_id)).agent)
        return _serving_of(agent, agent_id, staging)

    def rollback(self, request: Any) -> dict[str, Any]:
        from trainhouse.gateway.resources.deployments import deployment_fields

        resp = self.call("registry", "RollbackVersion", request)
        return {"previous_version_id": resp.previous_version_id or None,
                "current_version_id": resp.current_version_id or None, "message": resp.message,
                "deployment": deployment_fields(resp.deployment) if resp.HasField("deployment") else None}

    # -- data generation and validation (response messages) --
    def generate(self, request: Any) -> Any:
        return self.call("data", "GenerateSyntheticData", request)

    def validate(self, request: Any) -> Any:
        return self.call("data", "ValidateDataset", request)

    def scenarios(self) -> Any:
        from trainhouse.v1 import data_service_pb2

        return self.call("data", "ListScenarioTypes", data_service_pb2.ListScenarioTypesRequest())


def sweep_request(body: dict[str, Any]) -> Any:
    """The sweep file (the gateway's sweep JSON: agentId, space, objective...) as CreateSweepRequest,
    validated the same way for both transports."""
    from pydantic import ValidationError

    from trainhouse.gateway.resources.sweeps import CreateSweepIn, create_request

    try:
        parsed = CreateSweepIn.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "sweep"
        raise invalid(where, f"{where}: {first.get('msg', 'invalid value')}") from None
    return create_request(parsed)


_STUBS = {
    "training": ("training_service_pb2_grpc", "TrainingServiceStub"),
    "data": ("data_service_pb2_grpc", "DataServiceStub"),
    "evaluation": ("evaluation_service_pb2_grpc", "EvaluationServiceStub"),
    "registry": ("model_registry_pb2_grpc", "ModelRegistryStub"),
}


def _stub(service: str, channel: Any) -> Any:
    import importlib

    module, cls = _STUBS[service]
    return getattr(importlib.import_module(f"trainhouse.v1.{module}"), cls)(channel)


# ---- gateway (the canonical REST API /v1, through the SDK) ---------------------------------

class GatewayBackend:
    """Talks to the gateway's canonical API (/v1) through the Python SDK (trainhouse.sdk.Client):
    the same calls a user's script makes, so the CLI works wherever only the gateway is exposed."""

    kind = "gateway"

    def __init__(self, url: str, token: str, timeout: float | None = None):
        from trainhouse.sdk import Client

        if not url.startswith(("http://", "https://")):
            raise CliError(ExitCode.USAGE, f"--url must start with http:// or https://, got {url!r}",
                           field="--url")
        self.url = url.rstrip("/")
        self.timeout = timeout or default_timeout()
        self.client = Client(self.url, token, timeout=self.timeout)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """SDK exceptions -> CliError, with the same exit codes as the HTTP statuses they carry."""
        from trainhouse.sdk import APIConnectionError, APIStatusError, APITimeoutError, OperationFailedError

        try:
            yield
        except APIStatusError as err:
            raise from_api_error(err.status_code, err.code, err.message, err.param, what) from None
        except OperationFailedError as err:
            error = err.operation.error or {}
            status = OPERATION_STATUS.get(str(error.get("code")), 500)
            raise from_api_error(status, str(error.get("code")), str(error.get("message") or err),
                                 error.get("param"), what) from None
        except APITimeoutError:
            raise CliError(ExitCode.UNAVAILABLE, f"gateway at {self.url} did not answer within "
                                                 f"{self.timeout:g} s", status="TIMEOUT") from None
        except APIConnectionError as exc:
            raise CliError(ExitCode.UNAVAILABLE, f"gateway at {self.url} is unavailable: {exc.__cause__ or exc}",
                           status="UNAVAILABLE") from None
        except TimeoutError as exc:  # an operation still running after --timeout
            raise CliError(ExitCode.UNAVAILABLE, f"{what}: {exc}", status="TIMEOUT") from None

    def _wait(self, operation: Any, what: str) -> dict[str, Any]:
        """Poll an operation (evaluations, comparisons, reports) until done; its result."""
        with self._errors(what):
            done = self.client.operations.wait(operation, timeout=max(self.timeout, OPERATION_WAIT_S))
        return dict(done.result or {})

    # -- training --
    def start_job(self, spec: TrainSpec) -> str:
        fields = body_of(start_request(spec))
        with self._errors("POST /v1/jobs"):
            return self.client.jobs.create(fields.pop("agent_id"), **fields).job_id

    def get_job(self, job_id: str) -> dict[str, Any]:
        with self._errors(f"GET /v1/jobs/{job_id}"):
            return records.job_from_canonical(_raw(self.client.jobs.get(job_id)))

    def job_head(self, job_id: str) -> tuple[dict[str, Any], int]:
        """The job's record and the sequence of its newest event, from one GET /v1/jobs/{id}: both come
        from the same job row, so following the events after that sequence misses and repeats nothing."""
        with self._errors(f"GET /v1/jobs/{job_id}"):
            raw = _raw(self.client.jobs.get(job_id))
        return records.job_from_canonical(raw), int(raw.get("last_sequence") or 0)

    def list_jobs(self, agent_id: str, state: str | None, limit: int, search: str = "",
                  order_by: str = "") -> list[dict[str, Any]]:
        with self._errors("GET /v1/jobs"):
            pages = self.client.jobs.list(agent_id=agent_id or None, state=state, filter=search or None,
                                          order_by=order_by or None, limit=min(limit, 100))
            return [records.job_from_canonical(_raw(j)) for j in islice(pages, limit)]

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        with self._errors(f"POST /v1/jobs/{job_id}/cancel"):
            action = self.client.jobs.cancel(job_id, reason="cancelled from the CLI")
        return {"job_id": action.job.job_id, "state": action.job.state,
                "checkpoint_saved": bool(action.checkpoint_saved), "checkpoint_id": action.checkpoint_id or None}

    def watch(self, job_id: str, after_sequence: int) -> Iterator[dict[str, Any]]:
        """The job's events (SSE; the SDK resumes a dropped connection itself); a stream that
        cannot be resumed raises CliError(UNAVAILABLE) so the caller reconnects from the last sequence."""
        with self._errors(f"GET /v1/jobs/{job_id}/events/stream"):
            for event in self.client.events.stream(job_id, after=after_sequence):
                yield _raw(event)

    # -- registry --
    def list_agents(self, limit: int) -> list[dict[str, Any]]:
        with self._errors("GET /v1/agents"):
            return [_raw(a) for a in islice(self.client.agents.list(), limit)]

    def create_agent(self, agent_id: str, name: str, description: str) -> dict[str, Any]:
        with self._errors("POST /v1/agents"):
            return _raw(self.client.agents.create(agent_id, name=name or None, description=description or None))

    def list_versions(self, agent_id: str, limit: int) -> list[dict[str, Any]]:
        with self._errors(f"GET /v1/agents/{agent_id}/versions"):
            return [_raw(v) for v in islice(self.client.versions.list(agent_id), limit)]

    def register_checkpoint(self, job_id: str, checkpoint: str, step: int | None, note: str) -> dict[str, Any]:
        """As GrpcBackend's; the route names a checkpoint, so a step is first looked up in the job's
        checkpoints (the one whose id names those weights for good, not "best", as the service picks)."""
        with self._errors(f"POST /v1/jobs/{job_id}/checkpoints"):
            if step is not None:
                at_step = sorted((c for c in self.client.checkpoints.list(job_id) if c.step == step),
                                 key=lambda c: c.kind == "best")
                if not at_step:
                    raise CliError(ExitCode.NOT_FOUND, f"job {job_id} has no checkpoint at step {step}",
                                   field="step", status="HTTP 404")
                checkpoint = at_step[0].checkpoint_id
            return _raw(self.client.checkpoints.register(job_id, checkpoint, note=note or None))

    def download(self, agent_id: str, version: str) -> tuple[dict[str, Any], bytes]:
        """As GrpcBackend's: the record first (it resolves '@alias' / 'latest', or the version production
        serves when none is given), then that version's bytes, checked against its digest."""
        import hashlib

        with self._errors(f"GET /v1/agents/{agent_id}/versions"):
            if not version:
                version = _raw(self.client.agents.get(agent_id)).get("active_version_id") or ""
                if not version:
                    raise CliError(ExitCode.CONFLICT, f"agent '{agent_id}' has no trained version yet",
                                   status="FAILED_PRECONDITION")
            record = _raw(self.client.versions.get(agent_id, version))
            content = self.client.versions.download(agent_id, record["version_id"])
        if record.get("sha256") and hashlib.sha256(content).hexdigest() != record["sha256"]:
            raise CliError(ExitCode.SERVER_ERROR, f"the ONNX file of {agent_id} {record['version_id']} does not "
                                                  "match its registered sha256", status="CHECKSUM")
        return record, content

    # -- aliases and tags --
    def list_aliases(self, agent_id: str) -> list[dict[str, Any]]:
        with self._errors(f"GET /v1/agents/{agent_id}/aliases"):
            found = self.client.aliases.list(agent_id)
        return [{"alias": a.alias, "version_id": a.version_id, "updated_at": a.get("updated_at")} for a in found]

    def set_alias(self, agent_id: str, alias: str, version_id: str) -> dict[str, Any]:
        with self._errors(f"PUT /v1/agents/{agent_id}/aliases/{alias}"):
            moved = self.client.aliases.set(agent_id, alias, version_id)
        return {"alias": alias, "version_id": moved.version.version_id,
                "previous_version_id": moved.previous_version_id or None}

    def delete_alias(self, agent_id: str, alias: str) -> dict[str, Any]:
        with self._errors(f"DELETE /v1/agents/{agent_id}/aliases/{alias}"):
            gone = self.client.aliases.delete(agent_id, alias)
        return {"alias": alias, "version_id": gone.get("version_id"), "deleted": True}

    def update_tags(self, agent_id: str, version_id: str, set_: dict[str, str], remove: list[str]) -> dict[str, Any]:
        with self._errors(f"PATCH /v1/agents/{agent_id}/versions/{version_id}/tags"):
            return _raw(self.client.versions.update_tags(agent_id, version_id, set=set_, remove=remove))

    def predict(self, agent_id: str, texts: list[str], version_id: str) -> dict[str, Any]:
        with self._errors(f"POST /v1/agents/{agent_id}/predict"):
            data = _raw(self.client.agents.predict(agent_id, texts, version_id=version_id or None))
        return {"agent_id": agent_id, "version_id": data.get("version_id"),
                "predictions": [{"input": text, "output": p.get("output"), "probability": p.get("probability"),
                                 "top": [{"output": t.get("output"), "probability": t.get("probability")}
                                         for t in p.get("top") or []]}
                                for text, p in zip(texts, data.get("predictions") or [])]}

    # -- sweeps --
    def create_sweep(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = body_of(sweep_request(body))
        with self._errors("POST /v1/sweeps"):
            return _raw(self.client.sweeps.create(fields.pop("sweep"), **fields))

    def get_sweep(self, sweep_id: str) -> dict[str, Any]:
        with self._errors(f"GET /v1/sweeps/{sweep_id}"):
            return _raw(self.client.sweeps.get(sweep_id))

    def list_sweeps(self, agent_id: str, state: str, limit: int) -> list[dict[str, Any]]:
        with self._errors("GET /v1/sweeps"):
            found = self.client.sweeps.list(agent_id=agent_id or None, state=state or None, limit=min(limit, 100))
            return [_raw(s) for s in islice(found, limit)]

    def cancel_sweep(self, sweep_id: str, reason: str) -> dict[str, Any]:
        with self._errors(f"POST /v1/sweeps/{sweep_id}/cancel"):
            return _raw(self.client.sweeps.cancel(sweep_id, reason or None))

    # -- data --
    def upload_dataset(self, content: bytes, dataset_id: str) -> dict[str, Any]:
        with self._errors("POST /v1/datasets/upload"):
            return records.dataset_from_canonical(_raw(self.client.datasets.upload(
                content, dataset_id=dataset_id or None, source="upload")))

    def list_datasets(self, limit: int) -> list[dict[str, Any]]:
        with self._errors("GET /v1/datasets"):
            return [records.dataset_from_canonical(_raw(d)) for d in islice(self.client.datasets.list(), limit)]

    # -- evaluation: operations on /v1, polled until done --
    def evaluate(self, request: Any) -> dict[str, Any]:
        with self._errors("POST /v1/evaluations"):
            fields = body_of(request)
            op = self.client.evaluations.create(fields.pop("agent_id", None), **fields)  # None: --job names it
        result = self._wait(op, "POST /v1/evaluations")
        result.pop("reused", None)
        return result

    def compare(self, request: Any) -> Any:
        from trainhouse.v1 import run_comparison_pb2

        with self._errors("POST /v1/comparisons"):
            fields = body_of(request)
            op = self.client.comparisons.create(fields.pop("run_ids", []), **fields)
        return proto_of(self._wait(op, "POST /v1/comparisons"), run_comparison_pb2.RunComparison)

    def report(self, request: Any) -> Any:
        from trainhouse.v1 import evaluation_service_pb2

        with self._errors("POST /v1/reports"):
            op = self.client.reports.create(**body_of(request))
        return proto_of(self._wait(op, "POST /v1/reports"), evaluation_service_pb2.TrainingReport)

    # -- serving --
    def deploy(self, request: Any) -> dict[str, Any]:
        fields = body_of(request)
        fields.pop("actor", None)
        with self._errors("POST /v1/deployments"):
            return _raw(self.client.deployments.create(fields.pop("agent_id"), fields.pop("version_id"), **fields))

    def serving_version(self, agent_id: str, staging: bool) -> str:
        environment = "staging" if staging else "production"
        with self._errors("GET /v1/deployments"):
            for state in ("rolling_out", "inconclusive"):
                rolling = list(islice(self.client.deployments.list(agent_id=agent_id, environment=environment,
                                                                   state=state, limit=1), 1))
                if rolling:
                    return rolling[0].version_id
            agent = _raw(self.client.agents.get(agent_id))
        return _serving_of(agent, agent_id, staging)

    def rollback(self, request: Any) -> dict[str, Any]:
        fields = body_of(request)
        for key in ("actor", "agent_id"):
            fields.pop(key, None)
        with self._errors(f"POST /v1/agents/{request.agent_id}/rollback"):
            out = _raw(self.client.deployments.rollback(request.agent_id, **fields))
        return {"previous_version_id": out.get("previous_version_id") or None,
                "current_version_id": out.get("current_version_id") or None, "message": out.get("message") or "",
                "deployment": out.get("deployment")}

    # -- data generation and validation --
    def generate(self, request: Any) -> Any:
        from trainhouse.v1 import data_service_pb2

        with self._errors("POST /v1/datasets/generate"):
            out = _raw(self.client.datasets.generate(**body_of(request)))
        dataset = out.pop("dataset", None) or {}
        resp = proto_of(out, data_service_pb2.GenerateSyntheticDataResponse)
        resp.dataset.CopyFrom(proto_of(_dataset_message_json(dataset), type(resp.dataset)))
        return resp

    def validate(self, request: Any) -> Any:
        from trainhouse.v1 import data_service_pb2

        with self._errors("POST /v1/datasets/validate"):
            out = _raw(self.client.datasets.validate(**body_of(request)))
        return proto_of(out, data_service_pb2.ValidateDatasetResponse)

    def scenarios(self) -> Any:
        from trainhouse.v1 import data_service_pb2

        with self._errors("GET /v1/scenarios"):
            return proto_of(_raw(self.client.scenarios.list()), data_service_pb2.ListScenarioTypesResponse)

    # -- tokens (gateway only) --
    def create_token(self, name: str, scopes: list[str], account: str | None,
                     expires_in_days: int | None) -> dict[str, Any]:
        with self._errors("POST /v1/tokens"):
            d = _raw(self.client.tokens.create(name, scopes, account=account or None,
                                               expires_in_days=expires_in_days))
        keys = ("token_id", "token", "name", "scopes", "account", "created_at", "expires_at")
        return {k: d.get(k) for k in keys} | {"scopes": list(d.get("scopes") or [])}


# An operation's error code (the canonical API's) -> the HTTP status it stands for.
OPERATION_STATUS = {"invalid_request": 400, "unauthenticated": 401, "permission_denied": 403, "not_found": 404,
                    "failed_precondition": 409, "conflict": 409, "rate_limited": 429, "unavailable": 503,
                    "timeout": 504, "internal_error": 500}
OPERATION_WAIT_S = 600.0


def _serving_of(agent: dict[str, Any], agent_id: str, staging: bool) -> str:
    serving = agent.get("staging_version_id" if staging else "active_version_id")
    if not serving:
        raise CliError(ExitCode.CONFLICT, f"nothing is deployed for agent '{agent_id}' in "
                                          f"{'staging' if staging else 'production'}; there is nothing to roll back",
                       status="FAILED_PRECONDITION")
    return serving


def proto_of(data: dict[str, Any], message_class: Any) -> Any:
    """The canonical API's JSON of a message (trainhouse.gateway.canonical.protojson.message_json) read back
    into the message, so a command renders one type whichever transport answered."""
    from google.protobuf import json_format

    from trainhouse.gateway.canonical.protojson import _to_proto_json

    msg = message_class()
    try:
        json_format.ParseDict(_to_proto_json(_pruned(data), msg.DESCRIPTOR), msg, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise CliError(ExitCode.SERVER_ERROR, f"the gateway's answer does not read as "
                                              f"{msg.DESCRIPTOR.name}: {exc}", status="BAD_ANSWER") from None
    return msg


def _dataset_message_json(d: dict[str, Any]) -> dict[str, Any]:
    """/v1's dataset (dataset_fields) in the Dataset message's field names."""
    return {"dataset_id": d.get("dataset_id"), "source": d.get("source"), "sha256": d.get("sha256"),
            "create_time": d.get("created_at"), "labels": d.get("labels") or {},
            "statistics": d.get("statistics") or {}}


def _raw(model: Any) -> dict[str, Any]:
    """The JSON the server sent (the SDK's model without the defaults it fills in)."""
    return model.model_dump(exclude_unset=True) if hasattr(model, "model_dump") else dict(model)


def body_of(message: Any) -> dict[str, Any]:
    """A request message as the canonical API's JSON body (proto field names, enum words, ISO
    times): the fields that are set, a presence field set to false or 0 included. The commands
    build one request message for both transports."""
    from trainhouse.gateway.canonical.protojson import WELL_KNOWN_JSON, value_json

    def one(f: Any, value: Any) -> Any:
        m = f.message_type
        if m is not None and m.full_name not in WELL_KNOWN_JSON and not m.full_name.startswith("google.protobuf."):
            return body_of(value)
        return value_json(f, value)

    out: dict[str, Any] = {}
    for f, value in message.ListFields():
        m = f.message_type
        if m is not None and m.GetOptions().map_entry:
            out[f.name] = {k: one(m.fields_by_name["value"], value[k]) for k in value}
        elif f.is_repeated:
            out[f.name] = [one(f, x) for x in value]
        else:
            out[f.name] = one(f, value)
    return out


def _pruned(value: Any) -> Any:
    """Drop the nulls (unset messages and presence fields) of a message's canonical JSON."""
    if isinstance(value, dict):
        return {k: _pruned(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def connect(url: str | None, token: str | None, timeout: float | None = None) -> GrpcBackend | GatewayBackend:
    """gRPC unless a gateway URL was given (--url or TRAINHOUSE_URL)."""
    url = url or os.environ.get("TRAINHOUSE_URL")
    if url:
        return GatewayBackend(gateway_url(url), resolve_token(token), timeout)
    return GrpcBackend(timeout, token)
