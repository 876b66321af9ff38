"""Accounts as the isolation boundary in TrainingService (issue 15 item 1), over gRPC directly.

A job belongs to its caller's account; another account's job answers NOT_FOUND exactly as a job that
does not exist, lists and event streams leave it out, and admin crosses accounts. A non-admin cannot
start jobs under another account, nor train on another account's dataset.
"""
from __future__ import annotations

import uuid

import grpc
import httpx
import pytest

from trainhouse.common.grpc_errors import failure_of
from tests.gateway.conftest import make_token
from tests.intents import INTENTS, make_examples
from tests.services.test_training_grpc import examples_pb, wait_terminal
from trainhouse.v1 import (data_service_pb2, data_service_pb2_grpc, job_state_pb2, training_job_pb2,
                           training_service_pb2 as pb, training_service_pb2_grpc)

SCOPES = ["training:start", "training:view", "training:cancel", "training:evaluate", "data:generate",
          "data:export", "models:deploy"]
FEW_SHOT = training_job_pb2.TrainingConfig(method=job_state_pb2.TRAINING_METHOD_FEW_SHOT)


@pytest.fixture(scope="module")
def accounts(stack):
    suffix = uuid.uuid4().hex[:6]
    names = {"a": f"jobs-a-{suffix}", "b": f"jobs-b-{suffix}"}
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        tokens = {k: make_token(client, stack.admin_token, SCOPES, account=v) for k, v in names.items()}
    tokens["admin"] = None
    return {"names": names,
            "training": {k: training_service_pb2_grpc.TrainingServiceStub(stack.channel("training", token=t))
                         for k, t in tokens.items()},
            "data": {k: data_service_pb2_grpc.DataServiceStub(stack.channel("data", token=t))
                     for k, t in tokens.items()}}


def _few_examples() -> list[dict]:
    out = []
    for intent in INTENTS:
        out += [e for e in make_examples(6, seed=41) if e["expected_output"] == intent][:3]
    return out


@pytest.fixture(scope="module")
def a_job(accounts):
    """A tiny few-shot job of account A, finished."""
    a = accounts["training"]["a"]
    job = a.StartJob(pb.StartJobRequest(agent_id=f"iso-agent-{uuid.uuid4().hex[:6]}",
                                        examples=examples_pb(_few_examples()), config=FEW_SHOT)).job
    assert job.account_id == accounts["names"]["a"]
    final = wait_terminal(a, job.job_id)
    assert final.state == job_state_pb2.JOB_STATE_COMPLETED, final.error.message
    assert final.model_version_id  # registered while acting for account A
    return final


def _failure(call):
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code(), failure_of(err.value)


def _not_found_like_missing(call, real_id: str, made_up: str):
    code, failure = _failure(lambda: call(real_id))
    missing_code, missing = _failure(lambda: call(made_up))
    assert code == missing_code == grpc.StatusCode.NOT_FOUND, failure.message
    assert failure.message.replace(real_id, "<id>") == missing.message.replace(made_up, "<id>")


def test_another_accounts_job_is_not_found_like_a_missing_one(accounts, a_job):
    b = accounts["training"]["b"]
    job_id, made_up = a_job.job_id, f"job-{uuid.uuid4()}"
    for call in (lambda i: b.GetJob(pb.GetJobRequest(job_id=i)),
                 lambda i: b.CancelJob(pb.CancelJobRequest(job_id=i)),
                 lambda i: b.ResumeJob(pb.ResumeJobRequest(job_id=i)),
                 lambda i: b.PauseJob(pb.PauseJobRequest(job_id=i)),
                 lambda i: b.ListJobEvents(pb.ListJobEventsRequest(job_id=i)),
                 lambda i: b.ListMetrics(pb.ListMetricsRequest(job_id=i)),
                 lambda i: b.ListCheckpoints(pb.ListCheckpointsRequest(job_id=i)),
                 lambda i: b.ListJobExamples(pb.ListJobExamplesRequest(job_id=i)),
                 lambda i: b.ExportPolicy(pb.ExportPolicyRequest(job_id=i)),
                 lambda i: list(b.WatchJob(pb.WatchJobRequest(job_id=i), timeout=10))):
        _not_found_like_missing(call, job_id, made_up)


def test_lists_hold_only_the_callers_jobs_and_admin_crosses_accounts(accounts, a_job):
    t, names = accounts["training"], accounts["names"]

    def listed(stub, **kwargs) -> set[str]:
        return {j.job_id for j in stub.ListJobs(pb.ListJobsRequest(page_size=1000, **kwargs)).jobs}

    assert a_job.job_id not in listed(t["b"])
    assert not listed(t["b"], account_id=names["a"])  # naming another account lists nothing
    assert a_job.job_id in listed(t["a"]) and a_job.job_id in listed(t["admin"], account_id=names["a"])
    assert {j.account_id for j in t["a"].ListJobs(pb.ListJobsRequest(page_size=1000)).jobs} == {names["a"]}
    assert t["admin"].GetJob(pb.GetJobRequest(job_id=a_job.job_id)).job.account_id == names["a"]
    assert t["a"].ListMetrics(pb.ListMetricsRequest(job_id=a_job.job_id)) is not None


