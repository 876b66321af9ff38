"""How a surface spells a resource's canonical fields: a rename table, the key case, a subset.

The canonical fields are snake_case, named as in the protos. A surface's table renames some of
them (seed 000 says ``status`` where the proto says ``state``), picks the case of its keys, and may
show only some fields. Only top-level keys are renamed: values such as metric maps keep the
services' names on every surface. ``parse`` is the inverse, for clients that read a surface back
into canonical fields (the CLI reading the gateway's SSE stream).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.convert import camel, snake


@dataclass(frozen=True)
class FieldTable:
    renames: Mapping[str, str] = field(default_factory=dict)
    camel_case: bool = False
    only: frozenset[str] | None = None

    def name(self, canonical: str) -> str:
        """The surface's spelling of one canonical field name."""
        renamed = self.renames.get(canonical, canonical)
        return camel(renamed) if self.camel_case else renamed

    def render(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        return {self.name(k): v for k, v in fields.items() if self.only is None or k in self.only}

    def parse(self, data: Mapping[str, Any]) -> dict[str, Any]:
        back = {v: k for k, v in self.renames.items()}
        out = {}
        for key, value in data.items():
            key = snake(key) if self.camel_case else key
            out[back.get(key, key)] = value
        return out

    def restricted(self, names: Iterable[str]) -> "FieldTable":
        return FieldTable(self.renames, self.camel_case, frozenset(names))


CANONICAL = FieldTable()
