"""GET /metrics: Prometheus text exposition (what is measured: trainhouse.gateway.metrics).

Needs the `admin` scope unless TRAINHOUSE_METRICS_PUBLIC=1 (trainhouse.gateway.scopes.PUBLIC_WHEN).
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from trainhouse.gateway.deps import Services
from trainhouse.gateway.metrics import CONTENT_TYPE
from trainhouse.gateway.routing import GatewayRoute
from trainhouse.gateway.surfaces.common import ERROR_RESPONSES

router = APIRouter(tags=["observability"], route_class=GatewayRoute)


@router.get("/metrics", response_class=Response, summary="Prometheus metrics of the gateway and job counts",
            responses={200: {"description": "Prometheus text format 0.0.4",
                             "content": {"text/plain": {"schema": {"type": "string"}}}},
                       **{k: v for k, v in ERROR_RESPONSES.items() if k in (401, 403, 429)}})
async def metrics(request: Request, services: Services) -> Response:
    registry = request.app.state.gate.metrics
    await registry.refresh_job_counts(services)
    return Response(registry.exposition(), media_type=CONTENT_TYPE)
