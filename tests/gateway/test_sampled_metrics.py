"""ListMetrics' sampled history (max_points_per_metric) on a job with a 25k-point history, seeded
into the TrainingService's DuckDB file before its stack started: over gRPC, the seed route
(maxPointsPerMetric), the canonical /v1 route and the SDK. The truth each sample is checked
against is the job's whole history, read page by page through the same RPC."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.gateway.conftest import LONG_JOB, LONG_POINTS, SHORT_JOB, assert_error
from tests.gateway.surface_shapes import error_code
from trainhouse.common.pagination import collect_pages
from trainhouse.sdk import Client
from trainhouse.v1 import training_service_pb2 as ts
from trainhouse.v1 import training_service_pb2_grpc

Key = tuple[str, int]  # (name, step): unique per point of a seeded job


@pytest.fixture(scope="module")
def training(long_history_stack):  # noqa: ANN001, ANN201
    with long_history_stack.channel("training") as ch:
        yield training_service_pb2_grpc.TrainingServiceStub(ch)


@pytest.fixture(scope="module")
def full(training) -> dict[str, list[Any]]:  # noqa: ANN001
    """Every point of each seeded job in recording order, through today's paging."""
    return {job: collect_pages(training.ListMetrics, ts.ListMetricsRequest(job_id=job), "points", 10000)
            for job in (LONG_JOB, SHORT_JOB)}


def keys(points: Any) -> list[Key]:
    return [(p.name, p.step) for p in points]


def check_sample(sample: list[Key], history: list[Key], n: int, names: set[str]) -> None:
    """`sample` is at most n points of each name, first and last included, at evenly spaced ranks of
    that name's history, in recording order; the whole history of a name of at most n points."""
    position = {k: i for i, k in enumerate(history)}
    order = [position[k] for k in sample]  # KeyError: a point the history does not hold
    assert order == sorted(order) and len(set(order)) == len(order)  # recording order, no repeats
    by_name: dict[str, list[Key]] = defaultdict(list)
    for k in history:
        by_name[k[0]].append(k)
    assert {name for name, _ in sample} == names
    for name in names:
        ranks = {k: r for r, k in enumerate(by_name[name])}
        got = [ranks[k] for k in sample if k[0] == name]
        count = len(by_name[name])
        assert len(got) == min(n, count), (name, len(got), n, count)
        if count <= n:
            assert got == list(range(count))
            continue
        assert got[0] == 0 and got[-1] == count - 1
        gaps = {b - a for a, b in zip(got, got[1:])}
        assert max(gaps) - min(gaps) <= 1, (name, sorted(gaps))  # evenly spread


@pytest.mark.parametrize("n", [2, 3, 999, 1000, 6250, 6251, 10000])
def test_sampled_history_is_evenly_spread_with_first_and_last(training, full, n) -> None:  # noqa: ANN001
    history = keys(full[LONG_JOB])
    assert len(history) == LONG_POINTS
    resp = training.ListMetrics(ts.ListMetricsRequest(job_id=LONG_JOB, max_points_per_metric=n))
    assert resp.next_page_token == ""
    check_sample(keys(resp.points), history, n, {"loss", "accuracy", "validation_loss", "validation_accuracy"})
    if n >= 6251:  # every name has at most n points: the sample is the history
        assert keys(resp.points) == history
        assert list(resp.points) == list(full[LONG_JOB])  # values, epochs and times too


def test_sampled_history_of_some_names_and_of_a_short_job(training, full) -> None:  # noqa: ANN001
    names = ["validation_loss", "loss"]
    resp = training.ListMetrics(ts.ListMetricsRequest(job_id=LONG_JOB, names=names, max_points_per_metric=500))
    wanted = [p for p in full[LONG_JOB] if p.name in names]
    check_sample(keys(resp.points), keys(wanted), 500, set(names))
    by_key = {(p.name, p.step): p for p in wanted}
    assert all(by_key[(p.name, p.step)] == p for p in resp.points)  # the stored points, whole
    short = training.ListMetrics(ts.ListMetricsRequest(job_id=SHORT_JOB, max_points_per_metric=2))
    assert list(short.points) == list(full[SHORT_JOB]) and len(short.points) == 3  # one point per name
    none = training.ListMetrics(ts.ListMetricsRequest(job_id=LONG_JOB, names=["nope"], max_points_per_metric=5))
    assert len(none.points) == 0 and none.next_page_token == ""


