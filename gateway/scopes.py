"""THE table of which scope each route needs. One place, so a review sees the whole policy.

Keys are (HTTP method, route path template). `None` means public. A route that is not in this
table cannot be registered (GatewayRoute raises at import time), so a forgotten entry fails
closed and loudly instead of serving an unauthenticated route.
"""
from __future__ import annotations

PUBLIC = None

ROUTE_SCOPES: dict[tuple[str, str], str | None] = {
    ("GET", "/healthz"): PUBLIC,
    # Tokens.
    ("POST", "/api/v1/auth/tokens"): "admin",
    ("GET", "/api/v1/auth/tokens"): "admin",
    ("DELETE", "/api/v1/auth/tokens/{tokenId}"): "admin",
    # Training jobs (seed 000).
    ("POST", "/api/v1/training/train-agent"): "training:start",
    ("GET", "/api/v1/training/train-agent/{jobId}"): "training:view",
    ("POST", "/api/v1/training/train-agent/{jobId}/stop"): "training:cancel",
    ("GET", "/api/v1/training/train-agent/{jobId}/events"): "training:view",
    ("GET", "/api/v1/training/train-agent/{jobId}/checkpoints"): "training:view",
    ("GET", "/api/v1/training/train-agent/{jobId}/metrics"): "training:view",
    # Model versions (seed 000).
    ("GET", "/api/v1/training/models/{agentId}/versions"): "training:view",
    ("GET", "/api/v1/training/models/{agentId}/versions/{versionId}"): "training:view",
    # Agents.
    ("POST", "/api/v1/agents"): "training:start",
    ("GET", "/api/v1/agents"): "training:view",
    ("GET", "/api/v1/agents/{agentId}"): "training:view",
    ("POST", "/api/v1/agents/{agentId}/predict"): "training:view",
    # Datasets.
    ("POST", "/api/v1/training/datasets"): "data:generate",
    ("GET", "/api/v1/training/datasets"): "training:view",
    ("GET", "/api/v1/training/datasets/{datasetId}"): "training:view",
    ("GET", "/api/v1/training/datasets/{datasetId}/download"): "data:export",
}

# Served by FastAPI itself (not through GatewayRoute); listed so the policy is complete.
FRAMEWORK_PUBLIC = {("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect")}


def scope_for(method: str, path: str) -> str | None:
    """The scope of a route; KeyError when the route is missing from the table."""
    return ROUTE_SCOPES[(method.upper(), path)]
