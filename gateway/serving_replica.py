"""The gateway's serving replica: routed Predict answered in this process, the registry deciding.

Why (issue #20): a REST Predict that crosses to the registry pays a second hop (~1.4 ms on the
bench machine) on top of the model's ~0.3 ms; agents call Predict on every request. So the
gateway keeps what the registry's Predict keeps in memory (routes, warm verified ONNX sessions)
and answers routed requests itself, the same way (trainhouse.core.serving: one traffic split,
one answer ranking), then records each prediction back (RecordPredictions, batched).

The registry stays the one writer of what serves (docs/serving.md):

* the table comes from ModelRegistry.WatchServing: a snapshot, then each agent's routes again
  whenever they change;
* before any RPC that changed what serves answers, the registry bumps a generation in a
  memory-mapped file (common/serving_generation.py). The replica answers only while that
  generation equals its last applied update's, so a client that deployed, rolled back or trained
  and then predicts is answered from the new state, through whichever process made the change;
* everything else goes to the registry's Predict, unchanged: pinned versions and aliases, policy
  episodes, requests it would refuse (its errors are the registry's), callers who do not see the
  agent, a rollout step that fell due (Predict moves the rollout first), a model that fails or
  answers badly (Predict records the failure and judges the canary), an artifact this process
  cannot read, a registry on another host, a broken feed.

Recorded predictions are batched (``LINGER_S``), and sent before any feedback this gateway
forwards, so feedback can name them at once. Like the registry's own write-behind log, a crash
loses at most the last batch's records (never an answer's correctness).
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import time
from typing import Any

import grpc
from anyio import to_thread

from trainhouse.common import identity, tracing
from trainhouse.common.logs import log
from trainhouse.common.predictions import (ARMS, ENVIRONMENT_ENUMS, ENVIRONMENTS, prediction_message, record_message,
                                           route_of)
from trainhouse.common.serving_generation import GenerationReader
from trainhouse.core.errors import FailedPrecondition
from trainhouse.core.onnx_model import OnnxModel
from trainhouse.gateway.metrics import GatewayMetrics
from trainhouse.core.serving import (MAX_INPUT_CHARS, MAX_INPUTS, MAX_KEY_CHARS, MAX_TOP_K, Route, Served,
                                     SessionCache, answers, invalid_output, new_prediction_id)
from trainhouse.v1 import model_registry_pb2

logger = logging.getLogger("trainhouse.gateway.serving")

# Records wait this long for company before a RecordPredictions call, unless a call to the registry
# is waiting for them (flush). Each call costs the registry ~1 ms of CPU, which a two-core box takes
# from the requests being answered: under a one-client REST load (~850 answers/s) the registry spent
# 97 us of CPU per answer while records that came during a call were sent right after it (a call
# every second answer), and 44 us once they waited for the next round (a call per 50 ms).
LINGER_S = 0.05
MAX_BATCH = 5000          # records per call (the registry takes 10,000)
MAX_PENDING = 100_000     # records kept while the registry is unreachable; older ones are dropped
RECONNECT_S = 1.0         # between attempts to follow the feed
UNSERVABLE_S = 30.0       # an artifact this process cannot read or verify is retried after this
INLINE_INPUTS = 16        # larger requests score on a worker thread, not on the event loop


class ServingReplica:
    def __init__(self, registry_stub: Any, timeout_s: float, enabled: bool = True,
                 metrics: GatewayMetrics | None = None):
        self.registry = registry_stub
        self.metrics = metrics
        self.timeout_s = timeout_s
        self.enabled = enabled
        self.sessions = SessionCache()
        self._routes: dict[tuple[str, str], tuple[str, Route]] = {}
        self._applied = -1                  # generation of the last applied update; -1: none
        self._reader: GenerationReader | None = None
        # record_message's arguments per answer: the message is built by the sender, after the answer went out.
        self._records: list[tuple[Any, ...]] = []
        self._queued = 0                    # records ever queued / acknowledged by the registry
        self._sent = 0
        self._wake: asyncio.Event | None = None
        self._urgent: asyncio.Event | None = None  # a flush is waiting: stop lingering
        self._progress: asyncio.Condition | None = None
        self._unservable: dict[str, float] = {}
        self._tasks: list[asyncio.Task] = []

    # --- life -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Start following the feed and sending records; call outside any request (the tasks act
        as the gateway itself, SYSTEM)."""
        if not self.enabled:
            return
        self._wake, self._urgent, self._progress = asyncio.Event(), asyncio.Event(), asyncio.Condition()
        self._tasks = [asyncio.create_task(self._follow(), name="serving-feed"),
                       asyncio.create_task(self._send(), name="serving-records")]

    async def stop(self) -> None:
        self._applied = -1
        if self._tasks:
            follow, sender = self._tasks
            follow.cancel()
            if not await self.flush(min(5.0, self.timeout_s)):
                log(logger, "prediction records lost at shutdown", logging.WARNING, records=len(self._records))
            sender.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def fresh(self) -> bool:
        """Whether the table is the registry's current one (module doc)."""
        return self._reader is not None and self._reader.current() == self._applied

    # --- answering ------------------------------------------------------------------------------
    async def predict(self, request: model_registry_pb2.PredictRequest, final: bool = True
                      ) -> model_registry_pb2.PredictResponse | None:
        """The answer, or None: the request is the registry's (module doc).

        ``final=False``: a declined request will be asked again by the full route
        (predict_fast_path.py), so only an answer is counted here."""
        answer = await self._predict(request) if self.enabled else None
        if self.metrics is not None and (answer is not None or final):
            self.metrics.answered("registry" if answer is None else "gateway")
        return answer

    async def _predict(self, request: model_registry_pb2.PredictRequest) -> model_registry_pb2.PredictResponse | None:
        if not self.fresh() or request.version_id or request.episodes:
            return None
        texts = list(request.inputs)
        if (not request.agent_id or not 0 < len(texts) <= MAX_INPUTS or not 0 <= request.top_k <= MAX_TOP_K
                or len(request.request_key) > MAX_KEY_CHARS or any(len(t) > MAX_INPUT_CHARS for t in texts)):
            return None
        environment = ENVIRONMENTS.get(request.environment)
        entry = self._routes.get((request.agent_id, environment)) if environment else None
        if entry is None:
            return None
        owner, route = entry
        caller = identity.bound()  # (every Predict route binds its caller; unbound: not ours to judge)
        if caller is None or not caller.sees(owner):
            return None
        if route.next_due is not None and dt.datetime.now(dt.timezone.utc) >= route.next_due:
            return None
        served, arm = route.pick(request.agent_id, request.request_key)
        if served is None:
            return None
        model = await self._model(served)
        if model is None:
            return None
        started = time.perf_counter()
        try:
            with tracing.span("onnxruntime.run", **{"trainhouse.agent_id": request.agent_id,
                                                    "trainhouse.version_id": served.version_id,
                                                    "trainhouse.batch_size": len(texts)}):
                if len(texts) <= INLINE_INPUTS:
                    probs = model.predict_proba(texts)
                else:
                    probs = await to_thread.run_sync(model.predict_proba, texts)
        except Exception:  # noqa: BLE001 - the registry's Predict runs it again, records and judges the failure
            return None
        if invalid_output(probs, len(texts), len(model.labels)) is not None:
            return None
        latency_ms = (time.perf_counter() - started) * 1000.0
        created = dt.datetime.now(dt.timezone.utc)
        predictions, records = [], []
        for text, one in zip(texts, answers(model, probs, request.top_k)):
            prediction_id = new_prediction_id()
            predictions.append(prediction_message(one, prediction_id))
            records.append((prediction_id, request.agent_id, served.version_id, route.deployment_id,
                            arm, environment, request.request_key, text, one, latency_ms, created))
        self._queue(records)
        return model_registry_pb2.PredictResponse(
            predictions=predictions, version_id=served.version_id, deployment_id=route.deployment_id,
            arm=ARMS[arm], environment=ENVIRONMENT_ENUMS[environment])

    async def _model(self, served: Served) -> OnnxModel | None:
        """The warm session, loaded (on a worker thread) and verified on first use; None when this
        process cannot read or verify the artifact (the registry serves it then)."""
        warm = self.sessions.warm(served.sha256)
        if warm is not None:
            return warm
        if not os.path.isabs(served.path) or self._unservable.get(served.sha256, 0.0) > time.monotonic():
            return None
        try:
            return await to_thread.run_sync(self.sessions.get, served.path, served.sha256,
                                            f"{served.agent_id}/{served.version_id}")
        except (FailedPrecondition, OSError, ValueError) as exc:
            self._unservable[served.sha256] = time.monotonic() + UNSERVABLE_S
            log(logger, "artifact left to the registry", logging.INFO, version=f"{served.agent_id}/{served.version_id}",
                reason=str(exc)[:200])
            return None

    # --- the feed -------------------------------------------------------------------------------
    async def _follow(self) -> None:
        while True:
            call = self.registry.WatchServing(model_registry_pb2.WatchServingRequest())
            try:
                async for update in call:
                    self._apply(update)
            except grpc.RpcError as err:
                if err.code() != grpc.StatusCode.CANCELLED:
                    log(logger, "serving feed interrupted", logging.INFO, code=err.code().name)
            finally:
                self._applied = -1  # without the feed the table may fall behind: the registry answers
                call.cancel()
            await asyncio.sleep(RECONNECT_S)

    def _apply(self, update: model_registry_pb2.ServingUpdate) -> None:
        """Apply one update, then take its generation (one step of the event loop: no request sees
        half of it)."""
        if update.snapshot:
            self._open_generation(update)
            self._routes.clear()
        else:
            gone = set(update.agent_ids)
            for key in [k for k in self._routes if k[0] in gone]:
                del self._routes[key]
        for r in update.routes:
            self._routes[(r.agent_id, ENVIRONMENTS[r.environment])] = (r.account_id, route_of(r))
        self._applied = update.generation

    def _open_generation(self, update: model_registry_pb2.ServingUpdate) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        try:
            self._reader = GenerationReader(update.generation_file, update.nonce, update.boot_id)
        except OSError as exc:  # another host, or a file this process cannot read: the registry answers
            log(logger, "serving replica off: the registry's generation cannot be read here", logging.WARNING,
                reason=str(exc))

    # --- prediction records ---------------------------------------------------------------------
    def _queue(self, records: list[tuple[Any, ...]]) -> None:
        self._records.extend(records)
        self._queued += len(records)
        overflow = len(self._records) - MAX_PENDING
        if overflow > 0:
            del self._records[:overflow]
            self._sent += overflow
            log(logger, "prediction records dropped: the registry is not taking them", logging.ERROR,
                records=overflow)
        assert self._wake is not None
        self._wake.set()

    async def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until the registry has every record queued so far (feedback may name them next), at
        most ``timeout_s``; whether it has."""
        if self._progress is None or self._sent >= self._queued:
            return True
        target = self._queued
        assert self._wake is not None and self._urgent is not None
        self._wake.set()
        self._urgent.set()

        async def sent() -> None:
            assert self._progress is not None
            async with self._progress:
                await self._progress.wait_for(lambda: self._sent >= target)
        try:
            await asyncio.wait_for(sent(), timeout_s)
        except asyncio.TimeoutError:
            return False
        return True

    async def _send(self) -> None:
        """At most one RecordPredictions call per LINGER_S, unless a full batch is ready or a flush
        waits. Records that arrive while a call is in flight wait for the next round (``_queue``
        woke it): sending them as soon as each call returned made a busy gateway call the registry
        for every second request (one call in flight at a time, ~1 ms each), so nothing was batched
        under load."""
        assert self._wake is not None and self._urgent is not None and self._progress is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            if len(self._records) < MAX_BATCH:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._urgent.wait(), LINGER_S)
            self._urgent.clear()
            sent = False
            while self._records and (not sent or self._urgent.is_set() or len(self._records) >= MAX_BATCH):
                batch, self._records = self._records[:MAX_BATCH], self._records[MAX_BATCH:]
                try:
                    await self.registry.RecordPredictions(model_registry_pb2.RecordPredictionsRequest(
                        predictions=[record_message(*args) for args in batch]), timeout=self.timeout_s)
                except grpc.RpcError as err:
                    if err.code() == grpc.StatusCode.INVALID_ARGUMENT:  # never retried: it would fail again
                        log(logger, "prediction records refused", logging.ERROR, records=len(batch),
                            reason=err.details())
                    else:
                        log(logger, "prediction records not sent yet", logging.WARNING, code=err.code().name)
                        self._records[:0] = batch
                        await asyncio.sleep(RECONNECT_S)
                        continue
                sent = True
                self._sent += len(batch)
                async with self._progress:
                    self._progress.notify_all()
            if self._records:  # the rest waits LINGER_S for company, then goes (even if nothing else comes)
                self._wake.set()
