"""Accounts isolate the registry (issue 15 item 1): over gRPC directly, with two non-admin tokens
of accounts A and B and the admin token. Another account's agent answers NOT_FOUND exactly like
an unknown id; admin crosses accounts; agent ids are global (a taken id is ALREADY_EXISTS)."""
from __future__ import annotations

import uuid

import grpc
import httpx
import pytest

from trainhouse.common.identity import ACCOUNT_WORK_SCOPES
from trainhouse.common.server import GRPC_OPTIONS
from tests.gateway.conftest import make_token
from tests.registry.conftest import predict, rpc_failure, start_job, wait_jobs
from trainhouse.v1 import deployment_pb2, model_registry_pb2 as reg, model_registry_pb2_grpc, training_service_pb2_grpc

STAGING = deployment_pb2.ENVIRONMENT_STAGING

SUFFIX = uuid.uuid4().hex[:6]
ACCT_A, ACCT_B = f"iso-a-{SUFFIX}", f"iso-b-{SUFFIX}"


@pytest.fixture(scope="module")
def tokens(stack) -> dict[str, str]:
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        return {acct: make_token(client, stack.admin_token, sorted(ACCOUNT_WORK_SCOPES), account=acct)
                for acct in (ACCT_A, ACCT_B)}


@pytest.fixture(scope="module")
def stubs(stack, tokens):
    """registry stubs for A, B and admin; A's training stub."""
    channels = {who: stack.channel("registry", token=tokens.get(who), options=GRPC_OPTIONS)
                for who in (ACCT_A, ACCT_B, "admin")}
    training_ch = stack.channel("training", token=tokens[ACCT_A])
    yield ({who: model_registry_pb2_grpc.ModelRegistryStub(ch) for who, ch in channels.items()},
           training_service_pb2_grpc.TrainingServiceStub(training_ch))
    for ch in (*channels.values(), training_ch):
        ch.close()


@pytest.fixture(scope="module")
def a_agent(stubs) -> tuple[str, str, str]:
    """An agent A trained (StartJob as A creates it for A): (agent id, version id, deployment id)."""
    registries, training = stubs
    agent_id = f"iso-agent-{SUFFIX}"
    [job] = wait_jobs(training, [start_job(training, agent_id, 11, "")])
    dep = registries[ACCT_A].DeployVersion(reg.DeployVersionRequest(
        agent_id=agent_id, version_id=job.model_version_id, environment=STAGING)).deployment
    return agent_id, job.model_version_id, dep.deployment_id


def _not_found_like_unknown(call, request_for, agent_id: str) -> None:
    """`call` on A's agent fails for B exactly like on a made-up id (modulo the id)."""
    made_up = f"no-such-{SUFFIX}"
    theirs = rpc_failure(call, request_for(agent_id))
    unknown = rpc_failure(call, request_for(made_up))
    assert theirs.code == unknown.code == grpc.StatusCode.NOT_FOUND, (theirs, unknown)
    assert theirs.message.replace(agent_id, "<id>") == unknown.message.replace(made_up, "<id>")


def test_the_owner_and_admin_see_the_agent(stubs, a_agent):
    registries, _ = stubs
    agent_id, version_id, deployment_id = a_agent
    for who in (ACCT_A, "admin"):
        r = registries[who]
        assert r.GetAgent(reg.GetAgentRequest(agent_id=agent_id)).agent.agent_id == agent_id
        versions = r.ListVersions(reg.ListVersionsRequest(agent_id=agent_id)).versions
        assert [v.version_id for v in versions] == [version_id]
        assert predict(r, agent_id).version_id == version_id
        assert r.GetDeployment(reg.GetDeploymentRequest(deployment_id=deployment_id)).deployment.deployment_id
        listed = [a.agent_id for a in r.ListAgents(reg.ListAgentsRequest(page_size=1000)).agents]
        assert agent_id in listed
    # A lists only A's agents; admin sees the other accounts' agents too
    a_listed = [a.agent_id for a in registries[ACCT_A].ListAgents(reg.ListAgentsRequest(page_size=1000)).agents]
    assert a_listed == [agent_id]
    assert registries[ACCT_A].GetRegistryStats(reg.GetRegistryStatsRequest()).agent_count == 1


