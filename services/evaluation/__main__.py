"""`python -m services.evaluation`: the EvaluationService process."""
from __future__ import annotations

from services.common import config
from services.common.server import ServiceApp, serve
from services.evaluation.servicer import EvaluationServicer
from services.evaluation.store import EvaluationStore
from trainhouse.v1 import evaluation_service_pb2_grpc


def build() -> ServiceApp:
    store = EvaluationStore(config.home() / "evaluation.duckdb")
    return ServiceApp(
        registrations=[(evaluation_service_pb2_grpc.add_EvaluationServiceServicer_to_server,
                        EvaluationServicer(store), config.SERVICES["evaluation"][2])],
        on_stopped=store.close)


if __name__ == "__main__":
    serve("evaluation", build)
