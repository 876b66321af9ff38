"""`python -m services.registry`: the ModelRegistry process."""
from __future__ import annotations

from services.common import config
from services.common.server import ServiceApp, serve
from services.registry.serving import SessionCache
from services.registry.servicer import RegistryServicer
from services.registry.store import RegistryStore
from trainhouse.v1 import model_registry_pb2_grpc


def build() -> ServiceApp:
    home = config.home()
    store = RegistryStore(home / "registry.duckdb")
    servicer = RegistryServicer(store, SessionCache(), home / "registry" / "artifacts")
    return ServiceApp(
        registrations=[(model_registry_pb2_grpc.add_ModelRegistryServicer_to_server, servicer,
                        config.SERVICES["registry"][2])],
        on_stopped=store.close)


if __name__ == "__main__":
    serve("registry", build)
