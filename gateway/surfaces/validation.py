"""Request-validation errors -> ApiError, with the field spelled the way each surface spells it."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from trainhouse.gateway import errors as E
from trainhouse.gateway.fields import LOCATIONS, join_path

def _is_tag(part: Any) -> bool:
    """pydantic puts union members ("list[ExampleIn]", "TrainingDataIn") and validator names
    ("function-after[...]") in error locations; a caller never wrote those."""
    return isinstance(part, str) and (part.startswith("function-") or any(c in part for c in "[({"))


def strip_tags(parts: Sequence[Any]) -> list[Any]:
    parts = list(parts)
    head = parts[:1] if parts and parts[0] in LOCATIONS else []
    return head + [p for p in parts[len(head):] if not _is_tag(p)]


def raw_path(parts: Sequence[Any]) -> str:
    """("body", "training_data", "examples", 2, "input") -> "training_data.examples[2].input"."""
    parts = strip_tags(parts)
    if parts and parts[0] in LOCATIONS:
        parts = parts[1:]
    return join_path(parts)


def from_errors(errs: Sequence[dict[str, Any]], spell: Callable[[Sequence[Any]], str] = raw_path,
                prefix: Sequence[Any] = ()) -> E.ApiError:
    """The first error -> INVALID naming its field (or MALFORMED when the body is not JSON)."""
    if not errs:
        return E.ApiError(E.INVALID, "invalid request", field="body", issue="invalid request")
    first = errs[0]
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "JSON decode error")
        pos = first.get("loc", ("body", 0))[-1]
        return E.ApiError(E.MALFORMED, "Request body is not valid JSON", field="body",
                          issue=f"{reason} at position {pos}")
    field = spell(strip_tags(list(prefix) + list(first.get("loc", ())))) or "body"
    issue = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if first.get("type") == "missing":
        issue = "is required"
    return E.ApiError(E.INVALID, f"Invalid request: {field}: {issue}", field=field, issue=issue)


def from_request_validation(exc: RequestValidationError, spell: Callable[[Sequence[Any]], str] = raw_path) -> E.ApiError:
    return from_errors(exc.errors(), spell)


def from_pydantic(exc: ValidationError, spell: Callable[[Sequence[Any]], str] = raw_path,
                  prefix: Sequence[Any] = ()) -> E.ApiError:
    return from_errors(exc.errors(), spell, prefix)
