"""Where in a request a problem is, spelled as the caller spelled it.

Services name fields by their proto path ("config.learning_rate", "examples[2].input"); pydantic
names them by location tuples. Clients of the camelCase surfaces want "learningRate" and
"examples[2].input", so every error shape that names a field goes through these two functions.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from trainhouse.gateway.convert import camel

LOCATIONS = {"body", "query", "path", "header", "cookie"}
_INDEX = re.compile(r"^(.*?)((?:\[\d+\])*)$")


def field_path(parts: Sequence[Any], *, as_written: bool = False) -> str:
    """A field location as the caller spelled it: camelCase keys, ``[i]`` indexes, no ``config.``.

    ("body", "config", "learning_rate") -> "learningRate";
    ("body", "examples", 3, "expected_output") -> "examples[3].expectedOutput".
    Seed 000 names config fields by their leaf ("learningRate"), so the ``config`` level is
    dropped; deeper paths keep their parents so an example or a curriculum stage stays findable.
    With ``as_written`` (the location of a request's own validation error, where pydantic names
    the spelling the caller used) a config field keeps it: ``learning_rate`` stays ``learning_rate``.
    """
    parts = list(parts)
    if parts and parts[0] in LOCATIONS:
        parts = parts[1:]
    config = len(parts) > 1 and parts[0] == "config"
    if config:
        parts = parts[1:]
    return join_path(parts, str if config and as_written else camel)


def join_path(parts: Sequence[Any], name: Callable[[str], str] = str) -> str:
    """("examples", 2, "input") -> "examples[2].input", each key spelled by ``name``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + name(str(part))
    return out


def rpc_field(field: str | None) -> str | None:
    """A service's field path ("config.learning_rate", "examples[2].input") in the v1 spelling."""
    if not field:
        return None
    parts: list[Any] = []
    for segment in field.split("."):
        name, indexes = _INDEX.match(segment).groups()  # type: ignore[union-attr]
        parts.append(name)
        parts.extend(int(i) for i in re.findall(r"\d+", indexes))
    return field_path(parts) or field
