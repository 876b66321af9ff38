"""Who is calling: bearer API tokens (and JWTs: HS256 with a shared secret, RS256 from a JWKS,
see `services/common/jwt_keys.py`; and the stack's internal assertions, which the services present
when they introspect a token) -> Principal.

Failures raise ApiError(UNAUTHENTICATED / FORBIDDEN) so each surface renders them in its own
shape. Messages never echo the presented token, and nothing here logs it.
"""
from __future__ import annotations

from dataclasses import dataclass

import jwt
from starlette.requests import Request

from trainhouse.gateway.errors import FORBIDDEN, UNAUTHENTICATED, ApiError
from trainhouse.gateway.scopes import AUTHENTICATED, INTERNAL
from trainhouse.gateway.tokens import TokenStore
from trainhouse.common.identity import ADMIN, DEFAULT_ACCOUNT, SCOPES, Caller
from trainhouse.common.internal_tokens import InternalTokens, caller_from_claims, is_internal
from trainhouse.common.jwt_keys import JwtVerifier, KeyUnknown
from trainhouse.common.timeutil import now

__all__ = ["ADMIN", "DEFAULT_ACCOUNT", "SCOPES", "Authenticator", "Principal", "principal_of", "require_scope"]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller; `token_id` keys the rate limiter and the access log."""

    token_id: str
    name: str
    account: str
    scopes: frozenset[str]
    rate_limit_per_hour: int | None = None
    internal: bool = False  # an assertion of the stack's own processes (token introspection)

    def allows(self, scope: str) -> bool:
        if scope == INTERNAL:
            return self.internal
        return scope == AUTHENTICATED or ADMIN in self.scopes or scope in self.scopes

    @property
    def caller(self) -> Caller:
        """The identity the services see for this principal (trainhouse.common.identity)."""
        return Caller(self.name, self.account, self.scopes, self.token_id)

    @classmethod
    def of(cls, caller: Caller, internal: bool = False) -> "Principal":
        return cls(caller.token_id or f"sub:{caller.subject}", caller.subject, caller.account, caller.scopes,
                   None, internal)


class Authenticator:
    def __init__(self, store: TokenStore, jwt_secret: str | None = None, verifier: JwtVerifier | None = None,
                 internal: InternalTokens | None = None):
        self.store = store
        self.verifier = verifier or JwtVerifier(secret=jwt_secret)
        self.internal = internal

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise ApiError(UNAUTHENTICATED, "missing Authorization: Bearer <token> header",
                           headers={"WWW-Authenticate": "Bearer"})
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise ApiError(UNAUTHENTICATED, "Authorization header must be 'Bearer <token>'",
                           headers={"WWW-Authenticate": "Bearer"})
        if self.internal is not None and is_internal(credential):
            caller = self.internal.verify(credential)
            if caller is None:
                raise ApiError(UNAUTHENTICATED, "invalid, revoked or expired token",
                               headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
            return Principal.of(caller, internal=True)
        if self.verifier.enabled and credential.count(".") == 2:
            return self._jwt(credential)
        return self._api_token(credential)

    def _api_token(self, token: str) -> Principal:
        record = self.store.verify(token)
        if record is None or record.revoked or record.expired(now()):
            # One message for unknown, revoked and expired: no oracle for token guessing.
            raise ApiError(UNAUTHENTICATED, "invalid, revoked or expired token",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return Principal(record.token_id, record.name, record.account, frozenset(record.scopes),
                         record.rate_limit_per_hour)

    def _jwt(self, token: str) -> Principal:
        try:
            claims = self.verifier.claims(token)
        except (jwt.PyJWTError, KeyUnknown) as exc:
            raise ApiError(UNAUTHENTICATED, f"invalid JWT: {type(exc).__name__}",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
        return Principal.of(caller_from_claims(claims, DEFAULT_ACCOUNT))


def require_scope(principal: Principal, scope: str) -> None:
    if not principal.allows(scope):
        raise ApiError(FORBIDDEN, f"token lacks the '{scope}' scope", field="scope", issue=f"requires {scope}")


def principal_of(request: Request) -> Principal:
    """FastAPI dependency: the caller the route wrapper authenticated before the body was read."""
    principal = (request.scope.get("state") or {}).get("principal")
    if not isinstance(principal, Principal):  # a route outside the scope table: fail closed
        raise ApiError(UNAUTHENTICATED, "not authenticated")
    return principal
