"""`python -m services.data`: the DataService process."""
from __future__ import annotations

from services.common import config
from services.common.server import ServiceApp, serve
from services.data.servicer import DataServicer
from services.data.store import DataStore
from services.data.trajectory_store import TrajectoryStore
from trainhouse.v1 import data_service_pb2_grpc


def build() -> ServiceApp:
    store = DataStore(config.home() / "data.duckdb")
    trajectories = TrajectoryStore(store.db)  # one DuckDB file per service: shared connection
    return ServiceApp(
        registrations=[(data_service_pb2_grpc.add_DataServiceServicer_to_server, DataServicer(store, trajectories),
                        config.SERVICES["data"][2])],
        on_stopped=store.close)


if __name__ == "__main__":
    serve("data", build)
