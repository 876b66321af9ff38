"""Accounts as the isolation boundary in DataService (issue 15 item 1), over gRPC directly.

A caller sees, lists, reads and deletes only its own account's datasets and trajectories; another
account's id answers NOT_FOUND exactly as an id that does not exist; admin crosses accounts.
"""
from __future__ import annotations

import uuid

import grpc
import httpx
import pytest

from trainhouse.common.grpc_errors import failure_of
from tests.gateway.conftest import make_token
from trainhouse.v1 import data_service_pb2 as pb
from trainhouse.v1 import data_service_pb2_grpc, example_pb2, trajectory_pb2

SCOPES = ["training:start", "training:view", "training:cancel", "training:evaluate", "data:generate",
          "data:export", "models:deploy"]


@pytest.fixture(scope="module")
def accounts(stack):
    """Data stubs for two non-admin accounts A and B, and for admin."""
    suffix = uuid.uuid4().hex[:6]
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        a = make_token(client, stack.admin_token, SCOPES, account=f"acct-a-{suffix}")
        b = make_token(client, stack.admin_token, SCOPES, account=f"acct-b-{suffix}")
    return {name: data_service_pb2_grpc.DataServiceStub(stack.channel("data", token=token))
            for name, token in (("a", a), ("b", b), ("admin", None))}


def _failure(call):
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code(), failure_of(err.value).message


def _not_found_like_missing(call, real_id: str, made_up: str):
    """`call(id)` fails NOT_FOUND for `real_id` with the message a made-up id gets (modulo the id)."""
    code, message = _failure(lambda: call(real_id))
    missing_code, missing_message = _failure(lambda: call(made_up))
    assert code == missing_code == grpc.StatusCode.NOT_FOUND
    assert message.replace(real_id, "<id>") == missing_message.replace(made_up, "<id>")


def _dataset(stub, n: int = 3) -> str:
    dataset_id = f"iso-{uuid.uuid4().hex[:10]}"
    stub.CreateDataset(pb.CreateDatasetRequest(dataset_id=dataset_id, examples=[
        example_pb2.Example(input=f"question {i}", expected_output="yes" if i % 2 else "no") for i in range(n)]))
    return dataset_id


def _listed(stub, **kwargs) -> set[str]:
    return {d.dataset_id for d in stub.ListDatasets(pb.ListDatasetsRequest(page_size=1000, **kwargs)).datasets}


def test_another_accounts_dataset_is_not_found_like_a_missing_one(accounts):
    a, b, admin = accounts["a"], accounts["b"], accounts["admin"]
    dataset_id = _dataset(a)
    made_up = f"iso-none-{uuid.uuid4().hex[:8]}"

    _not_found_like_missing(lambda i: b.GetDataset(pb.GetDatasetRequest(dataset_id=i)), dataset_id, made_up)
    _not_found_like_missing(lambda i: list(b.StreamExamples(pb.StreamExamplesRequest(dataset_id=i))),
                            dataset_id, made_up)
    _not_found_like_missing(lambda i: b.ValidateDataset(pb.ValidateDatasetRequest(dataset_id=i)),
                            dataset_id, made_up)
    _not_found_like_missing(lambda i: b.DeleteDataset(pb.DeleteDatasetRequest(dataset_id=i)), dataset_id, made_up)
    assert dataset_id not in _listed(b)

    # Still there for its owner and for admin.
    assert a.GetDataset(pb.GetDatasetRequest(dataset_id=dataset_id)).dataset.dataset_id == dataset_id
    assert sum(len(r.examples) for r in a.StreamExamples(pb.StreamExamplesRequest(dataset_id=dataset_id))) == 3
    assert admin.GetDataset(pb.GetDatasetRequest(dataset_id=dataset_id)).dataset.dataset_id == dataset_id
    assert dataset_id in _listed(a) and dataset_id in _listed(admin)


def test_latest_and_lists_are_per_account(accounts):
    a, b = accounts["a"], accounts["b"]
    mine = _dataset(b)
    _dataset(a)  # newer, but A's
    assert b.GetDataset(pb.GetDatasetRequest(dataset_id="latest")).dataset.dataset_id == mine
    assert not _listed(b) & _listed(a)


def test_the_owner_and_admin_can_delete(accounts):
    a, admin = accounts["a"], accounts["admin"]
    first, second = _dataset(a), _dataset(a)
    a.DeleteDataset(pb.DeleteDatasetRequest(dataset_id=first))
    admin.DeleteDataset(pb.DeleteDatasetRequest(dataset_id=second))
    assert not {first, second} & _listed(a)


def _trajectory(stub, agent_id: str) -> str:
    trajectory_id = f"traj-{uuid.uuid4().hex[:10]}"
    stub.IngestTrajectories(iter([pb.IngestTrajectoriesRequest(trajectories=[trajectory_pb2.Trajectory(
        trajectory_id=trajectory_id, agent_id=agent_id, source="test")])]))
    return trajectory_id


def test_another_accounts_trajectory_is_not_found_like_a_missing_one(accounts):
    a, b, admin = accounts["a"], accounts["b"], accounts["admin"]
    agent = f"iso-agent-{uuid.uuid4().hex[:6]}"
    trajectory_id = _trajectory(a, agent)
    made_up = f"traj-none-{uuid.uuid4().hex[:8]}"

    _not_found_like_missing(lambda i: b.GetTrajectory(pb.GetTrajectoryRequest(trajectory_id=i)),
                            trajectory_id, made_up)
    flt = pb.TrajectoryFilter(agent_id=agent)
    assert not b.ListTrajectories(pb.ListTrajectoriesRequest(filter=flt)).trajectories
    assert b.CountTrajectories(pb.CountTrajectoriesRequest(filter=flt)).count == 0

    assert a.GetTrajectory(pb.GetTrajectoryRequest(trajectory_id=trajectory_id)).trajectory.agent_id == agent
    assert [t.trajectory_id for t in a.ListTrajectories(pb.ListTrajectoriesRequest(filter=flt)).trajectories] \
        == [trajectory_id]
    assert admin.GetTrajectory(pb.GetTrajectoryRequest(trajectory_id=trajectory_id)).trajectory.agent_id == agent
    assert admin.CountTrajectories(pb.CountTrajectoriesRequest(filter=flt)).count == 1


def test_the_same_trajectory_id_in_two_accounts_is_two_trajectories(accounts):
    a, b = accounts["a"], accounts["b"]
    agent = f"iso-agent-{uuid.uuid4().hex[:6]}"
    trajectory_id = _trajectory(a, agent)
    other = f"{agent}-b"
    counts = b.IngestTrajectories(iter([pb.IngestTrajectoriesRequest(trajectories=[trajectory_pb2.Trajectory(
        trajectory_id=trajectory_id, agent_id=other, source="test")])]))
    assert counts.created == 1  # not an update of A's
    assert a.GetTrajectory(pb.GetTrajectoryRequest(trajectory_id=trajectory_id)).trajectory.agent_id == agent
    assert b.GetTrajectory(pb.GetTrajectoryRequest(trajectory_id=trajectory_id)).trajectory.agent_id == other
