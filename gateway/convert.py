"""Small, surface-neutral conversions between protobuf values and JSON-ready Python values.

Hand-written rather than json_format.MessageToDict because the proto3 JSON mapping writes int64
as strings and enums as SCREAMING names, neither of which the seed shapes use.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from google.protobuf import json_format
from google.protobuf.duration_pb2 import Duration
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from trainhouse.common.structs import to_struct
from trainhouse.common.timeutil import iso


def ts_iso(ts: Timestamp | None) -> str | None:
    """ISO-8601 UTC with a Z, or None for an unset timestamp."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return iso(ts.ToDatetime(tzinfo=dt.timezone.utc))


def duration_s(d: Duration | None) -> float | None:
    if d is None or (d.seconds == 0 and d.nanos == 0):
        return None
    return d.seconds + d.nanos / 1e9


def enum_word(name: str, prefix: str) -> str:
    """JOB_STATE_RUNNING -> "running"; VERSION_STATE_ROLLED_BACK -> "rolled_back"."""
    return name.removeprefix(prefix).lower()


def _tidy_number(value: Any) -> Any:
    # Struct stores every number as a double; show integral ones as ints (epochs: 10, not 10.0).
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 2 ** 53:
        return int(value)
    if isinstance(value, dict):
        return {k: _tidy_number(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tidy_number(v) for v in value]
    return value


def struct_to_dict(s: Struct | None) -> dict[str, Any]:
    if s is None:
        return {}
    return _tidy_number(json_format.MessageToDict(s))


def dict_to_struct(d: dict[str, Any] | None) -> Struct:
    return to_struct(d)


def human_size(n: int) -> str:
    """Bytes as the seed writes them ("450MB", "1.2MB", "980B")."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            text = f"{value:.0f}" if unit == "B" or value >= 100 else f"{value:.1f}".rstrip("0").rstrip(".")
            return f"{text}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    """A rough duration for people ("45 seconds", "2 minutes", "1.5 hours")."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        n = max(1, round(seconds))
        return f"{n} second" + ("s" if n != 1 else "")
    if seconds < 3600:
        n = max(1, round(seconds / 60))
        return f"{n} minute" + ("s" if n != 1 else "")
    hours = seconds / 3600
    text = f"{hours:.1f}".rstrip("0").rstrip(".")
    return f"{text} hour" + ("s" if text != "1" else "")


_SNAKE = re.compile(r"_([a-z0-9])")


def camel(name: str) -> str:
    """learning_rate -> learningRate (already-camel names pass through)."""
    return _SNAKE.sub(lambda m: m.group(1).upper(), name)


def camel_keys(d: dict[str, Any]) -> dict[str, Any]:
    return {camel(k): v for k, v in d.items()}


def finite(value: Any) -> Any:
    """NaN/inf (a diverged loss) are not JSON; they travel as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def snake(name: str) -> str:
    """learningRate -> learning_rate (already-snake names pass through)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def snake_keys(value: Any) -> Any:
    """Recursively snake_case the keys of JSON-ready dicts (for the snake_case surfaces)."""
    if isinstance(value, dict):
        return {snake(k): snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake_keys(v) for v in value]
    return value


def epoch_ms(ts: Timestamp | None) -> int | None:
    """Unix milliseconds (seed 004's times), or None for an unset timestamp."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return ts.seconds * 1000 + ts.nanos // 1_000_000


def iso_epoch_ms(text: str) -> int:
    """Unix milliseconds of an ISO-8601 time written by ``ts_iso`` (a canonical field's value)."""
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(when.replace(microsecond=0).timestamp()) * 1000 + when.microsecond // 1000


def human_latency(ms: float) -> str:
    """A latency the way seed 000 writes it: "1.2s", "3.4ms", "0.42ms"."""
    if ms >= 1000:
        return f"{ms / 1000:.1f}s"
    if ms >= 1:
        return f"{ms:.1f}ms"
    return f"{ms:.2f}ms"


def signed_percent(value: float) -> str:
    """A relative change as seed 000 writes it: "+5%", "-20%", "+2.5%"."""
    text = f"{value:+.1f}".rstrip("0").rstrip(".")
    if text in ("+", "-", "+0", "-0"):
        text = "+0"
    return f"{text}%"


def usd_text(amount: float) -> str:
    """Seed 003's money strings ("12.50"): at least two decimals, and enough of them that a real
    cost of a fraction of a cent does not read "0.00" (0.000123 -> "0.000123")."""
    if amount == 0 or abs(amount) >= 0.01:
        return f"{amount:.2f}"
    text = f"{amount:.8f}".rstrip("0")
    return text if len(text.partition(".")[2]) >= 2 else f"{amount:.2f}"
