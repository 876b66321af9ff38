"""The keys JWTs are checked with: an HS256 shared secret and/or RS256 public keys from a JWKS.

`TRAINHOUSE_JWT_SECRET` accepts HS256 tokens signed with it; `TRAINHOUSE_JWT_JWKS` (a file path
or an http(s) URL of a JSON Web Key Set, as identity providers publish at ``jwks_uri``) accepts
RS256 tokens whose header ``kid`` names one of its keys. Each token is checked only with the kind
of key its ``alg`` names, so an RS256 public key can never serve as an HS256 secret (algorithm
confusion), and ``none`` is never accepted.

Rotation: a file is read again when its modification time changes; a URL is fetched again when
its copy is older than REFRESH_S, or when a token names a kid not in it (at most once per
COOLDOWN_S, so made-up kids cannot make the gateway hammer the provider). A provider that is
unreachable keeps the last keys it gave.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import jwt

from trainhouse.common.logs import log

logger = logging.getLogger("trainhouse.jwt")

REFRESH_S = 300.0
COOLDOWN_S = 30.0
FETCH_TIMEOUT_S = 5.0


class KeyUnknown(Exception):
    """No key can check this token (its algorithm is not configured, or its kid is unknown)."""


class Jwks:
    """The RS256 keys of one JWKS source, by kid."""

    def __init__(self, source: str, refresh_s: float = REFRESH_S, cooldown_s: float = COOLDOWN_S):
        self.source = source.strip()
        self.is_url = self.source.startswith(("http://", "https://"))
        self.refresh_s = refresh_s
        self.cooldown_s = cooldown_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._loaded_at = float("-inf")   # monotonic time of the last fetch attempt (URL)
        self._mtime: float | None = None  # of the file last read
        self._lock = threading.Lock()
        self._load()  # a bad file or unreachable URL shows at start-up, in the log or as SystemExit

    def _parse(self, text: str) -> dict[str, jwt.PyJWK]:
        data = json.loads(text)
        keys: dict[str, jwt.PyJWK] = {}
        for raw in data.get("keys", []) if isinstance(data, dict) else []:
            if not isinstance(raw, dict) or raw.get("kty") != "RSA" or raw.get("use", "sig") != "sig":
                continue
            try:
                keys[str(raw.get("kid", ""))] = jwt.PyJWK(raw, algorithm="RS256")
            except jwt.PyJWTError as exc:
                log(logger, "JWKS key skipped", logging.WARNING, kid=raw.get("kid"), error=type(exc).__name__)
        return keys

    def _load(self) -> None:
        if self.is_url:
            self._loaded_at = time.monotonic()
            try:
                response = httpx.get(self.source, timeout=FETCH_TIMEOUT_S, follow_redirects=True)
                response.raise_for_status()
                self._keys = self._parse(response.text)
            except (httpx.HTTPError, ValueError) as exc:
                log(logger, "JWKS fetch failed; keeping the previous keys", logging.ERROR, source=self.source,
                    error=f"{type(exc).__name__}: {exc}"[:300])
                return
        else:
            path = Path(self.source)
            try:
                mtime = path.stat().st_mtime
                self._keys = self._parse(path.read_text())
            except (OSError, ValueError) as exc:
                if self._mtime is None:
                    raise SystemExit(f"trainhouse: TRAINHOUSE_JWT_JWKS: cannot read a JWKS from {self.source}: "
                                     f"{type(exc).__name__}") from None
                log(logger, "JWKS reload failed; keeping the previous keys", logging.ERROR, source=self.source,
                    error=type(exc).__name__)
                return
            self._mtime = mtime
        log(logger, "JWKS loaded", source=self.source, kids=sorted(self._keys))

    def _stale(self, kid_missing: bool) -> bool:
        if not self.is_url:
            try:
                return Path(self.source).stat().st_mtime != self._mtime
            except OSError:
                return False
        age = time.monotonic() - self._loaded_at
        return age >= self.refresh_s or (kid_missing and age >= self.cooldown_s)

    def key(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            if self._stale(kid not in self._keys):
                self._load()
            found = self._keys.get(kid)
        if found is None:
            raise KeyUnknown(f"no JWKS key with kid '{kid[:64]}'")
        return found


class JwtVerifier:
    """Checks a JWT with the key its header's alg and kid name; returns its claims.

    With an issuer and/or audience (TRAINHOUSE_JWT_ISSUER / TRAINHOUSE_JWT_AUDIENCE, as an identity
    provider issues them), a token must carry exactly that `iss` and name that `aud`; a token that
    names an audience is refused when none is configured (it was meant for someone else)."""

    def __init__(self, secret: str | None = None, jwks: Jwks | None = None, issuer: str | None = None,
                 audience: str | None = None):
        self.secret = secret
        self.jwks = jwks
        self.issuer = issuer or None
        self.audience = audience or None

    @classmethod
    def from_env(cls, secret: str | None = None, jwks_source: str | None = None) -> "JwtVerifier":
        """The process's verifier: TRAINHOUSE_JWT_SECRET, _JWKS, _ISSUER and _AUDIENCE (the first two
        may be given, as the gateway's settings hold them)."""
        secret = secret if secret is not None else (os.environ.get("TRAINHOUSE_JWT_SECRET") or None)
        jwks_source = jwks_source if jwks_source is not None else (os.environ.get("TRAINHOUSE_JWT_JWKS") or None)
        return cls(secret, Jwks(jwks_source) if jwks_source else None,
                   os.environ.get("TRAINHOUSE_JWT_ISSUER") or None, os.environ.get("TRAINHOUSE_JWT_AUDIENCE") or None)

    @property
    def enabled(self) -> bool:
        return bool(self.secret or self.jwks)

    def claims(self, token: str) -> dict[str, Any]:
        header = jwt.get_unverified_header(token)
        alg = header.get("alg")
        if alg == "HS256" and self.secret:
            key: Any = self.secret
        elif alg == "RS256" and self.jwks is not None:
            key = self.jwks.key(str(header.get("kid", ""))).key
        else:
            raise KeyUnknown(f"JWT algorithm '{str(alg)[:16]}' is not accepted here")
        required = ["exp"] + (["iss"] if self.issuer else []) + (["aud"] if self.audience else [])
        return jwt.decode(token, key, algorithms=[alg], issuer=self.issuer, audience=self.audience,
                          options={"require": required})
