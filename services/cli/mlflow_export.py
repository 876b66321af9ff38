"""`trainhouse export mlflow JOB|AGENT`: a job (or every job of an agent) as MLflow runs, and an
agent's versions as an MLflow registered model with its aliases.

What MLflow users expect to find, mapped from the canonical API (read with the SDK, so it works
against any gateway):

* a run per job, named after the job, in the experiment ``trainhouse/<agent_id>`` (or ``--experiment``):
  the resolved training config as params (nested keys joined with dots), the job's labels and ids as
  tags (``trainhouse.*``), its full metric history with each point's step and timestamp, its status
  (FINISHED / FAILED / KILLED) and start/end times, and the job's ONNX model as the artifact
  ``model/model.onnx``;
* for an agent, a registered model named after it with one MLflow version per trainhouse version
  (source: that version's run artifact; trainhouse tags and the version id as tags), and the
  trainhouse aliases set on the matching MLflow versions.

MLflow is the optional extra ``mlflow`` (mlflow-skinny); without it the command says how to install it.
"""
from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any

import typer

from trainhouse.cli import output
from trainhouse.cli.errors import CliError, ExitCode
from trainhouse.cli.options import Json, Timeout, Token, Url, reports_errors

# MLflow's run statuses are RUNNING, SCHEDULED, FINISHED, FAILED, KILLED: a paused job (stopped by its
# user, resumable) is closest to KILLED ("killed by the user"); it is not done, so no end time is set.
RUN_STATUS = {"completed": "FINISHED", "failed": "FAILED", "cancelled": "KILLED", "paused": "KILLED"}
MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
METRIC_BATCH = 1000     # MLflow's limit on metrics per log_batch call


