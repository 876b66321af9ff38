"""A metric that could not be computed (NaN, e.g. calibration on a validation split too small to fit it)
is null in /v1 answers and in the SDK's models, never a 500."""
from __future__ import annotations

import uuid

import httpx

from trainhouse.sdk import Client


def test_a_job_with_an_uncomputable_metric_reads_as_null(stack) -> None:  # noqa: ANN001
    examples = [{"input": f"{word} number {i}", "expected_output": word} for word in ("alpha", "beta")
                for i in range(4)]
    with Client(stack.gateway_url, stack.admin_token) as client:
        job = client.jobs.create(f"nullmetric-{uuid.uuid4().hex[:6]}", examples=examples,
                                 config={"method": "supervised", "epochs": 2, "validation_split": 0.25, "seed": 1})
        list(client.events.stream(job.job_id))
        raw = httpx.get(f"{stack.gateway_url}/v1/jobs/{job.job_id}",
                        headers={"Authorization": f"Bearer {stack.admin_token}"}, timeout=30)
        assert raw.status_code == 200, raw.text
        nulls = {k for k, v in raw.json()["metrics"].items() if v is None}
        assert nulls, f"expected an uncomputable metric on a 2-example validation split: {raw.json()['metrics']}"
        job = client.jobs.get(job.job_id)  # the SDK's model takes them too
        assert all(job.metrics[k] is None for k in nulls)
        assert [j.job_id for j in client.jobs.list(agent_id=job.agent_id)] == [job.job_id]
