"""FastAPI dependencies shared by the surfaces: the caller, the backends, the token store."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from trainhouse.gateway.auth import Principal, principal_of
from trainhouse.gateway.backends import Backends
from trainhouse.gateway.tokens import TokenStore


def backends_of(request: Request) -> Backends:
    return request.app.state.gate.backends


def tokens_of(request: Request) -> TokenStore:
    return request.app.state.gate.store


Caller = Annotated[Principal, Depends(principal_of)]
Services = Annotated[Backends, Depends(backends_of)]
Tokens = Annotated[TokenStore, Depends(tokens_of)]
