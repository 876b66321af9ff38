"""THE table of which scope each route (and each JSON-RPC method) needs. One place, so a review
sees the whole policy.

Keys are (HTTP method, route path template) for HTTP routes and ("JSONRPC", method name) for the
methods dispatched behind ``POST /api/v1/jsonrpc``. Values:
- ``None`` (PUBLIC): no token needed;
- ``AUTHENTICATED``: any valid token (the handler then checks a finer scope from this table, as
  the JSON-RPC endpoint does per method, or there is nothing to protect, as for the 404 listing
  of function names);
- ``INTERNAL``: the platform's own processes only;
- a scope name.

A route that is not in this table cannot be registered (GatewayRoute raises at import time), and
a JSON-RPC method without an entry cannot be dispatched, so a forgotten entry fails closed and
loudly instead of serving an unauthenticated route.
"""
from __future__ import annotations

PUBLIC = None
AUTHENTICATED = "authenticated"
# Only the stack's own processes (an internal assertion, services.common.internal_tokens): no API
# token or JWT has it, admin included.
INTERNAL = "internal"
JSONRPC = "JSONRPC"

ROUTE_SCOPES: dict[tuple[str, str], str | None] = {
    ("GET", "/healthz"): PUBLIC,
    # Prometheus metrics: traffic of every account, so admin; public when
    # TRAINHOUSE_METRICS_PUBLIC=1 (PUBLIC_WHEN below).
    ("GET", "/metrics"): "admin",
    # The dashboard's static files carry no data (the page asks for a token and calls the API
    # with it), and a browser cannot send a bearer header when it navigates.
    ("GET", "/ui"): PUBLIC,
    ("GET", "/ui/{asset}"): PUBLIC,
    # Tokens.
    ("POST", "/api/v1/auth/tokens"): "admin",
    ("GET", "/api/v1/auth/tokens"): "admin",
    ("DELETE", "/api/v1/auth/tokens/{tokenId}"): "admin",
    # Token introspection (RFC 7662) for the services.
    ("POST", "/internal/v1/introspect"): INTERNAL,
    # Training jobs (seed 000).
    ("POST", "/api/v1/training/train-agent"): "training:start",
    ("GET", "/api/v1/training/train-agent/{jobId}"): "training:view",
    ("POST", "/api/v1/training/train-agent/{jobId}/stop"): "training:cancel",
    ("POST", "/api/v1/training/adapt-agent"): "training:start",
    ("GET", "/api/v1/training/train-agent/{jobId}/events"): "training:view",
    ("GET", "/api/v1/training/train-agent/{jobId}/checkpoints"): "training:view",
    # Registering makes a version, as a finished job does (training:start); serving it is a deploy.
    ("POST", "/api/v1/training/train-agent/{jobId}/checkpoints/{checkpointId}/register"): "training:start",
    ("GET", "/api/v1/training/train-agent/{jobId}/metrics"): "training:view",
    # Model versions (seed 000).
    ("GET", "/api/v1/training/models/{agentId}/versions"): "training:view",
    ("GET", "/api/v1/training/models/{agentId}/versions/{versionId}"): "training:view",
    ("POST", "/api/v1/training/models/{agentId}/versions/{versionId}/deploy"): "models:deploy",
    ("POST", "/api/v1/training/models/{agentId}/versions/{versionId}/rollback"): "models:deploy",
    ("GET", "/api/v1/training/models/{agentId}/deployments"): "training:view",
    # Aliases and tags move what '@alias' serves: the deploy scope.
    ("GET", "/api/v1/training/models/{agentId}/aliases"): "training:view",
    ("PUT", "/api/v1/training/models/{agentId}/aliases/{alias}"): "models:deploy",
    ("DELETE", "/api/v1/training/models/{agentId}/aliases/{alias}"): "models:deploy",
    ("PATCH", "/api/v1/training/models/{agentId}/versions/{versionId}/tags"): "models:deploy",
    # Evaluation (seed 000); each call also spends the evaluations/day budget.
    ("POST", "/api/v1/training/evaluate-agent"): "training:evaluate",
    ("POST", "/api/v1/training/benchmark-agent"): "training:evaluate",
    # Agents.
    ("POST", "/api/v1/agents"): "training:start",
    ("GET", "/api/v1/agents"): "training:view",
    ("GET", "/api/v1/agents/{agentId}"): "training:view",
    # serve_first_version decides what serves: the deploy scope.
    ("PATCH", "/api/v1/agents/{agentId}"): "models:deploy",
    ("POST", "/api/v1/agents/{agentId}/predict"): "training:view",
    ("POST", "/api/v1/agents/{agentId}/feedback"): "training:view",
    # Datasets. The download also accepts a signed, expiring URL instead of a token
    # (SIGNED_URL_ROUTES below).
    ("POST", "/api/v1/training/datasets"): "data:generate",
    ("GET", "/api/v1/training/datasets"): "training:view",
    ("GET", "/api/v1/training/datasets/{datasetId}"): "training:view",
    ("GET", "/api/v1/training/datasets/{datasetId}/download"): "data:export",
    # Hyperparameter sweeps (contract extension): creating one starts training jobs.
    ("POST", "/api/v1/sweeps"): "training:start",
    ("GET", "/api/v1/sweeps"): "training:view",
    ("GET", "/api/v1/sweeps/{sweepId}"): "training:view",
    ("POST", "/api/v1/sweeps/{sweepId}/cancel"): "training:cancel",
    # Data generation and validation (seed 000).
    ("POST", "/api/v1/training/generate-synthetic-data"): "data:generate",
    ("POST", "/api/v1/training/validate-data"): "training:view",
    # Webhooks (events of the caller's account).
    ("POST", "/api/v1/webhooks"): "training:view",
    ("GET", "/api/v1/webhooks"): "training:view",
    ("GET", "/api/v1/webhooks/{webhookId}"): "training:view",
    ("DELETE", "/api/v1/webhooks/{webhookId}"): "training:view",
    ("GET", "/api/v1/webhooks/{webhookId}/deliveries"): "training:view",
    # Functions (seeds 001, 002 and seed 000's SDK names).
    ("POST", "/api/v1/functions/startTrainingJob"): "training:start",
    ("POST", "/api/v1/functions/trainAgent"): "training:start",
    ("POST", "/api/v1/functions/monitorTrainingProgress"): "training:view",
    ("POST", "/api/v1/functions/getTrainingStatus"): "training:view",
    ("POST", "/api/v1/functions/generateSyntheticTrainingData"): "data:generate",
    ("POST", "/api/v1/functions/evaluateTrainingResults"): "training:evaluate",
    ("POST", "/api/v1/functions/compareTrainingRuns"): "training:evaluate",
    ("POST", "/api/v1/functions/analyzeAndOptimize"): "training:evaluate",
    # Reports read stored jobs and evaluations, and may evaluate a job that has none yet.
    ("POST", "/api/v1/functions/generateTrainingReport"): "training:evaluate",
    ("POST", "/api/v1/functions/adaptAgentBehavior"): "training:start",
    ("POST", "/api/v1/functions/{name}"): AUTHENTICATED,  # unknown names: 404 listing the valid ones
    # JSON-RPC 2.0 (seed 003): the endpoint needs a token; each method its scope.
    ("POST", "/api/v1/jsonrpc"): AUTHENTICATED,
    (JSONRPC, "training.start_grpo"): "training:start",
    (JSONRPC, "training.get_status"): "training:view",
    (JSONRPC, "training.cancel"): "training:cancel",
    (JSONRPC, "training.evaluate"): "training:evaluate",
    (JSONRPC, "training.export_trajectories"): "data:export",
    # Runtime REST (seed 004).
    ("GET", "/api/training/status"): "training:view",
    ("GET", "/api/training/datasets"): "training:view",
    ("POST", "/api/training/datasets/build"): "data:generate",
    ("GET", "/api/training/trajectories"): "training:view",
    ("GET", "/api/training/trajectories/{id}"): "training:view",
    ("POST", "/api/training/trajectories"): "data:generate",
    ("GET", "/api/training/jobs"): "training:view",
    ("POST", "/api/training/jobs"): "training:start",
    ("GET", "/api/training/jobs/{id}"): "training:view",
    ("POST", "/api/training/jobs/{id}/cancel"): "training:cancel",
    ("GET", "/api/training/models"): "training:view",
    ("POST", "/api/training/models/{id}/activate"): "models:deploy",
    ("POST", "/api/training/models/{id}/import-ollama"): "models:deploy",
    ("POST", "/api/training/models/{id}/benchmark"): "training:evaluate",
    ("GET", "/api/training/auto/config"): "training:view",
    ("PUT", "/api/training/auto/config"): "admin",
    # ---- the canonical API (/v1, gateway/canonical): each route has its RPC's scope
    # (services/common/rpc_scopes.py); tests/gateway/canonical/test_coverage.py checks they agree.
    ("POST", "/v1/jobs"): "training:start",
    ("GET", "/v1/jobs"): "training:view",
    ("GET", "/v1/jobs/{job_id}"): "training:view",
    ("POST", "/v1/jobs/{job_id}/cancel"): "training:cancel",
    ("POST", "/v1/jobs/{job_id}/pause"): "training:cancel",
    ("POST", "/v1/jobs/{job_id}/resume"): "training:start",
    ("GET", "/v1/jobs/{job_id}/checkpoints"): "training:view",
    ("POST", "/v1/jobs/{job_id}/checkpoints/{checkpoint_id}/register"): "training:start",
    ("GET", "/v1/jobs/{job_id}/metrics"): "training:view",
    ("GET", "/v1/jobs/{job_id}/examples"): "data:export",
    ("GET", "/v1/jobs/{job_id}/events"): "training:view",
    ("GET", "/v1/jobs/{job_id}/events/stream"): "training:view",
    ("POST", "/v1/jobs/{job_id}/evaluate"): "training:evaluate",
    ("POST", "/v1/agents"): "training:start",
    ("GET", "/v1/agents"): "training:view",
    ("GET", "/v1/agents/stats"): "training:view",
    ("GET", "/v1/agents/{agent_id}"): "training:view",
    ("PATCH", "/v1/agents/{agent_id}"): "models:deploy",
    ("POST", "/v1/agents/{agent_id}/predict"): "training:view",
    ("POST", "/v1/agents/{agent_id}/feedback"): "training:view",
    ("GET", "/v1/agents/{agent_id}/feedback"): "training:view",
    ("GET", "/v1/agents/{agent_id}/feedback/count"): "training:view",
    ("GET", "/v1/agents/{agent_id}/audit"): "training:view",
    ("POST", "/v1/agents/{agent_id}/adapt"): "training:start",
    ("GET", "/v1/agents/{agent_id}/auto_training"): "training:view",
    ("PATCH", "/v1/agents/{agent_id}/auto_training"): "admin",
    ("GET", "/v1/agents/{agent_id}/auto_training/runs"): "training:view",
    ("POST", "/v1/agents/{agent_id}/auto_training/check"): "admin",
    ("POST", "/v1/agents/{agent_id}/analyze"): "training:evaluate",
    ("POST", "/v1/agents/{agent_id}/rollback"): "models:deploy",
    ("GET", "/v1/agents/{agent_id}/versions"): "training:view",
    ("GET", "/v1/agents/{agent_id}/versions/{version_id}"): "training:view",
    ("GET", "/v1/agents/{agent_id}/versions/{version_id}/artifact"): "data:export",
    ("PATCH", "/v1/agents/{agent_id}/versions/{version_id}/tags"): "models:deploy",
    ("POST", "/v1/agents/{agent_id}/versions/{version_id}/activate"): "models:deploy",
    ("POST", "/v1/agents/{agent_id}/versions/{version_id}/ollama"): "models:deploy",
    ("POST", "/v1/agents/{agent_id}/versions/{version_id}/evaluate"): "training:evaluate",
    ("GET", "/v1/agents/{agent_id}/aliases"): "training:view",
    ("PUT", "/v1/agents/{agent_id}/aliases/{alias}"): "models:deploy",
    ("DELETE", "/v1/agents/{agent_id}/aliases/{alias}"): "models:deploy",
    ("POST", "/v1/deployments"): "models:deploy",
    ("GET", "/v1/deployments"): "training:view",
    ("GET", "/v1/deployments/{deployment_id}"): "training:view",
    ("POST", "/v1/deployments/{deployment_id}/advance"): "models:deploy",
    ("POST", "/v1/evaluations"): "training:evaluate",
    ("GET", "/v1/evaluations"): "training:view",
    ("GET", "/v1/evaluations/{evaluation_id}"): "training:view",
    ("GET", "/v1/benchmarks/suites"): "training:view",
    ("POST", "/v1/benchmarks"): "training:evaluate",
    ("GET", "/v1/benchmarks/{benchmark_id}"): "training:view",
    ("POST", "/v1/comparisons"): "training:evaluate",
    ("GET", "/v1/comparisons/{comparison_id}"): "training:view",
    ("POST", "/v1/reports"): "training:evaluate",
    # An operation belongs to the account that started it (any scope may poll its own).
    ("GET", "/v1/operations"): AUTHENTICATED,
    ("GET", "/v1/operations/{operation_id}"): AUTHENTICATED,
    ("POST", "/v1/datasets"): "data:generate",
    ("POST", "/v1/datasets/upload"): "data:generate",
    ("GET", "/v1/datasets"): "training:view",
    ("POST", "/v1/datasets/validate"): "training:view",
    ("POST", "/v1/datasets/generate"): "data:generate",
    ("POST", "/v1/datasets/from_trajectories"): "data:generate",
    ("GET", "/v1/datasets/{dataset_id}"): "training:view",
    ("DELETE", "/v1/datasets/{dataset_id}"): "data:generate",
    ("GET", "/v1/datasets/{dataset_id}/content"): "data:export",
    ("POST", "/v1/modules"): "data:generate",
    ("GET", "/v1/modules"): "training:view",
    ("GET", "/v1/modules/{module_id}"): "training:view",
    ("DELETE", "/v1/modules/{module_id}"): "data:generate",
    ("GET", "/v1/scenarios"): "training:view",
    ("POST", "/v1/trajectories"): "data:generate",
    ("GET", "/v1/trajectories"): "training:view",
    ("GET", "/v1/trajectories/count"): "training:view",
    ("GET", "/v1/trajectories/export"): "data:export",
    ("GET", "/v1/trajectories/{trajectory_id}"): "training:view",
    ("POST", "/v1/sweeps"): "training:start",
    ("GET", "/v1/sweeps"): "training:view",
    ("GET", "/v1/sweeps/{sweep_id}"): "training:view",
    ("POST", "/v1/sweeps/{sweep_id}/cancel"): "training:cancel",
    ("POST", "/v1/tokens"): "admin",
    ("GET", "/v1/tokens"): "admin",
    ("DELETE", "/v1/tokens/{token_id}"): "admin",
    ("POST", "/v1/webhooks"): "training:view",
    ("GET", "/v1/webhooks"): "training:view",
    ("GET", "/v1/webhooks/{webhook_id}"): "training:view",
    ("DELETE", "/v1/webhooks/{webhook_id}"): "training:view",
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): "training:view",
}

