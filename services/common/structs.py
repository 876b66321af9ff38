"""Plain dicts as protobuf ``Struct``s, the one way every service and the gateway build them."""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from google.protobuf import struct_pb2


def to_struct(value: Mapping[str, Any] | None) -> struct_pb2.Struct:
    """``value`` as a Struct. Values a Struct cannot hold (NumPy numbers, dates, ...) are taken in
    their JSON form (``str`` when JSON has none), rather than failing the whole message."""
    out = struct_pb2.Struct()
    if value:
        try:
            out.update(value)
        except (TypeError, ValueError):
            out.Clear()
            out.update(json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o))))
    return out
