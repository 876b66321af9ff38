"""Shared pydantic bases: camelCase on the wire, strict numbers, and the seed-000 envelope.

Strictness is deliberate: a body with ``"epochs": 1.5`` or ``"batchSize": true`` is a client
bug that must come back as 400 naming the field, not be silently coerced.
"""
from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Path
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from pydantic.alias_generators import to_camel

from trainhouse.gateway.convert import finite
from trainhouse.common.validation import RESOURCE_ID, RESOURCE_ID_MAX

# JSON numbers: ints are fine where a float is expected, bools and strings are not; NaN/inf (which
# Python's json accepts) are refused. The config models' rule, re-exported to every surface.
from trainhouse.core.configs.base import Number  # noqa: F401

T = TypeVar("T")

# Integers are range-checked to their protobuf width here, because an out-of-range value would
# make the protobuf setter raise (a 500) instead of reaching the service's own range check.
Int = Annotated[int, Field(strict=True, ge=-(2 ** 31), le=2 ** 31 - 1)]
Int64 = Annotated[int, Field(strict=True, ge=-(2 ** 63), le=2 ** 63 - 1)]


# ---- identifiers ------------------------------------------------------------------------------
# One rule for every id the gateway forwards (agent, job, dataset, version, webhook, token,
# trajectory, checkpoint...), the services' own (services.common.validation.resource_id): checked
# here so a bad or overlong id is a 400 naming its field, never a service error about it (an id of
# 3,000 characters echoed in a gRPC error overflowed the metadata limit: a 429).
_ID = RESOURCE_ID.pattern.removeprefix("^").removesuffix("$")
ID_PATTERN = f"^{_ID}$"
# A version by id, or by alias with a leading "@" ("@champion").
VERSION_REF_PATTERN = f"^@?{_ID}$"
# A model id "<agentId>@<versionId>" (the version may be an alias: "support@@champion").
MODEL_ID_PATTERN = f"^{_ID}@@?{_ID}$"
# Seed 004's `model`: one of our model ids, or a base model's name kept as a label ("eliza-1-2b",
# "llama3.2:1b", "org/model"): one "@" at most, and no path traversal.
MODEL_REF_PATTERN = f"^(?:{_ID}@@?{_ID}|[A-Za-z0-9][A-Za-z0-9._:/-]{{0,127}})$"
ID_HELP = "[A-Za-z0-9][A-Za-z0-9._-]{0,127}"

Id = Annotated[StrictStr, Field(min_length=1, max_length=RESOURCE_ID_MAX, pattern=ID_PATTERN, description=ID_HELP)]
VersionRef = Annotated[StrictStr, Field(min_length=1, max_length=RESOURCE_ID_MAX + 1, pattern=VERSION_REF_PATTERN,
                                        description="A version id, or an alias after '@' ('@champion')")]
ModelId = Annotated[StrictStr, Field(min_length=3, max_length=2 * RESOURCE_ID_MAX + 2, pattern=MODEL_ID_PATTERN,
                                     description="'<agentId>@<versionId>'")]
ModelRef = Annotated[StrictStr, Field(min_length=1, max_length=2 * RESOURCE_ID_MAX + 2, pattern=MODEL_REF_PATTERN)]


def id_path(alias: str, description: str = ID_HELP, pattern: str = ID_PATTERN,
            max_length: int = RESOURCE_ID_MAX) -> Any:
    """A path parameter holding an id: ``Annotated[str, id_path("agentId")]``."""
    return Path(alias=alias, description=description, min_length=1, max_length=max_length, pattern=pattern)


class CamelModel(BaseModel):
    """Fields are snake_case in Python, camelCase on the wire; snake_case input is accepted too."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Envelope(BaseModel, Generic[T]):
    """Seed 000 success envelope: ``{"success": true, "message"?, "data": {...}}``."""

    success: bool = True
    message: str | None = None
    data: T


def json_answer(content: Any) -> Response:
    """A body already in its response model's exact shape (camelCase, None fields left out), sent
    with orjson and without FastAPI's validate-then-encode pass through the response model.

    For the serving hot path only (REST Predict, profiled: the response model's validation and
    jsonable_encoder were a fifth of the gateway's own time per call); the route keeps its
    response_model for the OpenAPI document, and a test compares the two encodings."""
    return Response(orjson.dumps(content), media_type="application/json")


def envelope(data: Any, message: str | None = None, *, checked: bool = True) -> dict[str, Any]:
    """The seed 000 success envelope around ``data``. ``checked=False`` skips the walk that turns
    NaN/inf into null, for a body json_answer sends: orjson writes them as null itself."""
    out: dict[str, Any] = {"success": True, "data": finite(data) if checked else data}
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
