"""The two ways the CLI reaches trainhouse: gRPC to the services, or REST through the gateway.

Both classes offer the same methods and return the records of trainhouse.cli.records, so a
command is written once and `--url` only changes who answers. Every failure leaves here as a
CliError (exit code, message, field); nothing transport-specific escapes to the commands.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from trainhouse.cli import records
from trainhouse.cli.errors import GRPC_EXIT, CliError, ExitCode, from_http_error, from_rpc_error, invalid
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
        from google.protobuf import json_format

        from trainhouse.v1 import job_state_pb2, training_job_pb2, training_service_pb2

        cfg = training_job_pb2.TrainingConfig()
        try:
            json_format.ParseDict(spec.config, cfg)
        except json_format.ParseError as exc:
            raise invalid("--config", f"--config: {exc}") from None
        if spec.method:
            cfg.method = getattr(job_state_pb2, f"TRAINING_METHOD_{spec.method.upper()}")
        request = training_service_pb2.StartJobRequest(
            agent_id=spec.agent_id, dataset_id=spec.dataset_id, config=cfg, display_name=spec.display_name,
            examples=examples_proto(spec.file) if spec.file else [])
        return self.call("training", "StartJob", request).job.job_id

    def get_job(self, job_id: str) -> dict[str, Any]:
        from trainhouse.v1 import training_service_pb2

        resp = self.call("training", "GetJob", training_service_pb2.GetJobRequest(job_id=job_id))
        return records.job_from_proto(resp.job)

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

    # -- sweeps (the gateway's JSON shape on both transports) --
    def create_sweep(self, body: dict[str, Any]) -> dict[str, Any]:
        from pydantic import ValidationError

        from trainhouse.gateway.resources.sweeps import CreateSweepIn, create_request, sweep_json

        try:
            parsed = CreateSweepIn.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "sweep"
            raise invalid(where, f"{where}: {first.get('msg', 'invalid value')}") from None
        return sweep_json(self.call("training", "CreateSweep", create_request(parsed)).sweep)

    def get_sweep(self, sweep_id: str) -> dict[str, Any]:
        from trainhouse.gateway.resources.sweeps import sweep_json
        from trainhouse.v1 import training_service_pb2

        return sweep_json(self.call("training", "GetSweep", training_service_pb2.GetSweepRequest(sweep_id=sweep_id)).sweep)

    def list_sweeps(self, agent_id: str, state: str, limit: int) -> list[dict[str, Any]]:
        from trainhouse.gateway.resources.sweeps import STATES, sweep_json
        from trainhouse.v1 import training_service_pb2

        resp = self.call("training", "ListSweeps", training_service_pb2.ListSweepsRequest(
            agent_id=agent_id, state=STATES.get(state, 0), page_size=limit))
        return [sweep_json(s) for s in resp.sweeps]

    def cancel_sweep(self, sweep_id: str, reason: str) -> dict[str, Any]:
        from trainhouse.gateway.resources.sweeps import sweep_json
        from trainhouse.v1 import training_service_pb2

        return sweep_json(self.call("training", "CancelSweep", training_service_pb2.CancelSweepRequest(
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


# ---- gateway (REST) ------------------------------------------------------------------------

class GatewayBackend:
    """Talks to the gateway's seed-000 REST surface with a bearer token."""

    kind = "gateway"

    def __init__(self, url: str, token: str, timeout: float | None = None):
        import httpx

        if not url.startswith(("http://", "https://")):
            raise CliError(ExitCode.USAGE, f"--url must start with http:// or https://, got {url!r}",
                           field="--url")
        self.url = url.rstrip("/")
        self.timeout = timeout or default_timeout()
        self.client = httpx.Client(base_url=self.url, timeout=self.timeout,
                                   headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            resp = self.client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise CliError(ExitCode.UNAVAILABLE, f"gateway at {self.url} did not answer within "
                                                 f"{self.timeout:g} s", status="TIMEOUT") from None
        except httpx.TransportError as exc:
            raise CliError(ExitCode.UNAVAILABLE, f"gateway at {self.url} is unavailable: {exc}",
                           status="UNAVAILABLE") from None
        body = _json_or_none(resp)
        if resp.status_code >= 400:
            raise from_http_error(resp.status_code, body, f"{method} {path}")
        if not isinstance(body, dict):
            raise CliError(ExitCode.SERVER_ERROR, f"gateway answered {method} {path} with a non-JSON body",
                           status=f"HTTP {resp.status_code}")
        return body.get("data", body)

    # -- training --
    def start_job(self, spec: TrainSpec) -> str:
        cfg = dict(spec.config)
        if spec.method:
            cfg["method"] = spec.method
        if spec.dataset_id:
            cfg["dataset"] = spec.dataset_id
        body: dict[str, Any] = {"agentId": spec.agent_id, "config": cfg}
        if spec.file:
            body["examples"] = spec.file.examples
        if spec.display_name:
            body["displayName"] = spec.display_name
        data = self._request("POST", "/api/v1/training/train-agent", json=body)
        return data["trainingJobId"]

    def get_job(self, job_id: str) -> dict[str, Any]:
        return records.job_from_rest(self._request("GET", f"/api/v1/training/train-agent/{_seg(job_id)}"))

    # -- sweeps --
    def create_sweep(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", "/api/v1/sweeps", json=body)

    def get_sweep(self, sweep_id: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/sweeps/{_seg(sweep_id)}")

    def list_sweeps(self, agent_id: str, state: str, limit: int) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("agentId", agent_id), ("state", state)) if v}
        return self._request("GET", "/api/v1/sweeps", params={**params, "limit": limit})["sweeps"]

    def cancel_sweep(self, sweep_id: str, reason: str) -> dict[str, Any]:
        return self._request("POST", f"/api/v1/sweeps/{_seg(sweep_id)}/cancel", json={"reason": reason})

    def list_jobs(self, agent_id: str, state: str | None, limit: int, search: str = "",
                  order_by: str = "") -> list[dict[str, Any]]:
        """The v1 surface has no job listing: take the ids (in the search's order, newest first by
        default) from the seed-004 runtime surface's `GET /api/training/jobs`, which runs the search,
        then read each job from v1 so the records match gRPC's."""
        params = {k: v for k, v in (("filter", search), ("orderBy", order_by)) if v}
        listed = self._request("GET", "/api/training/jobs", params=params).get("jobs") or []
        wanted = [item["id"] for item in listed
                  if (not agent_id or item.get("model") == agent_id) and (not state or item.get("status") == state)]
        return [self.get_job(job_id) for job_id in wanted[:limit]]

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        data = self._request("POST", f"/api/v1/training/train-agent/{_seg(job_id)}/stop")
        return {"job_id": data.get("jobId"), "state": data.get("status"),
                "checkpoint_saved": bool(data.get("checkpointSaved")), "checkpoint_id": data.get("checkpointId")}

    def watch(self, job_id: str, after_sequence: int) -> Iterator[dict[str, Any]]:
        """The job's Server-Sent Events; a broken stream raises CliError(UNAVAILABLE)."""
        import httpx

        params = {"afterSequence": after_sequence} if after_sequence else {}
        path = f"/api/v1/training/train-agent/{_seg(job_id)}/events"
        # Reads wait for events: the gateway sends a keep-alive comment in quiet periods.
        timeout = httpx.Timeout(self.timeout, read=max(self.timeout, 60.0))
        try:
            with self.client.stream("GET", path, params=params, timeout=timeout,
                                    headers={"Accept": "text/event-stream"}) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise from_http_error(resp.status_code, _json_or_none(resp), f"GET {path}")
                yield from _sse_events(resp.iter_lines())
        except httpx.TransportError as exc:
            raise CliError(ExitCode.UNAVAILABLE, f"gateway at {self.url}: event stream broken ({exc})",
                           status="UNAVAILABLE") from None

    # -- agents and models --
    def _pages(self, path: str, key: str, limit: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page, size = 1, min(100, limit)  # one size for every page: page N starts at (N - 1) * size
        while len(out) < limit:
            data = self._request("GET", path, params={"page": page, "limit": size})
            items = data.get(key) or []
            out.extend(items)
            pages = (data.get("pagination") or {}).get("pages") or 0
            if not items or page >= pages:
                break
            page += 1
        return out[:limit]

    def list_agents(self, limit: int) -> list[dict[str, Any]]:
        return [records.agent_from_rest(a) for a in self._pages("/api/v1/agents", "agents", limit)]

    def create_agent(self, agent_id: str, name: str, description: str) -> dict[str, Any]:
        body = {"agentId": agent_id, "name": name or None, "description": description or None}
        return records.agent_from_rest(self._request("POST", "/api/v1/agents",
                                                     json={k: v for k, v in body.items() if v is not None}))

    def list_versions(self, agent_id: str, limit: int) -> list[dict[str, Any]]:
        path = f"/api/v1/training/models/{_seg(agent_id)}/versions"
        return [records.version_from_rest(v) for v in self._pages(path, "versions", limit)]

    def register_checkpoint(self, job_id: str, checkpoint: str, step: int | None, note: str) -> dict[str, Any]:
        """As GrpcBackend's; the route names a checkpoint, so a step is first looked up in the job's
        checkpoints (the one whose id names those weights for good, not "best", as the service picks)."""
        if step is not None:
            listed = self._request("GET", f"/api/v1/training/train-agent/{_seg(job_id)}/checkpoints",
                                   params={"pageSize": 1000}).get("checkpoints") or []
            at_step = sorted((c for c in listed if c.get("step") == step), key=lambda c: c.get("kind") == "best")
            if not at_step:
                raise CliError(ExitCode.NOT_FOUND, f"job {job_id} has no checkpoint at step {step}", field="step",
                               status="HTTP 404")
            checkpoint = at_step[0]["checkpointId"]
        data = self._request("POST", f"/api/v1/training/train-agent/{_seg(job_id)}/checkpoints/{_seg(checkpoint)}"
                             "/register", json={"note": note} if note else {})
        return records.version_from_rest(data)

    # -- aliases and tags --
    def list_aliases(self, agent_id: str) -> list[dict[str, Any]]:
        data = self._request("GET", f"/api/v1/training/models/{_seg(agent_id)}/aliases")
        return [{"alias": a.get("alias"), "version_id": a.get("versionId"), "updated_at": a.get("updatedAt")}
                for a in data.get("aliases") or []]

    def set_alias(self, agent_id: str, alias: str, version_id: str) -> dict[str, Any]:
        data = self._request("PUT", f"/api/v1/training/models/{_seg(agent_id)}/aliases/{_seg(alias)}",
                             json={"versionId": version_id})
        return {"alias": alias, "version_id": (data.get("version") or {}).get("versionId"),
                "previous_version_id": data.get("previousVersionId")}

    def delete_alias(self, agent_id: str, alias: str) -> dict[str, Any]:
        data = self._request("DELETE", f"/api/v1/training/models/{_seg(agent_id)}/aliases/{_seg(alias)}")
        return {"alias": alias, "version_id": data.get("versionId"), "deleted": bool(data.get("deleted"))}

    def update_tags(self, agent_id: str, version_id: str, set_: dict[str, str], remove: list[str]) -> dict[str, Any]:
        data = self._request("PATCH", f"/api/v1/training/models/{_seg(agent_id)}/versions/{_seg(version_id)}/tags",
                             json={"set": set_, "remove": remove})
        return records.version_from_rest(data)

    def predict(self, agent_id: str, texts: list[str], version_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {"inputs": texts}
        if version_id:
            body["versionId"] = version_id
        data = self._request("POST", f"/api/v1/agents/{_seg(agent_id)}/predict", json=body)
        return {"agent_id": data.get("agentId", agent_id), "version_id": data.get("versionId"),
                "predictions": [{"input": p.get("input"), "output": p.get("output"),
                                 "probability": p.get("probability"),
                                 "top": [{"output": t.get("output"), "probability": t.get("probability")}
                                         for t in p.get("top") or []]}
                                for p in data.get("predictions") or []]}

    # -- data --
    def upload_dataset(self, content: bytes, dataset_id: str) -> dict[str, Any]:
        params = {"datasetId": dataset_id} if dataset_id else {}
        data = self._request("POST", "/api/v1/training/datasets", params=params, content=content,
                             headers={"Content-Type": "application/x-ndjson"})
        return records.dataset_from_rest(data)

    def list_datasets(self, limit: int) -> list[dict[str, Any]]:
        return [records.dataset_from_rest(d) for d in self._pages("/api/v1/training/datasets", "datasets", limit)]

    # -- tokens (gateway only) --
    def create_token(self, name: str, scopes: list[str], account: str | None,
                     expires_in_days: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "scopes": scopes}
        if account:
            body["account"] = account
        if expires_in_days is not None:
            body["expiresInDays"] = expires_in_days
        d = self._request("POST", "/api/v1/auth/tokens", json=body)
        return records.token_from_rest(d)


def _seg(value: str) -> str:
    """One URL path segment (ids are validated by the services; this only keeps the path intact)."""
    return quote(value, safe="")


def _json_or_none(resp: Any) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Parse `text/event-stream` lines into CLI event records; an `error` event raises."""
    event, data = "message", []
    for line in lines:
        if line == "":
            if data:
                payload = json.loads("\n".join(data))
                if event == "error":
                    code = str(payload.get("code") or "UNKNOWN")
                    exit_code = ExitCode.UNAVAILABLE if code == "CANCELLED" else GRPC_EXIT.get(code, ExitCode.SERVER_ERROR)
                    raise CliError(exit_code,
                                   f"gateway event stream: {payload.get('message') or code}", status=code)
                yield records.event_from_sse(payload)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)


def connect(url: str | None, token: str | None, timeout: float | None = None) -> GrpcBackend | GatewayBackend:
    """gRPC unless a gateway URL was given (--url or TRAINHOUSE_URL)."""
    url = url or os.environ.get("TRAINHOUSE_URL")
    if url:
        return GatewayBackend(gateway_url(url), resolve_token(token), timeout)
    return GrpcBackend(timeout, token)
