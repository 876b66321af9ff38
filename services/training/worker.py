"""The body of a training job, run in its own process so RPC threads never train.

It talks to the service only through a queue of ("event", kind, payload) / ("result", data) /
("stopped", data) / ("error", data) messages; the service turns them into durable events.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from trainhouse.core.errors import TrainhouseError
from trainhouse.common import tracing
from trainhouse.common.heap import frozen_during
from trainhouse.common.logs import configure

PARITY_TOLERANCE = 1e-5


# Per-step progress is forwarded at most this many times per job (plus the last step): every
# epoch, metric and checkpoint event is kept, but a 100k-step job must not write 100k rows.
MAX_STEP_EVENTS = 500
# What TRAINHOUSE_TRAINING_PROGRESS_EVENTS=false stops at the source (config.TrainingSettings).
PROGRESS_EVENTS = ("epoch", "step", "metric")


def exit_if_orphaned(parent: int | None) -> None:
    """The service died (kill -9): nobody reads our events, and the restarted service resumes this
    job from its last checkpoint in a new worker. Leave at once, writing nothing, so two workers
    never share the job's folder."""
    if parent is not None and os.getppid() != parent:
        os._exit(3)


class BoundedQueue:
    """The executor's bounded message queue (backpressure, executors.queue_max) as the worker sees
    it: ``put`` waits while the service catches up, but never past the service's death.

    Progress events are batched as a Kafka producer batches records (``batch.size``,
    ``linger.ms``): ``put_event`` keeps them, and one ("events", [...]) message carries them when
    MAX_PENDING are kept, when the oldest has lingered LINGER_S (a background thread sends it even
    if the trainer is busy in a long step or a validation pass), when an event that cannot wait
    arrives (a checkpoint, a log line, ...), and before any other message, so the service sees
    every message in the order the worker produced it. Each message costs both processes a
    pickle, a pipe write and a wake-up: flushing every step held a job emitting as fast as it
    could to ~55k points/s (bench/metrics_ingestion.py), where the worker's own emitting alone runs
    ~150k/s; and a small job's epoch (an epoch event and ~8 metric points) as ~9 messages made
    its worker preempted about twice as often."""

    MAX_PENDING = 1024
    LINGER_S = 0.01

    def __init__(self, queue: Any, parent: int | None):
        self.queue, self.parent = queue, parent
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._since = 0.0
        # Held across the send, so two flushes (trainer thread and linger thread) never reorder.
        self._lock = threading.RLock()
        self._kept = threading.Event()
        self._linger: threading.Thread | None = None
        self._closed = False

    def put_event(self, kind: str, payload: dict[str, Any], urgent: bool = False) -> None:
        with self._lock:
            first = not self._pending
            if first:
                self._since = time.monotonic()
            self._pending.append((kind, payload))
            if urgent or len(self._pending) >= self.MAX_PENDING:
                self.flush()
            elif first:
                self._start_linger()
                self._kept.set()

    def flush_due(self) -> None:
        """Send what is kept if the oldest has lingered LINGER_S (the trainer calls it every step)."""
        if self._pending and time.monotonic() - self._since >= self.LINGER_S:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                events, self._pending = self._pending, []
                self._put(("events", events))

    def put(self, item: Any) -> None:
        with self._lock:
            self.flush()
            self._put(item)

    def close(self) -> None:
        """Send what is kept and end the linger thread: a Ray worker process runs job after job,
        and each job's thread would otherwise wait there for good."""
        self.flush()
        self._closed = True
        self._kept.set()
        if self._linger is not None:
            self._linger.join(timeout=5)

    def _start_linger(self) -> None:
        if self._linger is None:
            self._linger = threading.Thread(target=self._linger_loop, name="event-linger", daemon=True)
            self._linger.start()

    def _linger_loop(self) -> None:
        while not self._closed:
            self._kept.wait()
            self._kept.clear()
            while True:  # checked after clear(): an event kept meanwhile is seen here
                with self._lock:
                    if not self._pending:
                        break
                    wait = self._since + self.LINGER_S - time.monotonic()
                    if wait <= 0:
                        self.flush()
                        break
                time.sleep(wait)

    def _put(self, item: Any) -> None:
        while True:
            try:
                self.queue.put(item, timeout=1.0)
                return
            except Exception as err:  # queue.Full (multiprocessing) or ray.util.queue.Full
                if type(err).__name__ != "Full":
                    raise
                exit_if_orphaned(self.parent)