# Routes that are public when the named GatewaySettings flag is on (checked per request).
PUBLIC_WHEN: dict[tuple[str, str], str] = {("GET", "/metrics"): "metrics_public"}

# Routes where a valid signature (gateway.signing) replaces the bearer token.
SIGNED_URL_ROUTES = {("GET", "/api/v1/training/datasets/{datasetId}/download")}

# Served by FastAPI itself (not through GatewayRoute); listed so the policy is complete.
FRAMEWORK_PUBLIC = {("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect")}

# Served (and in this table) but not in /openapi.json: the dashboard's HTML/JS/CSS files, and the
# services' token introspection.
UNDOCUMENTED = {("GET", "/ui"), ("GET", "/ui/{asset}"), ("POST", "/internal/v1/introspect")}


def scope_for(method: str, path: str) -> str | None:
    """The scope of a route; KeyError when the route is missing from the table."""
    return ROUTE_SCOPES[(method.upper(), path)]


def method_scope(method: str) -> str | None:
    """The scope of a JSON-RPC method; KeyError when the method has no entry."""
    return ROUTE_SCOPES[(JSONRPC, method)]


def http_routes() -> dict[tuple[str, str], str | None]:
    return {k: v for k, v in ROUTE_SCOPES.items() if k[0] != JSONRPC}


def jsonrpc_methods() -> dict[str, str | None]:
    return {k[1]: v for k, v in ROUTE_SCOPES.items() if k[0] == JSONRPC}
