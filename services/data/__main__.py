"""`python -m trainhouse.data`: the DataService process."""
from __future__ import annotations

from trainhouse.common import config
from trainhouse.common.server import ServiceApp, serve
from trainhouse.data.servicer import DataServicer
from trainhouse.data.store import DataStore
from trainhouse.data.trajectory_store import TrajectoryStore
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
