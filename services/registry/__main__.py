"""`python -m trainhouse.registry`: the ModelRegistry process."""
from __future__ import annotations

import datetime as dt
import logging
import threading

from trainhouse.common import config
from trainhouse.common.logs import log
from trainhouse.common.server import ServiceApp, serve
from trainhouse.common.timeutil import now
from trainhouse.registry.deployments import Deployments
from trainhouse.registry.replicas import ServingFeed
from trainhouse.core.serving import SessionCache
from trainhouse.registry.serving import PredictionLog
from trainhouse.registry.servicer import RegistryServicer
from trainhouse.registry.store import RegistryStore
from trainhouse.v1 import model_registry_pb2_grpc

logger = logging.getLogger("trainhouse.registry")


class Ticker:
    """The registry's background clock: flushes served predictions, moves rollouts whose step or
    window fell due (and rolls back breached ones), and once an hour deletes predictions older
    than the retention (feedback on them is then NOT_FOUND)."""

    def __init__(self, log_: PredictionLog, deployments: Deployments, tick_s: float, retention_days: float):
        self.log = log_
        self.deployments = deployments
        self.tick_s = tick_s
        self.retention_every = max(1, round(3600 / tick_s))
        self.retention = dt.timedelta(days=retention_days)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="registry-tick", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.log.flush()

    def _loop(self) -> None:
        n = 0
        while not self._stop.wait(self.tick_s):
            n += 1
            for name, step in (("flush", self.log.flush), ("rollouts", self.deployments.tick_all)):
                try:
                    step()
                except Exception as exc:  # one failing step must not stop the clock
                    log(logger, "tick step failed", logging.ERROR, step=name, error=str(exc))
            if n % self.retention_every == 0:
                try:
                    self.deployments.store.delete_predictions_before(now() - self.retention)
                except Exception as exc:
                    log(logger, "prediction retention failed", logging.ERROR, error=str(exc))


def build() -> ServiceApp:
    home = config.home()
    store = RegistryStore(home / "registry.duckdb")
    sessions = SessionCache()
    prediction_log = PredictionLog(store)
    deployments = Deployments(store, sessions, prediction_log)
    adopted = deployments.adopt_implicit_serving()
    if adopted:
        logger.info("serving made explicit", extra={"agents": adopted})
    feed = ServingFeed(deployments, store, home / "registry")
    servicer = RegistryServicer(store, sessions, home / "registry" / "artifacts", prediction_log, deployments, feed)
    ticker = Ticker(prediction_log, deployments, config.env_float("REGISTRY_TICK_S", 1.0),
                    config.env_float("REGISTRY_PREDICTION_RETENTION_DAYS", 30.0))
    ticker.start()

    return ServiceApp(
        registrations=[(model_registry_pb2_grpc.add_ModelRegistryServicer_to_server, servicer,
                        config.SERVICES["registry"][2])],
        on_shutdown=ticker.stop,
        on_stopped=lambda: (prediction_log.flush(), store.close(), feed.close()))


if __name__ == "__main__":
    serve("registry", build)
