"""`python -m services.data`: the DataService process."""
from __future__ import annotations

from services.common import config
from services.common.server import ServiceApp, serve
from services.data.servicer import DataServicer
from services.data.store import DataStore
from trainhouse.v1 import data_service_pb2_grpc


def build() -> ServiceApp:
    store = DataStore(config.home() / "data.duckdb")
    return ServiceApp(
        registrations=[(data_service_pb2_grpc.add_DataServiceServicer_to_server, DataServicer(store),
                        config.SERVICES["data"][2])],
        on_stopped=store.close)


if __name__ == "__main__":
    serve("data", build)
