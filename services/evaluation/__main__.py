"""`python -m trainhouse.evaluation`: the EvaluationService process."""
from __future__ import annotations

from trainhouse.common import config
from trainhouse.common.server import ServiceApp, serve
from trainhouse.evaluation.servicer import EvaluationServicer
from trainhouse.evaluation.store import EvaluationStore
from trainhouse.v1 import evaluation_service_pb2_grpc


def build() -> ServiceApp:
    store = EvaluationStore(config.home() / "evaluation.duckdb")
    return ServiceApp(
        registrations=[(evaluation_service_pb2_grpc.add_EvaluationServiceServicer_to_server,
                        EvaluationServicer(store), config.SERVICES["evaluation"][2])],
        on_stopped=store.close)


if __name__ == "__main__":
    serve("evaluation", build)
