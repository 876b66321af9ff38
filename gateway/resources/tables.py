"""How a surface spells a resource's canonical fields: a rename table, the key case, a subset.

The canonical fields are snake_case, named as in the protos. A surface's table renames some of
them (seed 000 says ``status`` where the proto says ``state``), picks the case of its keys, and may
show only some fields. Only top-level keys are renamed: values such as metric maps keep the
services' names on every surface. ``values`` converts a field's value into the surface's form
(seed 004 writes times as epoch milliseconds where the canonical field is ISO-8601), and
``drop_none`` leaves out unset fields for surfaces that omit rather than null them. ``parse`` is the
inverse of the renames, for clients that read a surface back into canonical fields (the CLI reading
the gateway's SSE stream).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from trainhouse.gateway.convert import camel, snake


@dataclass(frozen=True)
class FieldTable:
    renames: Mapping[str, str] = field(default_factory=dict)
    camel_case: bool = False
    only: frozenset[str] | None = None
    values: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    drop_none: bool = False

    def name(self, canonical: str) -> str:
        """The surface's spelling of one canonical field name."""
        renamed = self.renames.get(canonical, canonical)
        return camel(renamed) if self.camel_case else renamed

    def render(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in fields.items():
            if self.only is not None and key not in self.only:
                continue
            if value is not None and key in self.values:
                value = self.values[key](value)
            if value is None and self.drop_none:
                continue
            out[self.name(key)] = value
        return out

    def parse(self, data: Mapping[str, Any]) -> dict[str, Any]:
        back = {v: k for k, v in self.renames.items()}
        out = {}
        for key, value in data.items():
            key = snake(key) if self.camel_case else key
            out[back.get(key, key)] = value
        return out

    def restricted(self, names: Iterable[str]) -> "FieldTable":
        return replace(self, only=frozenset(names))


CANONICAL = FieldTable()
