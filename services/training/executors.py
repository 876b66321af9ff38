"""Where a job's worker runs: a local process (default) or a Ray task (TRAINHOUSE_EXECUTOR=ray).

The runner only sees a WorkerHandle: a message queue to drain, liveness, and two stop requests
(cancel, shutdown) that the worker polls between batches. Checkpoints live under
$TRAINHOUSE_HOME, which Ray workers must share (same machine or a shared volume). The spec tells
the worker which executor runs it ("executor"): on Ray, GRPO rollout shards fan out as further
Ray tasks (grpo/rollout_pool.py).
"""
from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
import threading
import time
from typing import Any, Callable, Protocol

from trainhouse.common.config import env_int, env_str

_ctx = mp.get_context("spawn")


def queue_max() -> int:
    """Worker messages in flight at most (TRAINHOUSE_WORKER_QUEUE_MAX, default 1000).

    Backpressure: a tiny job can produce epoch events far faster than they are made durable; with
    an unbounded queue the backlog grows without limit (memory) and a cancel waits until all of it
    is stored. A full queue makes the worker wait at its next event instead.
    """
    return max(1, env_int("WORKER_QUEUE_MAX", 1000))


class WorkerHandle(Protocol):
    description: str

    def get_message(self, timeout: float) -> tuple | None: ...
    def is_alive(self) -> bool: ...
    def join(self, timeout: float) -> None: ...
    def exit_code(self) -> int | None: ...
    def request_cancel(self) -> None: ...
    def request_shutdown(self) -> None: ...
    def cancel_requested(self) -> bool: ...
    def shutdown_requested(self) -> bool: ...
    def kill(self) -> None: ...


class Executor(Protocol):
    name: str

    def launch(self, job_id: str, spec: dict[str, Any]) -> WorkerHandle: ...


# --- local processes --------------------------------------------------------------------------
class LocalHandle:
    def __init__(self, process: Any, queue: Any, cancel: Any, shutdown: Any):
        self.process, self.queue, self.cancel, self.shutdown = process, queue, cancel, shutdown
        self.description = f"pid {process.pid}"

    def get_message(self, timeout: float) -> tuple | None:
        try:
            return self.queue.get(timeout=timeout)
        except queue_mod.Empty:
            return None

    def is_alive(self) -> bool:
        return self.process.is_alive()

    def join(self, timeout: float) -> None:
        self.process.join(timeout)

    def exit_code(self) -> int | None:
        return self.process.exitcode

    def request_cancel(self) -> None:
        self.cancel.set()

    def request_shutdown(self) -> None:
        self.shutdown.set()

    def cancel_requested(self) -> bool:
        return self.cancel.is_set()

    def shutdown_requested(self) -> bool:
        return self.shutdown.is_set()

    def kill(self) -> None:
        self.process.terminate()


class LocalExecutor:
    """One spawned process per job: the RPC threads never train, and a crash kills one job only."""

    name = "local"

    def __init__(self, body: Callable[..., None] | None = None):
        # What the process runs: worker.run_job, or a bench's stand-in with the same signature
        # (bench/metrics_ingestion.py measures the event path with a worker that only emits).
        self.body = body

    def launch(self, job_id: str, spec: dict[str, Any]) -> WorkerHandle:
        from trainhouse.training import worker

        q, cancel, shutdown = _ctx.Queue(maxsize=queue_max()), _ctx.Event(), _ctx.Event()
        spec = {**spec, "watch_parent": True, "executor": self.name}
        proc = _ctx.Process(target=self.body or worker.run_job, args=(spec, q, cancel, shutdown), name=f"job-{job_id}")
        proc.start()
        return LocalHandle(proc, q, cancel, shutdown)


# --- Ray ----------------------------------------------------------------------------------------
class _RayFlag:
    """A stop flag read from a Ray actor, cached briefly so polling between batches stays cheap."""

    def __init__(self, actor: Any, name: str, ttl_s: float = 0.5):
        self.actor, self.name, self.ttl_s = actor, name, ttl_s
        self._value, self._read_at = False, 0.0

    def is_set(self) -> bool:
        import ray

        if not self._value and time.monotonic() - self._read_at > self.ttl_s:
            self._value = bool(ray.get(self.actor.get.remote(self.name)))
            self._read_at = time.monotonic()
        return self._value

    def set(self) -> None:
        import ray

        ray.get(self.actor.set.remote(self.name))


class RayHandle:
    def __init__(self, ref: Any, queue: Any, flags: Any):
        self.ref, self.queue, self.flags = ref, queue, flags
        self.cancel, self.shutdown = _RayFlag(flags, "cancel", 0), _RayFlag(flags, "shutdown", 0)
        self.description = f"ray task {ref.hex()[:16]}"
        self._code: int | None = None

    def get_message(self, timeout: float) -> tuple | None:
        from ray.util.queue import Empty

        try:
            return self.queue.get(timeout=timeout)
        except Empty:
            return None

    def is_alive(self) -> bool:
        import ray

        ready, _ = ray.wait([self.ref], timeout=0)
        return not ready

    def join(self, timeout: float) -> None:
        import ray

        ready, _ = ray.wait([self.ref], timeout=timeout)
        if ready and self._code is None:
            try:
                ray.get(self.ref)
                self._code = 0
            except Exception:
                self._code = 1

    def exit_code(self) -> int | None:
        return self._code

    def request_cancel(self) -> None:
        self.cancel.set()

    def request_shutdown(self) -> None:
        self.shutdown.set()

    def cancel_requested(self) -> bool:
        return self.cancel.is_set()

    def shutdown_requested(self) -> bool:
        return self.shutdown.is_set()

    def kill(self) -> None:
        import ray

        ray.cancel(self.ref, force=True)


class RayExecutor:
    """Jobs as Ray tasks reporting back through a Ray queue; stop requests through a tiny actor."""

    name = "ray"

    def __init__(self, address: str | None):
        import ray

        self._lock = threading.Lock()
        if not ray.is_initialized():
            # Local Ray on this machine when no address is given (tests, laptops).
            ray.init(address=address or None, include_dashboard=False, ignore_reinit_error=True,
                     log_to_driver=False)

        @ray.remote
        class Flags:
            def __init__(self) -> None:
                self.values: dict[str, bool] = {}

            def set(self, name: str) -> None:
                self.values[name] = True

            def get(self, name: str) -> bool:
                return self.values.get(name, False)

        @ray.remote(max_retries=0)
        def run(spec: dict[str, Any], queue: Any, flags: Any) -> None:
            from trainhouse.training import worker

            worker.run_job(spec, queue, _RayFlag(flags, "cancel"), _RayFlag(flags, "shutdown"))

        self._flags_cls, self._run = Flags, run

    def launch(self, job_id: str, spec: dict[str, Any]) -> WorkerHandle:
        from ray.util.queue import Queue

        with self._lock:
            queue, flags = Queue(maxsize=queue_max()), self._flags_cls.remote()
            ref = self._run.remote({**spec, "watch_parent": False, "executor": self.name}, queue, flags)
        return RayHandle(ref, queue, flags)


def make_executor() -> Executor:
    kind = env_str("EXECUTOR", "local").lower()
    if kind == "local":
        return LocalExecutor()
    if kind == "ray":
        try:
            return RayExecutor(env_str("RAY_ADDRESS", "") or None)
        except ImportError as exc:
            raise SystemExit("TRAINHOUSE_EXECUTOR=ray needs the ray extra: pip install 'trainhouse[ray]'") from exc
    raise SystemExit(f"TRAINHOUSE_EXECUTOR must be 'local' or 'ray', got {kind!r}")