@pytest.mark.parametrize("fields,field", [
    ({"max_points_per_metric": -1}, "max_points_per_metric"),
    ({"max_points_per_metric": 1}, "max_points_per_metric"),
    ({"max_points_per_metric": 10001}, "max_points_per_metric"),
    ({"max_points_per_metric": 10, "page_size": 100}, "page_size"),
    ({"max_points_per_metric": 10, "page_token": "token"}, "page_token"),
])
def test_bad_sampling_requests_are_invalid_argument(training, fields, field) -> None:  # noqa: ANN001
    with pytest.raises(grpc.RpcError) as err:
        training.ListMetrics(ts.ListMetricsRequest(job_id=LONG_JOB, **fields))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_field(err.value) == field


def violated_field(err: grpc.RpcError) -> str:
    """The field a rich INVALID_ARGUMENT status names (its google.rpc.BadRequest detail)."""
    status = rpc_status.from_call(err)
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            return bad.field_violations[0].field
    raise AssertionError(f"no BadRequest detail in {status}")


def test_a_real_page_token_with_sampling_is_refused(training) -> None:  # noqa: ANN001
    first = training.ListMetrics(ts.ListMetricsRequest(job_id=LONG_JOB, page_size=10))
    with pytest.raises(grpc.RpcError) as err:
        training.ListMetrics(ts.ListMetricsRequest(job_id=LONG_JOB, page_token=first.next_page_token,
                                                   max_points_per_metric=10))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and violated_field(err.value) == "page_token"


@pytest.fixture(scope="module")
def http(long_history_stack):  # noqa: ANN001, ANN201
    with httpx.Client(base_url=long_history_stack.gateway_url, timeout=60,
                      headers={"Authorization": f"Bearer {long_history_stack.admin_token}"}) as c:
        yield c


def test_seed_route_samples_in_one_page(http, full) -> None:  # noqa: ANN001
    r = http.get(f"/api/v1/training/train-agent/{LONG_JOB}/metrics",
                 params={"maxPointsPerMetric": 100, "names": "loss,accuracy"})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data.get("nextPageToken") is None
    wanted = [p for p in full[LONG_JOB] if p.name in ("loss", "accuracy")]
    check_sample([(p["name"], p["step"]) for p in data["points"]], keys(wanted), 100, {"loss", "accuracy"})
    url = f"/api/v1/training/train-agent/{LONG_JOB}/metrics"
    for params, field in (({"maxPointsPerMetric": -1}, "maxPointsPerMetric"),
                          ({"maxPointsPerMetric": 10001}, "maxPointsPerMetric"),
                          ({"maxPointsPerMetric": "many"}, "maxPointsPerMetric"),
                          ({"maxPointsPerMetric": 1}, "maxPointsPerMetric"),  # the service's check
                          ({"maxPointsPerMetric": 5, "pageSize": 10}, "pageSize"),
                          ({"maxPointsPerMetric": 5, "pageToken": "x"}, "pageToken")):
        r = http.get(url, params=params)
        assert_error(r, 400, "INVALID_CONFIG", field)


def test_canonical_route_and_sdk_sample_in_one_page(long_history_stack, http, full) -> None:  # noqa: ANN001
    url = f"/v1/jobs/{LONG_JOB}/metrics"
    r = http.get(url, params={"max_points_per_metric": 50, "names": ["validation_accuracy"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["has_more"] is False and body["next_cursor"] is None
    wanted = [p for p in full[LONG_JOB] if p.name == "validation_accuracy"]
    check_sample([(p["name"], p["step"]) for p in body["data"]], keys(wanted), 50, {"validation_accuracy"})
    for params, param in (({"max_points_per_metric": -1}, "max_points_per_metric"),
                          ({"max_points_per_metric": 10001}, "max_points_per_metric"),
                          ({"max_points_per_metric": 1}, "max_points_per_metric"),
                          ({"max_points_per_metric": 5, "limit": 10}, "limit"),
                          ({"max_points_per_metric": 5, "after": "x"}, "after"),
                          ({"max_points_per_metric": 5, "format": "csv"}, "max_points_per_metric")):
        r = http.get(url, params=params)
        assert r.status_code == 400 and error_code(r) == "invalid_request", r.text
        if param:
            assert r.json()["error"]["param"] == param, r.text
    with Client(long_history_stack.gateway_url, long_history_stack.admin_token) as client:
        sampled = list(client.metrics.list(LONG_JOB, names=["loss"], max_points_per_metric=7))
        assert len(sampled) == 7
        check_sample([(p.name, p.step) for p in sampled], keys(p for p in full[LONG_JOB] if p.name == "loss"), 7,
                     {"loss"})
        assert len(list(client.metrics.list(SHORT_JOB))) == 3  # unsampled: every point, as before
