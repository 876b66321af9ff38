"""`trainhouse jobs --filter/--order-by` over gRPC and over the gateway (--url)."""
from __future__ import annotations

import json
import uuid

import pytest

from tests.cli.test_cli import cli, env  # noqa: F401  (the module-scoped env fixture)
from tests.intents import make_examples
from tests.services.test_training_grpc import examples_pb, wait_terminal
from trainhouse.v1 import training_job_pb2, training_service_pb2, training_service_pb2_grpc


@pytest.fixture(scope="module")
def labelled(stack) -> tuple[str, dict[str, str]]:  # noqa: ANN001
    """An agent and its two small finished jobs, labelled by colour: (agent, colour -> job id)."""
    agent = f"cli-search-{uuid.uuid4().hex[:8]}"
    jobs = {}
    with stack.channel("training") as ch:
        training = training_service_pb2_grpc.TrainingServiceStub(ch)
        for i, (colour, lr) in enumerate((("green", 0.02), ("amber", 0.2))):
            jobs[colour] = training.StartJob(training_service_pb2.StartJobRequest(
                agent_id=agent, examples=examples_pb(make_examples(30, seed=60 + i)), labels={"colour": colour},
                config=training_job_pb2.TrainingConfig(epochs=2, learning_rate=lr, batch_size=16, seed=i))).job.job_id
        for job_id in jobs.values():
            wait_terminal(training, job_id)
    return agent, jobs


@pytest.mark.parametrize("over_gateway", [False, True])
def test_jobs_filter_and_order_by(env, stack, labelled, over_gateway):  # noqa: F811
    agent, jobs = labelled
    url = ["--url", stack.gateway_url, "--token", stack.admin_token] if over_gateway else []
    one = cli(env, "jobs", "--filter", f'agent_id = "{agent}" AND labels.colour = "amber"', "--json", *url)
    assert one.returncode == 0, one.stderr
    assert [j["job_id"] for j in json.loads(one.stdout)["jobs"]] == [jobs["amber"]]
    both = cli(env, "jobs", "--filter", f'agent_id = "{agent}" AND config.learning_rate < 1',
               "--order-by", "config.learning_rate asc", "--json", *url)
    assert both.returncode == 0, both.stderr
    assert [j["job_id"] for j in json.loads(both.stdout)["jobs"]] == [jobs["green"], jobs["amber"]]
    bad = cli(env, "jobs", "--filter", 'labels.colour = "amber" AND', "--json", *url)
    assert bad.returncode == 4, bad.stdout
    error = json.loads(bad.stdout)["error"]
    assert error["field"] == "filter" and "line 1, column 28" in error["message"], error
