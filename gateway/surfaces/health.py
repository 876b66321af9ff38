"""GET /healthz (public): 200 when every backend reports SERVING, else 503 naming the others."""
from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from trainhouse.gateway.deps import Services
from trainhouse.gateway.routing import GatewayRoute

router = APIRouter(tags=["health"], route_class=GatewayRoute)

HEALTH_DEADLINE_S = 2.0


class HealthOut(BaseModel):
    status: str
    services: dict[str, str]
    notServing: list[str] | None = None


@router.get("/healthz", response_model=HealthOut, response_model_exclude_none=True,
            responses={503: {"model": HealthOut, "description": "At least one service is not SERVING"}},
            summary="Health of the four gRPC services")
async def healthz(services: Services) -> JSONResponse | dict:
    statuses = await services.health(HEALTH_DEADLINE_S)
    down = sorted(name for name, status in statuses.items() if status != "SERVING")
    if down:
        return JSONResponse(status_code=503,
                            content={"status": "unavailable", "services": statuses, "notServing": down})
    return {"status": "ok", "services": statuses}
