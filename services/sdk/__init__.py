"""The trainhouse Python SDK (``trainhouse.sdk`` once packaged): ``Client`` and ``AsyncClient``
over the canonical REST API (/v1). It depends on httpx and pydantic only, never on the servers'
code, because it ships to clients. docs/sdk.md is the quickstart.
"""
from trainhouse.sdk._client import AsyncClient, Client
from trainhouse.sdk._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    OperationFailedError,
    PermissionDeniedError,
    RateLimitError,
    TrainhouseError,
)
from trainhouse.sdk._models import (
    Agent, Checkpoint, Dataset, Deployment, Evaluation, Event, Job, MetricPoint, Operation, Page, Version,
)

__all__ = ["AsyncClient", "Client", "APIConnectionError", "APIStatusError", "APITimeoutError", "AuthenticationError",
           "BadRequestError", "ConflictError", "InternalServerError", "NotFoundError", "OperationFailedError",
           "PermissionDeniedError", "RateLimitError", "TrainhouseError", "Agent", "Checkpoint", "Dataset",
           "Deployment", "Evaluation", "Event", "Job", "MetricPoint", "Operation", "Page", "Version"]
