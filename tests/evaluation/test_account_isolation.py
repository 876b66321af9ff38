"""Accounts isolate EvaluationService (issue 15 item 1): an evaluation stored by account A is
NOT_FOUND for account B (like an unknown id) and left out of B's listings; admin sees it. B cannot
evaluate A's agent (the registry's NOT_FOUND surfaces as NOT_FOUND), nor reuse A's evaluation id."""
from __future__ import annotations

import uuid

import grpc
import httpx
import pytest

from trainhouse.common.grpc_errors import failure_of
from trainhouse.common.identity import ACCOUNT_WORK_SCOPES
from tests.gateway.conftest import make_token
from tests.intents import make_examples
from tests.registry.conftest import examples_pb, start_job, wait_jobs
from trainhouse.v1 import evaluation_service_pb2 as ev, evaluation_service_pb2_grpc, training_service_pb2_grpc

SUFFIX = uuid.uuid4().hex[:6]
ACCT_A, ACCT_B = f"eviso-a-{SUFFIX}", f"eviso-b-{SUFFIX}"


def failure(call, request):
    with pytest.raises(grpc.RpcError) as info:
        call(request)
    return failure_of(info.value)


@pytest.fixture(scope="module")
def stubs(stack, channels):  # channels: the package fixture makes sure evaluation reaches its peers
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        tokens = {acct: make_token(client, stack.admin_token, sorted(ACCOUNT_WORK_SCOPES), account=acct)
                  for acct in (ACCT_A, ACCT_B)}
    chans = {who: stack.channel("evaluation", token=tokens.get(who)) for who in (ACCT_A, ACCT_B, "admin")}
    training_ch = stack.channel("training", token=tokens[ACCT_A])
    yield ({who: evaluation_service_pb2_grpc.EvaluationServiceStub(ch) for who, ch in chans.items()},
           training_service_pb2_grpc.TrainingServiceStub(training_ch))
    for ch in (*chans.values(), training_ch):
        ch.close()


@pytest.fixture(scope="module")
def a_evaluation(stubs) -> tuple[str, str, str]:
    """(agent id, version id, evaluation id) of an evaluation A stored of A's own trained version."""
    evals, training = stubs
    agent_id = f"eviso-agent-{SUFFIX}"
    [job] = wait_jobs(training, [start_job(training, agent_id, 21, "")])
    evaluation = evals[ACCT_A].EvaluateVersion(ev.EvaluateVersionRequest(
        agent_id=agent_id, version_id=job.model_version_id, examples=examples_pb(make_examples(5, seed=99)))).evaluation
    return agent_id, job.model_version_id, evaluation.evaluation_id


def test_an_evaluation_is_its_accounts(stubs, a_evaluation):
    evals, _ = stubs
    agent_id, version_id, evaluation_id = a_evaluation
    for who in (ACCT_A, "admin"):
        got = evals[who].GetEvaluation(ev.GetEvaluationRequest(evaluation_id=evaluation_id)).evaluation
        assert got.evaluation_id == evaluation_id
        listed = evals[who].ListEvaluations(ev.ListEvaluationsRequest(agent_id=agent_id)).evaluations
        assert evaluation_id in [e.evaluation_id for e in listed]
    b = evals[ACCT_B]
    theirs = failure(b.GetEvaluation, ev.GetEvaluationRequest(evaluation_id=evaluation_id))
    unknown = failure(b.GetEvaluation, ev.GetEvaluationRequest(evaluation_id="eval-nope"))
    assert theirs.code == unknown.code == grpc.StatusCode.NOT_FOUND
    assert theirs.message.replace(evaluation_id, "<id>") == unknown.message.replace("eval-nope", "<id>")
    assert not b.ListEvaluations(ev.ListEvaluationsRequest(agent_id=agent_id)).evaluations
    assert evaluation_id not in [e.evaluation_id for e in
                                 b.ListEvaluations(ev.ListEvaluationsRequest(page_size=1000)).evaluations]


def test_another_account_cannot_evaluate_or_take_the_id(stubs, a_evaluation):
    evals, _ = stubs
    agent_id, version_id, evaluation_id = a_evaluation
    b = evals[ACCT_B]
    examples = examples_pb(make_examples(5, seed=98))
    denied = failure(b.EvaluateVersion, ev.EvaluateVersionRequest(agent_id=agent_id, version_id=version_id,
                                                                  examples=examples))
    assert denied.code == grpc.StatusCode.NOT_FOUND, denied
    taken = failure(b.Evaluate, ev.EvaluateRequest(agent_id=f"eviso-b-{SUFFIX}", version_id="v1.0.0",
                                                   examples=examples, evaluation_id=evaluation_id))
    assert taken.code == grpc.StatusCode.ALREADY_EXISTS, taken
    assert taken.message == f"evaluation id '{evaluation_id}' is taken; choose another id"
