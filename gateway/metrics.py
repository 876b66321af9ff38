"""Prometheus metrics of the gateway, served at ``GET /metrics`` (text exposition format).

What is measured, and where:
- ``trainhouse_gateway_http_request_duration_seconds{method, route, status}``: every HTTP
  request, labelled by its route *template* (``/api/v1/training/train-agent/{jobId}``, so ids do
  not explode the label set; ``unmatched`` for paths without a route). Its ``_count`` is the
  request count. Recorded by the request-context middleware. SSE streams count their whole life.
- ``trainhouse_gateway_grpc_client_duration_seconds{method, code}``: every unary (and
  client-streaming) call the gateway makes to a service, from the grpc.aio client interceptor
  in trainhouse.gateway.rpc_interceptors; ``..._grpc_client_stream_duration_seconds`` for server streams
  (WatchJob, exports), whose duration is a stream's life rather than a latency.
- ``trainhouse_gateway_rate_limit_rejections_total{group}``: requests refused by a rate limit
  (``requests``, ``generation``, ``evaluations``, ``rpc:<method>``).
- ``trainhouse_jobs{state}`` and ``trainhouse_job_queue_depth``: TrainingService's job counts
  (``ListJobs`` ``total_size`` per state), read when /metrics is scraped and cached for
  ``TRAINHOUSE_METRICS_CACHE_S`` seconds (default 5) so frequent scrapes cost one round of
  calls; ``trainhouse_job_counts_up`` is 0 (and the job gauges are absent) when TrainingService
  could not be read.

Scope: /metrics needs the ``admin`` scope (it shows traffic of every account), unless
``TRAINHOUSE_METRICS_PUBLIC=1`` makes it public for a scraper inside a trusted network.

Each app owns its registry (not prometheus_client's global one), so several apps in one process
(tests) never collide.
"""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import grpc
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from trainhouse.v1 import job_state_pb2, training_service_pb2

if TYPE_CHECKING:
    from trainhouse.gateway.backends import Backends

CONTENT_TYPE = CONTENT_TYPE_LATEST
UNMATCHED = "unmatched"

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STREAM_BUCKETS = (0.1, 1.0, 10.0, 60.0, 300.0, 1800.0, 7200.0)

# Every job state but UNSPECIFIED, by its lower-case word.
JOB_STATES = {name.removeprefix("JOB_STATE_").lower(): value for name, value in job_state_pb2.JobState.items()
              if value != job_state_pb2.JOB_STATE_UNSPECIFIED}


class GatewayMetrics:
    def __init__(self, job_counts_ttl_s: float = 5.0):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http = Histogram("trainhouse_gateway_http_request_duration_seconds",
                              "HTTP requests by route template and status (the _count is the request count)",
                              ["method", "route", "status"], buckets=HTTP_BUCKETS, registry=r)
        self.rpc = Histogram("trainhouse_gateway_grpc_client_duration_seconds",
                             "Unary and client-streaming gRPC calls from the gateway to the services",
                             ["method", "code"], buckets=RPC_BUCKETS, registry=r)
        self.rpc_stream = Histogram("trainhouse_gateway_grpc_client_stream_duration_seconds",
                                    "Server-streaming gRPC calls (WatchJob, exports): life of the stream",
                                    ["method", "code"], buckets=STREAM_BUCKETS, registry=r)
        self.predictions = Counter("trainhouse_gateway_predict_requests",
                                   "Predict requests by the process that answered them: the gateway's serving "
                                   "replica, or the registry (docs/serving.md)", ["answered_by"], registry=r)
        self.fast_path = Counter("trainhouse_gateway_predict_fast_path",
                                 "REST Predict requests by how the HTTP layer took them: answered or refused (429) by "
                                 "the fast path (gateway/predict_fast_path.py), or passed to the full route",
                                 ["outcome"], registry=r)
        # Label children bound once: these two count on the path a served prediction waits on.
        self._answered = {by: self.predictions.labels(by) for by in ("gateway", "registry")}
        self._fast_path = {o: self.fast_path.labels(o) for o in ("answered", "refused", "route")}
        self.rate_limited = Counter("trainhouse_gateway_rate_limit_rejections",
                                    "Requests refused by a rate limit, per limit group", ["group"], registry=r)
        self.jobs = Gauge("trainhouse_jobs", "Training jobs per state (TrainingService ListJobs total_size)",
                          ["state"], registry=r)
        self.queue_depth = Gauge("trainhouse_job_queue_depth",
                                 "Jobs waiting for a free slot of their account (state queued)", registry=r)
        self.job_counts_up = Gauge("trainhouse_job_counts_up",
                                   "1 when the last refresh of the job counts reached TrainingService", registry=r)
        self.job_counts_ttl_s = job_counts_ttl_s
        self._job_counts_at = float("-inf")
        self._lock: asyncio.Lock | None = None

    # --- recording ----------------------------------------------------------------------------
    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http.labels(method, route, str(status)).observe(seconds)

    def observe_rpc(self, method: str, code: str, seconds: float, streaming: bool = False) -> None:
        (self.rpc_stream if streaming else self.rpc).labels(method, code).observe(seconds)

    def answered(self, by: str) -> None:
        self._answered[by].inc()

    def took_fast_path(self, outcome: str) -> None:
        """``answered`` (a 200), ``refused`` (its 429: the request budget was spent) or ``route``."""
        self._fast_path[outcome].inc()

    def rejected(self, group: str) -> None:
        self.rate_limited.labels(group).inc()

    # --- job counts ---------------------------------------------------------------------------
    async def refresh_job_counts(self, backends: "Backends") -> None:
        """Read the per-state totals from TrainingService unless the cached ones are fresh."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if time.monotonic() - self._job_counts_at < self.job_counts_ttl_s:
                return
            stub = backends.training
            timeout = min(backends.timeout_s, 5.0)

            async def total(state: int) -> int:
                req = training_service_pb2.ListJobsRequest(page_size=1, state=state, include_total_size=True)
                return (await stub.ListJobs(req, timeout=timeout)).total_size

            totals = await asyncio.gather(*(total(v) for v in JOB_STATES.values()), return_exceptions=True)
            failed = [t for t in totals if isinstance(t, BaseException)]
            if any(not isinstance(t, grpc.RpcError) for t in failed):
                raise failed[0]
            if failed:
                # Stale numbers would look like a healthy, idle system: show none instead.
                self.jobs.clear()
                self.queue_depth.set(0)
                self.job_counts_up.set(0)
            else:
                counts = dict(zip(JOB_STATES, totals))
                for name, value in counts.items():
                    self.jobs.labels(name).set(value)
                self.queue_depth.set(counts["queued"])
                self.job_counts_up.set(1)
            self._job_counts_at = time.monotonic()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
