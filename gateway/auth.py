"""Who is calling: bearer API tokens (and JWTs: HS256 with a shared secret, RS256 from a JWKS,
see `gateway/jwt_keys.py`) -> Principal.

Failures raise ApiError(UNAUTHENTICATED / FORBIDDEN) so each surface renders them in its own
shape. Messages never echo the presented token, and nothing here logs it.
"""
from __future__ import annotations

from dataclasses import dataclass

import jwt
from starlette.requests import Request

from gateway.errors import FORBIDDEN, UNAUTHENTICATED, ApiError
from gateway.jwt_keys import JwtVerifier, KeyUnknown
from gateway.scopes import AUTHENTICATED
from gateway.tokens import TokenStore
from services.common.timeutil import now

SCOPES: tuple[str, ...] = (
    "training:start", "training:view", "training:cancel", "training:evaluate",
    "data:generate", "data:export", "models:deploy", "admin",
)
ADMIN = "admin"
DEFAULT_ACCOUNT = "default"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller; `token_id` keys the rate limiter and the access log."""

    token_id: str
    name: str
    account: str
    scopes: frozenset[str]
    rate_limit_per_hour: int | None = None

    def allows(self, scope: str) -> bool:
        return scope == AUTHENTICATED or ADMIN in self.scopes or scope in self.scopes


class Authenticator:
    def __init__(self, store: TokenStore, jwt_secret: str | None = None, verifier: JwtVerifier | None = None):
        self.store = store
        self.verifier = verifier or JwtVerifier(secret=jwt_secret)

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise ApiError(UNAUTHENTICATED, "missing Authorization: Bearer <token> header",
                           headers={"WWW-Authenticate": "Bearer"})
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise ApiError(UNAUTHENTICATED, "Authorization header must be 'Bearer <token>'",
                           headers={"WWW-Authenticate": "Bearer"})
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
        raw = claims.get("scopes", claims.get("scope", []))
        if isinstance(raw, str):
            raw = raw.split()
        scopes = frozenset(s for s in raw if isinstance(s, str) and s in SCOPES) if isinstance(raw, list) else frozenset()
        subject = str(claims.get("sub") or "jwt")
        account = str(claims.get("account") or claims.get("sub") or DEFAULT_ACCOUNT)
        return Principal(f"jwt:{subject}", subject, account, scopes)


def require_scope(principal: Principal, scope: str) -> None:
    if not principal.allows(scope):
        raise ApiError(FORBIDDEN, f"token lacks the '{scope}' scope", field="scope", issue=f"requires {scope}")


def principal_of(request: Request) -> Principal:
    """FastAPI dependency: the caller the route wrapper authenticated before the body was read."""
    principal = (request.scope.get("state") or {}).get("principal")
    if not isinstance(principal, Principal):  # a route outside the scope table: fail closed
        raise ApiError(UNAUTHENTICATED, "not authenticated")
    return principal