class QueueCallbacks:
    """Trainer callbacks that forward events to the service and poll for a stop request."""

    def __init__(self, queue: BoundedQueue, cancel: Any, shutdown: Any, checkpoint_dir: str,
                 watch_parent: bool = True, progress_events: bool = True):
        self.parent = os.getppid() if watch_parent else None
        self.progress_events = progress_events
        self.queue = queue
        self.cancel = cancel
        self.shutdown = shutdown
        self.checkpoint_dir = checkpoint_dir
        self.epochs = tracing.Timeline()  # made inside the job's span: its epochs are children of it

    @property
    def stop_checkpoint_kind(self) -> str:
        return "shutdown" if self.shutdown.is_set() and not self.cancel.is_set() else "cancel"

    def on_event(self, kind: str, payload: dict[str, Any]) -> None:
        if not self.progress_events and kind in PROGRESS_EVENTS:
            return
        if kind == "step":
            total = int(payload.get("total_steps") or 0)
            every = max(1, total // MAX_STEP_EVENTS)
            if payload["step"] % every and payload["step"] != total:
                return
        elif kind == "epoch":
            self.epochs.mark("epoch", **{f"trainhouse.{k}": v for k, v in payload.items()
                                         if isinstance(v, (int, float, str, bool))})
        self.queue.put_event(kind, _plain(payload), urgent=kind not in PROGRESS_EVENTS)

    def should_stop(self) -> bool:
        self.queue.flush_due()  # once per step: what has lingered long enough goes now
        exit_if_orphaned(self.parent)
        return self.cancel.is_set() or self.shutdown.is_set()


_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    """JSON-safe copy: what a JSON round trip gives (numpy scalars and arrays become Python numbers
    and lists, tuples lists, keys strings, anything else its str), built directly: every progress
    event passes here, and the round trip was most of what emitting a metric point cost."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        if all(type(k) is str for k in value):
            return {k: _plain(v) for k, v in value.items()}
    elif kind is list or kind is tuple:
        return [_plain(v) for v in value]
    elif isinstance(value, np.ndarray):
        return _plain(value.tolist())
    elif isinstance(value, np.generic):
        return _plain(value.item())
    return json.loads(json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def majority_baseline(train_outputs: list[str], eval_outputs: list[str]) -> float:
    """Accuracy of always answering the most frequent training output: the bar a model must clear."""
    if not eval_outputs:
        return 0.0
    values, counts = np.unique(np.array(train_outputs), return_counts=True)
    majority = values[int(np.argmax(counts))]
    return float(np.mean([o == majority for o in eval_outputs]))


def run_job(spec: dict[str, Any], queue: Any, cancel: Any, shutdown: Any) -> None:
    configure(f"training-worker-{spec['job_id']}")
    if spec.get("executor") == "local":
        # A process of its own (executors.LocalExecutor): lowering its priority or pinning it touches
        # no other job. Ray reuses its worker processes across tasks, so Ray's scheduling decides there.
        if spec.get("nice"):
            os.nice(int(spec["nice"]))
        if spec.get("cpus"):
            os.sched_setaffinity(0, spec["cpus"])  # TRAINHOUSE_TRAINING_WORKER_CPUS
    tracing.configure("worker")
    log = logging.getLogger("trainhouse.worker")
    queue = BoundedQueue(queue, os.getppid() if spec.get("watch_parent", True) else None)
    # The job's span continues the trace of the StartJob call that queued it (spec["traceparent"]).
    with tracing.span("training job", traceparent=spec.get("traceparent"), **{
            "trainhouse.job_id": spec["job_id"], "trainhouse.method": spec["method"]}):
        try:
            _run(spec, queue, cancel, shutdown)
        except TrainhouseError as err:
            queue.put(("error", {"reason": err.reason.lower(), "message": err.message, "field": err.field}))
        except Exception as err:  # the job fails; the service stays up
            log.error("job crashed: %s", traceback.format_exc())
            queue.put(("error", {"reason": "trainer_error", "message": f"{type(err).__name__}: {err}"}))
        finally:
            queue.close()
    tracing.flush()


def _write_split(job_dir: Path, trainer: Any) -> None:
    """Record the split the job really used, so evaluation compares runs on the same examples."""
    split_file = job_dir / "split.json"
    if not split_file.exists():
        tmp = split_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"train": [e.to_dict() for e in trainer.train_examples],
                                   "validation": [e.to_dict() for e in trainer.validation_examples]}))
        tmp.replace(split_file)


def _train(queue: Any, trainer: Any, spec: dict[str, Any], n_train: int, n_validation: int) -> Any | None:
    """Run (or resume) training between the running and validating statuses; None when stopped."""
    queue.put(("event", "sizes", {"train_examples": n_train, "validation_examples": n_validation}))
    queue.put(("event", "status", {"state": "running"}))
    with frozen_during():  # the data and model are built; the loop's full collections skip them
        result = trainer.train(resume_from=spec.get("resume_from"))
    if result.stopped:
        queue.put(("stopped", {"metrics": _plain(result.metrics)}))
        return None
    queue.put(("event", "status", {"state": "validating"}))
    return result


def _run(spec: dict[str, Any], queue: Any, cancel: Any, shutdown: Any) -> None:
    job_dir = Path(spec["job_dir"])
    data = json.loads((job_dir / "examples.json").read_text())
    callbacks = QueueCallbacks(queue, cancel, shutdown, str(job_dir / "checkpoints"),
                               watch_parent=spec.get("watch_parent", True),
                               progress_events=spec.get("progress_events", True))
    (job_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    if spec["method"] == "grpo":
        _run_grpo(spec, job_dir, data, queue, callbacks)
    else:
        _run_classifier(spec, job_dir, data, queue, callbacks)


def _run_classifier(spec: dict[str, Any], job_dir: Path, data: dict[str, Any], queue: Any,
                    callbacks: QueueCallbacks) -> None:
    # Imported here so the spawn start-up of the parent stays light.
    from trainhouse.core.onnx_model import OnnxModel
    from trainhouse.core.trainer.dispatch import make_trainer
    from trainhouse.core.trainer.onnx_export import export_onnx

    base_file = job_dir / "base_model.onnx"
    base = base_file.read_bytes() if base_file.exists() else None
    trainer = make_trainer(spec["method"], spec["config"], data["examples"], data["validation_examples"] or None,
                           callbacks, base_model_onnx=base)
    if spec["method"] != "reinforcement":
        _write_split(job_dir, trainer)
    started = time.monotonic()
    result = _train(queue, trainer, spec, len(trainer.train_examples), len(trainer.validation_examples))
    if result is None:
        return
    artifact = job_dir / "model.onnx"
    export_onnx(result.model, str(artifact))
    served = OnnxModel.from_path(str(artifact))
    held_out = trainer.validation_examples or trainer.train_examples
    texts = [e.input for e in held_out][:512]
    diff = float(np.max(np.abs(result.model.predict_proba(texts) - served.predict_proba(texts)))) if texts else 0.0
    if diff > PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX export disagrees with NumPy by {diff:.2e} (> {PARITY_TOLERANCE})")
    metrics = dict(_plain(result.metrics))
    metrics["onnx_parity_max_abs_diff"] = diff
    if spec["method"] != "reinforcement":  # rated feedback has no "right answer" to count
        metrics["majority_baseline_accuracy"] = majority_baseline(
            [e.expected_output for e in trainer.train_examples], [e.expected_output for e in held_out])
    metrics["training_seconds"] = time.monotonic() - started
    queue.put(("result", {"artifact_path": str(artifact), "metrics": metrics}))


def _run_grpo(spec: dict[str, Any], job_dir: Path, data: dict[str, Any], queue: Any,
              callbacks: QueueCallbacks) -> None:
    import onnxruntime as ort

    from trainhouse.core.configs import GRPOConfig
    from trainhouse.core.grpo.environment import parse_queries
    from trainhouse.core.grpo.rollout_pool import make_rollout_pool
    from trainhouse.core.grpo.trainer import GRPOTrainer

    config = GRPOConfig.from_dict(spec["config"])  # the job's resolved config
    # On the Ray executor the rollout shards fan out as Ray tasks; elsewhere they run in this process.
    pool = make_rollout_pool(spec.get("executor"), config.rollout_shards)
    trainer = GRPOTrainer(config, parse_queries(data["training_queries"], "training_queries"),
                          parse_queries(data["evaluation_queries"], "evaluation_queries")
                          if data["evaluation_queries"] else None, callbacks, rollout_pool=pool)
    started = time.monotonic()
    result = _train(queue, trainer, spec, len(data["training_queries"]), len(data["evaluation_queries"]))
    if result is None:
        return
    artifact = job_dir / "model.onnx"
    result.policy.export_onnx(str(artifact))
    # Parity on real inputs: each query at the start of an episode and after a few tool calls.
    queries = [q["query"] for q in (data["evaluation_queries"] or data["training_queries"])][:128]
    rng = np.random.default_rng(0)
    states = rng.integers(0, 2, size=(len(queries), result.policy.input_dim - result.policy.query_dim))
    features = result.policy.features(queries, states.astype(np.float32))
    session = ort.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
    served = session.run(None, {session.get_inputs()[0].name: features})[0]
    diff = float(np.max(np.abs(result.policy.probabilities(features) - served)))
    if diff > PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX export disagrees with NumPy by {diff:.2e} (> {PARITY_TOLERANCE})")
    metrics = {k: v for k, v in _plain(result.metrics).items() if isinstance(v, (int, float))}
    metrics["onnx_parity_max_abs_diff"] = diff
    metrics["training_seconds"] = time.monotonic() - started
    queue.put(("result", {"artifact_path": str(artifact), "metrics": metrics}))
