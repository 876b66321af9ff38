"""Signed, expiring URLs (seed 000's `downloadUrl` + `expiresAt`) that need no bearer token.

A URL carries ``expires`` (Unix seconds) and ``signature`` = hex HMAC-SHA256 over
``"<METHOD> <path>\\n<expires>"`` with a key only the gateway knows. The key is generated once and
kept in gateway.duckdb, so links survive a restart; the path is part of the signed text, so a
link to one dataset cannot be replayed for another. Verification compares in constant time.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from urllib.parse import urlencode

from starlette.requests import Request

from services.common.duckdb_store import DuckStore

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

    def _signature(self, method: str, path: str, expires: int) -> str:
        text = f"{method.upper()} {path}\n{expires}".encode()
        return hmac.new(self._key, text, hashlib.sha256).hexdigest()

    def sign(self, base_url: str, path: str, method: str = "GET") -> tuple[str, int]:
        """(absolute URL, expiry in Unix seconds) for `path` under `base_url`."""
        expires = int(self._wall()) + self.ttl_s
        query = urlencode({"expires": expires, "signature": self._signature(method, path, expires)})
        return f"{base_url.rstrip('/')}{path}?{query}", expires

    def verify(self, method: str, path: str, expires: str | None, signature: str | None) -> bool:
        if not expires or not signature or not expires.isdigit() or len(expires) > 12:
            return False
        expected = self._signature(method, path, int(expires))
        valid = hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))
        return valid and int(expires) > self._wall()

    def verify_request(self, request: Request) -> bool:
        q = request.query_params
        return self.verify(request.method, request.url.path, q.get("expires"), q.get("signature"))
