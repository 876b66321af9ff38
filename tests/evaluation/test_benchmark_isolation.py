"""Accounts isolate benchmark populations: a percentile ranks a model among the other models its
caller's account benchmarked (an admin's among every account's), never among another account's:
their scores would tell the caller where the other account's models stand.

(After test_benchmark_compare_grpc.py in file order: that test counts the admin's population
from an empty platform, and these benchmarks would join it.)"""
from __future__ import annotations

import uuid

import httpx
import pytest

from trainhouse.common.identity import ACCOUNT_WORK_SCOPES
from tests.gateway.conftest import make_token
from tests.registry.conftest import start_job, wait_jobs
from trainhouse.v1 import evaluation_service_pb2 as ev, evaluation_service_pb2_grpc, training_service_pb2_grpc

SUFFIX = uuid.uuid4().hex[:6]
ACCT_A, ACCT_B = f"bench-a-{SUFFIX}", f"bench-b-{SUFFIX}"


@pytest.fixture(scope="module")
def callers(stack, channels):  # channels: the package fixture makes sure evaluation reaches its peers
    """Per caller (A, B, admin): its EvaluationService stub and the version of an agent it trained
    (the admin's is A's version: an admin benchmarks any account's model)."""
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        tokens = {acct: make_token(client, stack.admin_token, sorted(ACCOUNT_WORK_SCOPES), account=acct)
                  for acct in (ACCT_A, ACCT_B)}
    opened, out = [], {}
    for acct, seed in ((ACCT_A, 31), (ACCT_B, 32)):
        training_ch = stack.channel("training", token=tokens[acct])
        opened.append(training_ch)
        training = training_service_pb2_grpc.TrainingServiceStub(training_ch)
        agent_id = f"{acct}-agent"
        [job] = wait_jobs(training, [start_job(training, agent_id, seed, "")])
        out[acct] = (agent_id, job.model_version_id)
    out["admin"] = out[ACCT_A]
    stubs = {}
    for who in (ACCT_A, ACCT_B, "admin"):
        ch = stack.channel("evaluation", token=tokens.get(who))
        opened.append(ch)
        stubs[who] = evaluation_service_pb2_grpc.EvaluationServiceStub(ch)
    yield {who: (stubs[who], *out[who]) for who in stubs}
    for ch in opened:
        ch.close()


def _available(caller) -> int:
    stub, agent_id, version_id = caller
    run = stub.RunBenchmark(ev.RunBenchmarkRequest(agent_id=agent_id, version_id=version_id,
                                                   suites=["helpfulness"])).run
    return run.results[0].population.platform_models_available


def test_a_percentile_ranks_among_the_callers_accounts_models_only(callers) -> None:
    assert _available(callers[ACCT_B]) == 0  # B's first benchmarked model
    # A's model after B's (and after the admin's of the test before): A sees none of them.
    assert _available(callers[ACCT_A]) == 0
    # The admin ranks A's model among every account's: B's at least.
    assert _available(callers["admin"]) >= 1
    # Each account's second run still sees only its own (its one model is the model itself).
    assert _available(callers[ACCT_B]) == 0
