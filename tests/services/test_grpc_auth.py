"""Authenticated gRPC (issue 15, item 2): a direct gRPC caller authenticates like an HTTP one.

The services refuse calls without a credential (UNAUTHENTICATED), give a token exactly its scopes
(PERMISSION_DENIED otherwise) and account, accept the platform's internal assertions only when
signed with the stack's key, and keep health and reflection open for probes and grpcurl.
"""
from __future__ import annotations

import secrets
import threading
import time

import grpc
import httpx
import jwt
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from trainhouse.common.authn import Introspector, ServiceAuthenticator
from trainhouse.common.identity import Caller
from trainhouse.common.internal_tokens import InternalTokens
from trainhouse.common.jwt_keys import JwtVerifier
from trainhouse.core.errors import Unauthenticated
from trainhouse.common.rpc_scopes import RPC_SCOPES
from tests.gateway.conftest import bearer, make_token
from trainhouse.v1 import (data_service_pb2, data_service_pb2_grpc, evaluation_service_pb2,
                           evaluation_service_pb2_grpc, model_registry_pb2, model_registry_pb2_grpc,
                           training_service_pb2, training_service_pb2_grpc)

STUBS = {"training": training_service_pb2_grpc.TrainingServiceStub, "data": data_service_pb2_grpc.DataServiceStub,
         "evaluation": evaluation_service_pb2_grpc.EvaluationServiceStub,
         "registry": model_registry_pb2_grpc.ModelRegistryStub}
# One read per service (no side effects) to probe authentication.
READS = {
    "training": ("ListJobs", training_service_pb2.ListJobsRequest()),
    "data": ("ListDatasets", data_service_pb2.ListDatasetsRequest()),
    "evaluation": ("ListEvaluations", evaluation_service_pb2.ListEvaluationsRequest()),
    "registry": ("ListAgents", model_registry_pb2.ListAgentsRequest()),
}


@pytest.fixture(scope="module")
def api(stack):
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        yield client


def _code(call) -> grpc.StatusCode:  # noqa: ANN001
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code()


@pytest.mark.parametrize("name", sorted(READS))
def test_a_call_without_credentials_is_unauthenticated_but_health_and_reflection_answer(stack, name):
    method, request = READS[name]
    with grpc.insecure_channel(stack.address(name)) as ch:
        stub = STUBS[name](ch)
        assert _code(lambda: getattr(stub, method)(request, timeout=10)) == grpc.StatusCode.UNAUTHENTICATED
        bad = [("authorization", "Bearer th_not-a-real-token")]
        assert _code(lambda: getattr(stub, method)(request, timeout=10, metadata=bad)) == grpc.StatusCode.UNAUTHENTICATED
        basic = [("authorization", "Basic dXNlcjpwYXNz")]
        assert _code(lambda: getattr(stub, method)(request, timeout=10, metadata=basic)) == grpc.StatusCode.UNAUTHENTICATED
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        listed = reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        assert any(s.name.startswith("trainhouse.v1.") for r in listed for s in r.list_services_response.service)


def test_a_token_gets_exactly_its_scopes_over_grpc(stack, api):
    viewer = make_token(api, stack.admin_token, ["training:view"])
    with stack.channel("training", token=viewer) as ch:
        stub = training_service_pb2_grpc.TrainingServiceStub(ch)
        stub.ListJobs(training_service_pb2.ListJobsRequest(), timeout=10)  # allowed
        start = training_service_pb2.StartJobRequest(agent_id="grpc-auth-viewer")
        assert _code(lambda: stub.StartJob(start, timeout=10)) == grpc.StatusCode.PERMISSION_DENIED
        cancel = training_service_pb2.CancelJobRequest(job_id="job-whatever")
        assert _code(lambda: stub.CancelJob(cancel, timeout=10)) == grpc.StatusCode.PERMISSION_DENIED
    with stack.channel("registry", token=viewer) as ch:
        stub = model_registry_pb2_grpc.ModelRegistryStub(ch)
        deploy = model_registry_pb2.DeployVersionRequest(agent_id="a", version_id="v1")
        assert _code(lambda: stub.DeployVersion(deploy, timeout=10)) == grpc.StatusCode.PERMISSION_DENIED


def test_a_revoked_token_stops_working_over_grpc(stack, api):
    token = make_token(api, stack.admin_token, ["training:view"])
    listed = api.get("/api/v1/auth/tokens", headers=bearer(stack.admin_token)).json()["data"]["tokens"]
    with stack.channel("data", token=token) as ch:
        stub = data_service_pb2_grpc.DataServiceStub(ch)
        stub.ListDatasets(data_service_pb2.ListDatasetsRequest(), timeout=10)
        # the newest token is ours: revoke it through the gateway
        ours = max(listed, key=lambda t: t["createdAt"] or "")["tokenId"]
        assert api.delete(f"/api/v1/auth/tokens/{ours}", headers=bearer(stack.admin_token)).status_code == 200
        deadline = time.monotonic() + 30  # introspection answers are cached for 10 s
        while time.monotonic() < deadline:
            try:
                stub.ListDatasets(data_service_pb2.ListDatasetsRequest(), timeout=10)
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.UNAUTHENTICATED
                return
            time.sleep(1)
        pytest.fail("a revoked token still works over gRPC after 30 s")


