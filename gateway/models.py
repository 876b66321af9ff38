"""Shared pydantic bases: camelCase on the wire, strict numbers, and the seed-000 envelope.

Strictness is deliberate: a body with ``"epochs": 1.5`` or ``"batchSize": true`` is a client
bug that must come back as 400 naming the field, not be silently coerced.
"""
from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from gateway.convert import finite

# JSON numbers: ints are fine where a float is expected, bools and strings are not; NaN/inf (which
# Python's json accepts) are refused. The config models' rule, re-exported to every surface.
from services.core.configs.base import Number  # noqa: F401

T = TypeVar("T")

# Integers are range-checked to their protobuf width here, because an out-of-range value would
# make the protobuf setter raise (a 500) instead of reaching the service's own range check.
Int = Annotated[int, Field(strict=True, ge=-(2 ** 31), le=2 ** 31 - 1)]
Int64 = Annotated[int, Field(strict=True, ge=-(2 ** 63), le=2 ** 63 - 1)]


class CamelModel(BaseModel):
    """Fields are snake_case in Python, camelCase on the wire; snake_case input is accepted too."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Envelope(BaseModel, Generic[T]):
    """Seed 000 success envelope: ``{"success": true, "message"?, "data": {...}}``."""

    success: bool = True
    message: str | None = None
    data: T


def envelope(data: Any, message: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"success": True, "data": finite(data)}
    if message is not None:
        out["message"] = message
    return out


class ErrorDetails(CamelModel):
    field: str | None = None
    issue: str | None = None


class ErrorInfo(CamelModel):
    code: str
    message: str
    details: ErrorDetails | None = None
    timestamp: str
    request_id: str
    retry_after: int | None = None


class ErrorEnvelope(CamelModel):
    """Seed 000 error envelope, documented in /openapi.json for every error status."""

    success: bool = False
    error: ErrorInfo


class Pagination(CamelModel):
    total: int
    page: int
    limit: int
    pages: int
    next_page_token: str | None = None
