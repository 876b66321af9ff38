"""ListJobEvents over gRPC: pages of a job's stored events, oldest first, and account-scoped.

The pages, read one after the other, must hold exactly what WatchJob sends for the same job (the
same events in the same order), `next_after_sequence` must be 0 only on the page holding the last
stored event, and another account's job must answer NOT_FOUND like a job that does not exist.
"""
from __future__ import annotations

import uuid

import grpc
import pytest

from tests.services.test_job_isolation import _not_found_like_missing, a_job, accounts  # noqa: F401 (fixtures)
from trainhouse.v1 import training_service_pb2 as pb


def test_pages_hold_the_watched_history_in_order(accounts, a_job):  # noqa: F811
    a = accounts["training"]["a"]
    watched = [e.sequence for e in a.WatchJob(pb.WatchJobRequest(job_id=a_job.job_id))]
    assert len(watched) > 5
    paged, after, pages = [], 0, 0
    while True:
        page = a.ListJobEvents(pb.ListJobEventsRequest(job_id=a_job.job_id, after_sequence=after, page_size=3))
        pages += 1
        assert len(page.events) <= 3
        assert all(e.job_id == a_job.job_id and e.account_id == accounts["names"]["a"] for e in page.events)
        paged += [e.sequence for e in page.events]
        if page.next_after_sequence == 0:
            break
        assert len(page.events) == 3 and page.next_after_sequence == page.events[-1].sequence
        after = page.next_after_sequence
    assert paged == watched and pages == -(-len(watched) // 3)  # a full last page already says "no more"
    assert a.ListJobEvents(pb.ListJobEventsRequest(job_id=a_job.job_id)).events[-1].status.terminal
    # After the last event: an empty page that says so; the default page holds everything here.
    tail = a.ListJobEvents(pb.ListJobEventsRequest(job_id=a_job.job_id, after_sequence=watched[-1]))
    assert list(tail.events) == [] and tail.next_after_sequence == 0
    whole = a.ListJobEvents(pb.ListJobEventsRequest(job_id=a_job.job_id))
    assert [e.sequence for e in whole.events] == watched[:100]
    middle = watched[len(watched) // 2]
    rest = a.ListJobEvents(pb.ListJobEventsRequest(job_id=a_job.job_id, after_sequence=middle, page_size=1000))
    assert [e.sequence for e in rest.events] == [s for s in watched if s > middle]


def test_bad_arguments_are_invalid(accounts, a_job):  # noqa: F811
    a = accounts["training"]["a"]
    for request in (pb.ListJobEventsRequest(job_id=a_job.job_id, after_sequence=-1),
                    pb.ListJobEventsRequest(job_id=a_job.job_id, page_size=-1)):
        with pytest.raises(grpc.RpcError) as err:
            a.ListJobEvents(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_another_accounts_job_is_not_found(accounts, a_job):  # noqa: F811
    b, admin = accounts["training"]["b"], accounts["training"]["admin"]
    _not_found_like_missing(lambda i: b.ListJobEvents(pb.ListJobEventsRequest(job_id=i)),
                            a_job.job_id, f"job-{uuid.uuid4()}")
    assert admin.ListJobEvents(pb.ListJobEventsRequest(job_id=a_job.job_id)).events  # admin crosses accounts
