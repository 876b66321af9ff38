"""Signed, expiring URLs (seed 000's `downloadUrl` + `expiresAt`) that need no bearer token.

A URL carries ``expires`` (Unix seconds), the ``account`` and ``scope`` it was issued under, and
``signature`` = hex HMAC-SHA256 over ``"<METHOD> <path>\\n<expires>\\n<account>\\n<scope>"`` with a
key only the gateway knows. The key is generated once and kept in gateway.duckdb, so links survive
a restart; the path, account and scope are part of the signed text, so a link to one dataset cannot
be replayed for another, nor widened to another account or scope. The request a link makes runs as
that account with that scope only, so the services apply the account boundary to it as to any call
(a link issued to one account never reads another's data). Verification compares in constant time.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from urllib.parse import urlencode

from starlette.requests import Request

from trainhouse.common.duckdb_store import DuckStore
from trainhouse.common.identity import Caller

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS gateway_secrets (name VARCHAR PRIMARY KEY, value BLOB NOT NULL)",
]
KEY_NAME = "url-signing-key"


class UrlSigner:
    def __init__(self, db: DuckStore, ttl_s: int, wall: Callable[[], float] = time.time):
        for statement in SCHEMA:
            db.execute(statement)
        rows = db.query("SELECT value FROM gateway_secrets WHERE name = ?", [KEY_NAME])
        if rows:
            self._key = bytes(rows[0][0])
        else:
            self._key = secrets.token_bytes(32)
            db.execute("INSERT INTO gateway_secrets (name, value) VALUES (?, ?)", [KEY_NAME, self._key])
        self.ttl_s = ttl_s
        self._wall = wall

    def _signature(self, method: str, path: str, expires: int, account: str, scope: str) -> str:
        text = f"{method.upper()} {path}\n{expires}\n{account}\n{scope}".encode()
        return hmac.new(self._key, text, hashlib.sha256).hexdigest()

    def sign(self, base_url: str, path: str, account: str, scope: str, method: str = "GET") -> tuple[str, int]:
        """(absolute URL, expiry in Unix seconds) for `path` under `base_url`, usable as `account`
        with `scope` only."""
        expires = int(self._wall()) + self.ttl_s
        query = urlencode({"expires": expires, "account": account, "scope": scope,
                           "signature": self._signature(method, path, expires, account, scope)})
        return f"{base_url.rstrip('/')}{path}?{query}", expires

    def verify(self, method: str, path: str, expires: str | None, account: str | None, scope: str | None,
               signature: str | None) -> Caller | None:
        """The identity the link was issued for, or None (forged, altered or expired)."""
        if not expires or not signature or not account or not scope or not expires.isdigit() or len(expires) > 12:
            return None
        expected = self._signature(method, path, int(expires), account, scope)
        valid = hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))
        if not valid or int(expires) <= self._wall():
            return None
        return Caller(f"signed-url:{account}", account, frozenset({scope}), "signed-url")

    def verify_request(self, request: Request, scope: str) -> Caller | None:
        """The link's identity when it is valid for this request and grants `scope`."""
        q = request.query_params
        caller = self.verify(request.method, request.url.path, q.get("expires"), q.get("account"),
                             q.get("scope"), q.get("signature"))
        return caller if caller is not None and caller.allows(scope) else None
