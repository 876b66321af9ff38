"""ModelRegistry's calls to its peers (TrainingService, DataService), over gRPC only.

None of these is made while a registry lock is held: TrainingService calls back into the
registry (GetAgent, RegisterVersion) while it handles StartJob.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import partial
from typing import Any

import grpc

from services.common.clients import channel
from services.common.example_codec import example_dicts, example_proto
from services.common.grpc_errors import failure_of
from services.common.pagination import collect_pages
from services.common.timeutil import to_timestamp
from trainhouse.v1 import (data_service_pb2, data_service_pb2_grpc, job_state_pb2, training_job_pb2,
                           training_service_pb2, training_service_pb2_grpc)

TIMEOUT_S = 30.0


def _channel(service: str):
    return channel(service)


@dataclass
class PeerFailure(Exception):
    """A peer refused or could not be reached; carries what its status said."""

    code: grpc.StatusCode
    message: str
    field: str = ""

    def __str__(self) -> str:
        return self.message


def _failure(err: grpc.RpcError, service: str) -> PeerFailure:
    f = failure_of(err)
    return PeerFailure(f.code, f"{service}: {f.message}", f.field or "")


def job_examples(job_id: str, split: str, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` examples a job trained ("train") or was validated ("validation") on."""
    stub = training_service_pb2_grpc.TrainingServiceStub(_channel("training"))
    try:
        examples = collect_pages(partial(stub.ListJobExamples, timeout=TIMEOUT_S),
                                 training_service_pb2.ListJobExamplesRequest(job_id=job_id, split=split), "examples",
                                 1000, limit)
    except grpc.RpcError as err:
        raise _failure(err, "TrainingService") from None
    return example_dicts(examples)


def start_transfer_job(agent_id: str, base_version_id: str, examples: list[dict[str, Any]], display_name: str,
                       account_id: str) -> str:
    """Start a transfer-training job from `base_version_id`; its job id."""
    stub = training_service_pb2_grpc.TrainingServiceStub(_channel("training"))
    request = training_service_pb2.StartJobRequest(
        agent_id=agent_id, examples=[example_proto(e) for e in examples],
        config=training_job_pb2.TrainingConfig(method=job_state_pb2.TRAINING_METHOD_TRANSFER),
        base_version_id=base_version_id, display_name=display_name, account_id=account_id)
    try:
        return stub.StartJob(request, timeout=TIMEOUT_S).job.job_id
    except grpc.RpcError as err:
        raise _failure(err, "TrainingService") from None


def count_trajectories(agent_id: str, since: dt.datetime | None) -> int | None:
    """New trajectories of an agent since `since` (DataService.CountTrajectories); None when the
    DataService cannot answer (not reachable, or an older one without the RPC)."""
    stub = data_service_pb2_grpc.DataServiceStub(_channel("data"))
    flt = data_service_pb2.TrajectoryFilter(agent_id=agent_id)
    if since is not None:
        flt.since.CopyFrom(to_timestamp(since))
    try:
        return int(stub.CountTrajectories(data_service_pb2.CountTrajectoriesRequest(filter=flt),
                                          timeout=5.0).count)
    except grpc.RpcError:
        return None
