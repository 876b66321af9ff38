"""Seeds 001 + 002 (and seed 000's SDK names): ``POST /api/v1/functions/{name}``.

Success: ``{"success": true, "data": {...}, "trace_id": "..."}`` with snake_case fields.
Errors (seed 002's shape, seed 001's codes)::

    {"success": false, "code": "VALIDATION_ERROR", "message": "...", "hint": "...",
     "retryable": false, "trace_id": "...", "field": "config.epochs"}

Modules by meaning: ``surface.py`` (the error shape and envelope), ``jobs.py``, ``data.py``,
``evaluation.py``, ``adaptation.py``. Each function is its own route with its own request model, so /openapi.json documents it; a
name without a route reaches the catch-all, which answers 404 listing the names that exist.
`trainAgent` and `getTrainingStatus` are also what seed 000's SDK invokes with camelCase
arguments (``{agentId, config}``, ``{jobId}``); called that way they answer in seed 000's
camelCase fields, so that SDK works unchanged.
"""
from __future__ import annotations

from trainhouse.gateway import errors as E
from trainhouse.gateway.errors import ApiError
from trainhouse.gateway.surfaces.functions import adaptation, data, evaluation, jobs
from trainhouse.gateway.surfaces.functions.surface import FUNCTIONS_SURFACE, PREFIX, FunctionError, new_router

__all__ = ["FUNCTIONS_SURFACE", "PREFIX", "ROUTERS", "function_names"]

catch_all = new_router()


def function_names() -> list[str]:
    """The functions this server has (every route of both functions routers but the catch-all)."""
    routes = [r for module in (jobs, data, evaluation, adaptation) for r in module.router.routes]
    return sorted(r.path.removeprefix(PREFIX + "/") for r in routes  # type: ignore[attr-defined]
                  if "{" not in r.path)  # type: ignore[attr-defined]


@catch_all.post("/{name}", response_model=FunctionError, status_code=404,
             summary="Unknown function: 404 NOT_FOUND listing the functions that exist")
async def unknown_function(name: str) -> None:
    names = function_names()
    raise ApiError(E.NOT_FOUND, f"function '{name[:100]}' not found; available: {', '.join(names)}",
                   field="name", issue="available functions: " + ", ".join(names))


# The catch-all last: a name without a route of its own answers 404 listing the functions.
ROUTERS = [jobs.router, data.router, evaluation.router, adaptation.router, catch_all]
