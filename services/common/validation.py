"""Identifier rules every service checks the same way at its edge."""
from __future__ import annotations

import re

from services.core.errors import InvalidArgument

RESOURCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def resource_id(value: str, field: str) -> str:
    """Ids appear in file paths and URLs, so they are restricted to a safe alphabet."""
    if not value:
        raise InvalidArgument(field, "is required")
    if not RESOURCE_ID.match(value):
        raise InvalidArgument(field, "must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}")
    return value
