"""Identifier rules every service checks the same way at its edge (the gateway's id types in
gateway/models.py use the same pattern, so a bad id is refused before it reaches a service)."""
from __future__ import annotations

import re

from trainhouse.core.errors import InvalidArgument

RESOURCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
RESOURCE_ID_MAX = 128


def resource_id(value: str, field: str) -> str:
    """Ids appear in file paths and URLs, so they are restricted to a safe alphabet."""
    if not value:
        raise InvalidArgument(field, "is required")
    if not RESOURCE_ID.fullmatch(value):  # fullmatch: "$" alone would let a trailing newline through
        raise InvalidArgument(field, "must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}")
    return value


def version_ref(value: str, field: str) -> str:
    """A version named by its id ("v1.2.0") or, with a leading "@", by an alias ("@champion")."""
    resource_id(value[1:] if value.startswith("@") else value, field)
    return value