def test_internal_assertions_need_the_stacks_key(stack):
    forged = InternalTokens(secrets.token_urlsafe(32)).mint(Caller("mallory", "default", frozenset({"admin"})))
    with grpc.insecure_channel(stack.address("training")) as ch:
        stub = training_service_pb2_grpc.TrainingServiceStub(ch)
        call = lambda: stub.ListJobs(training_service_pb2.ListJobsRequest(), timeout=10,  # noqa: E731
                                     metadata=[("authorization", f"Bearer {forged}")])
        assert _code(call) == grpc.StatusCode.UNAUTHENTICATED
        # An external-looking HS256 JWT is refused too: this stack configures no JWT secret.
        claims = {"sub": "x", "scopes": ["admin"], "exp": int(time.time()) + 60}
        other = jwt.encode(claims, secrets.token_urlsafe(32), algorithm="HS256")
        call = lambda: stub.ListJobs(training_service_pb2.ListJobsRequest(), timeout=10,  # noqa: E731
                                     metadata=[("authorization", f"Bearer {other}")])
        assert _code(call) == grpc.StatusCode.UNAUTHENTICATED


def test_token_introspection_answers_only_the_platforms_own_processes(stack, api):
    # An admin API token is not enough: introspection would let it test other people's tokens.
    r = api.post("/internal/v1/introspect", content=f"token={stack.admin_token}",
                 headers={**bearer(stack.admin_token), "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 403, r.text
    assert "/internal/v1/introspect" not in api.get("/openapi.json").json()["paths"]


def test_every_rpc_of_every_service_has_a_scope():
    from trainhouse.v1 import (data_service_pb2, evaluation_service_pb2, model_registry_pb2,
                               training_service_pb2)

    for module in (data_service_pb2, evaluation_service_pb2, model_registry_pb2, training_service_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                assert f"{service.full_name}/{method.name}" in RPC_SCOPES, f"{service.full_name}/{method.name}"
    assert all(isinstance(v, str) and v for v in RPC_SCOPES.values())


def test_a_jwt_authenticates_a_direct_grpc_caller_with_its_scopes(stack):
    from tests.conftest import STACK_JWT_SECRET

    now = int(time.time())
    viewer = jwt.encode({"sub": "ci-bot", "account": "jwt-acct", "scopes": ["training:view"], "exp": now + 60},
                        STACK_JWT_SECRET, algorithm="HS256")
    with stack.channel("training", token=viewer) as ch:
        stub = training_service_pb2_grpc.TrainingServiceStub(ch)
        stub.ListJobs(training_service_pb2.ListJobsRequest(), timeout=10)
        start = training_service_pb2.StartJobRequest(agent_id="grpc-auth-jwt")
        assert _code(lambda: stub.StartJob(start, timeout=10)) == grpc.StatusCode.PERMISSION_DENIED
    expired = jwt.encode({"sub": "ci-bot", "scopes": ["admin"], "exp": now - 5}, STACK_JWT_SECRET, algorithm="HS256")
    with stack.channel("training", token=expired) as ch:
        stub = training_service_pb2_grpc.TrainingServiceStub(ch)
        assert _code(lambda: stub.ListJobs(training_service_pb2.ListJobsRequest(), timeout=10)) \
            == grpc.StatusCode.UNAUTHENTICATED


def test_a_busy_token_is_checked_again_in_the_background_and_a_revocation_still_applies(stack, api):
    """A service keeps an API token's introspection answer for a while; a caller still using the
    token near the end of it must not wait for the gateway's answer (a 24-31 ms HTTP round trip
    under load), so the check runs in the background. Short times here: answers stand 1 s, the
    check starts 0.6 s before that."""
    token = make_token(api, stack.admin_token, ["training:view"])
    internal = InternalTokens.from_env()  # the stack shares the test process's key (tests/conftest.py)
    introspector = Introspector(internal, url=stack.gateway_url, ttl_s=1.0)
    asked_by: list[str] = []
    ask = introspector._ask

    def watched_ask(credential: str):  # noqa: ANN202 - the real introspection, noting who waited
        asked_by.append(threading.current_thread().name)
        return ask(credential)

    introspector._ask = watched_ask
    authenticator = ServiceAuthenticator(internal, JwtVerifier(None, None), introspector, refresh_ahead_s=0.6)
    header = f"Bearer {token}"
    caller = authenticator.authenticate(header)
    assert caller.scopes == frozenset({"training:view"})
    until = time.monotonic() + 3.5
    while time.monotonic() < until:  # 3.5 answer lifetimes of continuous use
        assert authenticator.authenticate(header) == caller
        time.sleep(0.05)
    assert asked_by[0] == threading.current_thread().name  # the first call had nothing to go on
    assert len(asked_by) >= 4, asked_by  # the answer was renewed about once a lifetime ...
    assert all(name.startswith("credential-check") for name in asked_by[1:]), asked_by  # ... never by a caller

    listed = api.get("/api/v1/auth/tokens", headers=bearer(stack.admin_token)).json()["data"]["tokens"]
    ours = max(listed, key=lambda t: t["createdAt"] or "")["tokenId"]
    assert api.delete(f"/api/v1/auth/tokens/{ours}", headers=bearer(stack.admin_token)).status_code == 200
    revoked_at = time.monotonic()
    while time.monotonic() - revoked_at < 10:
        try:
            authenticator.authenticate(header)
        except Unauthenticated:
            break
        time.sleep(0.05)
    else:
        pytest.fail("a revoked token still authenticates 10 s after its revocation")
    assert time.monotonic() - revoked_at < 1.0 + 0.5  # within one answer's lifetime (and a check)
    with pytest.raises(Unauthenticated):  # and it stays refused
        authenticator.authenticate(header)
