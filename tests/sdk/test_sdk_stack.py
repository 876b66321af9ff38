"""The SDK against the real stack: a whole job (upload, train, watch, evaluate, alias, predict,
download the ONNX file, export metrics) with the SDK alone, and the async client on the same job."""
from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import uuid
from collections import Counter

import duckdb
import numpy as np
import onnxruntime as ort
import pytest

from trainhouse.sdk import AsyncClient, Client, NotFoundError, RateLimitError
from tests.intents import HWU64_SUBSET, hwu64_subset


@pytest.fixture(scope="module")
def client(stack):  # noqa: ANN001, ANN201
    with Client(stack.gateway_url, stack.admin_token) as c:
        yield c


@pytest.fixture(scope="module")
def whole_job(client: Client) -> dict:
    """Upload hwu64, train, and watch the job to its end with the SDK stream."""
    agent = f"sdk-{uuid.uuid4().hex[:8]}"
    dataset = client.datasets.upload(HWU64_SUBSET.read_bytes(), dataset_id=f"hwu-{agent}")
    job = client.jobs.create(agent, dataset_id=dataset.dataset_id,
                             config={"method": "supervised", "epochs": 4, "batch_size": 32, "learning_rate": 0.01,
                                     "validation_split": 0.2, "seed": 7})
    events = list(client.events.stream(job.job_id))
    return {"agent": agent, "dataset": dataset, "job": job, "events": events}


def test_upload_train_and_watch(client: Client, whole_job: dict) -> None:
    dataset, events = whole_job["dataset"], whole_job["events"]
    assert dataset.example_count == 840 and len(dataset.statistics["output_counts"]) == 21
    assert client.datasets.get(dataset.dataset_id).dataset_id == dataset.dataset_id
    sequences = [e.sequence for e in events]
    assert sequences == sorted(set(sequences)) and sequences[0] >= 1
    assert events[-1].is_terminal and events[-1].get("state") == "completed", events[-1]
    assert Counter(e.type for e in events)["epoch"] == 4
    job = client.jobs.get(whole_job["job"].job_id)
    assert job.state == "completed" and job.model_version_id and job.done
    # The JSON pages hold the same events, oldest first, page after page.
    paged = list(client.events.list(job.job_id, limit=7))
    assert [e.sequence for e in paged] == sequences


def test_evaluate_alias_predict_and_download(client: Client, whole_job: dict) -> None:
    agent, job = whole_job["agent"], client.jobs.get(whole_job["job"].job_id)
    version = job.model_version_id
    op = client.evaluations.create(agent, version_id=version, dataset_id=whole_job["dataset"].dataset_id)
    assert op.state in ("running", "succeeded") and op.resource_id
    done = client.operations.wait(op, timeout=300)
    assert done.state == "succeeded" and done.result["evaluation_id"] == op.resource_id
    assert 0.0 <= done.result["metrics"]["accuracy"] <= 1.0 and done.result["example_count"] > 0
    assert client.evaluations.get(op.resource_id).metrics == done.result["metrics"]

    moved = client.aliases.set(agent, "champion", version)
    assert "champion" in moved.version.aliases
    assert {a.alias: a.version_id for a in client.aliases.list(agent)}["champion"] == version
    rows = hwu64_subset()[:40:5]
    answer = client.agents.predict(agent, [r["input"] for r in rows], version_id="@champion")
    assert answer.version_id == version and len(answer.predictions) == len(rows)
    labels = set(whole_job["dataset"].statistics["output_counts"])
    assert all(p["output"] in labels for p in answer.predictions)

    model = client.versions.download(agent, "@champion")
    assert hashlib.sha256(model).hexdigest() == client.versions.get(agent, version).sha256
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    assert session.get_inputs() and session.get_outputs()


def test_metrics_export_as_csv_and_parquet(client: Client, whole_job: dict, tmp_path) -> None:  # noqa: ANN001
    job_id = whole_job["job"].job_id
    points = list(client.metrics.list(job_id))
    assert points and {"loss", "validation_loss"} <= {p.name for p in points}
    rows = list(csv.DictReader(io.StringIO(client.metrics.export(job_id, "csv").decode())))
    assert len(rows) == len(points) and set(rows[0]) == {"name", "value", "epoch", "step", "time"}
    assert [float(r["value"]) for r in rows] == pytest.approx([p.value for p in points])
    path = tmp_path / "m.parquet"
    path.write_bytes(client.metrics.export(job_id, "parquet"))
    table = duckdb.sql(f"SELECT name, value, step FROM read_parquet('{path}')").fetchall()
    assert len(table) == len(points)
    assert np.allclose([v for _, v, _ in table], [p.value for p in points])


def test_the_async_client_reads_the_same_job(stack, whole_job: dict) -> None:  # noqa: ANN001
    async def run() -> tuple[list[int], list[str]]:
        async with AsyncClient(stack.gateway_url, stack.admin_token) as ac:
            seqs = [e.sequence async for e in ac.events.stream(whole_job["job"].job_id, after=3)]
            jobs = [j.job_id async for j in ac.jobs.list(agent_id=whole_job["agent"], limit=1)]
            with pytest.raises(NotFoundError) as err:
                await ac.jobs.get("no-such-job-" + uuid.uuid4().hex[:6])
            assert err.value.status_code == 404 and err.value.code == "not_found" and err.value.request_id
            return seqs, jobs
    seqs, jobs = asyncio.run(run())
    assert seqs == [e.sequence for e in whole_job["events"] if e.sequence > 3]
    assert jobs == [whole_job["job"].job_id]


def test_a_spent_rate_budget_is_a_rate_limit_error(stack) -> None:  # noqa: ANN001
    with Client(stack.gateway_url, stack.admin_token) as admin:
        token = admin.tokens.create(f"one-{uuid.uuid4().hex[:6]}", ["training:view"], rate_limit_per_hour=1)
    with Client(stack.gateway_url, token.token, max_retries=0) as limited:
        list(limited.jobs.list(limit=1))
        with pytest.raises(RateLimitError) as err:
            list(limited.jobs.list(limit=1))
    assert err.value.status_code == 429 and err.value.code == "rate_limited"
