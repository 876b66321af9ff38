"""FastAPI dependencies shared by the surfaces: the caller, the backends, the token store.

All `async def`: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per
dependency per request (profiled at a third of the gateway's own time per REST Predict); these
only read request state and never block."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from trainhouse.gateway.auth import Principal, principal_of
from trainhouse.gateway.backends import Backends
from trainhouse.gateway.tokens import TokenStore


async def backends_of(request: Request) -> Backends:
    return request.app.state.gate.backends


async def tokens_of(request: Request) -> TokenStore:
    return request.app.state.gate.store


async def caller_of(request: Request) -> Principal:
    return principal_of(request)


Caller = Annotated[Principal, Depends(caller_of)]
Services = Annotated[Backends, Depends(backends_of)]
Tokens = Annotated[TokenStore, Depends(tokens_of)]
