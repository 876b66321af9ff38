"""The internal credential: short-lived assertions of a caller's identity, passed between processes.

The gateway and the services share one secret, TRAINHOUSE_INTERNAL_KEY (the launcher makes a random
one per stack when none is given; k8s takes it from a Secret). A process that authenticated a caller
(the gateway from an API token or JWT, a service from any credential) forwards that caller to its
peers as an HS256 JWT signed with this key: issuer `trainhouse-internal`, the caller's subject,
account and scopes, valid for TTL_S. A peer verifies the signature, so a forged or altered identity
is refused, and the original caller's account and scopes apply at every hop.

Assertions are minted at most once per REUSE_S for the same caller and verified results are cached
by their text, so a hop costs a dictionary lookup, not an HMAC, on the hot serving path.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any

import jwt

from trainhouse.common import secret_checks
from trainhouse.common.identity import SCOPES, Caller

ISSUER = "trainhouse-internal"
AUDIENCE = "trainhouse"
KEY_VAR = "TRAINHOUSE_INTERNAL_KEY"
TTL_S = 300
REUSE_S = 60
_CACHE_MAX = 4096


class InternalKeyMissing(SystemExit):
    """A process that talks to its peers started without the shared key."""


def key_from_env(environ: dict[str, str] | os._Environ = os.environ) -> str:
    """The shared key; SystemExit with a one-line reason when it is missing or weak."""
    value = environ.get(KEY_VAR, "")
    if not value:
        raise InternalKeyMissing(f"trainhouse: {KEY_VAR} is not set: every process of a stack needs the same "
                                 f"random key (at least {secret_checks.MIN_BYTES} bytes; `trainhouse up` makes one)")
    reason = secret_checks.weakness(value)
    if reason and not secret_checks.insecure_dev(environ):
        raise InternalKeyMissing(f"trainhouse: {KEY_VAR} {reason}; set a random value (openssl rand -hex 32)")
    return value


def caller_from_claims(claims: dict[str, Any], default_account: str, trust_tid: bool = False) -> Caller:
    """A caller from JWT claims (`sub`, `account`, `scopes` as a list or a space-separated `scope`).

    Unknown scopes are dropped, never widened; one mapping for the gateway and the services."""
    raw = claims.get("scopes", claims.get("scope", []))
    if isinstance(raw, str):
        raw = raw.split()
    scopes = frozenset(s for s in raw if isinstance(s, str) and s in SCOPES) if isinstance(raw, list) else frozenset()
    subject = str(claims.get("sub") or "jwt")
    account = str(claims.get("account") or claims.get("sub") or default_account)
    # Only our own assertions may name the token they stand for (it keys rate limits and audit).
    token_id = str(claims.get("tid") or "") if trust_tid else f"jwt:{subject}"
    return Caller(subject, account, scopes, token_id)


class InternalTokens:
    """Mints and verifies the assertions of one stack's key."""

    def __init__(self, key: str):
        self._key = key
        self._minted: dict[Caller, tuple[float, str]] = {}
        self._verified: dict[str, tuple[float, Caller]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> "InternalTokens":
        return cls(key_from_env())

    def mint(self, caller: Caller) -> str:
        now = time.time()
        with self._lock:
            hit = self._minted.get(caller)
            if hit is not None and now - hit[0] < REUSE_S:
                return hit[1]
        token = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": caller.subject, "account": caller.account,
                            "scopes": sorted(caller.scopes), "tid": caller.token_id,
                            "iat": int(now), "exp": int(now) + TTL_S}, self._key, algorithm="HS256")
        with self._lock:
            if len(self._minted) >= _CACHE_MAX:
                self._minted.clear()
            self._minted[caller] = (now, token)
        return token

    def verify(self, token: str) -> Caller | None:
        """The caller the assertion names, or None when it is not a valid assertion of this key."""
        now = time.time()
        with self._lock:
            hit = self._verified.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            claims = jwt.decode(token, self._key, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER,
                                options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.PyJWTError:
            return None
        caller = caller_from_claims(claims, "", trust_tid=True)
        if not caller.account:
            return None
        with self._lock:
            if len(self._verified) >= _CACHE_MAX:
                self._verified.clear()
            self._verified[token] = (float(claims["exp"]), caller)
        return caller


def is_internal(token: str) -> bool:
    """Whether a JWT claims to be an internal assertion (checked for real by `verify`)."""
    if token.count(".") != 2:
        return False
    try:
        return jwt.decode(token, options={"verify_signature": False}).get("iss") == ISSUER
    except jwt.PyJWTError:
        return False
