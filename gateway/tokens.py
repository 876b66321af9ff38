"""API tokens in the gateway's own DuckDB file, stored only as salted HMAC-SHA256.

Why this layout:
- a token is shown once; the file holds ``HMAC-SHA256(salt, token)`` with a per-token salt, so a
  leaked file neither reveals tokens nor lets two equal tokens be spotted;
- with per-token salts a token cannot be found by its hash, so each row also keeps ``lookup``, the
  first 8 hex digits of an unsalted SHA-256: it narrows the candidates to about one row while
  revealing nothing usable about a 256-bit token; the salted digest is the real check and is
  compared in constant time.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from trainhouse.common.duckdb_store import DuckStore
from trainhouse.common.timeutil import now
from trainhouse.core.ids import random_id

TOKEN_PREFIX = "th_"
BOOTSTRAP_ID = "tok-bootstrap"

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS api_tokens (
        token_id VARCHAR PRIMARY KEY,
        name VARCHAR NOT NULL,
        account VARCHAR NOT NULL,
        scopes_json VARCHAR NOT NULL,
        lookup VARCHAR NOT NULL,
        salt BLOB NOT NULL,
        digest BLOB NOT NULL,
        created_at TIMESTAMP NOT NULL,
        expires_at TIMESTAMP,
        revoked BOOLEAN NOT NULL DEFAULT FALSE,
        revoked_at TIMESTAMP,
        rate_limit_per_hour INTEGER
    )""",
    "CREATE INDEX IF NOT EXISTS api_tokens_lookup ON api_tokens (lookup)",
]


@dataclass(frozen=True)
class TokenRecord:
    """A stored token without its secret."""

    token_id: str
    name: str
    account: str
    scopes: tuple[str, ...]
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked: bool
    rate_limit_per_hour: int | None

    def expired(self, at: dt.datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= at


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _lookup(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:8]


def _digest(salt: bytes, token: str) -> bytes:
    return hmac.new(salt, token.encode(), hashlib.sha256).digest()


def _naive_utc(value: dt.datetime) -> dt.datetime:
    """DuckDB TIMESTAMP columns hold naive UTC (no pytz needed to read them back)."""
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.replace(tzinfo=dt.timezone.utc)


def _record(row: dict) -> TokenRecord:
    return TokenRecord(
        token_id=row["token_id"], name=row["name"], account=row["account"],
        scopes=tuple(json.loads(row["scopes_json"])), created_at=_aware(row["created_at"]),
        expires_at=_aware(row["expires_at"]), revoked=bool(row["revoked"]),
        rate_limit_per_hour=row["rate_limit_per_hour"],
    )


_COLUMNS = "token_id, name, account, scopes_json, created_at, expires_at, revoked, rate_limit_per_hour"


VERIFY_CACHE_S = 30.0


class TokenStore:
    def __init__(self, path: Path | DuckStore):
        """Open gateway.duckdb at `path`, or use an open one (shared with the other gateway tables)."""
        self._verified: dict[bytes, tuple[TokenRecord, float]] = {}
        if isinstance(path, DuckStore):
            self.db = path
            for statement in SCHEMA:
                self.db.execute(statement)
        else:
            self.db = DuckStore(path, SCHEMA)

    def close(self) -> None:
        self.db.close()

    def create(self, name: str, scopes: list[str], account: str, expires_at: dt.datetime | None = None,
               rate_limit_per_hour: int | None = None, token: str | None = None,
               token_id: str | None = None) -> tuple[str, TokenRecord]:
        """Store a new token (or the given one, for the bootstrap token); returns it once."""
        self._verified.clear()  # a given token_id may replace an existing token (bootstrap)
        token = token or new_token()
        token_id = token_id or random_id("tok")
        salt = os.urandom(16)
        created = now()
        with self.db.transaction() as con:
            con.execute("DELETE FROM api_tokens WHERE token_id = ?", [token_id])
            con.execute(
                "INSERT INTO api_tokens (token_id, name, account, scopes_json, lookup, salt, digest, created_at,"
                " expires_at, revoked, rate_limit_per_hour) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, FALSE, ?)",
                [token_id, name, account, json.dumps(sorted(set(scopes))), _lookup(token), salt,
                 _digest(salt, token), _naive_utc(created),
                 _naive_utc(expires_at) if expires_at else None, rate_limit_per_hour],
            )
        record = self.get(token_id)
        assert record is not None
        return token, record

    def verify(self, token: str) -> TokenRecord | None:
        """The record whose digest matches, whatever its state (the caller checks revoked/expiry).

        A match is remembered for VERIFY_CACHE_S (keyed by the token's SHA-256, never the token):
        a DuckDB point query per request was most of the gateway's latency. Revoking clears it,
        and the gateway is the only writer of this store.
        """
        key = hashlib.sha256(token.encode()).digest()
        cached = self._verified.get(key)
        if cached is not None and time.monotonic() - cached[1] < VERIFY_CACHE_S:
            return cached[0]
        record = self._verify_uncached(token)
        if record is not None:
            self._verified[key] = (record, time.monotonic())
        return record

    def _verify_uncached(self, token: str) -> TokenRecord | None:
        rows = self.db.query_dicts(
            f"SELECT {_COLUMNS}, salt, digest FROM api_tokens WHERE lookup = ?", [_lookup(token)])
        found = None
        for row in rows:
            # Check every candidate so the time taken does not depend on which one matched.
            if hmac.compare_digest(_digest(bytes(row["salt"]), token), bytes(row["digest"])):
                found = row
        return _record(found) if found else None

    def get(self, token_id: str) -> TokenRecord | None:
        rows = self.db.query_dicts(f"SELECT {_COLUMNS} FROM api_tokens WHERE token_id = ?", [token_id])
        return _record(rows[0]) if rows else None

    def list(self, include_revoked: bool = False) -> list[TokenRecord]:
        where = "" if include_revoked else "WHERE NOT revoked"
        rows = self.db.query_dicts(f"SELECT {_COLUMNS} FROM api_tokens {where} ORDER BY created_at, token_id")
        return [_record(r) for r in rows]

    def revoke(self, token_id: str) -> TokenRecord | None:
        self._verified.clear()
        with self.db.transaction() as con:
            con.execute("UPDATE api_tokens SET revoked = TRUE, revoked_at = ? WHERE token_id = ?",
                        [_naive_utc(now()), token_id])
        return self.get(token_id)


def ensure_bootstrap(store: TokenStore, home: Path, env_token: str | None) -> Path | None:
    """Make the admin token valid: the env one if set, else the one in ``home/admin-token``.

    On first start without the env variable a token is generated and written with mode 0600
    (created that way, then renamed into place, so it is never readable by others even briefly).
    Returns the file path when the token lives in a file.
    """
    if env_token:
        store.create("bootstrap-admin", ["admin"], "default", token=env_token, token_id=BOOTSTRAP_ID)
        return None
    path = home / "admin-token"
    token = path.read_text().strip() if path.exists() else ""
    if token:
        os.chmod(path, 0o600)
    else:
        token = new_token()
        tmp = path.with_name(f".admin-token.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        os.replace(tmp, path)
    store.create("bootstrap-admin", ["admin"], "default", token=token, token_id=BOOTSTRAP_ID)
    return path
