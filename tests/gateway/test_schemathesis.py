"""Property-based fuzzing of every route in /openapi.json with schemathesis, against the real stack.

Bounded: a few examples per operation (4 positive = schema-valid, 3 negative = schema-violating),
no shrinking, no example database, a per-example deadline far above a healthy call. Checks:
never a 5xx, every status documented, the documented content type, and responses that match
their schemas. Jobs the fuzzer starts run under their own account and are cancelled
at the end, so they do not keep the shared stack busy, and the global auto-training config it
changes is set back.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

import grpc
import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.gateway.conftest import bearer, make_token  # noqa: E402
from trainhouse.v1 import job_state_pb2, sweep_pb2, training_service_pb2, training_service_pb2_grpc  # noqa: E402

POSITIVE_EXAMPLES = 4
NEGATIVE_EXAMPLES = 3
# Per example: far above a healthy call (tens of ms), so only a hang trips it.
DEADLINE = timedelta(seconds=20)
# Streams that stay open while a job runs; their error paths are covered by the stack tests.
SKIP = {("GET", "/api/v1/training/train-agent/{jobId}/events"), ("GET", "/v1/jobs/{job_id}/events/stream")}


def _cancel_account_jobs(stack, account: str) -> None:  # noqa: ANN001
    with stack.channel("training") as channel:
        stub = training_service_pb2_grpc.TrainingServiceStub(channel)
        # First its sweeps, which would otherwise start new trials after the jobs are cancelled.
        for sweep in stub.ListSweeps(training_service_pb2.ListSweepsRequest(page_size=100), timeout=30).sweeps:
            if sweep.account_id == account and sweep.state in (sweep_pb2.SWEEP_STATE_QUEUED,
                                                               sweep_pb2.SWEEP_STATE_RUNNING):
                stub.CancelSweep(training_service_pb2.CancelSweepRequest(sweep_id=sweep.sweep_id, reason="fuzz"),
                                 timeout=30)
        jobs = stub.ListJobs(training_service_pb2.ListJobsRequest(account_id=account, page_size=1000), timeout=30).jobs
        for job in jobs:
            if job.state not in (job_state_pb2.JOB_STATE_COMPLETED, job_state_pb2.JOB_STATE_FAILED,
                                 job_state_pb2.JOB_STATE_CANCELLED):
                try:
                    stub.CancelJob(training_service_pb2.CancelJobRequest(job_id=job.job_id, reason="fuzz"), timeout=30)
                except grpc.RpcError as err:
                    if err.code() != grpc.StatusCode.FAILED_PRECONDITION:
                        raise


def _auto_training_config(stack, restore: training_service_pb2.UpdateAutoTrainingConfigRequest | None = None
                          ) -> training_service_pb2.UpdateAutoTrainingConfigRequest:
    """The global auto-training config as a request that sets it again (and, given one, send it):
    the fuzzer PUTs random valid values (threshold 1, cooldown 0) that would otherwise retrain every
    judged agent of the later tests."""
    with stack.channel("training") as channel:
        stub = training_service_pb2_grpc.TrainingServiceStub(channel)
        if restore is not None:
            stub.UpdateAutoTrainingConfig(restore, timeout=30)
        c = stub.GetAutoTrainingConfig(training_service_pb2.GetAutoTrainingConfigRequest(), timeout=30).config
    return training_service_pb2.UpdateAutoTrainingConfigRequest(
        threshold=c.threshold, cooldown_hours=c.cooldown_hours, enabled=c.enabled, actor="fuzz-restore")


def test_every_operation_survives_fuzzing(stack) -> None:  # noqa: ANN001
    account = f"fuzz-{uuid.uuid4().hex[:6]}"
    auto_training = _auto_training_config(stack)
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as boot:
        token = make_token(boot, stack.admin_token, ["admin"], account=account, rateLimitPerHour=0)
        spec = boot.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    auth = bearer(token)
    failures: list[str] = []
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            if (operation.method.upper(), operation.path) in SKIP:
                continue
            for mode, examples, checks in (
                (GenerationMode.POSITIVE, POSITIVE_EXAMPLES,
                 [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]),
                (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES, [not_a_server_error, status_code_conformance]),
            ):
                @given(case=operation.as_strategy(generation_mode=mode))
                @settings(max_examples=examples, deadline=DEADLINE, database=None, phases=[Phase.generate],
                          suppress_health_check=list(HealthCheck))
                def run(case) -> None:  # noqa: ANN001
                    response = case.call(base_url=stack.gateway_url, headers=auth, timeout=15)
                    if (case.method.upper(), case.path) == ("POST", "/api/v1/sweeps") and response.status_code == 201:
                        # A fuzzed sweep would keep launching trial jobs for the rest of the run, and
                        # that load makes later calls slow: cancel it (its trials with it) at once.
                        httpx.post(f"{stack.gateway_url}/api/v1/sweeps/{response.json()['data']['sweepId']}/cancel",
                                   headers=auth, timeout=30)
                    if (case.method.upper(), case.path) == ("POST", "/v1/sweeps") and response.status_code == 201:
                        httpx.post(f"{stack.gateway_url}/v1/sweeps/{response.json()['sweep_id']}/cancel",
                                   headers=auth, timeout=30)
                    case.validate_response(response, checks=checks)

                try:
                    run()
                except Unsatisfiable:  # nothing to violate (no parameters, no body)
                    pass
                except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report
                    failures.append(f"{operation.method.upper()} {operation.path} [{mode.value}]: {exc}"[:3000])
    finally:
        _cancel_account_jobs(stack, account)
        _auto_training_config(stack, restore=auto_training)
    assert not failures, "\n\n".join(failures)
