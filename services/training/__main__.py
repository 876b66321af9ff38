"""`python -m trainhouse.training`: the TrainingService process."""
from __future__ import annotations

import os

# Worker processes inherit this: multi-threaded OpenBLAS collapses on the trainer's small
# matrices when several jobs share the cores (measured 76 -> 2,877 steps/s at load ~10).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import json

from trainhouse.common import config
from trainhouse.common.server import ServiceApp, serve
from trainhouse.training import peers
from trainhouse.training.autotrain import AutoTrainer
from trainhouse.training.events import EventHub
from trainhouse.training.executors import make_executor
from trainhouse.training.jobs import Jobs
from trainhouse.training.runner import JobRunner
from trainhouse.training.servicer import TrainingServicer
from trainhouse.training.store import JobStore
from trainhouse.training.sweep_store import SweepStore
from trainhouse.training.sweeps import Sweeps
from trainhouse.v1 import training_service_pb2_grpc


def build() -> ServiceApp:
    home = config.home()
    check_every_s = config.autotrain_check_s()  # a bad value stops the process before anything starts
    store = JobStore(home / "training.duckdb")
    hub = EventHub(store)

    def register(job: dict, artifact: str, metrics: dict, split: dict | None) -> tuple[str, dict | None]:
        stored = json.loads(job["config_json"])
        return peers.register_version(job, artifact, metrics, stored.get("resolved", {}), split,
                                      stored.get("promotion"))

    runner = JobRunner(store, hub, home, config.TrainingSettings.from_env(), register, make_executor(),
                       ingest=peers.ingest_trajectories)
    runner.start()
    jobs = Jobs(store, hub, runner)
    autotrainer = AutoTrainer(store, jobs, check_every_s)
    autotrainer.start()
    # Sweeps resume where they were: their state and trials are in sweeps.duckdb.
    sweep_store = SweepStore(home / "sweeps.duckdb")
    sweeps = Sweeps(sweep_store, jobs, store, runner)
    sweeps.start()

    def on_shutdown() -> None:
        autotrainer.stop()  # first: a check must not start a job into a stopping runner
        sweeps.stop()  # likewise a sweep's next trial
        runner.shutdown()

    def on_stopped() -> None:
        sweep_store.close()
        store.close()

    return ServiceApp(
        registrations=[(training_service_pb2_grpc.add_TrainingServiceServicer_to_server,
                        TrainingServicer(store, hub, runner, jobs, autotrainer, sweeps), config.SERVICES["training"][2])],
        on_shutdown=on_shutdown, on_stopped=on_stopped)


if __name__ == "__main__":
    serve("training", build)
