"""Two background tasks of the running gateway: follow every job's events, deliver webhooks.

The follower reads TrainingService.WatchAllEvents from the stored cursor, turns each event the
subscriptions want into delivery rows and advances the cursor in the same transaction; when the
stream breaks (a restart of either side) it reconnects from the stored cursor. The sender posts
due deliveries, signed, and reschedules failures with exponential backoff and jitter until they
succeed or run out of attempts. A stop loses nothing: undelivered rows stay pending.

Signature: ``X-Trainhouse-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``
(also ``X-Trainhouse-Timestamp``), so a receiver can reject replays of old timestamps; the event
id is in ``X-Trainhouse-Event-Id`` and in the body's ``id``.

Each attempt checks the URL (`urls.check`) and connects to an address that check approved
(`send`): the name is not resolved a second time, the Host header and, for https, the TLS server
name (SNI) and certificate check still use the URL's host name.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
import ssl
from typing import Any

import grpc
import httpx
from anyio import to_thread
from trainhouse.v1 import training_job_pb2, training_service_pb2

from trainhouse.gateway.backends import Backends
from trainhouse.gateway.settings import WebhookSettings
from trainhouse.gateway.webhooks import payloads, urls
from trainhouse.gateway.webhooks.store import (
    DELIVERED,
    FAILED,
    PENDING,
    NewDelivery,
    Webhook,
    WebhookStore,
)
from trainhouse.common.logs import log

logger = logging.getLogger("trainhouse.gateway.webhooks")

SIGNATURE_HEADER = "X-Trainhouse-Signature"
USER_AGENT = "trainhouse-webhooks/1"
BATCH = 20
PARALLEL = 8
# How often the follower checks whether a subscription change needs other event kinds (it then
# restarts its stream from the last event it handled, so a new subscription misses nothing).
KINDS_CHECK_S = 0.2


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def backoff(attempts: int, settings: WebhookSettings, rng: random.Random) -> float:
    """Delay before the next attempt after `attempts` failures: exponential, capped, jittered."""
    delay = min(settings.backoff_max_s, settings.backoff_base_s * (2 ** max(0, attempts - 1)))
    return delay * rng.uniform(0.5, 1.0)


def new_client(timeout_s: float, verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """The delivery client: no redirects, no proxies from the environment, and no kept-alive
    connections, since the pool is keyed by the pinned address and one receiver's verified TLS
    connection must never carry another host name's request."""
    return httpx.AsyncClient(timeout=timeout_s, follow_redirects=False, trust_env=False, verify=verify,
                             limits=httpx.Limits(max_keepalive_connections=0),
                             headers={"User-Agent": USER_AGENT})


async def send(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], allow_private: bool,
               resolve: urls.Resolver = urls.system_resolver) -> httpx.Response:
    """POST `body` to `url` at an address its check approved (UrlRefused when none may be called).

    The addresses are tried in the resolver's order until one connects."""
    target = await urls.check(url, allow_private, resolve=resolve)
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    last: httpx.TransportError | None = None
    for address in target.addresses:
        try:
            return await client.post(target.pinned_url(address), content=body,
                                     headers={**headers, "Host": target.host_header}, extensions=extensions)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            last = exc
    assert last is not None
    raise last


def account_of(ev: training_job_pb2.JobEvent) -> str:
    return ev.account_id or "default"


def source_kinds(hooks: list[Webhook]) -> tuple[str, ...]:
    """The JobEvent kinds to follow for these subscriptions: epoch events (one per epoch of every
    job, the bulk of the feed) only while one wants training.progress. Following them for nobody
    cost the TrainingService a streamed message per epoch and the gateway its handling: ~0.4 s of
    CPU for a 500-epoch job (bench/metrics_ingestion.py, part of what event storage costs a job)."""
    progress = any("*" in hook.events or payloads.PROGRESS in hook.events for hook in hooks)
    return payloads.SOURCE_KINDS if progress else tuple(k for k in payloads.SOURCE_KINDS if k != "epoch")


def _wants(hook: Webhook, event: str, ev: training_job_pb2.JobEvent) -> bool:
    if account_of(ev) != hook.account or ev.time.ToMicroseconds() / 1e6 < hook.created_at:
        return False
    if "*" not in hook.events and event not in hook.events:
        return False
    if event == payloads.PROGRESS:
        epoch = ev.epoch.epoch
        return epoch > 0 and (epoch % hook.progress_every == 0 or epoch == ev.epoch.total_epochs)
    return True