def test_another_account_gets_not_found_like_an_unknown_id(stubs, a_agent):
    registries, _ = stubs
    agent_id, version_id, deployment_id = a_agent
    b = registries[ACCT_B]
    _not_found_like_unknown(b.GetAgent, lambda a: reg.GetAgentRequest(agent_id=a), agent_id)
    _not_found_like_unknown(b.ListVersions, lambda a: reg.ListVersionsRequest(agent_id=a), agent_id)
    _not_found_like_unknown(b.GetVersion, lambda a: reg.GetVersionRequest(agent_id=a, version_id=version_id),
                            agent_id)
    _not_found_like_unknown(b.GetVersionArtifact, lambda a: reg.GetVersionArtifactRequest(agent_id=a), agent_id)
    _not_found_like_unknown(b.Predict, lambda a: reg.PredictRequest(agent_id=a, inputs=["my parcel is late"]),
                            agent_id)
    _not_found_like_unknown(b.DeployVersion, lambda a: reg.DeployVersionRequest(
        agent_id=a, version_id=version_id, environment=STAGING), agent_id)
    _not_found_like_unknown(b.UpdateAgent, lambda a: reg.UpdateAgentRequest(agent_id=a, name="mine now"), agent_id)
    _not_found_like_unknown(b.ListVersionAliases, lambda a: reg.ListVersionAliasesRequest(agent_id=a), agent_id)
    _not_found_like_unknown(b.ListFeedback, lambda a: reg.ListFeedbackRequest(agent_id=a), agent_id)
    _not_found_like_unknown(b.ListDeployments, lambda a: reg.ListDeploymentsRequest(agent_id=a), agent_id)
    _not_found_like_unknown(b.ListAuditEvents, lambda a: reg.ListAuditEventsRequest(agent_id=a), agent_id)
    # a deployment id of A's is NOT_FOUND for B like an unknown deployment id
    theirs = rpc_failure(b.GetDeployment, reg.GetDeploymentRequest(deployment_id=deployment_id))
    unknown = rpc_failure(b.GetDeployment, reg.GetDeploymentRequest(deployment_id="dep-nope"))
    assert theirs.code == unknown.code == grpc.StatusCode.NOT_FOUND
    assert theirs.message.replace(deployment_id, "<id>") == unknown.message.replace("dep-nope", "<id>")
    # nothing of A's in B's listings
    assert agent_id not in [a.agent_id for a in b.ListAgents(reg.ListAgentsRequest(page_size=1000)).agents]
    assert not b.ListVersions(reg.ListVersionsRequest(page_size=100)).versions
    assert not b.ListDeployments(reg.ListDeploymentsRequest(page_size=100)).deployments
    assert not b.ListAuditEvents(reg.ListAuditEventsRequest(page_size=1000)).events
    stats = b.GetRegistryStats(reg.GetRegistryStatsRequest())
    assert (stats.agent_count, stats.model_count, stats.prediction_count) == (0, 0, 0)
    # and nothing changed for A
    assert registries[ACCT_A].GetAgent(reg.GetAgentRequest(agent_id=agent_id)).agent.name != "mine now"


def test_an_agent_id_is_global(stubs, a_agent):
    registries, _ = stubs
    agent_id = a_agent[0]
    taken = rpc_failure(registries[ACCT_B].CreateAgent, reg.CreateAgentRequest(agent_id=agent_id))
    assert taken.code == grpc.StatusCode.ALREADY_EXISTS
    assert taken.message == f"agent id '{agent_id}' is taken; choose another id"
    own = rpc_failure(registries[ACCT_A].CreateAgent, reg.CreateAgentRequest(agent_id=agent_id))
    assert own.code == grpc.StatusCode.ALREADY_EXISTS
    # B's own agent is B's alone
    b_agent = f"iso-b-agent-{SUFFIX}"
    registries[ACCT_B].CreateAgent(reg.CreateAgentRequest(agent_id=b_agent))
    assert rpc_failure(registries[ACCT_A].GetAgent, reg.GetAgentRequest(agent_id=b_agent)).code == \
        grpc.StatusCode.NOT_FOUND
    assert registries["admin"].GetAgent(reg.GetAgentRequest(agent_id=b_agent)).agent.agent_id == b_agent