def test_watch_all_events_streams_only_the_callers_account(accounts, a_job):
    b = accounts["training"]["b"]
    seen = []
    with pytest.raises(grpc.RpcError) as err:
        for event in b.WatchAllEvents(pb.WatchAllEventsRequest(after_cursor=0), timeout=3):
            seen.append(event)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert all(e.account_id == accounts["names"]["b"] for e in seen)
    assert a_job.job_id not in {e.job_id for e in seen}


def test_a_job_cannot_be_started_under_another_account(accounts):
    b, names = accounts["training"]["b"], accounts["names"]
    code, failure = _failure(lambda: b.StartJob(pb.StartJobRequest(
        agent_id="iso-other", examples=examples_pb(_few_examples()), config=FEW_SHOT, account_id=names["a"])))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "account_id must be your own account" in failure.message
    # Naming one's own account is fine; admin may name any account.
    own = b.StartJob(pb.StartJobRequest(agent_id=f"iso-own-{uuid.uuid4().hex[:6]}", config=FEW_SHOT,
                                        examples=examples_pb(_few_examples()), account_id=names["b"])).job
    assert own.account_id == names["b"]
    other = accounts["training"]["admin"].StartJob(pb.StartJobRequest(
        agent_id=f"iso-adm-{uuid.uuid4().hex[:6]}", config=FEW_SHOT, examples=examples_pb(_few_examples()),
        account_id=names["a"])).job
    assert other.account_id == names["a"]
    for job in (own, other):
        wait_terminal(accounts["training"]["admin"], job.job_id)


def test_another_accounts_dataset_cannot_be_trained_on(accounts):
    data, training = accounts["data"], accounts["training"]
    dataset_id = f"iso-train-{uuid.uuid4().hex[:8]}"
    data["a"].CreateDataset(data_service_pb2.CreateDatasetRequest(
        dataset_id=dataset_id, examples=examples_pb(_few_examples())))
    code, failure = _failure(lambda: training["b"].StartJob(pb.StartJobRequest(
        agent_id="iso-thief", dataset_id=dataset_id, config=FEW_SHOT)))
    assert code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT), failure.message
    # A trains on its own dataset.
    job = training["a"].StartJob(pb.StartJobRequest(agent_id=f"iso-own-{uuid.uuid4().hex[:6]}",
                                                    dataset_id=dataset_id, config=FEW_SHOT)).job
    assert job.dataset_id == dataset_id
    final = wait_terminal(training["a"], job.job_id)
    assert final.state == job_state_pb2.JOB_STATE_COMPLETED, final.error.message


def test_another_accounts_agent_id_is_refused_when_the_job_starts(accounts, a_job):
    """B training an agent id A owns is refused at StartJob (not when the finished job registers)."""
    b = accounts["training"]["b"]
    with pytest.raises(grpc.RpcError) as err:
        b.StartJob(pb.StartJobRequest(agent_id=a_job.agent_id, examples=examples_pb(_few_examples()),
                                      config=FEW_SHOT))
    failure = failure_of(err.value)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS and failure.field == "agent_id"
    assert "taken" in failure.message


def test_a_job_admin_starts_for_an_account_creates_that_accounts_agent(stack, accounts):
    """Admin starting a job for account A: the job, its new agent and its version are A's, so A's
    callers see them all."""
    from trainhouse.v1 import model_registry_pb2, model_registry_pb2_grpc

    admin = accounts["training"]["admin"]
    agent = f"iso-admin-for-a-{uuid.uuid4().hex[:6]}"
    job = admin.StartJob(pb.StartJobRequest(agent_id=agent, examples=examples_pb(_few_examples()), config=FEW_SHOT,
                                            account_id=accounts["names"]["a"])).job
    final = wait_terminal(admin, job.job_id)
    assert final.state == job_state_pb2.JOB_STATE_COMPLETED and final.account_id == accounts["names"]["a"]
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        a_token = make_token(client, stack.admin_token, ["training:view"], account=accounts["names"]["a"])
    registry = model_registry_pb2_grpc.ModelRegistryStub(stack.channel("registry", token=a_token))
    seen = registry.GetAgent(model_registry_pb2.GetAgentRequest(agent_id=agent)).agent
    assert seen.account_id == accounts["names"]["a"] and seen.active_version_id == final.model_version_id


def test_admin_trains_another_accounts_agent_on_its_own_dataset(stack, accounts, a_job):
    """Admin crossing accounts: a dataset of admin's account, an agent of account A. The job is A's
    (a job is always its agent's account's), and it reads the dataset as admin."""
    admin_data = accounts["data"]["admin"]
    dataset_id = f"iso-admin-ds-{uuid.uuid4().hex[:6]}"
    admin_data.CreateDataset(data_service_pb2.CreateDatasetRequest(dataset_id=dataset_id,
                                                                   examples=examples_pb(_few_examples())))
    admin = accounts["training"]["admin"]
    job = admin.StartJob(pb.StartJobRequest(agent_id=a_job.agent_id, dataset_id=dataset_id, config=FEW_SHOT)).job
    assert job.account_id == accounts["names"]["a"]
    final = wait_terminal(admin, job.job_id)
    assert final.state == job_state_pb2.JOB_STATE_COMPLETED, final.error.message
    # Naming another account than the agent's is refused with the reason.
    with pytest.raises(grpc.RpcError) as err:
        admin.StartJob(pb.StartJobRequest(agent_id=a_job.agent_id, dataset_id=dataset_id, config=FEW_SHOT,
                                          account_id=accounts["names"]["b"]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and failure_of(err.value).field == "account_id"
