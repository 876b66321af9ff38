"""The SDK's resources: one method per canonical route, named after its operation id
(``jobs.create`` is ``client.jobs.create``). Each method describes its call; the client's
transport runs it (sync or async), so these classes serve both ``Client`` and ``AsyncClient``.

Bodies are the proto requests' fields (snake_case), passed as keyword arguments; see docs/api.md.
"""
from __future__ import annotations

from typing import Any

from trainhouse.sdk._base import Call
from trainhouse.sdk._models import (
    Agent,
    Alias,
    AliasSet,
    Checkpoint,
    Dataset,
    Deployment,
    Evaluation,
    Event,
    Job,
    JobAction,
    MetricPoint,
    Operation,
    Resource,
    Token,
    Version,
    Webhook,
)


def _body(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


class _Resource:
    def __init__(self, transport: Any):
        self._t = transport

    def _run(self, method: str, path: str, cast: Any = None, **kw: Any) -> Any:
        validate = cast.model_validate if cast is not None and hasattr(cast, "model_validate") else cast
        return self._t.execute(Call(method, path, cast=validate, **kw))

    def _list(self, path: str, item: Any, params: dict[str, Any] | None = None) -> Any:
        return self._t.execute(Call("GET", path, params=params, page_item=item.model_validate))


class Jobs(_Resource):
    def create(self, agent_id: str, *, idempotency_key: str | None = None, **fields: Any) -> Job:
        """Start a training job (fields of StartJobRequest: examples, dataset_id, config, labels...)."""
        return self._run("POST", "/v1/jobs", Job, json=_body(agent_id=agent_id, **fields), create=True,
                         idempotency_key=idempotency_key)

    def list(self, *, agent_id: str | None = None, state: str | None = None, filter: str | None = None,
             order_by: str | None = None, limit: int | None = None) -> Any:
        """All matching jobs, auto-paged (``filter``/``order_by``: docs/search.md)."""
        return self._list("/v1/jobs", Job, {"agent_id": agent_id, "state": state, "filter": filter,
                                            "order_by": order_by, "limit": limit})

    def get(self, job_id: str) -> Job:
        return self._run("GET", f"/v1/jobs/{job_id}", Job)

    def cancel(self, job_id: str, reason: str | None = None) -> JobAction:
        return self._run("POST", f"/v1/jobs/{job_id}/cancel", JobAction, json=_body(reason=reason))

    def pause(self, job_id: str) -> JobAction:
        return self._run("POST", f"/v1/jobs/{job_id}/pause", JobAction)

    def resume(self, job_id: str) -> JobAction:
        return self._run("POST", f"/v1/jobs/{job_id}/resume", JobAction)

    def examples(self, job_id: str, split: str = "all") -> Any:
        return self._list(f"/v1/jobs/{job_id}/examples", Resource, {"split": split})

    def evaluate_results(self, job_id: str, *, idempotency_key: str | None = None, **fields: Any) -> Operation:
        """Grade a job's results (EvaluateTrainingResults) as an operation."""
        return self._run("POST", f"/v1/jobs/{job_id}/evaluate", Operation, json=_body(**fields), create=True,
                         idempotency_key=idempotency_key)


class Events(_Resource):
    def list(self, job_id: str, *, after: int = 0, limit: int | None = None) -> Any:
        """The job's events so far, oldest first, auto-paged; ends at the newest event stored now."""
        return self._list(f"/v1/jobs/{job_id}/events", Event, {"after": after or None, "limit": limit})

    def stream(self, job_id: str, *, after: int = 0) -> Any:
        """Live events until the job ends, resumed after a dropped connection (Last-Event-ID)."""
        from trainhouse.sdk import _streaming
        if hasattr(self._t, "_execute"):
            return _streaming.astream_events(self._t, job_id, after)
        return _streaming.stream_events(self._t, job_id, after)


class Checkpoints(_Resource):
    def list(self, job_id: str) -> Any:
        return self._list(f"/v1/jobs/{job_id}/checkpoints", Checkpoint)

    def register(self, job_id: str, checkpoint_id: str = "best", note: str | None = None) -> Version:
        return self._run("POST", f"/v1/jobs/{job_id}/checkpoints/{checkpoint_id}/register", Version,
                         json=_body(note=note))


class Metrics(_Resource):
    def list(self, job_id: str, *, names: list[str] | None = None, max_points_per_metric: int | None = None) -> Any:
        """The metric history, auto-paged; with ``max_points_per_metric`` at most that many points per
        name, evenly spaced, first and last included (one request: what a chart needs of a long job)."""
        return self._list(f"/v1/jobs/{job_id}/metrics", MetricPoint,
                          {"names": names, "max_points_per_metric": max_points_per_metric})

    def export(self, job_id: str, format: str = "csv", *, names: list[str] | None = None) -> bytes:
        """The whole metric history as CSV or Parquet bytes (written by DuckDB)."""
        return self._run("GET", f"/v1/jobs/{job_id}/metrics", params={"format": format, "names": names}, raw=True)


class Agents(_Resource):
    def create(self, agent_id: str, *, idempotency_key: str | None = None, **fields: Any) -> Agent:
        return self._run("POST", "/v1/agents", Agent, json=_body(agent_id=agent_id, **fields), create=True,
                         idempotency_key=idempotency_key)

    def list(self) -> Any:
        return self._list("/v1/agents", Agent)

    def stats(self) -> Resource:
        return self._run("GET", "/v1/agents/stats", Resource)

    def get(self, agent_id: str) -> Agent:
        return self._run("GET", f"/v1/agents/{agent_id}", Agent)

    def update(self, agent_id: str, **fields: Any) -> Agent:
        return self._run("PATCH", f"/v1/agents/{agent_id}", Agent, json=_body(**fields))

    def predict(self, agent_id: str, inputs: list[str], **fields: Any) -> Resource:
        """Predictions of the serving version (or ``version_id``, which may be '@alias')."""
        return self._run("POST", f"/v1/agents/{agent_id}/predict", Resource, json=_body(inputs=inputs, **fields))

    def adapt(self, agent_id: str, *, idempotency_key: str | None = None, **fields: Any) -> Resource:
        return self._run("POST", f"/v1/agents/{agent_id}/adapt", Resource, json=_body(**fields), create=True,
                         idempotency_key=idempotency_key)

    def analyze(self, agent_id: str, *, idempotency_key: str | None = None, **fields: Any) -> Operation:
        return self._run("POST", f"/v1/agents/{agent_id}/analyze", Operation, json=_body(**fields), create=True,
                         idempotency_key=idempotency_key)


class Feedback(_Resource):
    def create(self, agent_id: str, **fields: Any) -> Resource:
        return self._run("POST", f"/v1/agents/{agent_id}/feedback", Resource, json=_body(**fields))

    def list(self, agent_id: str, *, version_id: str | None = None, deployment_id: str | None = None) -> Any:
        return self._list(f"/v1/agents/{agent_id}/feedback", Resource,
                          {"version_id": version_id, "deployment_id": deployment_id})

    def count(self, agent_id: str, *, since: str | None = None, before: str | None = None) -> int:
        return self._run("GET", f"/v1/agents/{agent_id}/feedback/count", lambda d: d["count"],
                         params={"since": since, "before": before})


class Audit(_Resource):
    def list(self, agent_id: str, **filters: Any) -> Any:
        return self._list(f"/v1/agents/{agent_id}/audit", Resource, filters)


class AutoTraining(_Resource):
    def get(self, agent_id: str) -> Resource:
        return self._run("GET", f"/v1/agents/{agent_id}/auto_training", Resource)

    def update(self, agent_id: str, **fields: Any) -> Resource:
        return self._run("PATCH", f"/v1/agents/{agent_id}/auto_training", Resource, json=_body(**fields))

    def runs(self, agent_id: str) -> Any:
        return self._list(f"/v1/agents/{agent_id}/auto_training/runs", Resource)

    def check(self, agent_id: str, **fields: Any) -> Resource:
        return self._run("POST", f"/v1/agents/{agent_id}/auto_training/check", Resource, json=_body(**fields))


class Versions(_Resource):
    def list(self, agent_id: str, **filters: Any) -> Any:
        return self._list(f"/v1/agents/{agent_id}/versions", Version, filters)

    def get(self, agent_id: str, version_id: str) -> Version:
        return self._run("GET", f"/v1/agents/{agent_id}/versions/{version_id}", Version)

    def download(self, agent_id: str, version_id: str) -> bytes:
        """The version's ONNX model file."""
        return self._run("GET", f"/v1/agents/{agent_id}/versions/{version_id}/artifact", raw=True,
                         headers={"Accept": "application/octet-stream"})

    def update_tags(self, agent_id: str, version_id: str, *, set: dict[str, str] | None = None,
                    remove: list[str] | None = None) -> Version:
        return self._run("PATCH", f"/v1/agents/{agent_id}/versions/{version_id}/tags", Version,
                         json={"set": set or {}, "remove": remove or []})

    def activate(self, agent_id: str, version_id: str, **fields: Any) -> Resource:
        return self._run("POST", f"/v1/agents/{agent_id}/versions/{version_id}/activate", Resource,
                         json=_body(**fields))

    def import_ollama(self, agent_id: str, version_id: str, **fields: Any) -> Resource:
        return self._run("POST", f"/v1/agents/{agent_id}/versions/{version_id}/ollama", Resource,
                         json=_body(**fields))

    def evaluate(self, agent_id: str, version_id: str, *, idempotency_key: str | None = None,
                 **fields: Any) -> Operation:
        return self._run("POST", f"/v1/agents/{agent_id}/versions/{version_id}/evaluate", Operation,
                         json=_body(**fields), create=True, idempotency_key=idempotency_key)


class Aliases(_Resource):
    def list(self, agent_id: str) -> list[Alias]:
        return self._run("GET", f"/v1/agents/{agent_id}/aliases",
                         lambda d: [Alias.model_validate(a) for a in d["data"]])

    def set(self, agent_id: str, alias: str, version_id: str) -> AliasSet:
        return self._run("PUT", f"/v1/agents/{agent_id}/aliases/{alias}", AliasSet, json={"version_id": version_id})

    def delete(self, agent_id: str, alias: str) -> Resource:
        return self._run("DELETE", f"/v1/agents/{agent_id}/aliases/{alias}", Resource)


class Deployments(_Resource):
    def create(self, agent_id: str, version_id: str, *, idempotency_key: str | None = None,
               **fields: Any) -> Deployment:
        """Deploy (``environment``, ``rollout={"strategy": "canary", "percentage": 10}``...)."""
        return self._run("POST", "/v1/deployments", Deployment,
                         json=_body(agent_id=agent_id, version_id=version_id, **fields), create=True,
                         idempotency_key=idempotency_key)

    def list(self, **filters: Any) -> Any:
        return self._list("/v1/deployments", Deployment, filters)

    def get(self, deployment_id: str) -> Deployment:
        return self._run("GET", f"/v1/deployments/{deployment_id}", Deployment)

    def advance(self, deployment_id: str, percentage: float | None = None) -> Deployment:
        return self._run("POST", f"/v1/deployments/{deployment_id}/advance", Deployment,
                         json=_body(percentage=percentage))

    def rollback(self, agent_id: str, **fields: Any) -> Resource:
        return self._run("POST", f"/v1/agents/{agent_id}/rollback", Resource, json=_body(**fields))


class Evaluations(_Resource):
    def create(self, agent_id: str, *, idempotency_key: str | None = None, **fields: Any) -> Operation:
        """Start an evaluation (EvaluateRequest fields); ``client.operations.wait(op)`` for the result."""
        return self._run("POST", "/v1/evaluations", Operation, json=_body(agent_id=agent_id, **fields), create=True,
                         idempotency_key=idempotency_key)

    def list(self, **filters: Any) -> Any:
        return self._list("/v1/evaluations", Evaluation, filters)

    def get(self, evaluation_id: str) -> Evaluation:
        return self._run("GET", f"/v1/evaluations/{evaluation_id}", Evaluation)


class Benchmarks(_Resource):
    def suites(self) -> Resource:
        return self._run("GET", "/v1/benchmarks/suites", Resource)

    def create(self, *, idempotency_key: str | None = None, **fields: Any) -> Operation:
        return self._run("POST", "/v1/benchmarks", Operation, json=_body(**fields), create=True,
                         idempotency_key=idempotency_key)

    def get(self, benchmark_id: str) -> Resource:
        return self._run("GET", f"/v1/benchmarks/{benchmark_id}", Resource)


class Comparisons(_Resource):
    def create(self, run_ids: list[str], *, idempotency_key: str | None = None, **fields: Any) -> Operation:
        return self._run("POST", "/v1/comparisons", Operation, json=_body(run_ids=run_ids, **fields), create=True,
                         idempotency_key=idempotency_key)

    def get(self, comparison_id: str) -> Resource:
        return self._run("GET", f"/v1/comparisons/{comparison_id}", Resource)


class Reports(_Resource):
    def create(self, *, idempotency_key: str | None = None, **fields: Any) -> Operation:
        return self._run("POST", "/v1/reports", Operation, json=_body(**fields), create=True,
                         idempotency_key=idempotency_key)


class Operations(_Resource):
    def get(self, operation_id: str) -> Operation:
        return self._run("GET", f"/v1/operations/{operation_id}", Operation)

    def list(self) -> Any:
        return self._list("/v1/operations", Operation)


class Datasets(_Resource):
    def create(self, examples: list[dict[str, Any]], *, dataset_id: str | None = None,
               idempotency_key: str | None = None, **fields: Any) -> Dataset:
        return self._run("POST", "/v1/datasets", Dataset, json=_body(examples=examples, dataset_id=dataset_id,
                                                                     **fields),
                         create=True, idempotency_key=idempotency_key)

    def upload(self, content: bytes | str, *, dataset_id: str | None = None, source: str | None = None,
               idempotency_key: str | None = None) -> Dataset:
        """Upload a JSONL file's bytes (one example per line)."""
        data = content.encode() if isinstance(content, str) else content
        return self._run("POST", "/v1/datasets/upload", Dataset, content=data,
                         params={"dataset_id": dataset_id, "source": source},
                         headers={"Content-Type": "application/jsonl"}, create=True, idempotency_key=idempotency_key)

    def list(self, *, source: str | None = None) -> Any:
        return self._list("/v1/datasets", Dataset, {"source": source})

    def get(self, dataset_id: str) -> Dataset:
        return self._run("GET", f"/v1/datasets/{dataset_id}", Dataset)

    def delete(self, dataset_id: str) -> Resource:
        return self._run("DELETE", f"/v1/datasets/{dataset_id}", Resource)

    def content(self, dataset_id: str) -> bytes:
        """The dataset's examples as JSONL bytes."""
        return self._run("GET", f"/v1/datasets/{dataset_id}/content", raw=True)

    def validate(self, **fields: Any) -> Resource:
        """ValidateDatasetRequest: ``dataset_id=...`` or ``examples={"examples": [...]}``, ``checks``..."""
        return self._run("POST", "/v1/datasets/validate", Resource, json=_body(**fields))

    def generate(self, *, idempotency_key: str | None = None, **fields: Any) -> Resource:
        return self._run("POST", "/v1/datasets/generate", Resource, json=_body(**fields), create=True,
                         idempotency_key=idempotency_key)

    def from_trajectories(self, *, idempotency_key: str | None = None, **fields: Any) -> Resource:
        return self._run("POST", "/v1/datasets/from_trajectories", Resource, json=_body(**fields), create=True,
                         idempotency_key=idempotency_key)


class Modules(_Resource):
    def create(self, module_id: str, *, idempotency_key: str | None = None, **fields: Any) -> Resource:
        return self._run("POST", "/v1/modules", Resource, json=_body(module_id=module_id, **fields), create=True,
                         idempotency_key=idempotency_key)

    def list(self) -> Any:
        return self._list("/v1/modules", Resource)

    def get(self, module_id: str) -> Resource:
        return self._run("GET", f"/v1/modules/{module_id}", Resource)

    def delete(self, module_id: str) -> Resource:
        return self._run("DELETE", f"/v1/modules/{module_id}", Resource)


class Scenarios(_Resource):
    def list(self) -> Resource:
        return self._run("GET", "/v1/scenarios", Resource)


class Trajectories(_Resource):
    def ingest(self, trajectories: list[dict[str, Any]], *, idempotency_key: str | None = None) -> Resource:
        return self._run("POST", "/v1/trajectories", Resource, json={"trajectories": trajectories}, create=True,
                         idempotency_key=idempotency_key)

    def list(self, **filters: Any) -> Any:
        return self._list("/v1/trajectories", Resource, filters)

    def count(self, **filters: Any) -> int:
        return self._run("GET", "/v1/trajectories/count", lambda d: d["count"], params=filters)

    def export(self, job_id: str, **filters: Any) -> bytes:
        """A job's trajectories as JSONL bytes."""
        return self._run("GET", "/v1/trajectories/export", params={"job_id": job_id, **filters}, raw=True)

    def get(self, trajectory_id: str) -> Resource:
        return self._run("GET", f"/v1/trajectories/{trajectory_id}", Resource)


class Sweeps(_Resource):
    def create(self, sweep: dict[str, Any], *, idempotency_key: str | None = None, **fields: Any) -> Resource:
        return self._run("POST", "/v1/sweeps", Resource, json=_body(sweep=sweep, **fields), create=True,
                         idempotency_key=idempotency_key)

    def list(self, **filters: Any) -> Any:
        return self._list("/v1/sweeps", Resource, filters)

    def get(self, sweep_id: str) -> Resource:
        return self._run("GET", f"/v1/sweeps/{sweep_id}", Resource)

    def cancel(self, sweep_id: str, reason: str | None = None) -> Resource:
        return self._run("POST", f"/v1/sweeps/{sweep_id}/cancel", Resource, json=_body(reason=reason))


class Tokens(_Resource):
    def create(self, name: str, scopes: list[str], *, idempotency_key: str | None = None, **fields: Any) -> Token:
        return self._run("POST", "/v1/tokens", Token, json=_body(name=name, scopes=scopes, **fields), create=True,
                         idempotency_key=idempotency_key)

    def list(self, include_revoked: bool = False) -> Any:
        return self._list("/v1/tokens", Token, {"include_revoked": include_revoked or None})

    def revoke(self, token_id: str) -> Resource:
        return self._run("DELETE", f"/v1/tokens/{token_id}", Resource)


class Webhooks(_Resource):
    def create(self, url: str, events: list[str], *, idempotency_key: str | None = None, **fields: Any) -> Webhook:
        return self._run("POST", "/v1/webhooks", Webhook, json=_body(url=url, events=events, **fields), create=True,
                         idempotency_key=idempotency_key)

    def list(self) -> Any:
        return self._list("/v1/webhooks", Webhook)

    def get(self, webhook_id: str) -> Webhook:
        return self._run("GET", f"/v1/webhooks/{webhook_id}", Webhook)

    def delete(self, webhook_id: str) -> Resource:
        return self._run("DELETE", f"/v1/webhooks/{webhook_id}", Resource)

    def deliveries(self, webhook_id: str, status: str | None = None) -> Any:
        return self._list(f"/v1/webhooks/{webhook_id}/deliveries", Resource, {"status": status})


RESOURCES = {"jobs": Jobs, "events": Events, "checkpoints": Checkpoints, "metrics": Metrics, "agents": Agents,
             "feedback": Feedback, "audit": Audit, "auto_training": AutoTraining, "versions": Versions,
             "aliases": Aliases, "deployments": Deployments, "evaluations": Evaluations, "benchmarks": Benchmarks,
             "comparisons": Comparisons, "reports": Reports, "operations": Operations, "datasets": Datasets,
             "modules": Modules, "scenarios": Scenarios, "trajectories": Trajectories, "sweeps": Sweeps,
             "tokens": Tokens, "webhooks": Webhooks}
