"""Agents and versions: one mapping under the v1 routes and the CLI, whichever transport answered.

The CLI's ``--json`` record of a version read over gRPC must equal the one read back from the
gateway's seed-000 JSON (the route's rendering, through a JSON round trip, with nulls omitted as
the routes omit them).
"""
from __future__ import annotations

import json

from trainhouse.gateway.resources.agents import AGENT_FIELDS, VERSION_FIELDS, agent_v1, version_v1
from trainhouse.cli import records
from trainhouse.v1 import model_version_pb2


def _over_http(data: dict) -> dict:
    """What a client receives: JSON, with the null fields dropped (response_model_exclude_none)."""
    return json.loads(json.dumps({k: v for k, v in data.items() if v is not None}))


def test_a_version_reads_the_same_over_grpc_and_over_the_gateway():
    v = model_version_pb2.ModelVersion(version_id="v1.2.0", agent_id="router", job_id="job-9",
                                       state=model_version_pb2.VERSION_STATE_ROLLED_BACK,
                                       metrics={"validation_accuracy": 0.91, "loss": 0.2}, size_bytes=4096,
                                       sha256="ab" * 32, method="supervised", labels=["l1"])
    v.create_time.FromSeconds(1_790_000_000)
    v.training_config.update({"epochs": 20})
    rest = version_v1(v)
    assert rest["status"] == "rolled-back" and rest["trainedAt"] == "2026-09-21T14:13:20Z"
    assert rest["sizeBytes"] == 4096 and rest["size"]
    from_grpc = records.version_from_proto(v)
    from_rest = records.version_from_rest(_over_http(rest))
    assert set(from_grpc) == set(VERSION_FIELDS)
    assert from_rest == from_grpc
    assert from_grpc["state"] == "rolled_back" and from_grpc["parent_version_id"] is None


def test_an_agent_reads_the_same_over_grpc_and_over_the_gateway():
    a = model_version_pb2.Agent(agent_id="router", name="Router", description="routes", version_count=3,
                                active_version_id="v1.0.0")
    a.create_time.FromSeconds(1_790_000_000)
    from_grpc = records.agent_from_proto(a)
    assert set(from_grpc) == set(AGENT_FIELDS) and from_grpc["active_version_id"] == "v1.0.0"
    assert records.agent_from_rest(_over_http(agent_v1(a))) == from_grpc
    assert agent_v1(a)["activeVersionId"] == "v1.0.0" and agent_v1(a)["versionCount"] == 3