class Dispatcher:
    def __init__(self, store: WebhookStore, backends: Backends, settings: WebhookSettings,
                 resolve: urls.Resolver = urls.system_resolver):
        self.store = store
        self.backends = backends
        self.settings = settings
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._hooks: list[Webhook] = []
        self._hooks_version = -1
        self._rng = random.Random()
        self._seen_cursor: int | None = None  # newest cursor handled, written on stop
        self._unrecorded = 0  # events handled since the cursor was last written
        self._resolve = resolve
        self._client = new_client(settings.timeout_s)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._follow(), name="webhook-follower"),
                       asyncio.create_task(self._send_loop(), name="webhook-sender")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()
        if self._seen_cursor is not None:
            self.store.record(self._seen_cursor, [], time.time())

    def wake(self) -> None:
        self._wake.set()

    # ---- following events -----------------------------------------------------------------

    async def _active_hooks(self) -> list[Webhook]:
        if self._hooks_version != self.store.version:
            version = self.store.version
            self._hooks = await to_thread.run_sync(self.store.active)
            self._hooks_version = version
        return self._hooks

    async def _follow(self) -> None:
        while True:
            kinds = source_kinds(await self._active_hooks())
            cursor = await to_thread.run_sync(self.store.cursor)
            stream = asyncio.create_task(self._stream(cursor, kinds), name="webhook-stream")
            change = asyncio.create_task(self._kinds_change(kinds), name="webhook-kinds")
            try:
                done, _ = await asyncio.wait({stream, change}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (stream, change):
                    task.cancel()
                await asyncio.gather(stream, change, return_exceptions=True)
            if change in done:  # a subscription wants other kinds now: go on from what was handled, at once
                if self._seen_cursor is not None:
                    await to_thread.run_sync(self.store.record, self._seen_cursor, [], time.time())
                    self._unrecorded = 0
                continue
            await asyncio.sleep(self.settings.reconnect_s)

    async def _stream(self, cursor: int, kinds: tuple[str, ...]) -> None:
        call = self.backends.training.WatchAllEvents(
            training_service_pb2.WatchAllEventsRequest(after_cursor=cursor, kinds=kinds))
        try:
            async for ev in call:
                await self._handle(ev)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                log(logger, "event stream interrupted", logging.INFO, code=err.code().name)
        except Exception as err:  # noqa: BLE001 - keep following; the cursor was not advanced
            log(logger, "event handling failed", logging.ERROR, error=type(err).__name__)
            logger.error("webhook event handling failed", exc_info=err)
        finally:
            call.cancel()

    async def _kinds_change(self, kinds: tuple[str, ...]) -> None:
        """Returns once the active subscriptions need other event kinds than `kinds`."""
        while source_kinds(await self._active_hooks()) == kinds:
            await asyncio.sleep(KINDS_CHECK_S)

    async def _handle(self, ev: training_job_pb2.JobEvent) -> None:
        event = payloads.classify(ev)
        wanted = [h for h in await self._active_hooks() if event and _wants(h, event, ev)] if event else []
        deliveries: list[NewDelivery] = []
        if wanted:
            job = None
            if event in (payloads.COMPLETED, payloads.FAILED, payloads.CANCELLED):
                # The final metrics and model version; a failure here (service down) propagates
                # and the event is read again after reconnecting.
                job = (await self.backends.training.GetJob(training_service_pb2.GetJobRequest(job_id=ev.job_id),
                                                           timeout=self.backends.timeout_s)).job
            assert event is not None
            for hook in wanted:
                body = payloads.build(event, hook.format, ev, job)
                deliveries.append(NewDelivery(hook.webhook_id, payloads.event_id(ev), body["event"], ev.job_id,
                                              json.dumps(body, separators=(",", ":"), allow_nan=False)))
        # Without deliveries only every 50th event's cursor is written: re-reading a few events after
        # a crash is harmless (they make no deliveries, or the unique key drops the duplicates).
        self._unrecorded += 1
        if deliveries or self._unrecorded >= 50:
            await to_thread.run_sync(self.store.record, ev.cursor, deliveries, time.time())
            self._unrecorded = 0
        self._seen_cursor = ev.cursor
        if deliveries:
            self._wake.set()

    # ---- delivering -----------------------------------------------------------------------

    async def _send_loop(self) -> None:
        gate = asyncio.Semaphore(PARALLEL)
        while True:
            try:
                due = await to_thread.run_sync(self.store.due, time.time(), BATCH)
                if due:
                    async def one(row: dict[str, Any]) -> None:
                        async with gate:
                            await self._deliver(row)
                    await asyncio.gather(*(one(r) for r in due))
                    continue
                next_at = await to_thread.run_sync(self.store.next_due)
                wait = 1.0 if next_at is None else min(1.0, max(0.0, next_at - time.time()))
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                except asyncio.TimeoutError:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - a store hiccup must not end deliveries for good
                log(logger, "delivery loop error", logging.ERROR, error=type(err).__name__)
                logger.error("webhook delivery loop error", exc_info=err)
                await asyncio.sleep(1.0)

    async def _deliver(self, row: dict[str, Any]) -> None:
        attempts = int(row["attempts"]) + 1
        code: int | None = None
        error: str | None = None
        try:
            body = row["payload"].encode()
            ts = int(time.time())
            headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(row["secret"], ts, body),
                       "X-Trainhouse-Timestamp": str(ts), "X-Trainhouse-Event": row["event"],
                       "X-Trainhouse-Event-Id": row["event_id"], "X-Trainhouse-Delivery": row["delivery_id"],
                       "X-Trainhouse-Attempt": str(attempts)}
            response = await send(self._client, row["url"], body, headers, self.settings.allow_private,
                                  self._resolve)
            code = response.status_code
            if 200 <= code < 300:
                await to_thread.run_sync(self.store.attempted, row["delivery_id"], DELIVERED, attempts,
                                         time.time(), code, None, time.time())
                return
            error = f"HTTP {code}"
        except urls.UrlRefused as exc:
            error = f"refused: {exc}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        status = FAILED if attempts >= self.settings.max_attempts else PENDING
        next_at = time.time() + backoff(attempts, self.settings, self._rng)
        await to_thread.run_sync(self.store.attempted, row["delivery_id"], status, attempts, next_at, code,
                                 error, None)
        log(logger, "delivery failed", logging.INFO, delivery=row["delivery_id"], attempts=attempts,
            status=status, error=error)
