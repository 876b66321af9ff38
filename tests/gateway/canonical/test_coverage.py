"""Every user-facing RPC has a canonical REST route with the RPC's scope, and an SDK method."""
from __future__ import annotations

import pytest
from trainhouse.v1 import data_service_pb2, evaluation_service_pb2, model_registry_pb2, training_service_pb2

from trainhouse.gateway.app import create_app
from trainhouse.gateway.canonical import ROUTERS
from trainhouse.gateway.canonical.coverage import INTERNAL_RPCS, ROUTE_OF_RPC
from trainhouse.gateway.scopes import ROUTE_SCOPES
from trainhouse.gateway.settings import GatewaySettings
from trainhouse.common.rpc_scopes import RPC_SCOPES
from trainhouse.sdk import AsyncClient, Client

MODULES = (training_service_pb2, data_service_pb2, evaluation_service_pb2, model_registry_pb2)
RPCS = sorted(f"{service.full_name}/{method.name}" for module in MODULES
              for service in module.DESCRIPTOR.services_by_name.values() for method in service.methods)
SERVED = {(next(iter(route.methods)), route.path): route.operation_id for router in ROUTERS for route in router.routes}


def test_the_descriptors_hold_every_rpc() -> None:
    assert len(RPCS) == 81, RPCS  # a new RPC must be placed in ROUTE_OF_RPC or INTERNAL_RPCS


def test_every_rpc_is_placed_once() -> None:
    missing = [rpc for rpc in RPCS if rpc not in ROUTE_OF_RPC and rpc not in INTERNAL_RPCS]
    assert missing == [], f"RPCs without a canonical route (gateway/canonical/coverage.py): {missing}"
    assert set(ROUTE_OF_RPC) & set(INTERNAL_RPCS) == set()
    assert set(ROUTE_OF_RPC) | set(INTERNAL_RPCS) == set(RPCS)  # no stale names either


@pytest.mark.parametrize("rpc", sorted(ROUTE_OF_RPC))
def test_each_user_facing_rpc_has_a_route_a_scope_and_an_sdk_method(rpc: str) -> None:
    route = ROUTE_OF_RPC[rpc]
    assert route in SERVED, f"{rpc}: {route} is not served"
    assert ROUTE_SCOPES[route] == RPC_SCOPES[rpc], f"{rpc}: route scope {ROUTE_SCOPES[route]} != {RPC_SCOPES[rpc]}"
    resource, method = SERVED[route].split(".")
    for client in (Client("http://127.0.0.1:1", "t"), AsyncClient("http://127.0.0.1:1", "t")):
        assert callable(getattr(getattr(client, resource, None), method, None)), \
            f"{rpc}: the SDK has no {type(client).__name__}.{resource}.{method}"


def test_every_canonical_route_has_an_sdk_method_and_a_clean_operation_id(tmp_path) -> None:  # noqa: ANN001
    for (method, path), op_id in SERVED.items():
        resource, _, name = op_id.partition(".")
        assert resource and name and op_id.replace("_", "").replace(".", "").isalnum(), op_id
        assert callable(getattr(getattr(Client("http://127.0.0.1:1", "t"), resource, None), name, None)), op_id
    settings = GatewaySettings(home=tmp_path, max_body_bytes=1024, rpc_timeout_s=1, rate_limit_per_hour=10,
                               jwt_secret=None, bootstrap_token=None, sse_keepalive_s=1)
    paths = create_app(settings).openapi()["paths"]
    ids = [op["operationId"] for p, ops in paths.items() if p.startswith("/v1/") for op in ops.values()]
    assert sorted(ids) == sorted(SERVED.values()) and len(set(ids)) == len(ids)
