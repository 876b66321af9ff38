"""`trainhouse export mlflow`: a real job and agent exported into a real MLflow file store, read back
with MLflow's own client (params, metric history with steps and timestamps, the ONNX artifact, the
registered model's versions and aliases)."""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
from mlflow import MlflowClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from trainhouse.cli import app  # noqa: E402
from trainhouse.sdk import Client  # noqa: E402
from tests.intents import make_examples  # noqa: E402


# MLflow 3 refuses its plain-file store unless asked (a real deployment points at a tracking server);
# the files are what the test reads back, so it asks.
FILE_STORE = {"MLFLOW_ALLOW_FILE_STORE": "true"}


@pytest.fixture(autouse=True)
def _file_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    # MLflow's default store is ./mlflow.db: whatever falls back to it must not land in the checkout.
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def agent_with_two_jobs(stack) -> dict:  # noqa: ANN001
    """Two completed jobs of one agent, the second aliased 'champion'."""
    agent = f"mlflow-{uuid.uuid4().hex[:8]}"
    with Client(stack.gateway_url, stack.admin_token) as client:
        jobs = []
        for epochs in (2, 3):
            job = client.jobs.create(agent, examples=make_examples(10, seed=epochs),
                                     config={"method": "supervised", "epochs": epochs, "learning_rate": 0.01,
                                             "seed": 1, "early_stopping": False})
            list(client.events.stream(job.job_id))
            jobs.append(client.jobs.get(job.job_id))
        client.aliases.set(agent, "champion", jobs[1].model_version_id)
        points = {j.job_id: list(client.metrics.list(j.job_id)) for j in jobs}
    return {"agent": agent, "jobs": jobs, "points": points}


def _export(stack, *args: str) -> dict:  # noqa: ANN001
    env = {**{k: None for k in os.environ if k.startswith(("TRAINHOUSE_", "MLFLOW_"))}, **FILE_STORE}
    result = CliRunner().invoke(app, ["export", "mlflow", *args, "--url", stack.gateway_url,
                                      "--token", stack.admin_token, "--json"], env=env)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def test_a_job_becomes_a_run_with_params_history_and_model(stack, agent_with_two_jobs, tmp_path: Path):
    job = agent_with_two_jobs["jobs"][0]
    uri = (tmp_path / "mlruns").as_uri()
    out = _export(stack, job.job_id, "--tracking-uri", uri)
    mlflow = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = mlflow.get_run(out["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["trainhouse.job_id"] == job.job_id
    assert mlflow.get_experiment(run.info.experiment_id).name == f"trainhouse/{job.agent_id}"
    # the resolved config: what the caller set and the defaults the platform filled in
    assert run.data.params["epochs"] == "2" and run.data.params["learning_rate"] == "0.01"
    assert len(run.data.params) > 5
    points = agent_with_two_jobs["points"][job.job_id]
    history = mlflow.get_metric_history(out["run_id"], "loss")
    expected = [(p.step, p.value) for p in points if p.name == "loss"]
    got = sorted((m.step, m.value) for m in history)
    assert [s for s, _ in got] == [s for s, _ in sorted(expected)]
    assert [v for _, v in got] == pytest.approx([v for _, v in sorted(expected)])
    assert all(m.timestamp > 0 for m in history)
    assert out["metric_points"] == len(points)
    artifacts = [a.path for a in mlflow.list_artifacts(out["run_id"], "model")]
    assert artifacts == ["model/model.onnx"]
    local = mlflow.download_artifacts(out["run_id"], "model/model.onnx", str(tmp_path))
    import onnxruntime as ort
    assert ort.InferenceSession(local, providers=["CPUExecutionProvider"]).get_inputs()


def test_an_agent_becomes_runs_and_a_registered_model_with_its_aliases(stack, agent_with_two_jobs, tmp_path: Path):
    agent, jobs = agent_with_two_jobs["agent"], agent_with_two_jobs["jobs"]
    uri = (tmp_path / "mlruns").as_uri()
    out = _export(stack, agent, "--tracking-uri", uri)
    assert sorted(r["job_id"] for r in out["runs"]) == sorted(j.job_id for j in jobs)
    mlflow = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = {v.tags["trainhouse.version_id"]: v for v in mlflow.search_model_versions(f"name='{agent}'")}
    assert set(versions) == {j.model_version_id for j in jobs}
    champion = mlflow.get_model_version_by_alias(agent, "champion")
    assert champion.tags["trainhouse.version_id"] == jobs[1].model_version_id
    run_of = {r["job_id"]: r["run_id"] for r in out["runs"]}
    assert champion.run_id == run_of[jobs[1].job_id]


def test_an_unknown_job_is_a_not_found_exit(stack, tmp_path: Path):
    env = {**{k: None for k in os.environ if k.startswith(("TRAINHOUSE_", "MLFLOW_"))}, **FILE_STORE}
    result = CliRunner().invoke(app, ["export", "mlflow", "job-does-not-exist", "--url", stack.gateway_url,
                                      "--token", stack.admin_token, "--tracking-uri",
                                      (tmp_path / "m").as_uri()], env=env)
    assert result.exit_code == 3, (result.stdout, result.stderr)


def test_a_refusing_mlflow_store_is_a_usage_error_not_a_crash(stack, agent_with_two_jobs, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")
    env = {k: None for k in os.environ if k.startswith(("TRAINHOUSE_", "MLFLOW_"))}
    result = CliRunner().invoke(app, ["export", "mlflow", agent_with_two_jobs["jobs"][0].job_id, "--url",
                                      stack.gateway_url, "--token", stack.admin_token, "--tracking-uri",
                                      (tmp_path / "m").as_uri()], env=env)
    assert result.exit_code == 2 and "MLflow at file:" in result.stderr, (result.stdout, result.stderr)
    assert not (Path.cwd() / "mlflow.db").exists()  # the refusal wrote no fallback store
