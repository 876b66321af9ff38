"""Secrets given by the operator must be real secrets: checked once, at start-up.

A bootstrap token or JWT secret copied from an example (``change-me``) or too short to resist
guessing would let anyone who has read the same example in. So a process that reads one refuses
to start when it is

- shorter than MIN_BYTES (32) bytes,
- one of PLACEHOLDERS, or contains one of PLACEHOLDER_PARTS, compared on its letters and digits
  only, case-insensitively (``Change_Me``, ``change-me-too`` and ``CHANGEME`` are all ``changeme``),
- or made of fewer than MIN_DISTINCT (8) distinct characters (``xxxxxxxx...``, ``abababab...``),

unless ``TRAINHOUSE_INSECURE_DEV=1`` says this is a development set-up (then it starts and logs
a warning). The flag itself is validated: anything but 1/0/true/false/yes/no stops the process.
Generated values (``openssl rand -hex 32``, ``python -c "import secrets; print(secrets.token_urlsafe(32))"``)
always pass.
"""
from __future__ import annotations

import os
import re

MIN_BYTES = 32
MIN_DISTINCT = 8
DEV_FLAG = "TRAINHOUSE_INSECURE_DEV"
# Whole values (letters and digits only, lower case) that examples and tutorials ship.
PLACEHOLDERS = frozenset({
    "changeme", "changemetoo", "changeit", "replaceme", "secret", "secretkey", "mysecret", "yoursecret",
    "jwtsecret", "supersecret", "topsecret", "password", "passw0rd", "p4ssw0rd", "admin", "adminadmin",
    "token", "admintoken", "test", "testing", "example", "default", "dev", "development", "insecure",
    "placeholder", "todo", "fixme", "xxx", "none", "null", "empty", "letmein", "qwerty", "123456",
    "1234567890", "0123456789",
})
# Parts that mark a value as copied from instructions, wherever they appear in it.
PLACEHOLDER_PARTS = ("changeme", "replaceme", "changeit", "putyour", "yoursecret", "yourtoken", "example",
                     "placeholder", "insecure", "notasecret", "donotuse")
# The variables each process checks.
SECRET_VARS = ("TRAINHOUSE_BOOTSTRAP_TOKEN", "TRAINHOUSE_JWT_SECRET", "TRAINHOUSE_INTERNAL_KEY")


def weakness(value: str) -> str | None:
    """Why `value` is not an acceptable secret, or None when it is."""
    folded = re.sub(r"[^0-9a-z]", "", value.lower())
    if folded in PLACEHOLDERS or any(part in folded for part in PLACEHOLDER_PARTS):
        return "is a placeholder value"
    if len(value.encode()) < MIN_BYTES:
        return f"is shorter than {MIN_BYTES} bytes"
    if len(set(value)) < MIN_DISTINCT:
        return f"has fewer than {MIN_DISTINCT} distinct characters"
    return None


def insecure_dev(environ: dict[str, str] | os._Environ = os.environ) -> bool:
    """Whether TRAINHOUSE_INSECURE_DEV allows weak secrets; SystemExit on a value that is no boolean."""
    raw = (environ.get(DEV_FLAG) or "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise SystemExit(f"{DEV_FLAG} must be 1 or 0, got {environ.get(DEV_FLAG)!r}")


def problems(environ: dict[str, str] | os._Environ = os.environ,
             names: tuple[str, ...] = SECRET_VARS) -> list[str]:
    """One sentence per set variable in `names` whose value is weak (values are never echoed)."""
    found = []
    for name in names:
        value = environ.get(name)
        if value:
            reason = weakness(value)
            if reason:
                found.append(f"{name} {reason}")
    return found


def refusal(environ: dict[str, str] | os._Environ = os.environ,
            names: tuple[str, ...] = SECRET_VARS) -> str | None:
    """The one-line reason to refuse to start, or None (strong secrets, or the development flag)."""
    found = problems(environ, names)
    if not found or insecure_dev(environ):
        return None
    return (f"refusing to start: {'; '.join(found)}. Set a random value of at least {MIN_BYTES} bytes "
            f"(openssl rand -hex 32), or {DEV_FLAG}=1 for a development set-up")


def require_strong(environ: dict[str, str] | os._Environ = os.environ,
                   names: tuple[str, ...] = SECRET_VARS) -> list[str]:
    """SystemExit with the one-line reason when a secret is weak and the development flag is off;
    otherwise the weaknesses tolerated by the flag (for a warning)."""
    reason = refusal(environ, names)
    if reason:
        raise SystemExit(f"trainhouse: {reason}")
    return problems(environ, names)