def _millis(iso: str | None) -> int | None:
    if not iso:
        return None
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def flatten(config: dict[str, Any] | None, prefix: str = "") -> dict[str, str]:
    """Nested config -> {"a.b": "value"}; lists and leaves as JSON text, cut to MLflow's limit."""
    out: dict[str, str] = {}
    for key, value in (config or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            out[name] = text[:MAX_PARAM_CHARS]
    return out


def export_job(client: Any, mlflow: Any, job_id: str, experiment: str | None = None) -> dict[str, Any]:
    """One trainhouse job as one MLflow run; what was written."""
    from mlflow.entities import Metric, Param

    job = client.jobs.get(job_id)
    experiment = experiment or f"trainhouse/{job.agent_id}"
    found = mlflow.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else mlflow.create_experiment(experiment)
    tags = {"mlflow.runName": job.get("display_name") or job.job_id, "trainhouse.job_id": job.job_id,
            "trainhouse.agent_id": job.agent_id, "trainhouse.state": job.state,
            **{f"trainhouse.label.{k}": v for k, v in job.labels.items()}}
    if job.model_version_id:
        tags["trainhouse.version_id"] = job.model_version_id
    if job.dataset_id:
        tags["trainhouse.dataset_id"] = job.dataset_id
    run = mlflow.create_run(experiment_id, start_time=_millis(job.started_at or job.created_at),
                            tags=tags, run_name=tags["mlflow.runName"])
    run_id = run.info.run_id
    params = [Param(k, v) for k, v in sorted(flatten(job.config).items())]
    for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
        mlflow.log_batch(run_id, params=params[i:i + 100])
    points = list(client.metrics.list(job_id))
    metrics = [Metric(p.name, float(p.value), _millis(p.time) or 0, int(p.step)) for p in points]
    for i in range(0, len(metrics), METRIC_BATCH):
        mlflow.log_batch(run_id, metrics=metrics[i:i + METRIC_BATCH])
    artifact = None
    if job.model_version_id:
        model = client.versions.download(job.agent_id, job.model_version_id)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.onnx"
            path.write_bytes(model)
            mlflow.log_artifact(run_id, str(path), artifact_path="model")
        artifact = f"{run.info.artifact_uri}/model/model.onnx"
    mlflow.set_terminated(run_id, status=RUN_STATUS.get(job.state, "RUNNING"),
                          end_time=_millis(job.ended_at) if job.done else None)
    mlflow.set_tag(run_id, "trainhouse.exported_at", dt.datetime.now(dt.timezone.utc).isoformat())
    return {"job_id": job_id, "run_id": run_id, "experiment_id": experiment_id, "params": len(params),
            "metric_points": len(metrics), "model_artifact": artifact}


def export_agent(client: Any, mlflow: Any, agent_id: str, experiment: str | None = None) -> dict[str, Any]:
    """Every job of an agent as runs, its versions as a registered model with the same aliases."""
    agent = client.agents.get(agent_id)
    runs = [export_job(client, mlflow, job.job_id, experiment) for job in client.jobs.list(agent_id=agent_id)]
    run_of_job = {r["job_id"]: r for r in runs}
    try:
        mlflow.get_registered_model(agent.agent_id)
    except Exception:  # noqa: BLE001 - MLflow raises its own RestException/MlflowException for "not found"
        mlflow.create_registered_model(agent.agent_id, description=agent.description or None,
                                       tags={"trainhouse.agent_id": agent.agent_id})
    versions: dict[str, str] = {}
    for version in sorted(client.versions.list(agent_id), key=lambda v: v.get("created_at") or v.version_id):
        run = run_of_job.get(version.job_id or "")
        source = run["model_artifact"] if run and run["model_artifact"] else f"trainhouse:{agent_id}/{version.version_id}"
        made = mlflow.create_model_version(agent.agent_id, source, run_id=run["run_id"] if run else None,
                                           tags={"trainhouse.version_id": version.version_id,
                                                 "trainhouse.state": version.state,
                                                 **{f"trainhouse.tag.{k}": v for k, v in version.tags.items()}})
        versions[version.version_id] = made.version
    aliases = {}
    for alias in client.aliases.list(agent_id):
        if alias.version_id in versions:
            mlflow.set_registered_model_alias(agent.agent_id, alias.alias, versions[alias.version_id])
            aliases[alias.alias] = versions[alias.version_id]
    return {"agent_id": agent_id, "runs": runs, "registered_model": agent.agent_id,
            "versions": versions, "aliases": aliases}


# ---- the command ---------------------------------------------------------------------------------
export_app = typer.Typer(help="Export runs and models to other tools.", no_args_is_help=True)


@export_app.command("mlflow")
@reports_errors
def mlflow_command(
    target: str = typer.Argument(..., metavar="JOB|AGENT", help="A job id (job-...) or an agent id (all its jobs, "
                                 "and its versions as a registered model)."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", envvar="MLFLOW_TRACKING_URI", show_envvar=True,
                                     help="MLflow tracking (and registry) URI, e.g. file:./mlruns or http://mlflow:5000."),
    experiment: str = typer.Option(None, "--experiment", help="Experiment name (default: trainhouse/<agent_id>)."),
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Export a job (params, metric history with steps and times, ONNX model) or an agent (all its jobs,
    its versions as an MLflow registered model with the same aliases) to MLflow. Reads the gateway's
    canonical API (--url, default the local gateway) with the SDK."""
    try:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
    except ImportError:
        raise CliError(ExitCode.USAGE, "MLflow is not installed: pip install 'trainhouse[mlflow]'") from None
    from trainhouse.cli.transport import GatewayBackend, gateway_url, resolve_token

    backend = GatewayBackend(gateway_url(url), resolve_token(token), timeout)
    try:
        mlflow = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        with backend._errors(f"export mlflow {target}"):
            if target.startswith("job-"):
                result = export_job(backend.client, mlflow, target, experiment)
            else:
                result = export_agent(backend.client, mlflow, target, experiment)
    except MlflowException as err:  # the MLflow side refused (its store, its limits): say what it said
        raise CliError(ExitCode.USAGE, f"MLflow at {tracking_uri or 'the default tracking URI'}: {err.message}",
                       field="--tracking-uri") from None
    result["tracking_uri"] = mlflow.tracking_uri
    runs = result.get("runs") or [result]
    output.emit(as_json, result, lambda con: con.print(
        f"exported {len(runs)} run(s) to {result['tracking_uri']}"
        + (f"; registered model {result['registered_model']} with {len(result['versions'])} version(s)"
           if "registered_model" in result else ""), soft_wrap=True, markup=False))
